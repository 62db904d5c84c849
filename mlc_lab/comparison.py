"""Every backend against PyTorch on one model, measured side by side (chapter 9, benchmarks/compare_all.py).

Wall-clock contenders (median per-call time over interleaved rounds, `mlc_lab.bench`): PyTorch eager
(oneDNN/MKL kernels), torch.compile with inductor, a NumPy baseline (our interpreter: one NumPy/OpenBLAS
kernel per op), mlc_lab on TVM (default schedules, and tuned when a tuning log is given) and on
MLIR/IREE. Every mlc_lab call takes and returns torch tensors, so conversion costs are included.
The accelerator backends are simulators: their outputs are checked like everyone's, and their
*simulated* time (cycles / clock) is kept apart from wall time. Every output is compared with eager.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import matplotlib.figure

WALL = ["eager", "inductor", "numpy", "tvm", "tvm tuned", "mlir"]
SIMULATED = ["systolic", "cerebras", "dataflow"]


@dataclass
class Comparison:
    model: str
    seconds: dict[str, float] = field(default_factory=dict)  #: wall time per call
    simulated: dict[str, float] = field(default_factory=dict)  #: simulated seconds per run
    errors: dict[str, float] = field(default_factory=dict)  #: max |output - eager|
    notes: dict[str, str] = field(default_factory=dict)

    def ratio(self, name: str, to: str = "eager") -> float:
        return self.seconds[name] / self.seconds[to]


def contenders(model: Any, tuning_db: str | os.PathLike | None = None, inductor: bool = True) -> dict[str, Any]:
    """name -> a callable taking the zoo model's torch inputs; everything compiled before any timing."""
    import torch

    import mlc_lab

    fns: dict[str, Any] = {"eager": model.module}
    if inductor:
        torch._dynamo.reset()
        fns["inductor"] = torch.compile(model.module)
    fns["numpy"] = mlc_lab.compile(model.module, model.example_inputs, backend="interpreter")
    fns["tvm"] = mlc_lab.compile(model.module, model.example_inputs, backend="tvm")
    if tuning_db:
        fns["tvm tuned"] = mlc_lab.compile(model.module, model.example_inputs, backend="tvm", tuning_db=tuning_db)
    fns["mlir"] = mlc_lab.compile(model.module, model.example_inputs, backend="mlir")
    for name in SIMULATED:
        fns[name] = mlc_lab.compile(model.module, model.example_inputs, backend=name)
    return fns


def compare_model(
    name: str,
    tuning_db: str | os.PathLike | None = None,
    inductor: bool = True,
    rounds: int = 10,
    calls: int = 5,
) -> Comparison:
    import torch

    from mlc_lab import zoo
    from mlc_lab.bench import interleaved_medians

    model = zoo.load(name)
    fns = contenders(model, tuning_db, inductor)
    result = Comparison(name)
    reference = model.torch_outputs()[0]
    with torch.no_grad():
        for key, fn in fns.items():
            result.errors[key] = float(np.abs(fn(*model.example_inputs).numpy() - reference).max())
        timed = {k: (lambda fn=fn: fn(*model.example_inputs)) for k, fn in fns.items() if k not in SIMULATED}
        result.seconds = interleaved_medians(timed, rounds=rounds, calls=calls)
    result.simulated = {k: fns[k].report.time_s for k in SIMULATED}
    result.notes["tvm"] = schedule_coverage(fns["tvm"])
    if "tvm tuned" in fns:
        result.notes["tvm tuned"] = log_coverage(fns["tvm tuned"].optimized, tuning_db)
    return result


def schedule_coverage(compiled: Any) -> str:
    """Where a TVM build's kernels got their schedules (record sources, when the build reports them)
    and how many contractions the default schedule register-tiled."""
    counts = compiled.schedule_coverage() if hasattr(compiled, "schedule_coverage") else {}
    shown = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    return (f"schedule sources: {shown}; " if shown else "") + default_coverage(compiled.optimized)


def cpu_name() -> str:
    """The CPU's marketing name ("AMD EPYC", "Intel(R) Core(TM) i7-11700"), from /proc/cpuinfo where
    there is one (platform.processor() is empty on most Linux systems)."""
    import platform

    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> str:
    """This machine as the numbers depend on it: CPU name, LLVM's CPU (the tuning key), vector level, cores."""
    from mlc_lab.codegen.tvm.build import host_target
    from mlc_lab.codegen.tvm.schedule import host_isa

    mcpu = host_target().attrs.get("mcpu", "")
    return f"{cpu_name()} (LLVM -mcpu={mcpu}), vector level {host_isa()}, {os.cpu_count()} cores"


