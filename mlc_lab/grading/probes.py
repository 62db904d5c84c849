"""What the grader may ask the student's process: call a function, apply a pass, run a strategy.

Each probe runs inside the student's (untrusted) process on inputs the grader chose, and returns
plain data (see `mlc_lab.grading.wire`). Probes never judge: they report what the student's code
produced, and the official checks compare that with a reference in the grader's own process. A notebook that patches
a probe only changes what it reports about itself.

Arguments arrive JSON-decoded; graphs named `{"zoo": name, "fused": bool}` are loaded here from
the model zoo (too big to send), others travel on the wire.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any


def _arg(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"zoo", "fused"}:
        return zoo_graph(value["zoo"], value["fused"])
    return value


@functools.lru_cache(maxsize=16)
def zoo_graph(name: str, fused: bool = False) -> Any:
    """A zoo model's graph (cached: graphs are never edited in place, and importing one takes seconds)."""
    from mlc_lab import zoo
    from mlc_lab.passes.fusion import ElementwiseFusionPass

    graph = zoo.load(name).graph()
    return ElementwiseFusionPass().apply(graph) if fused else graph


def _need(ns: dict[str, Any], name: str) -> Any:
    if name not in ns:
        raise NameError(f"name {name!r} is not defined")
    return ns[name]


def lookup(ns: dict[str, Any], name: str) -> dict[str, Any]:
    """Whether `name` is defined, and where its object comes from (the integrity check reads it)."""
    if name not in ns:
        return {"defined": False}
    obj = ns[name]
    target = obj if isinstance(obj, type) or callable(obj) else type(obj)
    code = getattr(getattr(target, "__code__", None), "co_filename", None)
    return {
        "defined": True,
        "kind": "class" if isinstance(obj, type) else "function" if callable(obj) else type(obj).__name__,
        "module": str(getattr(target, "__module__", "") or ""),
        "file": str(code or ""),
    }


def call(ns: dict[str, Any], name: str, args: Any, kwargs: Any | None = None) -> Any:
    """`name(*args, **kwargs)` in the student's namespace; the result goes back as data."""
    fn = _need(ns, name)
    result = fn(*[_arg(a) for a in args], **{k: _arg(v) for k, v in (kwargs or {}).items()})
    if isinstance(result, Iterator):  # a generator of answers is as good as a list of them
        result = list(result)
    return result


def value(ns: dict[str, Any], name: str) -> Any:
    return _need(ns, name)


def apply_pass(ns: dict[str, Any], cls_name: str, graph: Any) -> Any:
    """The student's Pass applied to `graph`; also whether the input graph was left as it was."""
    cls = _need(ns, cls_name)
    graph = _arg(graph)
    before = str(graph)
    out = cls().apply(graph)
    return {"out": out, "input_unchanged": str(graph) == before}


def apply_rewrites(ns: dict[str, Any], cls_names: Any, graph: Any) -> Any:
    """The student's RewritePattern classes applied by the library's greedy driver to `graph`."""
    from mlc_lab.passes.rewrite import apply_patterns

    patterns = [_need(ns, name)() for name in _arg(cls_names)]
    graph = _arg(graph)
    before = str(graph)
    out = apply_patterns(graph, patterns)
    return {"out": out, "input_unchanged": str(graph) == before}


def new_op(ns: dict[str, Any], fn_name: str, op_name: str, x: Any) -> Any:
    """Call the student's function that registers `op_name`, then run `op(x) + x` on the interpreter
    and on TVM (default passes: fused). The registry is restored afterwards, whatever happened."""
    import mlc_lab
    from mlc_lab.ir import GraphBuilder, get_op
    from mlc_lab.ir.ops import OPS

    fn, x = _need(ns, fn_name), _arg(x)
    saved = OPS.pop(op_name, None)
    try:
        fn()
        if op_name not in OPS:
            return {"registered": False}
        opdef = get_op(op_name)
        b = GraphBuilder(f"{op_name}_plus_x")
        xin = b.input("x", x.shape, dtype=str(x.dtype))
        graph = b.build(b.add(getattr(b, op_name)(xin), xin))
        return {
            "registered": True,
            "kind": str(opdef.kind),
            "has_formula": opdef.scalar is not None or opdef.decompose is not None,
            "type": graph.outputs[0].inputs[0].type,
            "interpreter": mlc_lab.interpret(graph, x)[0],
            "tvm": mlc_lab.compile(graph, backend="tvm")(x),
        }
    finally:
        OPS.pop(op_name, None)
        if saved is not None:
            OPS[op_name] = saved


