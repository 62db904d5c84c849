"""Tuning through TVM's RPC tracker: a tracker and two RPC servers on 127.0.0.1, started by the test.

`mlc_lab.tuning.rpc_local.local_rpc` starts TVM's own entry points (`python -m tvm.exec.rpc_tracker`,
`python -m tvm.exec.rpc_server`) on free ports, each in its own process group, and stops them by PID
when the fixture ends, on failure too; the fixture checks that none is left.
"""

from __future__ import annotations

import json
import os

import psutil
import pytest

pytest.importorskip("tvm")
pytest.importorskip("cloudpickle")  # tvm.rpc's tracker and server start their workers with it

from mlc_lab.cli import main  # noqa: E402
from mlc_lab.tuning.database import TuningDatabase  # noqa: E402
from mlc_lab.tuning.measure import MeasuredCost  # noqa: E402
from mlc_lab.tuning.rpc import tune_remote  # noqa: E402
from mlc_lab.tuning.rpc_local import free_port, local_rpc  # noqa: E402
from mlc_lab.tuning.task import matmul_task  # noqa: E402

KEY = "mlc-lab-test"


@pytest.fixture(scope="module")
def tracker():
    """'127.0.0.1:PORT' of a tracker with two servers of KEY."""
    with local_rpc(servers=2, key=KEY) as rpc:
        assert len(rpc.procs) == 3
        yield rpc.tracker
    for proc in rpc.procs:  # stopped by PID: the processes and their process groups are gone
        assert proc.poll() is not None
        running = [
            p.pid
            for p in psutil.process_iter(["status"])
            if _pgid(p.pid) == proc.pid and p.info["status"] != psutil.STATUS_ZOMBIE  # zombies: dead, unreaped
        ]
        assert not running, f"processes {running} of group {proc.pid} still run"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


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
            # one machine, noisy (and the servers run one thread: this process may run more)
            assert 1 / 6 < trial.cost / mine.cost < 6, (trial.cost, mine.cost)
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


def test_a_board_is_keyed_by_its_own_cpu_and_cores() -> None:
    from mlc_lab.tuning.rpc import remote_key, remote_target

    board = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72", "num-cores": 4}
    assert remote_key(remote_target(board)) == "llvm -mcpu=cortex-a72 -threads=4"


def test_rpc_usage_errors(tracker, capsys) -> None:
    base = ["tune", "--op", "matmul", "--shape", "8,8,8", "--trials", "1"]
    assert main([*base, "--target", '{"kind": "llvm", "mcpu": "cortex-a72"}']) == 2
    assert "needs --rpc-tracker and --rpc-key" in capsys.readouterr().err
    assert main([*base, "--rpc-tracker", "nohost", "--rpc-key", KEY]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert main([*base, "--rpc-tracker", tracker]) == 2
    assert "--rpc-tracker and --rpc-key go together" in capsys.readouterr().err
    assert main([*base, "--target", '{"kind": "cuda"}', "--rpc-tracker", tracker, "--rpc-key", KEY]) == 2
    assert '"kind": "llvm"' in capsys.readouterr().err
    assert main([*base, "--rpc-tracker", tracker, "--rpc-key", "no-such-board"]) == 1
    assert "no RPC server with key 'no-such-board'" in capsys.readouterr().err
    assert main([*base, "--rpc-tracker", f"127.0.0.1:{free_port()}", "--rpc-key", KEY]) == 1
    assert "cannot reach the RPC tracker" in capsys.readouterr().err
