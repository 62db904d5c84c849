"""Tuning meets the compiler: MetaSchedule on the same task, the CLI, tuned records applied in a build."""

import json

import numpy as np

from mlc_lab.cli import main
from mlc_lab.tuning.apply import schedule_from_db, tasks_from_graph
from mlc_lab.tuning.database import Record, TuningDatabase
from mlc_lab.tuning.lowering import lower
from mlc_lab.tuning.task import matmul_task
from mlc_lab.tuning.tuner import tune


def test_metaschedule_bridge_runs_in_process():
    from mlc_lab.tuning.metaschedule import tune_metaschedule

    task = matmul_task(32, 32, 32)
    ms = tune_metaschedule(task, trials=4, trials_per_iter=4, repeat=1, min_repeat_ms=0)
    assert ms.verified  # MetaSchedule's best schedule gives the interpreter's answer
    assert 1 <= len(ms.result.trials) <= 4
    assert ms.result.best_gflops > 0
    curve = ms.result.curve()
    assert curve["wall_s"] == sorted(curve["wall_s"])


def test_cli_json_and_resume(tmp_path, capsys):
    log = tmp_path / "tune.jsonl"
    args = ["tune", "--op", "matmul", "--shape", "16,16,16", "--json", "--db", str(log), "--strategy", "random"]
    assert main([*args, "--trials", "3", "--baseline"]) == 0
    out = json.loads(capsys.readouterr().out)
    for field in ("best_time_s", "best_gflops", "trials", "tuning_wall_s", "mean_trial_s", "best_config"):
        assert field in out
    assert out["trials"] == 3 and out["best_time_s"] > 0 and out["naive_gflops"] > 0
    assert main([*args, "--trials", "5"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["resumed_trials"] == 3 and again["measured_trials"] == 2 and again["trials"] == 5


def _run_kernel(func, inputs):
    import tvm

    from mlc_lab.codegen.tvm.build import host_target

    ex = tvm.compile(tvm.IRModule({"main": func}), target=host_target())
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros((16, 32), "float32"), dev)
    ex["main"](*[tvm.runtime.tensor(a, dev) for a in inputs], out)
    return out.numpy()


def test_schedule_from_db_applies_the_best_record(tmp_path):
    task = matmul_task(16, 32, 8)
    db = TuningDatabase(tmp_path / "log.jsonl")
    result = tune(task, 4, strategy="random", db=db, progress=False)
    db.append(Record("some other kernel", {"x": 1}, 1e-9))  # other keys are ignored
    hook = schedule_from_db(db, fallback=None)
    assert hook.best[task.key].config == result.best_config
    inputs = task.random_inputs(seed=3)
    tuned, _ = lower(task.node, hook)
    naive, _ = lower(task.node, None)
    assert hook.applied == [task.node.name]
    assert "T.parallel" in tuned.script() or "T.vectorized" in tuned.script()
    np.testing.assert_allclose(_run_kernel(tuned, inputs), _run_kernel(naive, inputs), rtol=1e-5, atol=1e-5)


def test_tuned_build_of_small_cnn_gives_the_same_outputs(tmp_path):
    from mlc_lab import zoo
    from mlc_lab.codegen.tvm import build
    from mlc_lab.passes.fusion import OperatorFusionPass

    model = zoo.load("small_cnn")
    graph = OperatorFusionPass(["conv2d_bn_relu", "matmul_add"]).apply(model.graph())
    inputs = model.numpy_inputs()
    db = TuningDatabase(tmp_path / "cnn.jsonl")
    tasks = tasks_from_graph(graph)
    assert tasks
    for task in tasks:
        tune(task, 3, strategy="random", db=db, progress=False)
    hook = schedule_from_db(db)
    tuned = build(graph, schedule=hook)
    assert hook.applied
    reference = build(graph)
    for a, b in zip(tuned(*inputs), reference(*inputs)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fused_groups_are_tunable_with_the_epilogue_in_the_tile():
    import numpy as np

    from mlc_lab import zoo
    from mlc_lab.passes.fusion import OperatorFusionPass
    from mlc_lab.tuning.measure import MeasuredCost
    from mlc_lab.tuning.space import space_for

    graph = OperatorFusionPass(["conv2d_bn_relu", "matmul_add"]).apply(zoo.load("small_cnn").graph())
    tasks = tasks_from_graph(graph)
    assert {t.node.op for t in tasks} == {"fused"} and len(tasks) == 3
    rng = np.random.default_rng(0)
    for task in tasks:
        cost = MeasuredCost(task, repeat=1, min_repeat_ms=0)
        assert cost.info.epilogue is not None  # bn + relu (or the bias add) after the contraction
        space = space_for(cost.info)
        for cache_write in (True, False):
            config = space.sample(rng)
            config.update(order="ssrsrs", cache_write=cache_write)
            result = cost(config)
            assert result.ok, (task.name, config, result.error)
