"""The shipped tuning logs load and plot without tuning; the roofline gets a point per kernel."""

import matplotlib

from mlc_lab.tuning import matmul_task, roofline_point
from mlc_lab.tuning.measure import TrialResult
from mlc_lab.tuning.stored import DATA_DIR, stored_benchmark, stored_logs, stored_run
from mlc_lab.tuning.tuner import TuneResult
from mlc_lab.viz.tuning import plot_tuning_curves

matplotlib.use("Agg")


def test_stored_logs_are_small_and_load():
    names = stored_logs()
    assert "matmul_512" in names and "matmul_512_metaschedule" in names
    assert sum(p.stat().st_size for p in DATA_DIR.glob("*.jsonl")) < 600_000  # 7 logs + a zoo log per x86 level
    for name in names:
        run = stored_run(name)
        curve = run.curve()
        assert run.trials and run.flops > 0
        assert curve["best_gflops"] == sorted(curve["best_gflops"])
        assert curve["wall_s"] == sorted(curve["wall_s"])
    bench = stored_benchmark()
    assert bench["matmul"]["numpy_s"] > 0 and bench["conv2d"]["tuned_over_torch"] > 0


def test_tuning_curves_plot():
    run = TuneResult("k", flops=2e9)
    for k, seconds in enumerate([0.1, 0.05, 0.2, 0.02]):
        run.trials.append(TrialResult({"k": k}, seconds))
        run.wall.append(0.5 * (k + 1))
    fig = plot_tuning_curves({"ours": run}, references={"numpy": 80.0})
    by_trial, by_time = fig.axes
    assert by_trial.get_xlabel() == "trials" and by_time.get_xlabel() == "wall time (s)"
    assert max(run.curve()["best_gflops"]) == 100.0


def test_roofline_point():
    task = matmul_task(64, 64, 64)
    label, intensity, gflops = roofline_point(task, 1e-4)
    assert label == task.name
    assert intensity == 2 * 64**3 / (3 * 64 * 64 * 4)
    assert abs(gflops - 2 * 64**3 / 1e-4 / 1e9) < 1e-9
