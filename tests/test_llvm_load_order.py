"""Libraries bundling LLVM load in the one order that works (mlc_lab._deps): Triton before TensorFlow.

PyTorch's CUDA builds install Triton; `torch._dynamo` (so `torch.export`) imports it, and Triton loaded
after TensorFlow segfaults the process. A stand-in `triton` package on the path (it records whether
TensorFlow was already loaded when it was imported) checks both sides without a CUDA build of PyTorch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mlc_lab.frontends.tensorflow")  # TensorFlow, imported after the LLVMs that must come first


def _run(tmp_path, code: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "triton"
    fake.mkdir(exist_ok=True)
    (fake / "__init__.py").write_text("import sys\nLOADED_AFTER_TENSORFLOW = 'tensorflow' in sys.modules\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)


def test_the_tensorflow_frontend_loads_triton_first(tmp_path):
    out = _run(
        tmp_path,
        """
        import mlc_lab.frontends.tensorflow, sys, triton
        print("tensorflow" in sys.modules, triton.LOADED_AFTER_TENSORFLOW)
        """,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "False"]


def test_torch_export_after_tensorflow_is_refused_by_name_not_crashed(tmp_path):
    out = _run(
        tmp_path,
        """
        import tensorflow, torch
        from mlc_lab.frontends.torch import from_torch
        try:
            from_torch(torch.nn.ReLU(), (torch.ones(2),))
        except ImportError as e:
            print("REFUSED", e)
        """,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "REFUSED from_torch(ReLU) needs torch.export, which imports Triton" in out.stdout
    assert "import triton` before `import tensorflow`" in out.stdout
