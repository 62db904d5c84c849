"""Auto-tuning: schedule search spaces, search strategies, cost models, the tuning log, and the machine model.

    from mlc_lab.tuning import matmul_task, tune
    result = tune(matmul_task(512, 512, 512), trials=64, db="matmul.jsonl")   # resumable log
    build(graph, schedule=schedule_from_db("matmul.jsonl"))                  # compile with it

Modules, one job each: task (what is tuned, and its key), space (knobs as data + apply_config),
measure (build, check, time), strategies, cost_model, database (JSON lines, every record checked
when read), coordination (tuners sharing one log: file lock and claims), tuner (the loop), apply
(the log as a schedule hook, falling back per kernel), metaschedule (TVM's tuner on the same task),
stored (shipped logs), hardware (peak FLOP/s and bandwidth for the roofline), isa (what a CPU executes:
the ISA profile records transfer between), sources (the schedule each kernel gets by default: user cache,
shipped, transferred, default), cache (the per-machine tuning cache), budget (tuning a graph within a time
budget), driver (`tune_model`: a framework model's kernels, imported and optimised as compile does), rpc
and rpc_local (measuring on boards through TVM's RPC tracker), cli (`mlc-lab tune`, `mlc-lab tune-model`).
TVM is imported lazily: importing this package is cheap.
"""

from mlc_lab.tuning.apply import schedule_from_db, tasks_from_graph
from mlc_lab.tuning.budget import BadBudget, parse_budget, tune_graph
from mlc_lab.tuning.database import InvalidRecord, Record, TuningDatabase, TuningLogWarning
from mlc_lab.tuning.driver import tune_model
from mlc_lab.tuning.hardware import MachineModel, measure_bandwidth_gbs, measure_machine, measure_peak_gflops
from mlc_lab.tuning.measure import MeasuredCost, TrialResult, schedule_script, scheduled_func
from mlc_lab.tuning.sources import KernelSource, ScheduleSources, schedule_sources
from mlc_lab.tuning.space import SearchSpace, apply_config, space_for
from mlc_lab.tuning.task import Task, conv2d_task, dense_task, matmul_task, roofline_point
from mlc_lab.tuning.tuner import TuneResult, tune, tune_space

__all__ = [
    "BadBudget",
    "InvalidRecord",
    "KernelSource",
    "MachineModel",
    "MeasuredCost",
    "Record",
    "ScheduleSources",
    "SearchSpace",
    "Task",
    "TrialResult",
    "TuneResult",
    "TuningDatabase",
    "TuningLogWarning",
    "apply_config",
    "conv2d_task",
    "dense_task",
    "matmul_task",
    "measure_bandwidth_gbs",
    "measure_machine",
    "measure_peak_gflops",
    "parse_budget",
    "roofline_point",
    "schedule_from_db",
    "schedule_sources",
    "schedule_script",
    "scheduled_func",
    "space_for",
    "tasks_from_graph",
    "tune",
    "tune_graph",
    "tune_model",
    "tune_space",
]
