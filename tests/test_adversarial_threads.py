"""One CompiledModel under fire: called from several threads at once, its outputs mutated by the caller.

Every backend must (1) give the interpreter's answer to every call while 4 threads call the same model,
and (2) return fresh arrays: an output never shares memory with an input, a weight, a buffer the runtime
reuses, or another output. Each thread overwrites what it got with NaN after checking it, so an output
that aliased anything shared would poison a later call: the checks catch aliasing and races alike.

The fuzz test runs the robustness suite's generated graphs (float32 graphs, conv nets, and typed cases:
int64/int32/bool/float64, 0-d and empty shapes) through threaded calls. Compiling dominates on TVM and
MLIR (~0.25-0.3 s per generated graph compiled on its own, ~0.04 s inside a batch of 40), so each
hypothesis example merges a batch of 35 generated graphs into one multi-output model: one compile, every
graph checked under concurrent calls on 3 input sets. A case is one generated graph on one input set:
CI checks 945 per NumPy backend (315 graphs) and 420 on TVM and MLIR (140 graphs); `--slow` 1,050 graphs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import robustness
import torch
from graph_strategies import pack_cases, random_conv_graphs, random_graphs, typed_cases, typed_values
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

import mlc_lab
from mlc_lab.ir import Graph, GraphBuilder, Node, interpret

#: Every backend, with the small simulated machines the robustness suite uses.
BACKENDS: dict[str, dict] = {
    "interpreter": {},
    "tvm": {},
    "mlir": {},
    "systolic": {"rows": 8, "cols": 8},
    "cerebras": {"cores": 10_000, "memory_per_core_kb": 48},
    "dataflow": {"rows": 4, "cols": 4},
}
THREADS = 4


def compile_for(graph_or_model, backend: str, example_inputs=None, passes="default") -> mlc_lab.CompiledModel:
    return mlc_lab.compile(graph_or_model, example_inputs, backend=backend, passes=passes, **BACKENDS[backend])


def random_inputs(graph: Graph, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [typed_values(rng, x.type.shape, x.type.dtype) for x in graph.inputs]


def mismatch(got: np.ndarray, want: np.ndarray) -> str | None:
    """Why `got` is not `want` (shape, dtype, values to 1e-4 relative to the output's scale), or None."""
    got = np.asarray(got)
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}"
    if want.dtype.kind != "f":
        return None if np.array_equal(got, want) else "values differ"
    finite = np.isfinite(want)
    if not np.array_equal(got[~finite], want[~finite], equal_nan=True):
        return "NaN/Inf positions differ"
    scale = max(1.0, float(np.abs(want[finite]).max(initial=0)))
    err = float(np.abs(got[finite].astype(np.float64) - want[finite]).max(initial=0))
    return None if err <= 1e-4 * scale else f"max abs error {err:.3g} (scale {scale:.3g})"


def hammer(
    run: Callable[..., Sequence[np.ndarray]],
    cases: list[tuple[list[np.ndarray], list[np.ndarray]]],
    calls: int,
    threads: int = THREADS,
    names: Sequence[str] = (),
) -> list[str]:
    """`threads` threads make `calls` calls each, cycling through `cases` (inputs, expected outputs).

    Returns what went wrong: a wrong output (named by `names` if given), an exception, or an input the
    calls changed. Each thread poisons (NaN / 0) every output after checking it.
    """
    inputs_before = [[x.copy() for x in inputs] for inputs, _ in cases]
    failures: list[str] = []
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for k in range(calls):
            index = (t * 7 + k) % len(cases)
            inputs, expected = cases[index]
            try:
                outputs = run(*inputs)
            except Exception as e:  # noqa: BLE001 - reported as a failure of the test
                failures.append(f"thread {t} call {k}: {type(e).__name__}: {e}")
                return
            if len(outputs) != len(expected):
                failures.append(f"thread {t} call {k}: {len(outputs)} outputs, want {len(expected)}")
                return
            for i, (got, want) in enumerate(zip(outputs, expected)):
                why = mismatch(got, want)
                if why:
                    name = f" (%{names[i]})" if names else ""
                    failures.append(f"thread {t} call {k} case {index} output {i}{name}: {why}")
                got[...] = np.nan if got.dtype.kind == "f" else 0

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for (inputs, _), before in zip(cases, inputs_before):
        for i, (x, x0) in enumerate(zip(inputs, before)):
            if not np.array_equal(x, x0, equal_nan=True):
                failures.append(f"input {i} was changed by the calls")
    return failures


