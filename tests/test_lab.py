"""JupyterLab as students start it: `mlc-lab lab` serves the exercises as notebooks (jupytext), on
127.0.0.1 with a token, and stops when its own process is terminated."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_lab_serves_exercises_as_notebooks(tmp_path):
    port, token = free_port(), "mlc-lab-test-token"
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "JUPYTER_RUNTIME_DIR": str(tmp_path),
        "JUPYTER_CONFIG_DIR": str(tmp_path),
    }
    cli = [sys.executable, "-m", "mlc_lab.cli", "lab", "--no-browser", "--port", str(port), "--ip", "127.0.0.1"]
    server = subprocess.Popen(cli, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                listing = get_json(f"{base}/api/contents/exercises?token={token}")
                break
            except OSError:
                assert server.poll() is None, f"JupyterLab exited: {server.stderr.read()[-2000:]}"
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(1)
        names = {item["name"] for item in listing["content"]}
        assert {"01_ir.md", "09_performance.md"} <= names
        nb = get_json(f"{base}/api/contents/exercises/01_ir.md?token={token}")
        assert nb["type"] == "notebook", f"01_ir.md is served as {nb['type']!r}, not as a notebook"
        sources = [c["source"] for c in nb["content"]["cells"] if c["cell_type"] == "code"]
        assert any("def build_mlp" in s for s in sources)
        try:
            get_json(f"{base}/api/contents/exercises?token=wrong")
            raise AssertionError("the server answered without the right token")
        except urllib.error.HTTPError as e:
            assert e.code == 403
    finally:
        server.send_signal(signal.SIGTERM)  # by its own PID: `mlc-lab lab` execs into jupyter-lab
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode is not None


def test_lab_settings_open_md_as_notebooks():
    from mlc_lab.book import configure_jupyterlab

    settings = json.loads(configure_jupyterlab().read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == "Jupytext Notebook"
