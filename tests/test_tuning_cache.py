"""The per-machine tuning cache, `mlc-lab tune-model --budget`, and `mlc_lab.compile(..., tune=...)`.

Budgets are a few seconds on the zoo MLP: enough for a few trials per kernel, and every test checks
the compiled model against PyTorch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tvm")

import mlc_lab  # noqa: E402
from mlc_lab import zoo  # noqa: E402
from mlc_lab.cli import main  # noqa: E402
from mlc_lab.tuning import cache  # noqa: E402
from mlc_lab.tuning.budget import BadBudget, parse_budget, shares, tune_graph  # noqa: E402
from mlc_lab.tuning.database import TuningDatabase  # noqa: E402
from mlc_lab.tuning.task import target_signature  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MLC_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TVM_NUM_THREADS", "1")


def test_the_cache_folder_is_the_users_unless_the_environment_says(tmp_path, monkeypatch) -> None:
    assert cache.cache_dir() == tmp_path / "cache"
    assert cache.tuning_cache().path == tmp_path / "cache" / "tuning.jsonl"
    monkeypatch.delenv("MLC_LAB_CACHE_DIR")
    assert cache.cache_dir().name == "mlc-lab"


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("5m", 300), ("1h", 3600), ("1.5h", 5400), ("2 min", 120),
                                           (42, 42), ("7", 7)])
def test_budgets_parse(text, seconds) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text, why", [("5x", "not a duration"), ("", "not a duration"), ("0s", "more than 0"),
                                       ("-1m", "not a duration"), (float("nan"), "more than 0"),
                                       (True, "not bool"), ("100h", "longer than the limit")])
def test_bad_budgets_are_clear_errors(text, why) -> None:
    with pytest.raises(BadBudget, match=why):
        parse_budget(text)


def test_shares_follow_flops_and_sum_to_the_budget() -> None:
    got = shares([3e6, 1e6], 100.0)
    assert sum(got) == pytest.approx(100.0) and got[0] > got[1] >= 5.0


def test_compile_refuses_bad_tune_arguments_before_building(tmp_path) -> None:
    m = zoo.load("mlp")
    with pytest.raises(BadBudget, match="'soon'"):
        mlc_lab.compile(m.module, m.example_inputs, backend="tvm", tune="soon")
    with pytest.raises(ValueError, match="tvm backend only"):
        mlc_lab.compile(m.module, m.example_inputs, backend="interpreter", tune="5s")
    with pytest.raises(ValueError, match="not both"):
        mlc_lab.compile(m.module, m.example_inputs, backend="tvm", tune="5s", tuning_db=tmp_path / "x.jsonl")


def test_compile_with_a_budget_tunes_into_the_cache_then_uses_it(tmp_path, monkeypatch) -> None:
    from mlc_lab.tuning import sources

    monkeypatch.setattr(sources, "shipped_logs", lambda: [])  # only what this test tunes (no transfers)
    m = zoo.load("mlp")
    compiled = mlc_lab.compile(m.module, m.example_inputs, backend="tvm", tune="4s")
    records = TuningDatabase(tmp_path / "cache" / "tuning.jsonl").records()
    assert records and all(r.target == target_signature() for r in records)
    tuned = {r.key for r in records if r.ok}
    found = compiled.schedule_sources
    assert len(found) == 3
    for source in found.values():
        # a tuned record is kept only where the probe found it faster than the default schedule
        assert source.kind in ("tuned now", "default"), source
        if source.kind == "default" and "slower than the default" not in source.detail:
            assert "no record" in source.detail
    assert any(s.kind == "tuned now" or "slower than the default" in s.detail for s in found.values()) == bool(tuned)
    np.testing.assert_allclose(compiled(*m.numpy_inputs()), m.torch_outputs()[0], rtol=1e-4, atol=1e-5)


def test_tune_model_cli_writes_the_cache(tmp_path, capsys) -> None:
    assert main(["tune-model", "mlp", "--budget", "3s", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cache"] == str(tmp_path / "cache" / "tuning.jsonl") and summary["budget_s"] == 3.0
    db = TuningDatabase(summary["cache"])
    assert len(db.records()) == sum(k["trials"] for k in summary["kernels"]) > 0
    assert all(r.target == target_signature() for r in db.records())


def test_tune_model_killed_with_sigkill_loses_nothing_and_resumes(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from mlc_lab.api import import_model, resolve_passes
    from mlc_lab.passes import PassManager

    db = TuningDatabase(tmp_path / "cache" / "tuning.jsonl")
    proc = subprocess.Popen([sys.executable, "-m", "mlc_lab.cli", "tune-model", "mlp", "--budget", "5m"],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and len(db.records()) < 2:
            time.sleep(0.2)
        assert len(db.records()) >= 2, "the tuner wrote no records"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    written = db.records()
    assert len(db.problems) <= 1  # at most the line in flight, torn by the kill
    m = zoo.load("mlp")
    graph = import_model(m.module, m.example_inputs)
    graph = PassManager(resolve_passes("default", graph, "tvm")).apply(graph)
    again = tune_graph(graph, 1.5, progress=False)
    assert sum(r.resumed for r in again.values()) == sum(
        len([w for w in written if w.key == key]) for key in again
    )
    assert len(db.records()) == len(written) + sum(r.measured for r in again.values())


def test_tune_model_cli_usage_errors(capsys) -> None:
    assert main(["tune-model", "mlp", "--budget", "5parsecs"]) == 2
    assert "argument --budget: tuning budget '5parsecs' is not a duration" in capsys.readouterr().err
    assert main(["tune-model", "alexnet", "--budget", "5s"]) == 2
    assert "unknown zoo model 'alexnet'" in capsys.readouterr().err


def test_a_cache_folder_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch, capsys) -> None:
    bogus = tmp_path / "not_a_folder"
    bogus.write_text("")
    monkeypatch.setenv("MLC_LAB_CACHE_DIR", str(bogus))
    assert main(["tune-model", "mlp", "--budget", "1s"]) == 1
    assert f"tuning cache {bogus} is not a folder" in capsys.readouterr().err


def test_a_corrupt_cache_loses_no_good_record(tmp_path) -> None:
    from mlc_lab.tuning.database import Record

    db = cache.writable(cache.tuning_cache())
    good = Record(key="k@llvm -mcpu=znver4 -threads=1", config={"a": 1}, cost=1e-3)
    db.append(good)
    with open(db.path, "ab") as f:
        f.write(b"\x00\xffgarbage\n{\"key\": \"torn")  # a corrupt line, then one torn by a kill
    db.append(Record(key=good.key, config={"a": 2}, cost=2e-3))
    with pytest.warns(UserWarning, match=r"2 invalid records skipped .*the 2 good records are used"):
        records = cache.read_checked(db)
    assert [r.config for r in records] == [{"a": 1}, {"a": 2}]