# == several threads, one model, many calls ===========================================================
def small_mlp() -> Graph:
    rng = np.random.default_rng(0)
    b = GraphBuilder("small_mlp")
    x = b.input("x", (4, 16))
    w1, w2 = (b.constant(rng.standard_normal(shape).astype(np.float32)) for shape in [(32, 16), (8, 32)])
    h = b.relu(b.add(b.dense(x, w1), b.constant(np.ones(32, np.float32))))
    y = b.softmax(b.dense(h, w2), axis=-1)
    return b.build([y, b.reshape(x, shape=(64,)), b.sum(h, axes=(1,), keepdims=False)])


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_threads_get_the_interpreters_answer(backend):
    graph = small_mlp()
    model = compile_for(graph, backend)
    cases = [(x, interpret(graph, *x)) for x in (random_inputs(graph, seed) for seed in range(16))]
    failures = hammer(model.run_numpy, cases, calls=100)
    assert not failures, f"{backend}: {len(failures)} failures in {THREADS}x100 calls, first: {failures[:3]}"


def test_torch_calls_from_threads_match_torch():
    """The torch-tensor entry point (`model(x)`), with PyTorch itself as the reference."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8)).eval()
    xs = [torch.randn(4, 16) for _ in range(8)]
    with torch.no_grad():
        cases = [([x.numpy()], [module(x).numpy()]) for x in xs]
    model = mlc_lab.compile(module, (xs[0],), backend="tvm")
    run = lambda x: [model(torch.from_numpy(x)).numpy()]  # noqa: E731
    failures = hammer(run, cases, calls=100)
    assert not failures, failures[:3]


def test_simulated_report_is_per_thread():
    """`report` is the calling thread's last report: a thread that has not called yet sees None."""
    model = compile_for(small_mlp(), "systolic")
    x = random_inputs(model.graph, 0)
    model.run_numpy(*x)
    assert model.report is not None
    seen: list = []

    def fresh_thread() -> None:
        seen.append(model.report)
        model.run_numpy(*x)
        seen.append(model.report)

    worker = threading.Thread(target=fresh_thread)
    worker.start()
    worker.join()
    assert seen[0] is None and seen[1] is not None
    assert seen[1].cycles == model.report.cycles > 0


