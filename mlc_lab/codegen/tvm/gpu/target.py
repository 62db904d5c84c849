"""GPU targets and the device question: which GPU the code is for, and whether one is here to run it.

Code generation needs no GPU: the TVM wheel writes CUDA C (`target.build.cuda`) and PTX through LLVM's
NVPTX backend (`target.build.nvptx`) on any machine. Running needs a CUDA device that TVM's runtime can
open (`tvm.cuda(0).exist`: false without a GPU, and false where libcuda.so is missing), so
`cuda_device_present()` is asked at call time, never at import.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from collections.abc import Iterator

import tvm

from mlc_lab.errors import MlcLabError

#: Compute capability of each named GPU (CUDA C Programming Guide, "CUDA-Enabled GPUs"): the arch a
#: target names when the caller gives a GPU by name. A100 is Ampere sm_80; H100 and H200 are Hopper sm_90.
GPU_ARCH: dict[str, str] = {"A100": "sm_80", "H100": "sm_90", "H200": "sm_90"}
#: The arch of `target="cuda"` when no GPU is present to ask: the oldest of the named GPUs, so the code
#: runs on all of them (sm_80 code runs on sm_90; the reverse does not hold).
DEFAULT_ARCH = "sm_80"
GPU_KINDS = ("cuda", "nvptx")


class NoGPUError(MlcLabError, RuntimeError):
    """Running GPU code on a machine without a usable CUDA device (the code itself was generated)."""


class GPUTargetError(MlcLabError, ValueError):
    """A GPU target that cannot be built: an unknown GPU name or kind."""


def is_gpu_target(target: object) -> bool:
    """True for "cuda", "nvptx", "cuda:H100"-style names, dicts with such a kind, and such tvm Targets."""
    if isinstance(target, tvm.target.Target):
        return target.kind.name in GPU_KINDS
    if isinstance(target, dict):
        return target.get("kind") in GPU_KINDS
    return isinstance(target, str) and target.split(":")[0] in GPU_KINDS


def cuda_device_present() -> bool:
    """Whether TVM can open CUDA device 0 here (needs a GPU, its driver, and TVM's CUDA runtime)."""
    try:
        return bool(tvm.runtime.enabled("cuda") and tvm.cuda(0).exist)
    except Exception:  # noqa: BLE001 - a broken driver answers "no GPU", it must not crash the caller
        return False


def present_arch() -> str | None:
    """The present GPU's arch ("sm_90"), or None without one."""
    if not cuda_device_present():
        return None
    major, minor = str(tvm.cuda(0).compute_version).split(".")
    return f"sm_{major}{minor}"


def gpu_target(target: object = "cuda") -> tvm.target.Target:
    """A CUDA or NVPTX `tvm.target.Target` from "cuda", "nvptx", "cuda:H100", a dict or a Target.

    Without an arch, "cuda" is for the GPU present here, else for `DEFAULT_ARCH`.
    """
    if isinstance(target, tvm.target.Target):
        if target.kind.name not in GPU_KINDS:
            raise GPUTargetError(f"target {target.kind.name!r} is not a GPU target (use one of {GPU_KINDS})")
        return target
    if isinstance(target, dict):
        if target.get("kind") not in GPU_KINDS:
            raise GPUTargetError(f"target kind {target.get('kind')!r} is not a GPU kind (use one of {GPU_KINDS})")
        return tvm.target.Target(
            {"max_shared_memory_per_block": 48 * 1024, **target} if target["kind"] == "cuda" else target
        )
    if not isinstance(target, str) or not is_gpu_target(target):
        raise GPUTargetError(f"target {target!r}: use 'cuda', 'nvptx', 'cuda:<GPU>' ({', '.join(GPU_ARCH)}), a dict")
    kind, _, gpu = target.partition(":")
    if gpu and gpu not in GPU_ARCH:
        raise GPUTargetError(f"target {target!r}: unknown GPU {gpu!r}; named GPUs: {', '.join(GPU_ARCH)}")
    arch = GPU_ARCH[gpu] if gpu else (present_arch() or DEFAULT_ARCH)
    return _target(kind, arch)


def _target(kind: str, arch: str) -> tvm.target.Target:
    """Static shared memory is limited to 48 KB per block on every CUDA GPU (more needs dynamic shared memory)."""
    if kind == "nvptx":
        return tvm.target.Target({"kind": kind, "mcpu": arch})
    return tvm.target.Target({"kind": kind, "arch": arch, "max_shared_memory_per_block": 48 * 1024})


def target_arch(target: tvm.target.Target) -> str:
    """ "sm_80" for a CUDA target's arch or an NVPTX target's mcpu."""
    return str(target.attrs.get("arch") or target.attrs.get("mcpu") or DEFAULT_ARCH)


def nvptx_target(target: tvm.target.Target) -> tvm.target.Target:
    """The NVPTX (LLVM) target for the same GPU as a CUDA target."""
    return _target("nvptx", target_arch(target))


def cuda_target(target: tvm.target.Target) -> tvm.target.Target:
    """The CUDA C target for the same GPU as an NVPTX (or CUDA) target."""
    return _target("cuda", target_arch(target))


# -- the CUDA toolkit pieces the code generators may use -----------------------------------------------------
def cuda_toolkit_roots() -> list[str]:
    """Folders that may hold a CUDA toolkit: $CUDA_PATH, $CUDA_HOME, /usr/local/cuda, and nvcc's own root.

    nvcc is often a wrapper script (/usr/local/bin/nvcc), so its root is also read from the script's target.
    """
    roots = [os.environ.get("CUDA_PATH", ""), os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    return [r for r in dict.fromkeys(roots) if r and os.path.isdir(r)]


def find_libdevice() -> str:
    """NVIDIA's libdevice bitcode (math functions: expf, erff...), or "" where no toolkit is installed."""
    for root in cuda_toolkit_roots():
        found = sorted(glob.glob(os.path.join(root, "nvvm", "libdevice", "libdevice*.bc")))
        if found:
            return found[-1]
    return ""


def find_ptxas() -> str | None:
    """ptxas (PTX -> SASS, reports real register counts), or None without a toolkit."""
    for root in cuda_toolkit_roots():
        path = os.path.join(root, "bin", "ptxas")
        if os.access(path, os.X_OK):
            return path
    return shutil.which("ptxas")


@contextlib.contextmanager
def libdevice_lookup(path: str | None = None) -> Iterator[None]:
    """Within the block, NVPTX builds link `path`, by default `find_libdevice()` ("": none).

    TVM's own lookup (tvm.support.nvcc) raises where no toolkit is installed, or where nvcc is a wrapper
    script; an empty path makes TVM skip linking libdevice, so PTX is still written (a kernel calling a
    math function then declares it `.extern`). The previous lookup is restored afterwards.
    """
    import tvm_ffi

    name = "tvm_callback_libdevice_path"
    previous = tvm_ffi.get_global_func(name, allow_missing=True)
    chosen = find_libdevice() if path is None else path
    tvm_ffi.register_global_func(name, lambda arch: chosen, override=True)
    try:
        yield
    finally:
        if previous is not None:
            tvm_ffi.register_global_func(name, previous, override=True)


def prepare_cuda_compiler() -> None:
    """On a GPU machine, compile CUDA C with nvcc where NVRTC's Python bindings (cuda-bindings) are missing.

    TVM compiles the generated CUDA C to a cubin only where its CUDA runtime loads (a GPU machine); by
    default through NVRTC, which needs the `cuda-bindings` package this project does not pin.
    """
    import importlib.util

    try:
        has_nvrtc_bindings = importlib.util.find_spec("cuda.bindings") is not None
    except ModuleNotFoundError:  # no `cuda` package at all
        has_nvrtc_bindings = False
    if "TVM_CUDA_COMPILE_MODE" in os.environ or has_nvrtc_bindings:
        return
    if shutil.which("nvcc"):
        os.environ["TVM_CUDA_COMPILE_MODE"] = "nvcc"