def match_chain(ns: dict[str, Any], fn_name: str, graph: Any, patterns: Any) -> Any:
    """For every pattern and node: the names of the nodes the student's matcher returns (or None)."""
    fn = _need(ns, fn_name)
    graph, patterns = _arg(graph), _arg(patterns)
    users, outputs = graph.users(), set(graph.outputs)
    table = []
    for pattern in patterns:
        row = []
        for node in graph.nodes:
            got = fn(pattern, node, users, outputs)
            row.append(None if got is None else [n.name for n in got])
        table.append(row)
    return table


def tune(ns: dict[str, Any], cls_name: str, problem: Any, seed: int, trials: int) -> Any:
    """Run the student's SearchStrategy on a systolic tiling space; the configs it tried, in order."""
    from mlc_lab.tuning.accelerator import SystolicCost, analytical_cycles, systolic_space
    from mlc_lab.tuning.tuner import tune_space

    cls = _need(ns, cls_name)
    m, n, k, rows, cols = _arg(problem)
    space = systolic_space(m, n, k, rows=rows, cols=cols)
    cost = SystolicCost(m, n, k, rows=rows, cols=cols, model=analytical_cycles)
    result = tune_space(space, cost, trials, key=f"grading-{seed}", strategy=cls(space, seed=seed), progress=False)
    return [dict(t.config) for t in result.trials]


def fold_sub_zero(ns: dict[str, Any], cls_name: str, graph: Any) -> Any:
    """The MLIR text of `graph` after the library's folding patterns plus the student's."""
    from mlc_lab.codegen.mlir import emit
    from mlc_lab.codegen.mlir.custom_pass import PATTERNS, fold_trivial_arith

    cls = _need(ns, cls_name)
    return fold_trivial_arith(emit(_arg(graph)), patterns=(*PATTERNS, cls)).text


def import_with_converter(ns: dict[str, Any], fn_name: str, op: str, model: Any) -> Any:
    """Import a Linear+ELU model with the student's converter registered for `op`; the graph."""
    import torch

    from mlc_lab.frontends import torch as frontend

    fn = _need(ns, fn_name)
    w, b, alpha, x = _arg(model)
    module = torch.nn.Sequential(torch.nn.Linear(w.shape[1], w.shape[0]), torch.nn.ELU(alpha)).eval()
    with torch.no_grad():
        module[0].weight.copy_(torch.from_numpy(w))
        module[0].bias.copy_(torch.from_numpy(b))
    aten = getattr(torch.ops.aten, op.split(".")[0]).default
    saved = frontend.ATEN_OPS.pop(aten, None)
    frontend.ATEN_OPS[aten] = fn
    try:
        return frontend.from_torch(module, (torch.from_numpy(x),))
    finally:
        frontend.ATEN_OPS.pop(aten, None)
        if saved is not None:
            frontend.ATEN_OPS[aten] = saved


def _mlp(weights: Any) -> Any:
    import torch

    layers = []
    for i, (w, b) in enumerate(weights):
        if i:
            layers.append(torch.nn.ReLU())
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
    return torch.nn.Sequential(*layers).eval()


def run_backend(ns: dict[str, Any], fn_name: str, weights: Any, x: Any) -> Any:
    """Register the student's build function as a backend, compile an MLP with it, run it on x."""
    import torch

    import mlc_lab

    fn = _need(ns, fn_name)
    module, x = _mlp(_arg(weights)), _arg(x)
    mlc_lab.api.register_backend("tvm-naive", fn)
    try:
        compiled = mlc_lab.compile(module, (torch.from_numpy(x),), backend="tvm-naive")
        out = compiled(torch.from_numpy(x)).detach().numpy()
        return {"out": out, "backend": str(compiled.backend)}
    finally:
        mlc_lab.api.BACKENDS.pop("tvm-naive", None)