# == outputs are the caller's own =====================================================================
def _alias_graph(case: str) -> Graph:
    """A graph whose output a runtime is tempted to hand back as memory it holds on to."""
    b = GraphBuilder(case)
    x = b.input("x", (2, 3))
    weight = b.constant(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    relu = b.relu(x)
    outputs = {
        "identity": [x],
        "input_twice": [x, x],
        "reshape": [b.reshape(x, shape=(3, 2))],
        "full_slice": [b.slice(x, axes=(0,), starts=(0,), ends=(2,))],
        "broadcast_same_shape": [b.broadcast_to(x, shape=(2, 3))],
        "single_input_concat": [b.concat(x, axis=0)],
        "identity_transpose": [b.transpose(x, perm=(0, 1))],
        "constant": [weight, relu],
        "reshaped_constant": [b.reshape(weight, shape=(6,)), relu],
        "same_node_twice": [relu, relu],
        "two_views_of_one_value": [b.reshape(relu, shape=(3, 2)), relu],
    }[case]
    return b.build(outputs)


ALIAS_CASES = [
    "identity",
    "input_twice",
    "reshape",
    "full_slice",
    "broadcast_same_shape",
    "single_input_concat",
    "identity_transpose",
    "constant",
    "reshaped_constant",
    "same_node_twice",
    "two_views_of_one_value",
]


def assert_fresh(outputs: Sequence[np.ndarray], inputs: Sequence[np.ndarray], what: str) -> None:
    for i, out in enumerate(outputs):
        assert out.flags.writeable, f"{what}: output {i} is read-only"
        for x in inputs:
            assert not np.shares_memory(out, x), f"{what}: output {i} shares memory with an input"
        for j in range(i):
            assert not np.shares_memory(out, outputs[j]), f"{what}: outputs {j} and {i} share memory"


@pytest.mark.parametrize(
    "backend, case",
    [(b, c) for b in BACKENDS for c in ALIAS_CASES],
)
def test_outputs_alias_nothing(backend, case):
    graph = _alias_graph(case)
    model = compile_for(graph, backend, passes="none")  # the graph exactly as written
    x1, x2 = random_inputs(graph, 1), random_inputs(graph, 2)
    first = model.run_numpy(*x1)
    assert_fresh(first, x1, f"{backend}/{case}")
    kept = [o.copy() for o in first]
    for o in first:
        o += 1000  # the caller mutates what it got
    second = model.run_numpy(*x2)
    assert_fresh(second, x2, f"{backend}/{case}")
    for got, want in zip(first, kept):  # the next call did not overwrite the first one's results
        np.testing.assert_array_equal(got, want + 1000)
    for got, want in zip(model.run_numpy(*x1), interpret(graph, *x1)):  # and mutating them changed nothing
        np.testing.assert_array_equal(got, want)


class CloneAndReshape(torch.nn.Module):
    """`x.clone()` and `x.reshape` are the input itself in a value IR: the backend must not hand it back."""

    def forward(self, x):
        return x.clone(), x.reshape(12), torch.relu(x)


class FoldedConstant(torch.nn.Module):
    """`self.w * 2` folds to a constant output: mutating a result must not change the next call's."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(12, dtype=torch.float32).reshape(3, 4))

    def forward(self, x):
        return self.w * 2, x + 1


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_torch_clone_outputs_alias_nothing(backend):
    x = torch.randn(3, 4)
    x_before = x.clone()
    model = mlc_lab.compile(CloneAndReshape(), (x,), backend=backend, **BACKENDS[backend])
    outputs = model(x)
    assert_fresh([o.numpy() for o in outputs], [x.numpy()], backend)
    for o in outputs:
        o.zero_()  # in place, as a caller may
    torch.testing.assert_close(x, x_before)
    clone, flat, relu = model(x)
    torch.testing.assert_close(clone, x_before)
    torch.testing.assert_close(flat, x_before.reshape(12))
    torch.testing.assert_close(relu, torch.relu(x_before))


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_torch_folded_constant_output_is_fresh(backend):
    module = FoldedConstant().eval()
    x = torch.randn(3, 4)
    model = mlc_lab.compile(module, (x,), backend=backend, **BACKENDS[backend])
    assert [n.op for n in model.optimized.outputs][0] == "constant"  # folded: the case under test
    folded, _ = model(x)
    folded.add_(1)
    again, plus_one = model(x)
    torch.testing.assert_close(again, module.w.detach() * 2)
    torch.testing.assert_close(plus_one, x + 1)


# == the robustness suite's generated graphs, under threads ===========================================
def merge(graphs: Sequence[Graph]) -> Graph:
    """Several graphs side by side as one: their inputs and outputs in order, node names made unique."""
    nodes: list[Node] = []
    inputs: list[Node] = []
    outputs: list[Node] = []
    for k, graph in enumerate(graphs):
        new: dict[Node, Node] = {}
        for node in graph.nodes:
            new[node] = Node(node.op, [new[i] for i in node.inputs], node.attrs, node.type, f"g{k}_{node.name}")
            nodes.append(new[node])
        inputs += [new[x] for x in graph.inputs]
        outputs += [new[o] for o in graph.outputs]
    return Graph(nodes, inputs, outputs, "merged").verify()


GENERATED = st.one_of(random_graphs(max_ops=8), random_graphs(max_ops=8), random_conv_graphs(max_ops=4))
BATCH = 25  #: generated float32 graphs per compiled model
TYPED_BATCH = 10  #: and typed cases (int64/int32/bool/float64, 0-d and empty shapes), packed as one more graph
INPUTS = 3  #: input sets per generated graph, all in flight at once
#: Batches per backend (CI, --slow). A case is one generated graph on one input set, checked under threaded
#: calls: >= 300 per backend in CI. TVM and MLIR, where compiling dominates, check fewer distinct graphs.
FUZZ_BATCHES = {"tvm": (4, 30), "mlir": (4, 30)}
CALLS = 2 * INPUTS  #: per thread and batch: every input set in flight on several threads at once
FUZZ = settings(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each step recompiles a batch; failures name the output
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_generated_graphs_under_threads(backend):
    """Batches of generated graphs, each batch one model called by 4 threads x 6 calls on 3 input sets."""
    ci, slow = FUZZ_BATCHES.get(backend, (9, 30))

    @settings(FUZZ, max_examples=robustness.examples(ci, slow))
    @given(
        st.lists(GENERATED, min_size=BATCH, max_size=BATCH),
        st.lists(typed_cases(), min_size=TYPED_BATCH, max_size=TYPED_BATCH),
    )
    def check(generated, typed):
        batch = [getattr(g, "graph", g) for g in generated] + [pack_cases([case])[0] for case in typed]
        graph = merge(batch)
        note(str(graph))
        model = compile_for(graph, backend)
        cases = [(x, interpret(graph, *x)) for x in (random_inputs(graph, seed) for seed in range(INPUTS))]
        failures = hammer(model.run_numpy, cases, calls=CALLS, names=[o.name for o in graph.outputs])
        assert not failures, f"{backend}: {len(failures)} failures, first: {failures[:3]}"
        robustness.CASES[f"threaded {backend}: generated graphs"] += len(batch)
        robustness.CASES[f"threaded {backend}: graph x input cases"] += len(batch) * INPUTS
        checked.append(len(batch) * INPUTS)

    checked: list[int] = []
    check()
    assert sum(checked) >= 300, f"{backend}: only {sum(checked)} (graph, input) cases were checked"
