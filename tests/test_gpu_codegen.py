"""GPU code generation on any machine: CUDA C and PTX for the GPU schedules, the GPU model's numbers,
the same schedules checked on the CPU, and (marked `gpu`, skipped without one) runs on a real GPU."""

from __future__ import annotations

import re

import numpy as np
import pytest

import mlc_lab
from mlc_lab.codegen.tvm.gpu import (
    GPUTargetError,
    NoGPUError,
    TileConfig,
    build_gpu,
    cuda_device_present,
    gpu_target,
    run_on_cpu,
)
from mlc_lab.codegen.tvm.gpu.device_code import cuda_shared_bytes, ptx_register_estimate
from mlc_lab.codegen.tvm.gpu.target import find_ptxas
from mlc_lab.ir import Graph, GraphBuilder
from mlc_lab.passes import ElementwiseFusionPass
from mlc_lab.sim.gpu_model import GPUS, GPUModelError, KernelLaunch, occupancy, predict_kernel, predict_model

HAS_GPU = cuda_device_present()
gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU that TVM's runtime can open")
no_gpu = pytest.mark.skipif(HAS_GPU, reason="checks the behaviour on a machine without a GPU")


def weight(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def matmul_graph(m: int = 512, n: int = 512, k: int = 64) -> Graph:
    b = GraphBuilder("matmul")
    return b.build(b.matmul(b.input("a", (m, k)), b.input("b", (k, n))))


def dense_relu_graph(m: int = 64, n: int = 96, k: int = 48) -> Graph:
    b = GraphBuilder("dense_relu")
    x = b.input("x", (m, k))
    y = b.relu(b.bias_add(b.dense(x, b.constant(weight((n, k), 1), "w")), b.constant(weight((n,), 2), "b"), axis=1))
    return ElementwiseFusionPass().apply(b.build(y))


def conv_softmax_graph() -> Graph:
    b = GraphBuilder("conv_softmax")
    x = b.input("x", (1, 4, 10, 10))
    y = b.conv2d(x, b.constant(weight((8, 4, 3, 3), 3), "w"), padding=(1, 1, 1, 1))
    return b.build(b.softmax(b.reshape(y, shape=(8, 100)), axis=1))


def inputs_for(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(x.shape).astype(x.dtype) for x in graph.inputs]


@pytest.fixture(scope="module")
def matmul():
    return build_gpu(matmul_graph())


def kernel_body(source: str, name: str) -> str:
    """The CUDA source from kernel `name`'s definition on."""
    found = re.search(rf"__global__ void (?:__launch_bounds__\(\d+\) )?{name}\([^)]*\)\s*\{{", source)
    assert found, f"kernel {name} is not defined in the CUDA source"
    return source[found.end() :]


# == CUDA C =========================================================================================
def test_matmul_cuda_tiles_through_shared_memory(matmul):
    source = matmul.cuda_source
    body = kernel_body(source, "matmul_kernel")
    assert "__shared__" in body
    assert "blockIdx.x" in body and "blockIdx.y" in body and "threadIdx.x" in body and "threadIdx.y" in body
    assert body.count("__syncthreads()") >= 2  # before and after each tile is loaded
    # cooperative loads: a float4 from global memory into a shared tile, at an offset set by the thread's index
    stores = re.findall(r"\*\(float4\*\)\((\w+_shared\w*) \+ ([^;]*?)\) = \*\(float4\*\)\((\w+)_ptr", body)
    assert {(s[0].split("_shared")[0], s[2]) for s in stores} >= {("a", "a"), ("b", "b")}
    assert all("threadIdx" in s[1] for s in stores)
    # register tile: each thread accumulates a 4x4 tile in a local array
    assert re.search(r"float\d? \w+_local\w*\[(16|8|4)\];", body)


def test_matmul_facts_match_the_source(matmul):
    (kernel,) = matmul.kernel_facts()
    tile = TileConfig()  # 512 x 512 with K 64: the 64 x 64 x 16 default tile, 64 blocks
    assert kernel.grid == (512 // tile.block_m, 512 // tile.block_n, 1)
    assert kernel.block == (16, 16, 1)
    assert kernel.shared_bytes == 4 * tile.block_k * (tile.block_m + tile.block_n) == 8192
    assert cuda_shared_bytes(matmul.cuda_source) == {kernel.name: kernel.shared_bytes}
    assert f"__launch_bounds__({kernel.threads_per_block})" in matmul.cuda_source


def test_dense_epilogue_is_fused_into_the_tiled_kernel():
    compiled = build_gpu(dense_relu_graph())
    (kernel,) = compiled.kernel_facts()  # dense, bias and relu: one kernel
    body = kernel_body(compiled.cuda_source, kernel.name)
    assert "__shared__" in body and "__syncthreads()" in body
    assert kernel.shared_bytes > 0 and kernel.threads_per_block == 256


def test_other_kernels_get_dlight_schedules():
    compiled = build_gpu(conv_softmax_graph())
    facts = compiled.kernel_facts()
    assert len(facts) >= 3  # conv (with its padding copy) and softmax: all bound to threads
    assert all(f.threads_per_block > 1 for f in facts)
    assert compiled.cuda_source.count("__global__ void") >= len(facts)


# == PTX and registers ================================================================================
def test_ptx_has_every_kernel_as_an_entry(matmul):
    ptx = matmul.ptx
    assert ".target sm_80" in ptx
    for kernel in matmul.kernel_facts():
        assert re.search(rf"\.visible \.entry {kernel.name}\(", ptx)
    assert "bar.sync" in ptx and ".shared" in ptx
    registers, source = matmul.registers
    assert source in ("ptxas", "PTX estimate")
    assert all(0 < r <= 255 for r in registers.values()) and set(registers) == {k.name for k in matmul.kernel_facts()}


@pytest.mark.skipif(find_ptxas() is None, reason="needs ptxas (a CUDA toolkit) to count registers exactly")
def test_ptxas_reads_real_register_counts(matmul):
    registers, source = matmul.registers
    assert source == "ptxas"
    (count,) = registers.values()
    assert 16 < count <= 255  # 16 accumulators alone take 16 registers


def test_register_estimate_reads_ptx_declarations():
    ptx = """
.visible .entry k1(.param .u64 p)
{
    .reg .pred %p<4>;
    .reg .b32 %r<20>;
    .reg .f32 %f<30>;
    .reg .b64 %rd<5>;
    ret;
}
.visible .entry k2(.param .u64 p)
{
    .reg .f32 %f<400>;
    ret;
}
"""
    assert ptx_register_estimate(ptx) == {"k1": 20 + 30 + 2 * 5, "k2": 255}
    assert ptx_register_estimate(ptx, {"k2": 1024}) == {"k1": 60, "k2": 64}  # 65,536 / 1,024 threads


# == the same schedules, run on the CPU ==================================================================
@pytest.mark.parametrize("make", [matmul_graph, dense_relu_graph, conv_softmax_graph])
def test_gpu_schedules_compute_the_interpreters_answer(make):
    graph = make()
    compiled = build_gpu(graph)
    inputs = inputs_for(graph)
    got, want = run_on_cpu(graph, compiled.kernels, *inputs), graph(*inputs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["transformer_block"])
def test_zoo_models_compiled_for_cuda_compute_what_pytorch_does(name):
    """Through mlc_lab.compile: batched matmuls (the template), GEMVs, softmax, layer norm, gelu (dlight)."""
    from mlc_lab import zoo

    model = zoo.load(name)
    compiled = mlc_lab.compile(model.module, model.example_inputs, backend="tvm", target="cuda")
    got = run_on_cpu(compiled.optimized, compiled.runner.kernels, *model.numpy_inputs())
    for g, w in zip(got, model.torch_outputs()):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_serialized_check_catches_a_cooperative_load_that_misses_half_the_tile():
    """The CPU check is not vacuous: with half the threads along y copying, half of A's tile is never loaded."""
    import tvm

    from mlc_lab.codegen.tvm.gpu.cpu_check import cpu_build

    graph = matmul_graph(64, 64, 32)
    (kernel,) = {id(k): k for k in build_gpu(graph).kernels.values()}.values()
    script = kernel.func.script()
    copy = script.index('with T.sblock("a_shared")')
    loop = script.rindex('T.thread_binding(16, thread="threadIdx.y")', 0, copy)
    old = 'T.thread_binding(16, thread="threadIdx.y")'
    broken = script[:loop] + old.replace("16", "8") + script[loop + len(old) :]
    module = cpu_build(tvm.script.from_source(broken))
    a, b = inputs_for(graph)
    out = tvm.runtime.tensor(np.zeros((64, 64), np.float32))
    module(tvm.runtime.tensor(a), tvm.runtime.tensor(b), out)
    assert np.abs(out.numpy() - a @ b).max() > 1e-2
    module = cpu_build(kernel.func)  # and the kernel as scheduled passes the same comparison
    module(tvm.runtime.tensor(a), tvm.runtime.tensor(b), out)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5, atol=1e-4)


# == mlc_lab.compile(target="cuda") ========================================================================
@no_gpu
def test_compile_for_cuda_without_a_gpu_gives_code_and_a_clear_error():
    graph = dense_relu_graph(16, 32, 16)
    compiled = mlc_lab.compile(graph, backend="tvm", target="cuda:H100")
    assert "__global__" in compiled.cuda_source and ".entry" in compiled.ptx and ".target sm_90" in compiled.ptx
    with pytest.raises(NoGPUError, match=r"compiled for cuda \(sm_90\), but no CUDA device is available"):
        compiled(*inputs_for(graph))


def test_cpu_models_have_no_gpu_code_and_bad_targets_are_named():
    with pytest.raises(GPUTargetError, match="unknown GPU 'V100'"):
        gpu_target("cuda:V100")
    with pytest.raises(GPUTargetError, match="'llvm' is not a GPU kind"):
        gpu_target({"kind": "llvm"})
    with pytest.raises(ValueError, match="tune= tunes CPU schedules"):
        mlc_lab.compile(matmul_graph(16, 16, 16), backend="tvm", target="cuda", tune=1)
    with pytest.raises(ValueError, match="tuning_db= and schedule= are CPU schedules"):
        mlc_lab.compile(matmul_graph(16, 16, 16), backend="tvm", target="cuda", schedule=None)
    cpu = mlc_lab.compile(matmul_graph(16, 16, 16), backend="interpreter")
    with pytest.raises(AttributeError, match="compiled for the CPU: no GPU code"):
        cpu.cuda_source  # noqa: B018 - the property raises


# == the GPU model ===========================================================================================
def test_model_is_never_faster_than_the_roofline(matmul):
    facts, roofline_ok = matmul.launches(), []
    for name, spec in GPUS.items():
        prediction = predict_model(facts, name)
        for k in prediction.kernels:
            bound = max(k.launch.flops / spec.fp32_flops, k.launch.bytes / spec.hbm_bytes_per_s)
            roofline_ok.append(k.time_s >= bound and 0 < k.occupancy <= 1 and 0 < k.parallel <= 1)
        assert prediction.time_s == pytest.approx(sum(k.time_s for k in prediction.kernels))
    assert roofline_ok and all(roofline_ok)
    (launch,) = facts
    assert launch.flops == 2 * 512 * 512 * 64 and launch.bytes == 4 * (512 * 64 + 64 * 512 + 512 * 512)


def test_occupancy_follows_the_occupancy_calculator():
    a100 = GPUS["A100"]
    # 256 threads x 64 registers: 16,384 registers a block, 4 blocks on 65,536 -> 32 of 64 warps
    assert occupancy(KernelLaunch("k", 1, 1, 1000, 256, 0, 64), a100) == (4, "registers", 0.5)
    # 48 KB of shared memory a block: 3 blocks in 164 KB -> 3 x 8 warps = 24 of 64
    assert occupancy(KernelLaunch("k", 1, 1, 1000, 256, 48 * 1024, 32), a100) == (3, "shared memory", 0.375)
    assert occupancy(KernelLaunch("k", 1, 1, 1000, 1024, 0, 32), a100) == (2, "threads", 1.0)
    with pytest.raises(GPUModelError, match="kernel big cannot launch on A100: 2048 threads per block"):
        occupancy(KernelLaunch("big", 1, 1, 1, 2048), a100)
    with pytest.raises(GPUModelError, match="unknown GPU 'V100'"):
        predict_kernel(KernelLaunch("k", 1, 1, 1, 32), "V100")


def test_model_rewards_bandwidth_and_parallelism():
    stream = KernelLaunch("copy", flops=0, bytes=1 << 30, blocks=4096, threads_per_block=256)
    assert (
        predict_kernel(stream, "H200").time_s
        < predict_kernel(stream, "H100").time_s
        < predict_kernel(stream, "A100").time_s
    )
    assert predict_kernel(stream, "A100").bound == "memory"
    few = KernelLaunch("gemm", flops=1 << 34, bytes=1 << 20, blocks=8, threads_per_block=256)
    many = KernelLaunch("gemm", flops=1 << 34, bytes=1 << 20, blocks=1024, threads_per_block=256)
    assert predict_kernel(few).time_s > 10 * predict_kernel(many).time_s  # 8 blocks leave 100 SMs idle


# == on a real GPU ==============================================================================================
@gpu
@pytest.mark.parametrize("make", [matmul_graph, dense_relu_graph, conv_softmax_graph])
def test_kernels_run_on_the_gpu_and_match_the_interpreter(make):
    graph = make()
    compiled = build_gpu(graph)
    inputs = inputs_for(graph)
    for g, w in zip(compiled(*inputs), graph(*inputs)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)
    assert compiled.time(*inputs, repeat=3, number=3) > 0