def log_origin(tuning_db: str | os.PathLike) -> str:
    """Whose machine a tuning log's numbers come from: its records' target(s) and the dates they were written."""
    import datetime

    from mlc_lab.tuning import TuningDatabase

    records = TuningDatabase(tuning_db).records()
    if not records:
        return f"{os.path.basename(str(tuning_db))}: no records"
    targets = sorted({r.target for r in records})
    days = sorted({datetime.datetime.fromtimestamp(r.time, datetime.UTC).date().isoformat() for r in records if r.time})
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}" if days else "an unknown date"
    return f"{', '.join(targets)} on {when}"


def default_coverage(graph: Any) -> str:
    """How many of the graph's contraction kernels the default schedule register-tiles (the template's
    default point for this CPU); the rest get its simpler vector strategies."""
    from mlc_lab.codegen.tvm.lower import lower_node
    from mlc_lab.codegen.tvm.schedule import host_isa, is_contraction, register_tiled_config

    nodes = [n for n in graph.nodes if is_contraction(n)]
    decisions: list[bool] = []
    for node in nodes:  # the kernel exactly as the schedule hook sees it; the probe changes nothing
        lower_node(node, schedule=lambda sch, _: decisions.append(register_tiled_config(sch, host_isa()) is not None))
    tiled = sum(decisions)
    return f"{tiled} of {len(nodes)} contraction kernels register-tiled by the default schedule ({host_isa().name})"


def log_coverage(graph: Any, tuning_db: str | os.PathLike) -> str:
    """How many of the graph's tunable kernels the log has a record for (a missing key means the
    default schedule: a log tuned for another CPU or thread count applies to nothing)."""
    from mlc_lab.tuning import TuningDatabase, tasks_from_graph

    logged = {r.key for r in TuningDatabase(tuning_db).records() if r.ok}
    tasks = tasks_from_graph(graph)
    hits = sum(t.key in logged for t in tasks)
    return f"{hits} of {len(tasks)} tunable kernels have a record in {os.path.basename(str(tuning_db))}"


def format_tables(results: list[Comparison]) -> str:
    cols = [c for c in WALL if any(c in r.seconds for r in results)]
    lines = ["Wall time per call, ms (median of interleaved rounds)"]
    lines.append(f"{'model':<18}" + "".join(f"{c:>11}" for c in cols))
    for r in results:
        lines.append(
            f"{r.model:<18}" + "".join(f"{r.seconds[c] * 1e3:>11.3f}" if c in r.seconds else f"{'-':>11}" for c in cols)
        )
    lines += ["", "Time relative to PyTorch eager (lower is faster)"]
    lines.append(f"{'model':<18}" + "".join(f"{c:>11}" for c in cols))
    for r in results:
        lines.append(
            f"{r.model:<18}" + "".join(f"{r.ratio(c):>11.2f}" if c in r.seconds else f"{'-':>11}" for c in cols)
        )
    lines += ["", "Simulated accelerators: simulated time per run, us (not wall time)"]
    lines.append(f"{'model':<18}" + "".join(f"{c:>11}" for c in SIMULATED))
    for r in results:
        lines.append(f"{r.model:<18}" + "".join(f"{r.simulated[c] * 1e6:>11.2f}" for c in SIMULATED))
    names = list(results[0].errors) if results else []
    lines += ["", "Max abs error vs PyTorch eager (target <= 1e-4)"]
    lines.append(f"{'model':<18}" + "".join(f"{c:>11}" for c in names))
    for r in results:
        lines.append(f"{r.model:<18}" + "".join(f"{r.errors[c]:>11.1e}" for c in names))
    for r in results:
        lines += [f"{r.model}: {k}: {v}" for k, v in r.notes.items()]
    return "\n".join(lines)


def plot_comparison(results: list[Comparison]) -> matplotlib.figure.Figure:
    """Time relative to eager, per model and contender (log scale; the dashed line is eager)."""
    import matplotlib.pyplot as plt

    cols = [c for c in WALL if c != "eager" and any(c in r.seconds for r in results)]
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(results), 4))
    width = 0.8 / max(len(cols), 1)
    for i, c in enumerate(cols):
        ratios = [r.ratio(c) if c in r.seconds else np.nan for r in results]
        ax.bar(np.arange(len(results)) + i * width, ratios, width, label=c)
    ax.axhline(1.0, color="black", lw=1, ls="--", label="eager = 1")
    ax.set_xticks(np.arange(len(results)) + width * (len(cols) - 1) / 2, [r.model for r in results])
    ax.set_yscale("log")
    ax.set_ylabel("time / PyTorch eager (log; lower is faster)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig
