"""The package installs where readers are: `mlc_lab` works with only the extras a backend needs.

Fast tests (in this process, a module made unimportable): a backend or frontend whose dependency is
missing raises MissingDependencyError naming the extra to install, and `import mlc_lab` needs none.
Slow test (`--slow`): the wheel is built once, installed into throwaway venvs as `mlc-lab[tvm]` and as
`mlc-lab[onnx]`, and in each a zoo model runs (TVM; the ONNX export on the interpreter) and matches
PyTorch, while the backend that venv lacks names its extra.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

import mlc_lab
from mlc_lab._deps import EXTRA_MODULES, MissingDependencyError, require
from mlc_lab.ir.builder import GraphBuilder

ROOT = Path(__file__).resolve().parents[1]


def _tiny_graph() -> mlc_lab.Graph:
    b = GraphBuilder("tiny")
    x = b.input("x", (2, 3))
    return b.build(b.relu(x))


# == in this process ===============================================================================
@pytest.mark.parametrize("backend, extra", [("tvm", "tvm"), ("mlir", "mlir")])
def test_a_backend_without_its_extra_names_the_extra(monkeypatch, backend, extra):
    monkeypatch.setitem(sys.modules, EXTRA_MODULES[extra][0], None)  # None in sys.modules: not importable
    with pytest.raises(MissingDependencyError) as e:
        mlc_lab.compile(_tiny_graph(), backend=backend)
    assert str(e.value).startswith(f"backend '{backend}' needs the '{extra}' extra: pip install 'mlc-lab[{extra}]'")
    assert isinstance(e.value, mlc_lab.MlcLabError) and isinstance(e.value, ImportError)


def test_require_names_every_missing_module_and_refuses_unknown_extras(monkeypatch):
    # Blocked as a missing install looks; the submodules too, since a full run may have imported them already.
    for name in ("iree", "iree.compiler", "iree.runtime"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r"not installed: iree\.compiler, iree\.runtime\)$"):
        require("mlir", "x")
    with pytest.raises(ValueError, match="unknown extra 'cuda'"):
        require("cuda", "x")
    require("tvm", "x")  # installed here: no error


def test_import_mlc_lab_needs_no_extra():
    """`import mlc_lab` and the interpreter backend with every extra's modules blocked (a fresh process)."""
    blocked = sorted({m.split(".")[0] for mods in EXTRA_MODULES.values() for m in mods})
    code = textwrap.dedent(f"""
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None
        import numpy as np, mlc_lab
        from mlc_lab.ir.builder import GraphBuilder
        b = GraphBuilder("tiny")
        g = b.build(b.relu(b.input("x", (2, 3))))
        x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], dtype=np.float32)
        print(mlc_lab.compile(g, backend="interpreter")(x).tolist())
        for what in ("import mlc_lab.zoo", "import mlc_lab.frontends.onnx"):
            try:
                exec(what)
            except mlc_lab.MlcLabError as e:
                print(type(e).__name__, e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "[[0.0, 2.0, 0.0], [4.0, 0.0, 6.0]]"
    assert lines[1].startswith("MissingDependencyError mlc_lab.zoo (its models are PyTorch modules) needs the 'torch'")
    assert lines[2].startswith("MissingDependencyError the ONNX frontend (mlc_lab.frontends.onnx) needs the 'onnx'")
    assert lines[1].endswith("pip install 'mlc-lab[torch]' (not installed: torch)")
    assert lines[2].endswith("pip install 'mlc-lab[onnx]' (not installed: onnx)")


# == throwaway venvs from the built wheel ==========================================================
WHEELS = Path("/opt/wheels")  # this project's build machines keep the CPU torch wheel here

# Runs inside a venv: compile the model on `backend`, then ask for `missing`; prints JSON.
_IN_VENV = textwrap.dedent("""
    import json, sys
    import numpy as np
    import mlc_lab
    from mlc_lab.ir.parser import parse_graph
    model, backend, missing, out = sys.argv[1:5]
    data = np.load(model + ".npz")
    if model.endswith(".onnx"):
        source = model  # the ONNX frontend imports the file
    else:
        constants = {k[2:]: data[k] for k in data.files if k.startswith("c:")}
        source = parse_graph(open(model).read(), constants)
    np.save(out, mlc_lab.compile(source, backend=backend)(data["x"]))
    try:
        mlc_lab.compile(source, backend=missing)
        error = None
    except mlc_lab.MlcLabError as e:
        error = f"{type(e).__name__}: {e}"
    import importlib.util
    print(json.dumps({"error": error, "mlc_lab": mlc_lab.__file__,
                      "torch": importlib.util.find_spec("torch") is not None}))
""")


def _run(cmd: list[str], timeout: int = 900) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `python -m build` makes from a copy of the sources (the build leaves the checkout alone).

    ~10 s; the metadata test below checks it in `make test`, the venv installs use it under --slow.
    """
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "mlc_lab", src / "mlc_lab", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)])
    (built,) = dist.glob("mlc_lab-*.whl")
    return built


