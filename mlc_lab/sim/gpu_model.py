"""A GPU performance model: a roofline per kernel, corrected for occupancy, load balance over the SMs and launch cost.

Per kernel the model needs what a launch asks for (`KernelLaunch`: FLOPs, DRAM bytes, grid, block,
shared memory and registers, all read from the IR and the generated code) and a GPU (`GPUSpec`). It says:

    occupancy   resident warps per SM / the SM's maximum, limited by threads, registers and shared
                memory per SM, and by the blocks per SM limit (CUDA Occupancy Calculator rules);
    parallel    how much of the GPU the launch can keep busy: balance (blocks spread over the SMs, the
                busiest SM sets the time: 16 blocks use 16 SMs, 109 blocks on 108 SMs take two
                blocks' time) times latency hiding on a busy SM (saturated from SATURATING_OCCUPANCY of
                resident warps up; below, its throughput falls in proportion);
    time        max(FLOPs / peak, bytes / bandwidth) / parallel + LAUNCH_OVERHEAD_S.

So a prediction is never below the roofline bound max(FLOPs/peak, bytes/bandwidth). Bytes are the
compulsory traffic (every input read once, the output written once): tiles re-read from L2 are
assumed to hit there. Not modelled: caches beyond that, bank conflicts, instruction mix, clocks below
boost, tensor cores (our kernels use the CUDA cores: the fp32 peak applies; cuBLAS with TF32 allowed
would be measured against `tf32_flops`).

Spec values (boost clock, dense, no sparsity), from NVIDIA's data sheets and the CUDA C Programming Guide
(table "Technical Specifications per Compute Capability", 8.0 and 9.0):
- A100 SXM4 80GB (NVIDIA A100 Tensor Core GPU data sheet): 108 SMs, FP32 19.5 TFLOP/s, TF32 156, FP16
  312 (tensor cores), HBM2e 2,039 GB/s; CC 8.0: 164 KB shared memory per SM, 163 KB per block.
- H100 SXM5 (NVIDIA H100 Tensor Core GPU data sheet): 132 SMs, FP32 67 TFLOP/s, TF32 494.7, FP16 989.4
  (the sheet's 989 and 1,979 are with sparsity), HBM3 3.35 TB/s; CC 9.0: 228 KB per SM, 227 KB per block.
- H200 SXM (NVIDIA H200 data sheet): the H100's SMs and peaks, HBM3e 4.8 TB/s (141 GB).
- Both CCs: 65,536 32-bit registers per SM, at most 255 per thread, allocated per warp in units of 256;
  2,048 threads (64 warps) and 32 blocks per SM; 1,024 threads per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlc_lab.errors import MlcLabError

#: An SM is taken to reach its peak from this occupancy up (16 of 64 warps): a model assumption, typical
#: for kernels with some instruction-level parallelism (a register tile); below it throughput scales down.
SATURATING_OCCUPANCY = 0.25
#: Host-side cost of one kernel launch through TVM's VM (a model assumption, of the order CUDA's launch
#: latency is usually measured at); it is what fusion saves per kernel removed.
LAUNCH_OVERHEAD_S = 3e-6


class GPUModelError(MlcLabError, ValueError):
    """A launch no GPU of this kind can run (too many threads, registers or shared memory), or an unknown GPU."""


@dataclass(frozen=True)
class GPUSpec:
    """One GPU's published numbers (see the module docstring for the sources)."""

    name: str
    sm_count: int
    fp32_flops: float  #: FLOP/s on the CUDA cores (an FMA counts 2)
    tf32_flops: float  #: FLOP/s on the tensor cores, TF32 inputs, dense
    fp16_flops: float  #: FLOP/s on the tensor cores, FP16 inputs, dense
    hbm_bytes_per_s: float
    shared_bytes_per_sm: int
    shared_bytes_per_block: int
    registers_per_sm: int = 65536
    max_registers_per_thread: int = 255
    register_unit: int = 256  #: registers are allocated per warp in multiples of this
    max_threads_per_sm: int = 2048
    max_threads_per_block: int = 1024
    max_blocks_per_sm: int = 32
    warp_size: int = 32

    @property
    def max_warps_per_sm(self) -> int:
        return self.max_threads_per_sm // self.warp_size

    @property
    def ridge_flops_per_byte(self) -> float:
        """Arithmetic intensity where the fp32 roofline turns from memory- to compute-bound."""
        return self.fp32_flops / self.hbm_bytes_per_s


