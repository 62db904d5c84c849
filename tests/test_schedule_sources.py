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

import tvm  # noqa: E402

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

    # "Within 10% of the vendor's own records": one machine cannot time the other vendor's chip, but it can
    # check that the transferred records give the very kernels this CPU's own (exact) records give, so
    # the model runs the same code as with a log tuned here; what remains is the hardware, and the probe.
    pretend(monkeypatch, this, [mlp_log(tmp_path / "own.jsonl", this)])
    own = compile_mlp(graph, probe=False)
    assert {s.kind for s in own.schedule_sources.values()} == {"exact"}
    transferred, exact = kernel_funcs(compiled), kernel_funcs(own)
    assert transferred.keys() == exact.keys()
    for name in exact:
        tvm.ir.assert_structural_equal(transferred[name], exact[name])


def kernel_funcs(compiled) -> dict:
    """Node name -> the PrimFunc the TVM build compiled for it."""
    return {node.name: kernel.func for node, kernel in compiled.runner.compiled.kernels.items()}


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


#: The shipped zoo log of each x86-64 feature level (`tools/tune_zoo.py --level ...`).
LEVEL_LOGS = {"x86-64-v3": DATA_DIR / "zoo_x86-64-v3.jsonl", "x86-64-v4": DATA_DIR / "zoo_x86-64-v4.jsonl"}


def zoo_signatures() -> set[str]:
    """Every tunable kernel mlc_lab.compile builds for the zoo (what the shipped logs must cover)."""
    from mlc_lab.tuning.apply import tasks_from_graph
    from mlc_lab.tuning.task import node_signature

    found = set()
    for name in zoo.names():
        model = zoo.load(name)
        graph = import_model(model.module, model.example_inputs)
        graph = PassManager(resolve_passes("default", graph, "tvm")).apply(graph)
        found |= {node_signature(t.node) for t in tasks_from_graph(graph)}
    return found


def test_the_shipped_logs_cover_the_zoo_for_each_x86_level() -> None:
    from mlc_lab.tuning.task import split_key

    wanted = zoo_signatures()
    for level, path in LEVEL_LOGS.items():
        records = TuningDatabase(path).records()
        assert records and all(r.ok for r in records), path
        targets = {split_key(r.key)[1:] for r in records}
        assert len(targets) == 1, targets  # one CPU, one thread count per log
        (mcpu, threads), = targets
        assert isa.cpu_profile(mcpu).level == level and threads == 1, (path, mcpu, threads)
        assert {split_key(r.key)[0] for r in records} == wanted, f"{path.name} does not cover the zoo's kernels"


@pytest.mark.parametrize("cpu, kind", [("haswell", "exact"), ("znver3", "transferred"), ("skylake", "transferred")])
def test_an_avx2_cpu_gets_the_avx2_records(tmp_path, monkeypatch, mlp, cpu, kind) -> None:
    """A CPU with the x86-64-v3 features (AVX2 + FMA, no AVX-512) takes its schedules from the v3 log:
    exact on the CPU it was tuned for, transferred (re-validated) on other v3 CPUs, of either vendor."""
    graph, inputs = mlp
    pretend(monkeypatch, cpu, sorted(DATA_DIR.glob("*.jsonl")))  # every shipped log, as installed
    compiled = compile_mlp(graph, probe=False)
    found = compiled.schedule_sources
    assert len(found) == 3 and {s.kind for s in found.values()} == {kind}, found
    assert all("zoo_x86-64-v3.jsonl" in s.origin and "-mcpu=haswell" in s.origin for s in found.values()), found
    assert_equals_interpreter(compiled, graph, inputs)


def test_a_probe_verdict_against_an_older_default_is_probed_again(tmp_path, monkeypatch, mlp) -> None:
    """A verdict "the record beats the default" measured before the default got faster is stale: re-probed."""
    graph, _ = mlp
    pretend(monkeypatch, "znver4", [mlp_log(tmp_path / "foreign.jsonl", SHIPPED_CPU)])
    calls = []

    def beats_the_default(node, record, *args):  # a probe verdict without timing anything
        calls.append(node.name)
        return sources.Record(record.key, record.config, 1e-9)

    monkeypatch.setattr(sources, "check_record", beats_the_default)
    compile_mlp(graph, probe=True)
    checked = tmp_path / "cache" / "checked.jsonl"
    assert len(calls) == 3 and checked.read_text().count(sources.PROBED) == 3
    compile_mlp(graph, probe=True)  # the same revision: verdicts reused
    assert len(calls) == 3
    checked.write_text(checked.read_text().replace(sources.PROBED, "probed"))  # as an older version wrote them
    again = compile_mlp(graph, probe=True)
    assert len(calls) == 6 and {s.kind for s in again.schedule_sources.values()} == {"transferred"}
