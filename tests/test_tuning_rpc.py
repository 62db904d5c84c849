"""Tuning through TVM's RPC tracker: a tracker and two RPC servers on 127.0.0.1, started by the test.

Every process is started in its own process group and stopped by its PID (group) in the fixture's
finalizer, on failure too. The servers run without torch (a stub module that refuses the import, on
their PYTHONPATH only): `import tvm` pulls torch in otherwise, and that import is most of a server's
start-up time. The kernels they run are TVM's alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("tvm")
pytest.importorskip("cloudpickle")  # tvm.rpc's tracker and server start their workers with it

from mlc_lab.cli import main  # noqa: E402
from mlc_lab.tuning.database import TuningDatabase  # noqa: E402
from mlc_lab.tuning.measure import MeasuredCost  # noqa: E402
from mlc_lab.tuning.rpc import RemoteMeasureError, free_servers, tune_remote  # noqa: E402
from mlc_lab.tuning.task import matmul_task  # noqa: E402

KEY = "mlc-lab-test"
START_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a started process and its workers (its process group, whose id is its PID)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # workers left behind in the group
    except ProcessLookupError:
        pass
    proc.wait()


def _wait_for(check, what: str, procs: list[subprocess.Popen], logs: list) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs):
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: a process exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if check():
                return
        except (OSError, RemoteMeasureError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not happen in {START_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="module")
def tracker(tmp_path_factory, request):
    """'127.0.0.1:PORT' of a tracker with two servers of KEY."""
    folder = tmp_path_factory.mktemp("rpc")
    (folder / "stub").mkdir()
    (folder / "stub" / "torch.py").write_text('raise ImportError("torch is left out of the test RPC servers")\n')
    env = {**os.environ, "PYTHONPATH": str(folder / "stub"), "TVM_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    procs: list[subprocess.Popen] = []
    logs = []

    def start(name: str, *args: str) -> None:
        log = folder / f"{name}.log"
        logs.append(log)
        with open(log, "wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True))

    request.addfinalizer(lambda: [_stop(p) for p in procs])
    port = _free_port()
    start("tracker", "tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 1))
    _wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, "tracker", procs, logs)
    for i in range(2):
        server_port = _free_port()
        start(f"server{i}", "tvm.exec.rpc_server", "--tracker", f"127.0.0.1:{port}", "--key", KEY,
              "--host", "127.0.0.1", "--port", str(server_port), "--port-end", str(server_port + 1))
    _wait_for(lambda: free_servers("127.0.0.1", port, KEY) == (2, 2), "two servers registered", procs, logs)
    return f"127.0.0.1:{port}"


def test_trials_spread_over_both_servers_and_match_local_measurements(tracker, tmp_path) -> None:
    task = matmul_task(128, 128, 128)
    db = TuningDatabase(tmp_path / "remote.jsonl")
    remote = tune_remote(task, 6, tracker=tracker, key=KEY, db=db, strategy="random", seed=0, progress=False)
    assert len(remote.servers) == 2 and all(n >= 1 for n in remote.servers.values()), remote.servers
    assert sum(remote.servers.values()) == 6 == len(remote.result.trials)
    assert all(r.target == task.target == remote.target for r in db.records())
    ok = [t for t in remote.result.trials if t.ok]
    assert ok, [t.error for t in remote.result.trials]
    # the same configs measured here: each builds, gives the interpreter's answer, and takes a similar time
    local = MeasuredCost(task)
    here = {json.dumps(t.config, sort_keys=True): local(t.config) for t in remote.result.trials}
    for trial in remote.result.trials:
        mine = here[json.dumps(trial.config, sort_keys=True)]
        assert mine.ok == trial.ok, (mine.error, trial.error)
        if trial.ok:
            assert 1 / 4 < trial.cost / mine.cost < 4, (trial.cost, mine.cost)  # one machine, noisy
    best_here = min(t.cost for t in here.values() if t.ok)
    assert here[json.dumps(remote.result.best_config, sort_keys=True)].cost < 2.5 * best_here


def test_the_cli_tunes_through_the_tracker(tracker, tmp_path, capsys) -> None:
    log = tmp_path / "cli.jsonl"
    args = ["tune", "--op", "matmul", "--shape", "64,64,64", "--trials", "4", "--strategy", "random"]
    assert main([*args, "--rpc-tracker", tracker, "--rpc-key", KEY, "--db", str(log), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"] == 4 and summary["best_time_s"] > 0
    assert sum(summary["rpc_servers"].values()) == 4
    assert {r.target for r in TuningDatabase(log).records()} == {summary["target"]}


def test_rpc_usage_errors(tracker, capsys) -> None:
    base = ["tune", "--op", "matmul", "--shape", "8,8,8", "--trials", "1"]
    assert main([*base, "--rpc-tracker", "nohost", "--rpc-key", KEY]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert main([*base, "--rpc-tracker", tracker]) == 2
    assert "--rpc-tracker and --rpc-key go together" in capsys.readouterr().err
    assert main([*base, "--target", '{"kind": "cuda"}', "--rpc-tracker", tracker, "--rpc-key", KEY]) == 2
    assert '"kind": "llvm"' in capsys.readouterr().err
    assert main([*base, "--rpc-tracker", tracker, "--rpc-key", "no-such-board"]) == 1
    assert "no RPC server with key 'no-such-board'" in capsys.readouterr().err
    assert main([*base, "--rpc-tracker", f"127.0.0.1:{_free_port()}", "--rpc-key", KEY]) == 1
    assert "cannot reach the RPC tracker" in capsys.readouterr().err
