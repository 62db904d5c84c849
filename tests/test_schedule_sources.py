"""Schedule sources of `mlc_lab.compile(..., backend="tvm")`: user cache, shipped, transferred, default.

The transfer between CPU vendors is tested with a foreign-CPU log: the shipped zoo log's MLP records,
their targets rewritten to one CPU, while "this CPU" is replaced by another (the build itself still
runs on the real one). Every compiled model is compared with the interpreter.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tvm")

import mlc_lab  # noqa: E402
from mlc_lab import zoo  # noqa: E402
from mlc_lab.api import import_model, resolve_passes  # noqa: E402
from mlc_lab.codegen.tvm.schedule import default_schedule  # noqa: E402
from mlc_lab.ir.interpreter import interpret  # noqa: E402
from mlc_lab.passes import PassManager  # noqa: E402
from mlc_lab.tuning import isa, sources  # noqa: E402
from mlc_lab.tuning.database import TuningDatabase, TuningLogWarning  # noqa: E402
from mlc_lab.tuning.measure import MeasuredCost, TrialResult  # noqa: E402
from mlc_lab.tuning.stored import DATA_DIR  # noqa: E402

SHIPPED_CPU = "rocketlake"  # the CPU the shipped zoo log was tuned on


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MLC_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TVM_NUM_THREADS", "1")  # the shipped zoo records are for one thread


@pytest.fixture(scope="module")
def mlp():
    """The zoo MLP after the TVM pass preset (what compile builds) and its example input."""
    model = zoo.load("mlp")
    graph = import_model(model.module, model.example_inputs)
    graph = PassManager(resolve_passes("default", graph, "tvm")).apply(graph)
    return graph, model.numpy_inputs()


def mlp_log(path, cpu: str):
    """The shipped MLP records with their target rewritten to `cpu` (a log from another machine)."""
    lines = [line for line in (DATA_DIR / "zoo_1thread.jsonl").read_text().splitlines() if '"MLP_' in line]
    assert len(lines) == 3, "the shipped zoo log should hold the MLP's three kernels"
    path.write_text("".join(line.replace(f"-mcpu={SHIPPED_CPU}", f"-mcpu={cpu}") + "\n" for line in lines))
    return path


def pretend(monkeypatch, cpu: str, logs) -> None:
    """Play a machine whose CPU LLVM calls `cpu`, shipping `logs`."""
    monkeypatch.setattr(isa, "system_cpu", lambda: cpu)
    monkeypatch.setattr(sources, "shipped_logs", lambda: list(logs))


def compile_mlp(graph, **options):
    return mlc_lab.compile(graph, backend="tvm", passes="none", **options)


def assert_equals_interpreter(compiled, graph, inputs) -> None:
    expected = interpret(graph, *inputs)
    got = compiled.run_numpy(*inputs)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_profiles_come_from_llvm_features_not_names() -> None:
    assert isa.cpu_profile("rocketlake") == isa.cpu_profile("znver4") == isa.IsaProfile("x86_64", "x86-64-v4", 512)
    assert isa.cpu_profile("haswell") == isa.IsaProfile("x86_64", "x86-64-v3", 256)
    assert isa.cpu_profile("cortex-a72") == isa.IsaProfile("aarch64", "neon", 128)
    assert isa.similar("znver4", "rocketlake") and not isa.similar("znver4", "haswell")
    assert not isa.similar("znver4", "no-such-cpu")
    with pytest.raises(isa.UnknownCPU, match="no-such-cpu"):
        isa.cpu_profile("no-such-cpu")
    assert isa.profile_from_features("x86_64", {"avx", "avx2"}) == isa.IsaProfile("x86_64", "x86-64", 256)


@pytest.mark.parametrize("origin, this", [("rocketlake", "znver4"), ("znver4", "rocketlake")])
def test_records_of_the_other_vendor_transfer_revalidated(tmp_path, monkeypatch, mlp, origin, this) -> None:
    graph, inputs = mlp
    pretend(monkeypatch, this, [mlp_log(tmp_path / "foreign.jsonl", origin)])
    compiled = compile_mlp(graph, probe=False)
    found = compiled.schedule_sources
    assert len(found) == 3 and {s.kind for s in found.values()} == {"transferred"}, found
    for source in found.values():
        assert f"-mcpu={origin}" in source.origin and "validated" in source.detail
    assert "3 transferred" in repr(compiled)
    assert_equals_interpreter(compiled, graph, inputs)
    verdicts = TuningDatabase(tmp_path / "cache" / "checked.jsonl").records()
    assert len(verdicts) == 3 and all(v.ok and v.target == f"llvm -mcpu={this} -threads=1" for v in verdicts)

    # checked once per machine: the next compile reuses the verdicts
    monkeypatch.setattr(sources, "check_record", lambda *a: pytest.fail("re-validated a record checked before"))
    again = compile_mlp(graph, probe=False)
    assert {s.kind for s in again.schedule_sources.values()} == {"transferred"}


def test_a_record_failing_revalidation_falls_back_with_a_warning(tmp_path, monkeypatch, mlp) -> None:
    graph, inputs = mlp
    pretend(monkeypatch, "znver4", [mlp_log(tmp_path / "foreign.jsonl", SHIPPED_CPU)])
    real = sources.Task.reference
    monkeypatch.setattr(sources.Task, "reference", lambda self, xs: real(self, xs) + 1.0)  # as if miscompiled
    with pytest.warns(sources.ScheduleSourceWarning, match="invalid here: run: WrongResult"):
        compiled = compile_mlp(graph, probe=False)
    for source in compiled.schedule_sources.values():
        assert source.kind == "default" and "wrong result" in source.detail
    assert_equals_interpreter(compiled, graph, inputs)


@pytest.mark.parametrize("default_s, kind, where", [(1e-12, "default", "foreign"), (10.0, "transferred", "foreign"),
                                                   (1e-12, "default", "cache"), (10.0, "exact", "cache")])
def test_the_probe_keeps_whichever_is_faster(tmp_path, monkeypatch, mlp, default_s, kind, where) -> None:
    graph, inputs = mlp
    if where == "cache":  # records the user tuned here (a few seconds of tuning may lose to the default)
        (tmp_path / "cache").mkdir()
        mlp_log(tmp_path / "cache" / "tuning.jsonl", "znver4")
        pretend(monkeypatch, "znver4", [])
    else:
        pretend(monkeypatch, "znver4", [mlp_log(tmp_path / "foreign.jsonl", SHIPPED_CPU)])
    real = MeasuredCost.measure_hook

    def timed(self, hook, config=None):  # the default schedule's time is made up; the record's is measured
        return TrialResult({}, cost=default_s) if hook is default_schedule else real(self, hook, config)

    monkeypatch.setattr(MeasuredCost, "measure_hook", timed)
    compiled = compile_mlp(graph)  # probe=None: on for all but the shipped records of this very CPU
    for source in compiled.schedule_sources.values():
        assert source.kind == kind, source
        assert ("slower than the default" in source.detail) == (kind == "default")
    assert_equals_interpreter(compiled, graph, inputs)


def test_a_cpu_of_another_isa_level_gets_no_transfer(tmp_path, monkeypatch, mlp) -> None:
    graph, inputs = mlp
    pretend(monkeypatch, "znver4", [mlp_log(tmp_path / "avx2.jsonl", "haswell")])
    compiled = compile_mlp(graph)
    assert {s.kind for s in compiled.schedule_sources.values()} == {"default"}
    assert "3 default" in repr(compiled)
    assert_equals_interpreter(compiled, graph, inputs)


def test_the_user_cache_comes_before_shipped_and_transferred_records(tmp_path, monkeypatch, mlp) -> None:
    graph, inputs = mlp
    cache = tmp_path / "cache"
    cache.mkdir()
    mlp_log(cache / "tuning.jsonl", "znver4")
    torn = json.dumps({"key": "half a record"})[:10]  # a line torn by a kill: reported, the rest kept
    with open(cache / "tuning.jsonl", "a") as f:
        f.write(torn)
    pretend(monkeypatch, "znver4", [mlp_log(tmp_path / "foreign.jsonl", SHIPPED_CPU)])
    with pytest.warns(TuningLogWarning, match=r"tuning cache .*1 invalid record.*3 good records are used"):
        compiled = compile_mlp(graph, probe=False)
    for source in compiled.schedule_sources.values():
        assert source.kind == "exact" and source.origin.startswith("user cache"), source
    assert_equals_interpreter(compiled, graph, inputs)