KB = 1024
GPUS: dict[str, GPUSpec] = {
    "A100": GPUSpec("A100", 108, 19.5e12, 156e12, 312e12, 2039e9, 164 * KB, 163 * KB),
    "H100": GPUSpec("H100", 132, 67e12, 494.7e12, 989.4e12, 3.35e12, 228 * KB, 227 * KB),
    "H200": GPUSpec("H200", 132, 67e12, 494.7e12, 989.4e12, 4.8e12, 228 * KB, 227 * KB),
}


def gpu_spec(gpu: str | GPUSpec) -> GPUSpec:
    if isinstance(gpu, GPUSpec):
        return gpu
    if gpu not in GPUS:
        raise GPUModelError(f"unknown GPU {gpu!r}; the model knows {', '.join(GPUS)}")
    return GPUS[gpu]


@dataclass(frozen=True)
class KernelLaunch:
    """What one kernel launch does and asks for (from the IR and the generated code)."""

    name: str
    flops: int
    bytes: int  #: compulsory DRAM traffic
    blocks: int  #: grid size
    threads_per_block: int
    shared_bytes: int = 0  #: per block
    registers: int = 32  #: per thread
    launches: int = 1  #: CUDA kernels this launch is made of (a padding copy adds one)


@dataclass(frozen=True)
class KernelPrediction:
    launch: KernelLaunch
    gpu: str
    blocks_per_sm: int
    limited_by: str  #: "threads", "registers", "shared memory" or "blocks per SM"
    occupancy: float  #: resident warps / max warps per SM, with the SM full of this kernel's blocks
    parallel: float  #: share of the GPU's peak the launch can use (see the module docstring)
    roofline_s: float  #: max(flops / peak, bytes / bandwidth)
    bound: str  #: "compute" or "memory"
    time_s: float

    @property
    def intensity(self) -> float:
        return self.launch.flops / self.launch.bytes if self.launch.bytes else math.inf


def occupancy(launch: KernelLaunch, gpu: GPUSpec) -> tuple[int, str, float]:
    """(blocks per SM, the limiting resource, occupancy) as the CUDA Occupancy Calculator computes them."""
    _check_launchable(launch, gpu)
    warps = math.ceil(launch.threads_per_block / gpu.warp_size)
    regs_per_warp = math.ceil(launch.registers * gpu.warp_size / gpu.register_unit) * gpu.register_unit
    limits = {
        "threads": gpu.max_warps_per_sm // warps,
        "registers": gpu.registers_per_sm // (regs_per_warp * warps),
        "shared memory": gpu.shared_bytes_per_sm // max(launch.shared_bytes, 1),
        "blocks per SM": gpu.max_blocks_per_sm,
    }
    limited_by = min(limits, key=lambda k: limits[k])
    blocks = limits[limited_by]
    if blocks == 0:
        raise GPUModelError(
            f"kernel {launch.name} cannot launch on {gpu.name}: one block needs more {limited_by} than an SM has"
        )
    return blocks, limited_by, blocks * warps / gpu.max_warps_per_sm