def _venv_with(wheel: Path, extra: str, where: Path) -> Path:
    _run([sys.executable, "-m", "venv", str(where)])
    python = where / "bin" / "python"
    links = ["--find-links", str(WHEELS)] if WHEELS.is_dir() else []
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *links, f"{wheel}[{extra}]"])
    return python


def _mlp(tmp_path: Path, as_onnx: bool) -> tuple[Path, np.ndarray]:
    """The zoo MLP, written for a venv without torch (IR text + constants, or ONNX), and PyTorch's output."""
    torch = pytest.importorskip("torch")
    from mlc_lab import zoo
    from mlc_lab.ir.printer import constant_payloads

    m = zoo.load("mlp")
    x = m.numpy_inputs()[0]
    if as_onnx:
        path = tmp_path / "mlp.onnx"
        torch.onnx.export(m.module, m.example_inputs, str(path), dynamo=False, input_names=["x"], opset_version=17)
        np.savez(str(path) + ".npz", x=x)
    else:
        graph = m.graph()
        path = tmp_path / "mlp.ir"
        path.write_text(str(graph))
        np.savez(str(path) + ".npz", x=x, **{f"c:{k}": v for k, v in constant_payloads(graph).items()})
    return path, m.torch_outputs()[0]


def test_the_wheel_declares_every_extra_and_carries_the_package_data(wheel):
    import zipfile
    from email.parser import Parser

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(z.read(meta).decode())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(metadata["Requires-Python"].split(",")) == set(project["requires-python"].split(","))
    assert set(metadata.get_all("Provides-Extra")) == set(project["optional-dependencies"]) >= {*EXTRA_MODULES, "all"}
    assert "mlc_lab/_deps.py" in names
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mlc_lab").rglob("*.jsonl")}
    assert shipped and shipped <= names, f"tuning logs missing from the wheel: {sorted(shipped - names)}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, backend, model, missing",
    [("tvm", "tvm", "ir", "mlir"), ("onnx", "interpreter", "onnx", "tvm")],
)
def test_an_install_with_one_extra_runs_a_zoo_model(request, wheel, tmp_path, extra, backend, model, missing):
    """--slow only: both venvs took 265 s the first time on a loaded 2-core machine, 61 s again (pip's cache warm)."""
    if not request.config.getoption("--slow"):
        pytest.skip("installs into a fresh venv (20 s to 2 min each): run with --slow")
    path, expected = _mlp(tmp_path, as_onnx=model == "onnx")
    python = _venv_with(wheel, extra, tmp_path / "venv")
    script = tmp_path / "run.py"
    script.write_text(_IN_VENV)
    env_out = tmp_path / "y.npy"
    report = json.loads(_run([str(python), str(script), str(path), backend, missing, str(env_out)]).splitlines()[-1])
    assert report["mlc_lab"].startswith(str(tmp_path / "venv")), "the venv ran the installed wheel, not the checkout"
    assert report["torch"] is False, f"mlc-lab[{extra}] pulled in PyTorch"
    np.testing.assert_allclose(np.load(env_out), expected, rtol=1e-4, atol=1e-5)
    assert report["error"] == (
        f"MissingDependencyError: backend '{missing}' needs the '{missing}' extra: pip install 'mlc-lab[{missing}]' "
        f"(not installed: {', '.join(EXTRA_MODULES[missing])})"
    )
