"""The tuning log: append-only, readable after a kill -9, corrupted lines reported and skipped, resumable."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mlc_lab.tuning.database import Record, TuningDatabase
from mlc_lab.tuning.measure import TrialResult
from mlc_lab.tuning.space import SearchSpace
from mlc_lab.tuning.tuner import tune_space

ROOT = Path(__file__).resolve().parents[1]


def small_space() -> SearchSpace:
    return SearchSpace({"a": list(range(1, 9)), "b": list(range(1, 9)), "flag": [False, True]})


def cost(config) -> TrialResult:
    return TrialResult(config, abs(config["a"] - 5) + abs(config["b"] - 3) + (0 if config["flag"] else 2) + 1.0)


def test_append_and_read_back(tmp_path):
    db = TuningDatabase(tmp_path / "log.jsonl")
    db.append(Record("k1", {"x": 1}, 0.5, task="t"))
    db.append(Record("k1", {"x": 2}, 0.25))
    db.append(Record("k1", {"x": 3}, float("inf"), error="build: ValueError: nope"))
    db.append(Record("k2", {"x": 1}, 0.1))
    assert [r.config["x"] for r in db.records("k1")] == [1, 2, 3]
    assert db.best("k1").config == {"x": 2}
    assert db.best("missing") is None
    assert db.keys() == ["k1", "k2"]
    failed = db.records("k1")[2]
    assert not failed.ok and failed.error.startswith("build:")
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[2])["cost"] is None  # inf is not JSON


def test_corrupted_lines_are_reported_and_skipped(tmp_path):
    path = tmp_path / "log.jsonl"
    db = TuningDatabase(path)
    db.append(Record("k", {"x": 1}, 0.5))
    with open(path, "a") as f:
        f.write("this is not json\n")
        f.write('{"no_key": true}\n')
        f.write("[1, 2, 3]\n")
        f.write('{"key": "k", "config": {"x": 2}, "cost": 0.4')  # torn by a kill: no closing brace, no newline
    db.append(Record("k", {"x": 3}, 0.3))  # starts on a fresh line despite the torn one
    records = db.records("k")
    assert [r.config["x"] for r in records] == [1, 3]
    assert [p.line for p in db.problems] == [2, 3, 4, 5]
    assert all(p.reason for p in db.problems)


def test_resume_measures_only_the_missing_trials(tmp_path):
    db = TuningDatabase(tmp_path / "log.jsonl")
    calls = []

    def counting(config):
        calls.append(config)
        return cost(config)

    first = tune_space(small_space(), counting, 10, key="k", strategy="annealing", db=db, progress=False)
    assert len(calls) == 10 and first.resumed == 0
    second = tune_space(small_space(), counting, 25, key="k", strategy="annealing", db=db, progress=False)
    assert second.resumed == 10 and len(calls) == 25 and len(second.trials) == 25
    assert len({json.dumps(c, sort_keys=True) for c in calls}) == 25  # resumed configs are not re-measured
    assert [r.trial for r in db.records("k")] == list(range(1, 26))
    assert second.best_cost <= first.best_cost


TUNE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from mlc_lab.tuning.measure import TrialResult
    from mlc_lab.tuning.space import SearchSpace
    from mlc_lab.tuning.tuner import tune_space

    def slow_cost(config):
        time.sleep(0.05)  # a trial in flight most of the time: the kill lands mid-trial
        return TrialResult(config, float(config["a"] * config["b"]))

    space = SearchSpace({"a": list(range(1, 30)), "b": list(range(1, 30))})
    tune_space(space, slow_cost, int(sys.argv[2]), key="kill", strategy="random", db=sys.argv[1], progress=False)
    """
)


def test_sigkill_mid_tuning_loses_at_most_the_trial_in_flight(tmp_path):
    log = tmp_path / "log.jsonl"
    script = tmp_path / "tune.py"
    script.write_text(TUNE_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(log), "500"], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 8):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    db = TuningDatabase(log)
    records = db.records("kill")
    assert len(db.problems) <= 1  # at worst the one line being written
    assert len(records) >= 8
    assert [r.trial for r in records] == list(range(1, len(records) + 1))  # every finished trial is there
    # resume in a new process: finishes the run, re-measuring nothing that was logged
    subprocess.run([sys.executable, str(script), str(log), str(len(records) + 5)], env=env, check=True)
    after = db.records("kill")
    assert len(after) == len(records) + 5
    assert [r.trial for r in after] == list(range(1, len(after) + 1))
    assert len({json.dumps(r.config, sort_keys=True) for r in after}) == len(after)