def _check_launchable(launch: KernelLaunch, gpu: GPUSpec) -> None:
    problems = []
    if not 0 < launch.threads_per_block <= gpu.max_threads_per_block:
        problems.append(f"{launch.threads_per_block} threads per block (1..{gpu.max_threads_per_block})")
    if launch.shared_bytes > gpu.shared_bytes_per_block:
        problems.append(f"{launch.shared_bytes} B shared memory per block (max {gpu.shared_bytes_per_block})")
    if not 0 < launch.registers <= gpu.max_registers_per_thread:
        problems.append(f"{launch.registers} registers per thread (1..{gpu.max_registers_per_thread})")
    if launch.blocks < 1:
        problems.append(f"{launch.blocks} blocks")
    if problems:
        raise GPUModelError(f"kernel {launch.name} cannot launch on {gpu.name}: {'; '.join(problems)}")


def peak_flops(gpu: GPUSpec, dtype: str = "float32") -> float:
    """The peak our kernels can reach: CUDA-core rates (fp16 packed as half2 runs twice as fast)."""
    return gpu.fp32_flops * (2 if dtype == "float16" else 1)


def predict_kernel(launch: KernelLaunch, gpu: str | GPUSpec = "A100", dtype: str = "float32") -> KernelPrediction:
    """The model's time for one kernel (module docstring)."""
    spec = gpu_spec(gpu)
    blocks_per_sm, limited_by, occ = occupancy(launch, spec)
    # blocks spread over the SMs; the busiest SM sets the time (a grid of 16 blocks keeps 16 SMs busy)
    per_sm = math.ceil(launch.blocks / spec.sm_count)
    balance = launch.blocks / (per_sm * spec.sm_count)
    resident = min(blocks_per_sm, per_sm) * math.ceil(launch.threads_per_block / spec.warp_size) / spec.max_warps_per_sm
    hiding = min(1.0, resident / SATURATING_OCCUPANCY)
    parallel = balance * hiding
    compute_s, memory_s = launch.flops / peak_flops(spec, dtype), launch.bytes / spec.hbm_bytes_per_s
    roofline = max(compute_s, memory_s)
    time_s = roofline / parallel + launch.launches * LAUNCH_OVERHEAD_S
    bound = "compute" if compute_s >= memory_s else "memory"
    return KernelPrediction(launch, spec.name, blocks_per_sm, limited_by, occ, parallel, roofline, bound, time_s)


@dataclass(frozen=True)
class ModelPrediction:
    """Per-kernel predictions of a whole model, run kernel after kernel."""

    gpu: str
    kernels: list[KernelPrediction] = field(default_factory=list)

    @property
    def time_s(self) -> float:
        return sum(k.time_s for k in self.kernels)

    @property
    def launch_s(self) -> float:
        """The part of `time_s` that is launch overhead (what fusing kernels saves)."""
        return sum(k.launch.launches for k in self.kernels) * LAUNCH_OVERHEAD_S

    @property
    def flops(self) -> int:
        return sum(k.launch.flops for k in self.kernels)

    def table(self) -> str:
        rows = [
            f"{'kernel':<32}{'GFLOP':>9}{'MB':>9}{'grid':>8}{'thr':>6}{'smem':>8}{'regs':>6}{'occ':>6}"
            f"{'bound':>9}{'us':>10}"
        ]
        for k in self.kernels:
            x = k.launch
            rows.append(
                f"{x.name[:31]:<32}{x.flops / 1e9:>9.3f}{x.bytes / 1e6:>9.2f}{x.blocks:>8}{x.threads_per_block:>6}"
                f"{x.shared_bytes:>8}{x.registers:>6}{k.occupancy:>6.2f}{k.bound:>9}{k.time_s * 1e6:>10.1f}"
            )
        rows.append(f"{'total on ' + self.gpu:<32}{self.flops / 1e9:>9.3f}{'':>60}{self.time_s * 1e6:>10.1f}")
        return "\n".join(rows)


def predict_model(launches: list[KernelLaunch], gpu: str | GPUSpec = "A100", dtype: str = "float32") -> ModelPrediction:
    spec = gpu_spec(gpu)
    return ModelPrediction(spec.name, [predict_kernel(x, spec, dtype) for x in launches])
