"""A tuning log that cannot lie or crash (issue 11): hostile records are reported and never used, a log never
makes a build fail, and tuners sharing one log measure no config twice and agree on the best."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from mlc_lab.tuning.cost_model import GradientBoostingModel, generic_features, log_costs
from mlc_lab.tuning.database import MAX_LINE_BYTES, InvalidRecord, Record, TuningDatabase, TuningLogWarning
from mlc_lab.tuning.measure import TrialResult
from mlc_lab.tuning.space import SearchSpace
from mlc_lab.tuning.strategies import ModelBased, config_id
from mlc_lab.tuning.tuner import tune_space

ROOT = Path(__file__).resolve().parents[1]


def small_space() -> SearchSpace:
    return SearchSpace({"tile": [[1, 8], [2, 4], [4, 2], [8, 1]], "unroll": [0, 16, 64], "flag": [False, True]})


def cost_of(config) -> float:
    """A made-up kernel time: best at tile [4, 2], unroll 16, flag on (every config a different time)."""
    tiles = [[1, 8], [2, 4], [4, 2], [8, 1]]
    return 1e-3 * (1 + abs(tiles.index(config["tile"]) - 2) + abs([0, 16, 64].index(config["unroll"]) - 1) * 0.3) + (
        0 if config["flag"] else 1e-4
    )


def measure(config) -> TrialResult:
    return TrialResult(config, cost_of(config))


def good(key="k", **config) -> dict:
    return {"key": key, "config": {"tile": [2, 4], "unroll": 16, "flag": True, **config}, "cost": 0.002, "error": None}


def write_lines(path: Path, lines: list) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


# -- every record checked when read -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, reason",
    [
        ({**good(), "cost": 0}, "'cost'"),
        ({**good(), "cost": -1e-3}, "'cost'"),
        ('{"key": "k", "config": {}, "cost": NaN, "error": null}', "NaN"),
        ('{"key": "k", "config": {}, "cost": Infinity, "error": null}', "Infinity"),
        ('{"key": "k", "config": {}, "cost": 1e999, "error": null}', "'cost'"),
        ({**good(), "cost": "0.001"}, "'cost'"),
        ({**good(), "cost": True}, "'cost'"),
        ({**good(), "cost": None}, "'cost'"),  # no cost and no error: not a trial
        ({**good(), "config": "tile=2x4"}, "'config'"),
        ({**good(), "config": [2, 4]}, "'config'"),
        ('{"key": "k", "config": {"tile": [2, 1e999]}, "cost": 1, "error": null}', "non-finite"),
        ({**good(), "key": 17}, "'key'"),
        ({**good(), "error": 3}, "'error'"),
        ({**good(), "trial": "seven"}, "'trial'"),
        ({**good(), "wall_s": -5}, "'wall_s'"),
        ({**good(), "task": ["x"]}, "'task'"),
        ("[" * 100_000, "longer than the limit"),
        ("[" * 60_000, "nested 60000 deep"),
        ('{"key": "k", "config": ' + "[" * 20 + "]" * 20 + ', "cost": 1}', "nested"),
        ('{"key": "k", "config": {}, "cost": ' + "9" * 5000 + "}", "not JSON"),
        ('{"key": "k", "config": {"a": "' + "x" * (MAX_LINE_BYTES + 10) + '"}, "cost": 1}', "longer than the limit"),
        ("\x00\xff garbage", "not JSON"),
        ("null", "not a tuning record"),
    ],
)
def test_invalid_records_are_reported_and_skipped(tmp_path, line, reason):
    path = tmp_path / "log.jsonl"
    write_lines(path, [good(unroll=0), line, good(unroll=64)])
    db = TuningDatabase(path)
    records = db.records()  # no RecursionError, TypeError or KeyError, whatever the line holds
    assert [r.config["unroll"] for r in records] == [0, 64]
    assert len(db.problems) == 1 and db.problems[0].line == 2
    assert reason in db.problems[0].reason
    assert "\n" not in db.problems[0].reason and len(db.problems[0].reason) < 300
    assert "1 invalid record skipped (line 2: " in db.problem_summary()


def test_parsing_a_hostile_line_directly_raises_one_clear_error():
    for line in ("[" * 100_000, "[" * 60_000, '{"key": "k", "config": {}, "cost": NaN}', "{" * 3000):
        with pytest.raises(InvalidRecord):
            Record.from_json(line)


def test_a_failed_trial_keeps_no_cost_and_is_never_best(tmp_path):
    path = tmp_path / "log.jsonl"
    write_lines(path, [{**good(), "cost": 0, "error": "run: wrong result"}, good(unroll=0)])
    db = TuningDatabase(path)
    failed, ok = db.records()
    assert not failed.ok and failed.cost == float("inf") and not db.problems
    assert db.best("k").config["unroll"] == 0


def test_a_line_without_end_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "log.jsonl"
    write_lines(path, [good()])
    with open(path, "a") as f:
        f.write("x" * (8 * MAX_LINE_BYTES))  # no newline: a runaway writer
    db = TuningDatabase(path)
    assert len(db.records()) == 1
    assert len(db.problems) == 1 and "longer than the limit" in db.problems[0].reason


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"tile": [0, 8]}, "knob tile=[0, 8]"),  # a zero tile
        ({"tile": [3, 3]}, "knob tile"),  # not a factorization of 8
        ({"unroll": "16"}, "knob unroll='16'"),  # a string for a number
        ({"unroll": 16.0}, "knob unroll=16.0"),  # a float where the space has ints
        ({"flag": 1}, "knob flag=1"),  # 1 == True in Python, not in JSON
        ({"unroll": [16]}, "knob unroll"),
        ({"vectorize": True}, "vectorize is not a knob"),
    ],
)
def test_configs_outside_the_search_space_are_reported(tmp_path, change, reason):
    path = tmp_path / "log.jsonl"
    write_lines(path, [good(unroll=0), good(**change), good(unroll=64)])
    db = TuningDatabase(path)
    assert len(db.records("k")) == 3  # without the space: well-formed records
    records = db.records("k", small_space())
    assert [r.config["unroll"] for r in records] == [0, 64]
    assert [p.line for p in db.problems] == [2]
    assert "outside the task's search space" in db.problems[0].reason and reason in db.problems[0].reason


def test_a_config_missing_knobs_is_reported(tmp_path):
    path = tmp_path / "log.jsonl"
    write_lines(path, [{"key": "k", "config": {"tile": [2, 4]}, "cost": 1e-9, "error": None}])
    db = TuningDatabase(path)
    assert db.best("k", small_space()) is None
    assert "knob unroll is missing" in db.problems[0].reason


def test_violation_is_exact_as_json_compares():
    space = small_space()
    config = {"tile": [2, 4], "unroll": 16, "flag": True}
    assert space.violation(config) is None
    assert space.violation(json.loads(json.dumps(config))) is None  # what a log gives back
    assert space.violation({**config, "flag": 1}) is not None
    assert space.violation({**config, "unroll": True}) is not None
    assert space.violation("tile") is not None
    assert space.violation({**config, "unroll": np.int64(16), "flag": np.bool_(True)}) is None  # a NumPy 16 is 16


# -- invalid records are never used: not as best, not as cost-model data ------------------------------------
class RecordingModel(GradientBoostingModel):
    """XGBoost, remembering every config it was trained on."""

    def __init__(self):
        super().__init__(generic_features, rounds=5)
        self.trained_on: list[tuple[dict, float]] = []

    def fit(self, configs, seconds):
        self.trained_on += list(zip(configs, seconds))
        super().fit(configs, seconds)


def test_tuner_resumes_past_hostile_records_and_never_learns_from_them(tmp_path):
    path = tmp_path / "log.jsonl"
    space = small_space()
    rng = np.random.default_rng(1)
    honest = []
    while len(honest) < 8:  # enough for the model's warm-up
        c = space.sample(rng)
        if c not in honest:
            honest.append(c)
    write_lines(path, [{"key": "k", "config": c, "cost": cost_of(c), "error": None} for c in honest])
    lies = [
        {"key": "k", "config": {"tile": [1, 1], "unroll": 16, "flag": True}, "cost": 1e-12, "error": None},
        {"key": "k", "config": {"tile": [4, 2], "unroll": 16}, "cost": 1e-12, "error": None},
        {"key": "k", "config": {"tile": [8, 1], "unroll": 0, "flag": False}, "cost": 0, "error": None},
        {"key": "k", "config": {"tile": [8, 1], "unroll": 64, "flag": False}, "cost": -1, "error": None},
        '{"key": "k", "config": {"tile": [8, 1], "unroll": 16, "flag": false}, "cost": NaN, "error": null}',
        "[" * 100_000,
    ]
    write_lines(path, lies)
    model = RecordingModel()
    strategy = ModelBased(space, model, seed=0, warmup=8, batch=4)
    with pytest.warns(TuningLogWarning, match="6 invalid records skipped"):
        result = tune_space(space, measure, 14, key="k", strategy=strategy, db=path, progress=False)
    assert result.resumed == 8 and result.measured == 6 and len(result.trials) == 14
    assert [p.line for p in result.invalid] == [9, 10, 11, 12, 13, 14]
    assert model.trained_on
    for config, seconds in model.trained_on:  # only real measurements (a lied-about config may be measured later)
        assert space.violation(config) is None and seconds == cost_of(config)
    measured = [t for t in result.trials if t.ok]
    assert result.best_cost == min(cost_of(t.config) for t in measured) > 1e-6  # a real time, not the 1e-12 lie
    assert space.violation(result.best_config) is None


def test_a_cost_that_is_not_positive_becomes_a_failed_trial(tmp_path):
    def broken(config):
        return TrialResult(config, 0.0 if config["flag"] else float("nan"))

    result = tune_space(small_space(), broken, 10, key="k", strategy="model", db=tmp_path / "log.jsonl", progress=False)
    assert len(result.trials) == 10 and result.best is None  # no XGBoost crash on log(0)
    assert all("is not a finite number > 0" in t.error for t in result.trials)
    db = TuningDatabase(tmp_path / "log.jsonl")
    assert len(db.records("k", small_space())) == 10 and not db.problems  # logged as failures, read back clean


def test_cost_models_refuse_non_positive_costs_clearly():
    with pytest.raises(ValueError, match="finite numbers > 0"):
        log_costs([1e-3, 0.0])
    with pytest.raises(ValueError, match="finite numbers > 0"):
        GradientBoostingModel().fit([{"a": 1}, {"a": 2}], [1e-3, float("nan")])


# -- concurrent tuners on one log ------------------------------------------------------------------------------
TUNER = textwrap.dedent(
    """
    import json, os, sys, time
    from mlc_lab.tuning.measure import TrialResult
    from mlc_lab.tuning.space import SearchSpace
    from mlc_lab.tuning.tuner import tune_space

    log, measured, go, trials = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    def cost(config):
        with open(measured, "a") as f:
            f.write(json.dumps(config, sort_keys=True) + "\\n")
        time.sleep(0.05)
        return TrialResult(config, 1e-3 * (1 + config["a"] * 12 + config["b"] + 0.5 * config["flag"]))

    space = SearchSpace({"a": list(range(12)), "b": list(range(12)), "flag": [False, True]})
    open(go + "." + str(os.getpid()), "w").close()
    while not os.path.exists(go):  # start both tuners at once
        time.sleep(0.005)
    r = tune_space(space, cost, trials, key="shared", strategy="random", db=log, seed=0, progress=False)
    print(json.dumps({"best": r.best_config, "cost": r.best_cost, "measured": r.measured, "trials": len(r.trials)}))
    """
)


def test_two_processes_on_one_log_measure_no_config_twice_and_agree_on_the_best(tmp_path):
    script, log, go = tmp_path / "tuner.py", tmp_path / "log.jsonl", tmp_path / "go"
    script.write_text(TUNER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    trials = 40
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(log), str(tmp_path / f"measured{k}"), str(go), str(trials)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("go.*"))) < 2 and time.time() < deadline:
        time.sleep(0.01)
    go.touch()
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    measured = [(tmp_path / f"measured{k}").read_text().splitlines() for k in range(2)]
    every = measured[0] + measured[1]
    assert len(every) == len(set(every)) == trials  # same seed, same proposals: still no config measured twice
    assert all(measured), "both tuners measured some of the trials"
    assert [o["measured"] for o in outs] == [len(m) for m in measured]
    records = TuningDatabase(log).records("shared")
    assert sorted(config_id(r.config) for r in records) == sorted(every)
    assert [r.trial for r in records] == list(range(1, trials + 1))
    best = min(records, key=lambda r: r.cost)
    assert outs[0]["best"] == outs[1]["best"] == best.config and outs[0]["cost"] == outs[1]["cost"] == best.cost
    assert outs[0]["trials"] == outs[1]["trials"] == trials
    assert not (tmp_path / "log.jsonl.claims").exists()  # both tuners cleaned up their claims


def test_threads_on_one_log_measure_no_config_twice(tmp_path):
    log = tmp_path / "log.jsonl"
    seen: list[str] = []
    results = []

    def slow(config):
        seen.append(config_id(config))
        time.sleep(0.005)
        return measure(config)

    def run():
        results.append(tune_space(small_space(), slow, 20, key="k", strategy="random", db=log, progress=False))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == 20
    assert len({(r.best_cost, config_id(r.best_config)) for r in results}) == 1
    assert sum(r.measured for r in results) == 20


def test_a_live_tuners_claim_is_waited_for_and_a_dead_ones_is_not(tmp_path):
    log = tmp_path / "log.jsonl"
    space = SearchSpace({"a": [1, 2, 3, 4]})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    claims = [
        {"key": "k", "config": config_id({"a": 1}), "owner": f"{host}:{dead.pid}:gone", "time": time.time()},
        {"key": "k", "config": config_id({"a": 2}), "owner": f"{host}:{os.getpid()}:old", "time": time.time() - 1e5},
        {"key": "k", "config": config_id({"a": 3}), "owner": f"{host}:{os.getpid()}:busy", "time": time.time()},
        "not a claim",
    ]
    write_lines(tmp_path / "log.jsonl.claims", claims)
    calls = []

    def cost(config):
        calls.append(config["a"])
        return TrialResult(config, float(config["a"]))

    def other_tuner_finishes():  # the live owner of a=3 logs its trial a little later
        time.sleep(0.5)
        TuningDatabase(log).append(Record("k", {"a": 3}, 0.5))

    other = threading.Thread(target=other_tuner_finishes)
    other.start()
    result = tune_space(space, cost, 4, key="k", strategy="grid", db=log, progress=False)
    other.join()
    assert sorted(calls) == [1, 2, 4]  # stale claims (dead process, too old) do not block their configs
    assert len(result.trials) == 4 and result.best_config == {"a": 3} and result.best_cost == 0.5
    assert not (tmp_path / "log.jsonl.claims").exists()


# -- a log never makes a build fail -----------------------------------------------------------------------------
def test_compile_with_a_hostile_log_falls_back_per_kernel(tmp_path, monkeypatch):
    import torch

    import mlc_lab
    import mlc_lab.tuning
    from mlc_lab import zoo
    from mlc_lab.api import import_model, resolve_passes
    from mlc_lab.passes import PassManager
    from mlc_lab.tuning.apply import tasks_from_graph
    from mlc_lab.tuning.measure import kernel_info
    from mlc_lab.tuning.space import space_for

    model = zoo.load("mlp")
    graph = import_model(model.module, model.example_inputs)
    tasks = tasks_from_graph(PassManager(resolve_passes("default", graph, "tvm")).apply(graph))
    assert len(tasks) == 3
    missing, outside, fine = tasks
    config = space_for(kernel_info(fine)).sample(np.random.default_rng(0))
    zero_tile = {**space_for(kernel_info(outside)).sample(np.random.default_rng(0)), "tile_i1": [0, 1, 1, 1]}
    log = tmp_path / "mlp.jsonl"
    write_lines(
        log,
        [
            {"key": missing.key, "config": {"tile_i0": [1, 1, 1, 1]}, "cost": 1e-9, "error": None},  # was KeyError
            {"key": outside.key, "config": zero_tile, "cost": 1e-9, "error": None},
            {"key": fine.key, "config": config, "cost": 1e-5, "error": None},
            {"key": fine.key, "config": {**config, "unroll": 7}, "cost": 1e-9, "error": None},  # faster, invalid
            '{"key": "x", "config": {}, "cost": NaN}',
            "[" * 100_000,
        ],
    )
    hooks = []
    real = mlc_lab.tuning.schedule_from_db
    monkeypatch.setattr(mlc_lab.tuning, "schedule_from_db", lambda db: hooks.append(real(db)) or hooks[-1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = mlc_lab.compile(model.module, model.example_inputs, backend="tvm", tuning_db=log)
    messages = [str(w.message) for w in caught if issubclass(w.category, TuningLogWarning)]
    assert any("2 invalid records skipped" in m for m in messages)
    assert any(f"kernel {missing.node.name}:" in m and "knob" in m and "missing" in m for m in messages)
    assert any(f"kernel {outside.node.name}:" in m and "tile_i1=[0, 1, 1, 1]" in m for m in messages)
    assert any(f"kernel {fine.node.name}: 1 faster records outside its search space ignored" in m for m in messages)
    (hook,) = hooks
    assert hook.applied == [fine.node.name] and hook.best[fine.key].config == config
    assert {name for name, _ in hook.fell_back} == {missing.node.name, outside.node.name}
    x = model.example_inputs[0]
    with torch.no_grad():
        expected = model.module(x).numpy()
    np.testing.assert_allclose(np.asarray(compiled(x)), expected, rtol=1e-4, atol=1e-5)


def _inject(monkeypatch, after_apply):
    """Records that validate but break: the real apply_config, then `after_apply(sch)` (fault injection)."""
    import mlc_lab.tuning.apply as apply_module

    real = apply_module.apply_config

    def breaking(sch, config, info=None):
        real(sch, config, info)
        after_apply(sch)

    monkeypatch.setattr(apply_module, "apply_config", breaking)


def _import_bad_llvm(sch):
    block = list(sch.get_child_blocks(sch.get_sblock("root")))[0]
    sch.annotate(sch.get_loops(block)[0], "pragma_import_llvm", "not LLVM IR")  # applies; LLVM cannot build it


def _raise_midway(sch):
    raise RuntimeError("primitive refused halfway")


@pytest.mark.parametrize("fault, stage", [(_raise_midway, "failed to apply"), (_import_bad_llvm, "failed to build")])
def test_a_valid_record_that_fails_to_apply_or_build_falls_back_untouched(tmp_path, monkeypatch, fault, stage):
    from mlc_lab.codegen.tvm.schedule import default_schedule
    from mlc_lab.tuning.apply import schedule_from_db
    from mlc_lab.tuning.lowering import lower
    from mlc_lab.tuning.measure import kernel_info
    from mlc_lab.tuning.space import space_for
    from mlc_lab.tuning.task import matmul_task

    task = matmul_task(16, 32, 8)
    config = space_for(kernel_info(task)).sample(np.random.default_rng(0))
    db = TuningDatabase(tmp_path / "log.jsonl")
    db.append(Record(task.key, config, 1e-6))
    hook = schedule_from_db(db)
    _inject(monkeypatch, fault)
    with pytest.warns(TuningLogWarning, match=rf"kernel {task.node.name}: its record .*{stage}"):
        func, _ = lower(task.node, hook)
    assert hook.applied == [] and hook.missed == [task.node.name]
    default, _ = lower(task.node, default_schedule)
    assert func.script() == default.script()  # the failed attempt left the kernel's schedule untouched


def test_a_record_for_a_kernel_no_space_covers_falls_back(tmp_path):
    from mlc_lab.codegen.tvm.schedule import default_schedule
    from mlc_lab.ir.builder import GraphBuilder
    from mlc_lab.tuning.apply import schedule_from_db
    from mlc_lab.tuning.lowering import lower
    from mlc_lab.tuning.task import Task

    b = GraphBuilder("g")
    relu = b.relu(b.input("x", (4, 64), "float32"))
    db = TuningDatabase(tmp_path / "log.jsonl")
    db.append(Record(Task("relu", relu).key, {"tile_i0": [1, 1, 1, 4]}, 1e-9))  # an elementwise kernel: no space
    hook = schedule_from_db(db)
    with pytest.warns(TuningLogWarning, match=rf"kernel {relu.name}: .*search space does not cover it"):
        func, _ = lower(relu, hook)
    assert func.script() == lower(relu, default_schedule)[0].script()


def test_write_best_keeps_no_invalid_record(tmp_path):
    path = tmp_path / "log.jsonl"
    write_lines(path, [good(unroll=0), {**good(unroll=64), "cost": 0}, {**good(unroll=16), "cost": 1e-3}])
    best = TuningDatabase(path).write_best(tmp_path / "best.jsonl")
    (record,) = best.records()
    assert record.config["unroll"] == 16 and record.cost == 1e-3 and not best.problems


# -- what the CLI and the shipped logs say ---------------------------------------------------------------------
def test_cli_reports_invalid_records_and_ignores_them(tmp_path, capsys):
    from mlc_lab.cli import main
    from mlc_lab.tuning.task import matmul_task

    task = matmul_task(16, 16, 16)
    log = tmp_path / "tune.jsonl"
    write_lines(
        log,
        [
            {"key": task.key, "config": {"tile_i0": [1, 1, 1, 16]}, "cost": 1e-15, "error": None},
            {"key": task.key, "config": {"tile_i0": [16, 1, 1, 1]}, "cost": 0, "error": None},
            "[" * 100_000,
        ],
    )
    args = ["tune", "--op", "matmul", "--shape", "16,16,16", "--json", "--db", str(log), "--strategy", "random"]
    with pytest.warns(TuningLogWarning):
        assert main([*args, "--trials", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["invalid_records"] == 3 and len(out["invalid_reasons"]) == 3
    assert out["invalid_reasons"][0].startswith("line 1: config outside the task's search space")
    assert out["resumed_trials"] == 0 and out["measured_trials"] == 2
    assert out["best_gflops"] < 10_000  # not the 4e6 GFLOP/s the 1e-15 s record claims
    valid = TuningDatabase(log).records(task.key)
    assert out["best_time_s"] == min(r.cost for r in valid if r.ok and r.cost > 1e-12)


def test_every_shipped_log_validates_fully():
    """Every record of every log in mlc_lab/tuning/data is well formed, and (MetaSchedule's aside) a point of
    its kernel's search space: the kernels are rebuilt as the benchmarks and tools/tune_zoo.py built them."""
    from mlc_lab import zoo
    from mlc_lab.api import import_model, resolve_passes
    from mlc_lab.passes import ElementwiseFusionPass, FoldBatchNorm, PassManager
    from mlc_lab.tuning.apply import tasks_from_graph
    from mlc_lab.tuning.measure import kernel_info
    from mlc_lab.tuning.space import space_for
    from mlc_lab.tuning.stored import stored_database, stored_logs
    from mlc_lab.tuning.task import conv2d_task, matmul_task, node_signature

    tasks = [
        matmul_task(512, 512, 512),
        *(conv2d_task(1, 56, 64, 64, 3, layout) for layout in ("NCHW", "NHWC", "NCHW16c")),
    ]
    for size in ({}, {"channels": 32, "image_size": 56}):  # benchmarks/tuning.py's small_cnn
        tasks += tasks_from_graph(
            PassManager([FoldBatchNorm(), ElementwiseFusionPass()]).apply(zoo.load("small_cnn", **size).graph())
        )
    for name in zoo.names():  # tools/tune_zoo.py: what mlc_lab.compile builds
        model = zoo.load(name)
        graph = import_model(model.module, model.example_inputs)
        tasks += tasks_from_graph(PassManager(resolve_passes("default", graph, "tvm")).apply(graph))
    by_signature = {node_signature(t.node): t for t in tasks}
    spaces: dict[str, SearchSpace] = {}
    checked = 0
    assert len(stored_logs()) >= 7
    for name in stored_logs():
        db = stored_database(name)
        assert db.records() and not db.problems, db.problem_summary()
        for key in db.keys():
            signature, _, target = key.partition("@")
            assert signature in by_signature, (name, key[:80])
            if target.endswith("#metaschedule"):  # MetaSchedule's trials are numbered, not knob values
                assert all(set(r.config) == {"metaschedule_trial"} for r in db.records(key))
                continue
            if signature not in spaces:
                spaces[signature] = space_for(kernel_info(by_signature[signature]))
            checked += len(db.records(key, spaces[signature]))
            assert not db.problems, db.problem_summary()
    assert checked >= 400
