"""Optional dependencies: which `pip install 'mlc-lab[EXTRA]'` brings the modules a feature imports.

`import mlc_lab` needs only the core dependencies; a backend or frontend that needs PyTorch, TVM, MLIR,
ONNX or TensorFlow calls `require` before importing it, so a reader without that extra gets one line
naming the extra to install instead of a `ModuleNotFoundError` from deep inside the package.
The distributions of each extra are listed in pyproject.toml; here, the modules mlc_lab imports from them.
"""

from __future__ import annotations

import importlib.util
import sys

from mlc_lab.errors import MlcLabError

__all__ = ["EXTRA_MODULES", "MissingDependencyError", "require", "require_triton_loadable"]

#: extra (pyproject.toml [project.optional-dependencies]) -> the top-level modules mlc_lab imports from it
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "tvm": ("tvm", "tvm_ffi"),
    "mlir": ("torch_mlir", "iree.compiler", "iree.runtime", "xdsl"),
    "onnx": ("onnx",),
    "tensorflow": ("tensorflow",),
}


class MissingDependencyError(MlcLabError, ImportError):
    """A feature's optional dependency is not installed; the message names the extra that brings it.

    An ImportError too, so code that probes for an optional package with `except ImportError` keeps working.
    """


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package (`iree` for `iree.compiler`), or a broken one
        return False


def require(extra: str, user: str) -> None:
    """Raise MissingDependencyError unless every module of `extra` is installed.

    user: what needs it, as the message should say it ("backend 'tvm'", "mlc_lab.zoo").
    """
    if extra not in EXTRA_MODULES:
        raise ValueError(f"unknown extra {extra!r}; the extras are {', '.join(EXTRA_MODULES)}")
    missing = [m for m in EXTRA_MODULES[extra] if not _importable(m)]
    if missing:
        raise MissingDependencyError(
            f"{user} needs the {extra!r} extra: pip install 'mlc-lab[{extra}]' "
            f"(not installed: {', '.join(missing)})"
        ) from None  # called while handling the ModuleNotFoundError it explains: that one adds nothing


# Triton (which PyTorch's CUDA builds install, and which `torch._dynamo`, so `torch.export`, imports)
# and TensorFlow each link their own LLVM. Loaded after TensorFlow's, Triton's crashes the process
# (a segfault in its library's initialisers); loaded before, both work. mlc_lab.frontends.tensorflow
# imports Triton first (as it does torch-mlir, whose LLVM has the same rule: mlc_lab.codegen.mlir.module).


def require_triton_loadable(user: str) -> None:
    """Raise ImportError, instead of letting the process crash, when Triton would now load after TensorFlow."""
    if "tensorflow" in sys.modules and "triton" not in sys.modules and _importable("triton"):
        raise ImportError(
            f"{user} needs torch.export, which imports Triton; TensorFlow was imported first, and Triton loaded "
            "after it crashes the process (both bundle LLVM). Import mlc_lab.frontends.tensorflow (which loads "
            "Triton first) or `import triton` before `import tensorflow`."
        )
