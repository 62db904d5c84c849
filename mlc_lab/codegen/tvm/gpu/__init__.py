"""mlc_lab.codegen.tvm.gpu: the same kernels scheduled for CUDA GPUs; CUDA C and PTX on any machine.

target.py (GPU targets, is a GPU here?), schedule.py (the tiled matmul template, dlight for the rest),
device_code.py (CUDA/PTX and the facts read from them), cpu_check.py (run a GPU schedule on the CPU),
build.py (`build_gpu`: graph -> GPUCompiledGraph).
"""

from mlc_lab.codegen.tvm.gpu.build import GPUCompiledGraph, build_gpu
from mlc_lab.codegen.tvm.gpu.cpu_check import cpu_build, run_on_cpu, serialize_threads
from mlc_lab.codegen.tvm.gpu.device_code import DeviceKernel
from mlc_lab.codegen.tvm.gpu.schedule import (
    GPUScheduleError,
    TileConfig,
    dlight_schedule,
    matmul_prim_func,
    schedule_matmul,
    schedule_naive,
)
from mlc_lab.codegen.tvm.gpu.target import (
    GPU_ARCH,
    GPUTargetError,
    NoGPUError,
    cuda_device_present,
    gpu_target,
    is_gpu_target,
)

__all__ = [
    "GPU_ARCH",
    "DeviceKernel",
    "GPUCompiledGraph",
    "GPUScheduleError",
    "GPUTargetError",
    "NoGPUError",
    "TileConfig",
    "build_gpu",
    "cpu_build",
    "cuda_device_present",
    "dlight_schedule",
    "gpu_target",
    "is_gpu_target",
    "matmul_prim_func",
    "run_on_cpu",
    "schedule_matmul",
    "schedule_naive",
    "serialize_threads",
]