def dynamo_count(ns: dict[str, Any], fn_name: str, captured_name: str, weights: Any, x: Any) -> Any:
    """torch.compile an MLP with the student's backend: what it recorded and what the model returned."""
    import torch

    fn, captured = _need(ns, fn_name), _need(ns, captured_name)
    module, x = _mlp(_arg(weights)), torch.from_numpy(_arg(x))
    fn(torch.fx.symbolic_trace(module), [x])  # a direct call first: its errors read better than Dynamo's
    captured.clear()
    torch._dynamo.reset()
    try:
        with torch.no_grad():
            out = torch.compile(module, backend=fn)(x)
    finally:
        torch._dynamo.reset()
    return {"captured": list(captured), "out": out.detach().numpy()}


def interleaved_order(ns: dict[str, Any], fn_name: str, names: Any, rounds: int) -> Any:
    """Call the student's timer on functions that log their calls: the call order and the result."""
    fn = _need(ns, fn_name)
    order: list[str] = []
    fns = {name: (lambda name=name: order.append(name)) for name in _arg(names)}
    result = fn(fns, rounds)
    return {"order": list(order), "result": dict(result)}


def gpu_schedule(ns: dict[str, Any], fn_name: str, shape: Any, a: Any, b: Any) -> Any:
    """The student's schedule on a fresh (m, n, k) matmul: its CUDA C, kernel facts, and its output on
    A @ B computed by the same TensorIR with thread loops run serially on the CPU (no GPU needed)."""
    import numpy as np
    import tvm
    from tvm import s_tir

    from mlc_lab.codegen.tvm.gpu import cpu_build, matmul_prim_func
    from mlc_lab.codegen.tvm.gpu.device_code import inspect_kernel

    fn = _need(ns, fn_name)
    m, n, k = (int(d) for d in shape)
    sch = s_tir.Schedule(matmul_prim_func(m, n, k))
    fn(sch)
    func = sch.mod["main"]
    try:
        source, facts = inspect_kernel(func)
    except Exception as exc:  # noqa: BLE001 - e.g. loops left unbound: reported, judged by the check
        return {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"}
    out = tvm.runtime.tensor(np.zeros((m, n), np.float32))
    cpu_build(func)(tvm.runtime.tensor(np.asarray(a, np.float32)), tvm.runtime.tensor(np.asarray(b, np.float32)), out)
    kernels = [
        {"name": f.name, "grid": list(f.grid), "block": list(f.block), "shared_bytes": f.shared_bytes} for f in facts
    ]
    return {"cuda": source, "kernels": kernels, "out": out.numpy()}


def compile_capstone(ns: dict[str, Any], fn_name: str, seed: int, ids: Any) -> Any:
    """The capstone: the seeded DistilBERT compiled for TVM with the student's pass list; the optimized
    graph's op counts, its output on `ids`, and eager vs compiled per-call seconds (interleaved medians,
    one thread, measured here on the grading machine)."""
    import torch

    import mlc_lab
    from mlc_lab.bench import interleaved_medians, pin_threads
    from mlc_lab.interop.distilbert import distilbert

    passes = list(_need(ns, fn_name)())
    pin_threads(1)
    model, x = distilbert(int(seed)), torch.from_numpy(_arg(ids))
    compiled = mlc_lab.compile(model, (x,), backend="tvm", passes=passes)
    with torch.no_grad():
        out = compiled(x).numpy()
        times = interleaved_medians({"eager": lambda: model(x), "compiled": lambda: compiled(x)}, rounds=9, calls=10)
    return {"ops": dict(compiled.optimized.op_counts()), "out": out, "seconds": times}


PROBES: dict[str, Callable[..., Any]] = {
    "lookup": lookup,
    "call": call,
    "value": value,
    "apply_pass": apply_pass,
    "match_chain": match_chain,
    "apply_rewrites": apply_rewrites,
    "new_op": new_op,
    "tune": tune,
    "fold_sub_zero": fold_sub_zero,
    "import_with_converter": import_with_converter,
    "run_backend": run_backend,
    "dynamo_count": dynamo_count,
    "interleaved_order": interleaved_order,
    "gpu_schedule": gpu_schedule,
    "compile_capstone": compile_capstone,
}
