"""The default schedule of contractions: the tuner's register-tiled template at a point sized from the CPU.

What is checked: the vector level comes from the target's features (never a CPU name); the default
point fits each level's register file and is a point of the tuner's space (so a tuning run can start
from it); the kernels it schedules compute what the interpreter computes, for every level's point,
in every layout the layout pass makes, with an elementwise epilogue fused; and it pays off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlc_lab.codegen.tiling import ISA_LEVELS, SPARE_REGISTERS, KernelInfo, VectorISA, default_config, vector_widths
from mlc_lab.tuning.space import space_for

ISAS = [isa for _, isa in ISA_LEVELS]
AVX512, AVX2 = ISAS[0], ISAS[1]


def accumulators(config: dict, info: KernelInfo, isa: VectorISA) -> int:
    *others, (vector_name, _) = info.spatial
    rows = math.prod(config[f"tile_{name}"][-1] for name, _ in others)
    return rows * math.ceil(config[f"tile_{vector_name}"][-1] / isa.lanes)


MATMUL_512 = KernelInfo("C", [("i0", 512), ("i1", 512)], [("k", 512)], weight=(1, 1))
DENSE_1ROW = KernelInfo("C", [("i0", 1), ("i1", 256)], [("k", 784)], weight=(1, 0))
CONV_NCHW16C = KernelInfo(
    "conv",
    [("i0", 1), ("i1", 4), ("i2", 56), ("i3", 56), ("i4", 16)],
    [("rc", 64), ("ry", 3), ("rx", 3)],
    ["pad"],
    pad_lanes=16,
)


@pytest.mark.parametrize("isa", ISAS, ids=lambda i: i.name)
@pytest.mark.parametrize("info", [MATMUL_512, DENSE_1ROW, CONV_NCHW16C], ids=["matmul", "dense1", "conv16c"])
def test_the_default_point_fits_the_registers_and_is_in_the_tuners_space(info, isa):
    config = default_config(info, isa)
    assert space_for(info).violation(config) is None  # the tuner can start from it, and a log can store it
    assert accumulators(config, info, isa) <= isa.registers - SPARE_REGISTERS
    for name, extent in info.spatial + info.reduce:
        assert math.prod(config[f"tile_{name}"]) == extent


def test_the_register_tile_follows_the_vector_width():
    avx512, avx2 = default_config(MATMUL_512, AVX512), default_config(MATMUL_512, AVX2)
    assert avx512["tile_i1"][-1] == 16 and avx512["tile_i0"][-1] == 8  # 8 rows x 1 zmm = 8 of 32 registers
    assert avx2["tile_i1"][-1] == 16 and avx2["tile_i0"][-1] == 4  # 4 rows x 2 ymm = 8 of 16 registers
    assert avx512["pack"] and not default_config(DENSE_1ROW, AVX512)["pack"]  # packing pays only with reuse
    conv = default_config(CONV_NCHW16C, AVX512)
    assert conv["tile_i4"][-1] == 16 and conv["tile_ry"] == [1, 3] and conv["tile_rx"] == [1, 3]
    # a long inner reduction: the accumulators are loaded and stored once per 512 (matmul) steps; a conv's
    # whole 64 x 9 reduction runs per register tile, taps outside channels, from zeroed registers
    assert avx512["tile_k"] == [1, 512] and conv["tile_rc"] == [1, 64]
    assert conv["taps_outer"] and conv["init_inner"] and not conv["cache_write"]  # no epilogue: into the output
    assert vector_widths(AVX512) == (16, 32, 8) and vector_widths(VectorISA("SSE", 4, 16)) == (8, 4)


@pytest.mark.parametrize(
    ("target", "level"),
    [
        ({"kind": "llvm", "mcpu": "znver4"}, "AVX-512"),
        ({"kind": "llvm", "mcpu": "rocketlake"}, "AVX-512"),
        ({"kind": "llvm", "mcpu": "haswell"}, "AVX2"),
        ({"kind": "llvm", "mcpu": "znver2"}, "AVX2"),
        ({"kind": "llvm", "mcpu": "sandybridge"}, "AVX"),
        ({"kind": "llvm", "mcpu": "x86-64"}, "SSE"),
        ({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}, "NEON"),
    ],
    ids=lambda x: x if isinstance(x, str) else x["mcpu"],
)
def test_the_vector_level_comes_from_the_target_features(target, level):
    from mlc_lab.codegen.tiling import target_isa

    assert target_isa(target).name == level


# -- the kernels, built and run -------------------------------------------------------------------------------
def _tasks():
    from mlc_lab.tuning.task import conv2d_task, dense_task, matmul_task

    return {
        "matmul": matmul_task(64, 96, 48),
        "dense": dense_task(32, 64, 40),
        "conv_nchw": conv2d_task(1, 16, 8, 16, 3, "NCHW"),
        "conv_nhwc": conv2d_task(1, 12, 8, 32, 3, "NHWC"),
        "conv_nchw16c": conv2d_task(1, 10, 16, 32, 3, "NCHW16c"),
    }


@pytest.mark.parametrize("isa", [AVX512, AVX2, ISAS[-1]], ids=lambda i: i.name)
def test_every_levels_default_point_computes_what_the_interpreter_computes(isa):
    import tvm

    from mlc_lab.codegen.tvm.build import host_target
    from mlc_lab.tuning.measure import kernel_info, scheduled_func

    for name, task in _tasks().items():
        config = default_config(kernel_info(task), isa)
        func, constants = scheduled_func(task, config)
        kernel = tvm.compile(tvm.IRModule({"main": func}), target=host_target())
        inputs = task.random_inputs()
        out = tvm.runtime.tensor(np.zeros(task.node.shape, "float32"))
        kernel["main"](*(tvm.runtime.tensor(a) for a in [*inputs, *constants]), out)
        want = task.reference(inputs)
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4, err_msg=f"{name} {config}")


@pytest.mark.parametrize(("name", "lanes"), [("conv_nhwc", 8), ("conv_nchw16c", 16)])
def test_the_padding_copy_is_vectorised(name, lanes):
    """Channels innermost: the padding stage's inner loop runs in whole vectors, as wide as the channels
    allow (8 input channels: 8 lanes); its output is checked against the interpreter by the test above."""
    from tvm import s_tir
    from tvm.tirx import ForKind

    from mlc_lab.tuning.measure import kernel_info, scheduled_func

    task = _tasks()[name]
    info = kernel_info(task)
    func, _ = scheduled_func(task, default_config(info, AVX512))
    sch = s_tir.Schedule(func)
    (pad,) = info.pads
    loops = [sch.get(loop) for loop in sch.get_loops(sch.get_sblock(pad))]
    assert loops[-1].kind == ForKind.VECTORIZED and int(loops[-1].extent) == lanes, [str(x.kind) for x in loops]
    assert loops[0].kind == ForKind.PARALLEL


def test_the_default_schedule_register_tiles_contractions_and_fuses_the_epilogue():
    """A dense + bias + relu model: its one kernel is register-tiled, with the epilogue inside the tile,
    and equals PyTorch; a one-row dense keeps the reduction-vectorised strategy."""
    import torch

    import mlc_lab
    from mlc_lab.codegen.tvm.schedule import host_isa
    from mlc_lab.comparison import default_coverage

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(48, 64), torch.nn.ReLU())
    for rows, tiled in ((32, 1), (1, 0)):
        x = torch.randn(rows, 48)
        compiled = mlc_lab.compile(model, (x,), backend="tvm")
        with torch.no_grad():
            np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
        assert default_coverage(compiled.optimized) == (
            f"{tiled} of 1 contraction kernels register-tiled by the default schedule ({host_isa().name})"
        )


def test_the_default_schedule_pays_off():
    """The default 256^3 matmul against the naive loops, each the fastest of several timings."""
    from mlc_lab.codegen.tvm.schedule import default_schedule
    from mlc_lab.tuning.measure import MeasuredCost
    from mlc_lab.tuning.task import matmul_task

    cost = MeasuredCost(matmul_task(256, 256, 256), repeat=3, min_repeat_ms=10)
    default, naive = cost.measure_hook(default_schedule), cost(None)
    assert default.ok and naive.ok, (default.error, naive.error)
    assert naive.cost / default.cost >= 5, f"default {default.cost * 1e3:.2f} ms, naive {naive.cost * 1e3:.2f} ms"


def _main_callees(module) -> list[str]:
    import tvm

    call_tir = tvm.ir.Op.get("relax.call_tir")
    return [
        b.value.args[0].name_hint
        for block in module["main"].body.blocks
        for b in block.bindings
        if getattr(b.value, "op", None) == call_tir
    ]


def test_a_constant_weight_is_packed_once_at_build_time():
    """A dense with a constant weight: the kernel that packs it (TVM's split-off `_weight_prepack`) ran at
    build time, so the model calls only the kernel reading the packed constant; with the weight a graph
    input, the kernel packs it itself, as scheduled. Both equal the interpreter."""
    from mlc_lab.codegen.tvm.build import build
    from mlc_lab.codegen.tvm.prepack import prepack_constants
    from mlc_lab.ir.builder import GraphBuilder
    from mlc_lab.ir.interpreter import interpret

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 48)).astype("float32")
    w = rng.standard_normal((64, 48)).astype("float32")
    for weight_is_constant in (True, False):
        b = GraphBuilder("dense")
        xin = b.input("x", (32, 48))
        weight = b.constant(w, "w") if weight_is_constant else b.input("w", (64, 48))
        graph = b.build(b.dense(xin, weight))
        compiled = build(graph)
        assert "w_global" in compiled.kernels[graph.outputs[0]].script()  # the default schedule packs w
        callees = _main_callees(prepack_constants(compiled.module))
        assert callees == (["dense_prepacked"] if weight_is_constant else ["dense"])
        inputs = (x,) if weight_is_constant else (x, w)
        np.testing.assert_allclose(compiled(*inputs)[0], interpret(graph, *inputs)[0], rtol=1e-5, atol=1e-5)
