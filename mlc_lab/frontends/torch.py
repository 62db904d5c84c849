"""Import PyTorch models: `torch.export` traces the model, then one small converter per aten op.

How it works:

1. `torch.export.export(model.eval(), inputs)` runs the model on symbolic tensors and records an FX
   graph of high-level aten ops (aten.conv2d, aten.linear, aten.batch_norm, ...). Parameters and
   buffers are "lifted": they become extra graph inputs, listed in `ep.graph_signature`.
2. We walk that FX graph in order. The user's arguments become graph inputs; parameters, buffers and
   lifted constants become `constant` nodes named after their module path (`layer1.0.conv1.weight`).
3. Each aten call goes through `ATEN_OPS[op]`: a short function that emits one or a few mlc_lab ops.
   Converters receive the op's arguments by the names of its schema (`self`/`input` renamed `x`),
   with defaults filled in, so `aten.conv2d(x, w)` and `aten.conv2d(x, w, b, [2, 2])` look the same.
4. Every converted value is checked against the shape and dtype PyTorch recorded for it
   (`node.meta["val"]`), so a converter bug is caught at the op that has it, not as a wrong number
   three chapters later.

Layers the IR has no single op for (1-d/3-d convolution and pooling, transposed convolution, group and
instance norm, flip, roll, interpolate) are composed of IR ops in `mlc_lab.frontends.composites`, the
same compositions the ONNX frontend uses.
"""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind

from mlc_lab._deps import require_triton_loadable
from mlc_lab.frontends.base import (
    Converter,
    ConverterContext,
    Value,
    check_supported,
    check_types,
    converting,
    same,
)
from mlc_lab.frontends.composites import conv_nd, conv_transpose_nd, flip, group_norm, pool_nd, resize_axes, roll
from mlc_lab.frontends.errors import FrontendError, UnsupportedOpError
from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.structure import OutputStructure
from mlc_lab.ir.types import TensorType, canonical_dtype

aten = torch.ops.aten

__all__ = [
    "ATEN_OPS",
    "Context",
    "FrontendError",
    "UnsupportedOpError",
    "from_torch",
    "import_exported",
    "supported_ops",
]


# == the importer =================================================================================
def from_torch(
    model: torch.nn.Module | ExportedProgram,
    example_inputs: tuple[torch.Tensor, ...] | torch.Tensor,
    name: str | None = None,
) -> Graph:
    """Trace `model` in eval mode on `example_inputs` and convert it into a verified Graph.

    Shapes are static: the graph is specialised to the example inputs' shapes and dtypes. The model's
    train/eval flags are restored afterwards. An ExportedProgram is imported as exported (its shapes).
    """
    if isinstance(model, ExportedProgram):  # already exported: its own shapes (a dynamic one is refused there)
        return import_exported(model, name or "exported")
    args = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    for i, a in enumerate(args):
        if not isinstance(a, torch.Tensor):
            raise FrontendError(f"example input {i} is a {type(a).__name__}; from_torch takes tensors only")
    require_triton_loadable(f"from_torch({type(model).__name__})")
    modes = {m: m.training for m in model.modules()}
    try:
        ep = torch.export.export(model.eval(), args)
    except Exception as e:
        hint = f" ({fix})" if (fix := _export_hint(str(e))) else ""
        what = f"{type(model).__name__}: {type(e).__name__}: {e}{hint}"
        raise FrontendError(f"torch.export could not trace {what}") from e
    finally:
        for m, training in modes.items():
            m.training = training
    return import_exported(ep, name or type(model).__name__)


def _export_hint(message: str) -> str | None:
    """How to fix the export failures real models run into most."""
    if "Cache" in message and "not a known type" in message:  # transformers' KV cache object among the outputs
        return "a transformers model returns its KV cache: build it with use_cache=False in its config"
    return None


@dataclass
class _Weight:
    """A value known at import time: a parameter, buffer or lifted constant, or a folded op's result
    (see `static_nodes`). Its constant node is made on first use, next to its user."""

    name: str
    tensor: torch.Tensor
    parameter: bool = False
    node: Node | None = None

    @property
    def array(self) -> np.ndarray:
        _dtype(self.tensor.dtype)  # a dtype the IR lacks (bfloat16, complex) is named here
        return self.tensor.detach().cpu().contiguous().numpy().copy()


def import_exported(ep: ExportedProgram, name: str = "main") -> Graph:
    """Convert an ExportedProgram (the result of torch.export.export) into a verified Graph.

    In-place ops are functionalised first (see `functionalize`); the graph records how the model
    arranged its results (`Graph.output_structure`) and which outputs are new values of inputs the
    model mutated (`Graph.input_mutations`).
    """
    _check_static_inputs(ep, name)
    ep = functionalize(ep)
    weights = _weights(ep)
    static = static_nodes(ep.graph, weights)
    _check_supported(list(_nodes_and_regions(ep.graph_module, static)), name, static)
    cx = Context(GraphBuilder(name))
    env: dict[fx.Node, Any] = {}
    outputs: list[Node] = []
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            if node.name in weights:
                env[node] = weights[node.name]
            else:
                t = _meta_type(node)
                env[node] = cx.b.input(node.name, t.shape, t.dtype)
        elif node.op in ("call_function", "get_attr"):
            env[node] = _walk_node(cx, ep.graph_module, node, env, static)
        elif node.op == "output":
            outputs, mutations = _user_outputs(cx, ep, node, env)
    cx.b.nodes = _live_nodes(cx.b.nodes, outputs, cx.b.inputs)
    graph = cx.b.build(outputs)
    graph.input_mutations = mutations
    graph.output_structure = output_structure(ep.call_spec.out_spec)
    return graph


def mutates(graph: fx.Graph) -> bool:
    """Whether any op writes to one of its arguments (`relu_`, `add_`, `copy_`, an `out=` variant...)."""
    return any(
        isinstance(n.target, torch._ops.OpOverload) and n.target._schema.is_mutable
        for n in graph.nodes
        if n.op == "call_function"
    )


def functionalize(ep: ExportedProgram) -> ExportedProgram:
    """The program without in-place ops, when it has any: `run_decompositions({})` functionalises it.

    `torch.export` keeps in-place ops as written (`aten.relu_`, `aten.add_`, `dropout_`). With an empty
    decomposition table, `run_decompositions` only functionalises: `relu_` becomes `relu`, a write
    through a view becomes a `slice_scatter`/`select_scatter` of the new values into the base, and a
    mutated input becomes an extra output marked USER_INPUT_MUTATION. Models without in-place ops are
    left exactly as exported (the re-trace would only rename ops such as batch_norm).
    """
    if not mutates(ep.graph):
        return ep
    _check_no_weight_writes(ep)
    try:
        return ep.run_decompositions({})
    except Exception as e:
        raise FrontendError(f"could not functionalise the model's in-place ops: {type(e).__name__}: {e}") from e


def _check_no_weight_writes(ep: ExportedProgram) -> None:
    """Refuse an in-place write to a parameter or buffer (model state, e.g. a running counter) here,
    where the error can still name the op and the line that writes."""
    kinds = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
    weights = {s.arg.name: s.target for s in ep.graph_signature.input_specs if s.kind in kinds}
    for node in ep.graph.nodes:
        if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
            continue
        for arg, value in zip(node.target._schema.arguments, node.args):
            written = arg.alias_info is not None and arg.alias_info.is_write
            if written and isinstance(value, fx.Node) and value.name in weights:
                raise FrontendError(
                    f"{_describe(node)} writes to {weights[value.name]} in place; the compiler supports pure "
                    "inference functions only (model state such as a running counter cannot be compiled)"
                )


def output_structure(spec: Any) -> OutputStructure | None:
    """torch's pytree spec of the model's results as an OutputStructure (None for a single tensor)."""
    if spec is None or spec.is_leaf():
        return None
    return _structure(spec)


def _structure(spec: Any) -> OutputStructure:
    if spec.is_leaf():
        return OutputStructure()
    children = tuple(_structure(spec.child(i)) for i in range(spec.num_children))
    if spec.type in (tuple, list):
        return OutputStructure(spec.type.__name__, children)
    if spec.type is dict:
        return OutputStructure("dict", children, keys=tuple(spec.context))
    if isinstance(spec.type, type) and issubclass(spec.type, dict):  # e.g. transformers' ModelOutput
        return OutputStructure("dict", children, keys=tuple(spec.context), dict_type=spec.type)
    if isinstance(spec.context, type) and issubclass(spec.context, tuple) and hasattr(spec.context, "_fields"):
        return OutputStructure("namedtuple", children, namedtuple_type=spec.context)
    raise FrontendError(
        f"forward returns a {getattr(spec.type, '__name__', spec.type)}; outputs must be tensors or tuples, "
        "lists, dicts or namedtuples of tensors"
    )


def _weights(ep: ExportedProgram) -> dict[str, _Weight]:
    """Placeholder name -> weight, for the placeholders that stand for parameters, buffers and constants."""
    kinds = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
    weights = {}
    for spec in ep.graph_signature.input_specs:
        if spec.kind in kinds:
            tensor = ep.state_dict[spec.target] if spec.target in ep.state_dict else ep.constants[spec.target]
            weights[spec.arg.name] = _Weight(spec.target, tensor, parameter=spec.kind == InputKind.PARAMETER)
        elif spec.kind != InputKind.USER_INPUT:
            raise FrontendError(f"unsupported exported input {spec.arg.name} of kind {spec.kind.name}")
    return weights


# -- regions that torch.export wraps in higher-order ops -----------------------------------------
#: Higher-order ops that only switch a mode for a region (`with torch.no_grad():` inside forward, which
#: HF code uses): for inference their region's ops are inlined as if unwrapped.
INLINED_REGIONS: frozenset[Any] = frozenset({torch.ops.higher_order.wrap_with_set_grad_enabled})


def _walk_node(cx: Context, owner: fx.GraphModule, node: fx.Node, env: dict[fx.Node, Any], static: set) -> Any:
    """The value of one FX node: a region's sub-module, an inlined region's results, a folded or converted op."""
    if node.op == "get_attr":
        return _attribute(owner, node.target)
    if node.target in INLINED_REGIONS:
        return _inline_region(cx, node, env, static)
    return _fold_node(node, env) if node in static else _convert_node(cx, node, env)


def _attribute(owner: fx.GraphModule, target: str) -> Any:
    value = owner
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _inline_region(cx: Context, node: fx.Node, env: dict[fx.Node, Any], static: set) -> list[Any]:
    """`wrap_with_set_grad_enabled(enabled, region, *operands)`: walk the region's graph on the operands."""
    _, region, *operands = node.args
    module = env[region]
    placeholders = [n for n in module.graph.nodes if n.op == "placeholder"]
    inner: dict[fx.Node, Any] = {p: env[a] if isinstance(a, fx.Node) else a for p, a in zip(placeholders, operands)}
    for n in module.graph.nodes:
        if n.op in ("call_function", "get_attr"):
            inner[n] = _walk_node(cx, module, n, inner, static)
        elif n.op == "output":
            return [inner[v] if isinstance(v, fx.Node) else v for v in n.args[0]]
    raise FrontendError(f"{_describe(node)}: its region has no output")


def _nodes_and_regions(owner: fx.GraphModule, static: set) -> Iterator[fx.Node]:
    """Every FX node, those inside inlined regions included; marks the regions' static nodes in `static`."""
    for node in owner.graph.nodes:
        yield node
        if node.op == "call_function" and node.target in INLINED_REGIONS:
            _, region, *operands = node.args
            module = _attribute(owner, region.target)
            placeholders = [n for n in module.graph.nodes if n.op == "placeholder"]
            given = {p for p, a in zip(placeholders, operands) if not isinstance(a, fx.Node) or a in static}
            static |= static_nodes(module.graph, {}, given)
            yield from _nodes_and_regions(module, static)


# -- constant folding: what import time already knows ------------------------------------------
def static_nodes(graph: fx.Graph, weights: dict[str, _Weight], given: set[fx.Node] = frozenset()) -> set[fx.Node]:
    """The FX nodes whose values do not depend on the user's inputs: weights, and deterministic ops whose
    tensor inputs are all static (arange, ones, new_zeros, a causal mask built from them, rotary tables
    from a buffer). They are evaluated with PyTorch at import time and enter the graph as constants, so
    such ops need no IR op. One exception keeps weights recognisable: an op the table converts, applied
    to parameters only (`aten.t(weight)`), is converted as usual (the Fold pass folds it later)."""
    static: set[fx.Node] = set(given)
    for node in graph.nodes:
        if node.op == "placeholder" and node.name in weights:
            static.add(node)
        elif node.op == "call_function" and node.target in VALUE_FREE:
            static.add(node)
        elif node.op == "call_function" and all(a in static for a in node.all_input_nodes):
            if node.target is operator.getitem or _foldable(node, weights):
                static.add(node)
    return static


#: Ops whose result depends on their tensor inputs' shapes and dtypes only, never on their values:
#: they fold even when those inputs are the user's (`ids.new_ones(...)`, `torch.zeros_like(x)`).
VALUE_FREE: frozenset[Any] = frozenset(
    {
        aten.new_ones.default,
        aten.new_zeros.default,
        aten.new_full.default,
        aten.new_empty.default,
        aten.ones_like.default,
        aten.zeros_like.default,
        aten.full_like.default,
        aten.empty_like.default,
        aten.sym_size.int,
    }
)


def _foldable(node: fx.Node, weights: dict[str, _Weight]) -> bool:
    op = node.target
    if not isinstance(op, torch._ops.OpOverload) or op._schema.is_mutable:
        return False
    if torch.Tag.nondeterministic_seeded in op.tags:  # rand, dropout: a new value every call
        return False
    inputs = node.all_input_nodes
    only_parameters = bool(inputs) and all(a.name in weights and weights[a.name].parameter for a in inputs)
    return not (op in ATEN_OPS and only_parameters)


def _fold_node(node: fx.Node, env: dict[fx.Node, Any]) -> Any:
    """Evaluate a static node with PyTorch now (see `static_nodes`)."""
    args, kwargs = _static_args(node.args, env), _static_args(node.kwargs, env)
    try:
        value = node.target(*args, **kwargs)
    except Exception as e:
        raise FrontendError(f"{_describe(node)}: could not evaluate it at import time: {type(e).__name__}: {e}") from e
    return _as_static(node.name, value)


def _static_args(value: Any, env: dict[fx.Node, Any]) -> Any:
    """Static values as tensors; a user's value (only a VALUE_FREE op gets one) as zeros of its type."""
    if isinstance(value, fx.Node):
        if isinstance(env[value], Node):
            meta = value.meta["val"]
            return torch.zeros(meta.shape, dtype=meta.dtype)
        value = env[value]
    if isinstance(value, _Weight):
        return value.tensor
    if isinstance(value, (list, tuple)):
        return type(value)(_static_args(v, env) for v in value)
    if isinstance(value, dict):
        return {k: _static_args(v, env) for k, v in value.items()}
    return value


def _as_static(name: str, value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _Weight(name, value.detach())
    if isinstance(value, (list, tuple)):
        return [_as_static(f"{name}.{i}", v) for i, v in enumerate(value)]
    return value


def _convert_node(cx: Context, node: fx.Node, env: dict[fx.Node, Any]) -> Value:
    """Run the converter for one FX node, name its result after the node, and check its type."""
    if node.target is operator.getitem:  # picks one result of a multi-output op (split, chunk, ...)
        values, index = node.args
        return env[values][index]
    kwargs = _bind(node.target, _map_args(cx, node.args, env), _map_args(cx, node.kwargs, env))
    cx.fx_node, cx.label = node, node.name
    first_new = len(cx.b.nodes)
    with converting(_describe(node)):  # say which aten op and which line of the model it came from
        result = ATEN_OPS[node.target](cx, **kwargs)
    _name_result(cx, node, result, set(cx.b.nodes[first_new:]))
    _check_type(node, result)
    return result


def _map_args(cx: Context, value: Any, env: dict[fx.Node, Any]) -> Any:
    """FX nodes -> the values they were converted to; weights become constant nodes here, on first use."""
    if isinstance(value, fx.Node):
        value = env[value]
    if isinstance(value, _Weight):
        if value.node is None:
            value.node = cx.b.constant(value.array, name=value.name)
        return value.node
    if isinstance(value, (list, tuple)):
        return type(value)(_map_args(cx, v, env) for v in value)
    if isinstance(value, dict):
        return {k: _map_args(cx, v, env) for k, v in value.items()}
    return value


_RENAME = {"self": "x", "input": "x"}  # aten calls the main operand `self` or `input`; converters call it x


def _bind(op: torch._ops.OpOverload, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Name every argument as the op's schema names it, filling in defaults."""
    bound = {}
    for i, arg in enumerate(op._schema.arguments):
        if i < len(args) and not arg.kwarg_only:
            value = args[i]
        elif arg.name in kwargs:
            value = kwargs[arg.name]
        else:
            value = arg.default_value if arg.has_default_value() else None
        bound[_RENAME.get(arg.name, arg.name)] = value
    return bound


def _name_result(cx: Context, node: fx.Node, result: Value, new: set[Node]) -> None:
    """The node that holds the result takes the FX node's name; helpers keep `<fx name>.<op>`."""
    results = result if isinstance(result, list) else [result]
    for i, r in enumerate(results):
        if r in new:
            r.name = cx.b.unique_name(node.name if not isinstance(result, list) else f"{node.name}.{i}")


def _check_type(node: fx.Node, result: Value) -> None:
    """Guard against converter bugs: the result must have the shape and dtype PyTorch computed."""
    val = node.meta.get("val")
    if val is None and result is None:
        return
    vals = list(val) if isinstance(val, (list, tuple)) else [val]
    results = result if isinstance(result, list) else [result]
    got = [r.type if isinstance(r, Node) else r for r in results]
    check_types(_describe(node), got, [_tensor_type(v) for v in vals], "PyTorch computed")


def _user_outputs(
    cx: Context, ep: ExportedProgram, node: fx.Node, env: dict[fx.Node, Any]
) -> tuple[list[Node], dict[int, int]]:
    """The graph outputs, and {output index: input index} for those that are mutated user inputs."""
    user_inputs = [s.arg.name for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    outputs, mutations = [], {}
    for spec, value in zip(ep.graph_signature.output_specs, node.args[0]):
        if spec.kind == OutputKind.USER_INPUT_MUTATION:
            mutations[len(outputs)] = user_inputs.index(_input_name(ep, spec.target))
        elif spec.kind != OutputKind.USER_OUTPUT:
            raise FrontendError(
                f"the model writes to {spec.target or spec.arg.name} ({spec.kind.name}); the compiler supports "
                "pure inference functions only (BatchNorm in training mode or an in-place update to a buffer?)"
            )
        value = _map_args(cx, value, env)
        if not isinstance(value, Node):
            raise FrontendError(f"forward returns {value!r}; outputs must be tensors")
        outputs.append(value)
    return outputs, mutations


def _input_name(ep: ExportedProgram, target: str) -> str:
    """The placeholder of the user input a USER_INPUT_MUTATION names (by its target)."""
    for s in ep.graph_signature.input_specs:
        if s.kind == InputKind.USER_INPUT and target in (s.target, s.arg.name):
            return s.arg.name
    raise FrontendError(f"the model mutates input {target!r}, which is not one of its inputs")


def _live_nodes(nodes: list[Node], outputs: list[Node], inputs: list[Node]) -> list[Node]:
    """Drop what no output needs (unused pieces of a split, unused buffers); keep every graph input."""
    live, stack = set(outputs) | set(inputs), list(outputs)
    while stack:
        for x in stack.pop().inputs:
            if x not in live:
                live.add(x)
                stack.append(x)
    return [n for n in nodes if n in live]


def _check_static_inputs(ep: ExportedProgram, name: str) -> None:
    """The IR has static shapes: an input exported with a `torch.export.Dim` is refused, naming the dimension.

    Checked first, because a dynamic dimension brings ops such as `aten.sym_size.int` that would
    otherwise be reported as unsupported.
    """
    user_inputs = set(ep.graph_signature.user_inputs)
    for node in ep.graph.nodes:
        val = node.meta.get("val") if node.op == "placeholder" and node.name in user_inputs else None
        dims = list(val.shape) if isinstance(val, torch.Tensor) else []
        for axis, d in enumerate(dims):
            if not isinstance(d, int):
                bounds = ep.range_constraints.get(d.node.expr)
                span = f", range {bounds.lower}..{bounds.upper}" if bounds is not None else ""
                raise FrontendError(
                    f"{name}: input {node.name!r} has a dynamic dimension {d} at axis {axis} "
                    f"(shape [{', '.join(map(str, dims))}]{span}); mlc_lab compiles static shapes: export without "
                    "dynamic_shapes= (or with static ones), or pass the module and example inputs of the shape "
                    "to compile for to mlc_lab.compile"
                )


# -- types and error messages ---------------------------------------------------------------------
def _dtype(dtype: torch.dtype) -> str:
    try:
        return canonical_dtype(dtype)
    except TypeError as e:
        raise FrontendError(str(e)) from None


def _tensor_type(val: Any) -> TensorType | Any:
    if not isinstance(val, torch.Tensor):
        return val
    return TensorType(tuple(int(d) for d in val.shape), _dtype(val.dtype))


def _meta_type(node: fx.Node) -> TensorType:
    return _tensor_type(node.meta["val"])


def _op_name(target: Any) -> str:
    return str(target) if isinstance(target, torch._ops.OpOverload) else getattr(target, "__name__", str(target))


def _describe(node: fx.Node) -> str:
    """`aten.conv2d.default (fx node %conv2d_3, at model.py:12 in forward: y = self.conv(x))`."""
    where = _user_frame(node.meta.get("stack_trace"))
    return f"{_op_name(node.target)} (fx node %{node.name}" + (f", at {where})" if where else ")")


def _site(node: fx.Node) -> str:
    """`%conv2d_3 at model.py:12 in forward: y = self.conv(x)`."""
    where = _user_frame(node.meta.get("stack_trace"))
    return f"%{node.name}" + (f" at {where}" if where else "")


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')


def _user_frame(stack_trace: str | None) -> str | None:
    """The innermost frame of the user's code (not PyTorch's own) in an FX node's recorded stack."""
    if not stack_trace:
        return None
    lines = stack_trace.splitlines()
    torch_dir = os.path.dirname(torch.__file__)
    frames = []
    for i, line in enumerate(lines):
        m = _FRAME.search(line)
        if m and not m["file"].startswith(torch_dir):
            code = lines[i + 1].strip() if i + 1 < len(lines) and not _FRAME.search(lines[i + 1]) else ""
            frames.append(f"{m['file']}:{m['line']} in {m['func']}" + (f": {code}" if code else ""))
    return frames[-1] if frames else None


def supported_ops() -> list[str]:
    """The aten ops the importer converts, e.g. `aten.conv2d.default`."""
    return sorted(_op_name(op) for op in ATEN_OPS)


def _check_supported(nodes: Sequence[fx.Node], name: str, static: set[fx.Node] = frozenset()) -> None:
    """Fail before converting anything if ops have no converter, naming each op and where it is used
    (ops that are folded at import time, `static`, and inlined region wrappers need none)."""

    def problem(node: fx.Node) -> tuple[str, str] | None:
        if node.op in ("placeholder", "output", "get_attr") or node.target is operator.getitem:
            return None
        if node.target in ATEN_OPS or node.target in INLINED_REGIONS or node in static:
            return None
        return _op_name(node.target), "no converter"

    check_supported(
        nodes,
        problem,
        _site,
        subject=f"PyTorch model {name!r}",
        frontend="torch",
        framework="aten",
        table="ATEN_OPS",
        supported=supported_ops(),
        advice="rewrite the model without these ops",
    )


# == what a converter sees ========================================================================
class Context(ConverterContext):
    """The converter context (mlc_lab.frontends.base) plus the FX node being converted: its type is the target.

    New IR nodes are named `<fx node>.<op>`, constants `<fx node>.<name>`.
    """

    def __init__(self, builder: GraphBuilder) -> None:
        super().__init__(builder)
        self.fx_node: fx.Node | None = None

    @property
    def out_dtype(self) -> str:
        """The dtype PyTorch computed for the current node (type promotion already applied)."""
        val = self.fx_node.meta["val"]
        return _dtype((val[0] if isinstance(val, (list, tuple)) else val).dtype)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    """aten writes `2` or `[2]` for `[2, 2]`."""
    v = [value] if isinstance(value, int) else list(value)
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _add_bias(cx: Context, y: Node, bias: Node | None, axis: int) -> Node:
    return y if bias is None else cx.op("bias_add", y, bias, axis=axis)


# == converters: neural-network layers ============================================================
def _ntuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    """aten writes `2` or `[2]` for `[2, 2]` (or `[2, 2, 2]`)."""
    v = [value] if isinstance(value, int) else list(value)
    return tuple(v * n) if len(v) == 1 else tuple(v)


def _symmetric(padding: int | Sequence[int], n: int) -> tuple[int, ...]:
    """PyTorch pads both sides of each spatial axis alike; composites take (begins..., ends...)."""
    p = _ntuple(padding, n)
    return (*p, *p)


def _batched(cx: Context, x: Node, n: int, layer: Callable[[Node], Node]) -> Node:
    """Run an (N, C, spatial...) layer over n spatial axes also on an unbatched (C, spatial...) input."""
    if x.type.rank == n + 2:
        return layer(x)
    if x.type.rank != n + 1:
        raise FrontendError(f"a {n}-d layer needs a rank {n + 1} or {n + 2} input, got shape {list(x.shape)}")
    y = layer(cx.op("reshape", x, shape=(1, *x.shape)))
    return cx.op("reshape", y, shape=y.shape[1:])


def _conv(n: int) -> Converter:
    def convert(cx: Context, x, weight, bias, stride, padding, dilation, groups) -> Node:
        """Convolution without bias (1-d and 3-d composed of conv2d), then bias_add on the channel axis."""
        dilation = _ntuple(dilation, n)
        if isinstance(padding, str):  # the aten.convNd.padding overloads: "valid" or "same"
            padding = _string_padding(padding, weight.shape[2:], dilation)
        else:
            padding = _symmetric(padding, n)
        layer = lambda x: conv_nd(cx, x, weight, _ntuple(stride, n), padding, dilation, groups)  # noqa: E731
        return _add_bias(cx, _batched(cx, x, n, layer), bias, axis=1 if x.type.rank == n + 2 else 0)

    convert.__name__ = f"conv{n}d"
    return convert


def _string_padding(mode: str, kernel: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """padding="valid" is 0; "same" pads d*(k-1) in total, the odd one at the end as PyTorch does."""
    if mode == "valid":
        return (0,) * (2 * len(kernel))
    totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
    return (*(t // 2 for t in totals), *(t - t // 2 for t in totals))


def _conv_transpose(n: int) -> Converter:
    def convert(cx: Context, x, weight, bias, stride, padding, output_padding, groups, dilation) -> Node:
        """Transposed convolution as a convolution of the zero-interleaved input (composites.conv_transpose_nd)."""
        layer = lambda x: conv_transpose_nd(  # noqa: E731
            cx,
            x,
            weight,
            _ntuple(stride, n),
            _symmetric(padding, n),
            _ntuple(dilation, n),
            _ntuple(output_padding, n),
            groups,
        )
        return _add_bias(cx, _batched(cx, x, n, layer), bias, axis=1 if x.type.rank == n + 2 else 0)

    convert.__name__ = f"conv_transpose{n}d"
    return convert


def convolution(cx: Context, x, weight, bias, stride, padding, dilation, transposed, output_padding, groups) -> Node:
    """aten.convolution, what every conv layer becomes after decompositions: dispatch on the weight's rank."""
    n = weight.type.rank - 2
    if transposed:
        return _conv_transpose(n)(cx, x, weight, bias, stride, padding, output_padding, groups, dilation)
    return _conv(n)(cx, x, weight, bias, stride, padding, dilation, groups)


def linear(cx: Context, x, weight, bias) -> Node:
    """x @ W.T + b: `dense` stores W as [out, in] exactly like nn.Linear."""
    return _add_bias(cx, cx.op("dense", x, weight), bias, axis=-1)


def batch_norm(cx: Context, x, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled) -> Node:
    """Inference batch norm only: with running statistics it is a per-channel affine map (foldable)."""
    if training or running_mean is None or running_var is None:
        raise FrontendError(
            "batch_norm in training mode normalises with the batch's own statistics; the compiler supports "
            "inference only. Call model.eval() and keep track_running_stats=True."
        )
    c = x.shape[1]
    gamma = weight if weight is not None else cx.const(np.ones(c), x.dtype, "gamma")
    beta = bias if bias is not None else cx.const(np.zeros(c), x.dtype, "beta")
    return cx.op("batch_norm", x, gamma, beta, running_mean, running_var, eps=eps, axis=1)


def native_batch_norm_no_training(cx: Context, x, weight, bias, running_mean, running_var, momentum, eps) -> list:
    """What functionalisation makes of an inference batch_norm: (y, save_mean, save_invstd), the last two empty."""
    y = batch_norm(cx, x, weight, bias, running_mean, running_var, False, momentum, eps, False)
    empty = cx.const(np.zeros((0,)), x.dtype, "empty")
    return [y, empty, empty]


def rms_norm(cx: Context, x, normalized_shape, weight=None, eps=None) -> Node:
    """x / sqrt(mean(x^2) + eps) * weight over the last len(normalized_shape) axes (eps None: the dtype's eps)."""
    axes = tuple(range(-len(normalized_shape), 0))
    eps = float(np.finfo(np.dtype(x.dtype)).eps) if eps is None else eps
    mean_square = cx.op("mean", cx.op("mul", x, x), axes=axes, keepdims=True)
    y = cx.op("mul", x, cx.op("rsqrt", cx.op("add", mean_square, cx.const(eps, x.dtype, "eps"))))
    return y if weight is None else cx.op("mul", y, weight)


def layer_norm(cx: Context, x, normalized_shape, weight, bias, eps, cudnn_enable) -> Node:
    """Normalise over the last len(normalized_shape) axes."""
    shape = tuple(normalized_shape)
    gamma = weight if weight is not None else cx.const(np.ones(shape), x.dtype, "gamma")
    beta = bias if bias is not None else cx.const(np.zeros(shape), x.dtype, "beta")
    return cx.op("layer_norm", x, gamma, beta, eps=eps, axis=-len(shape))


def _max_pool(n: int) -> Converter:
    def convert(cx: Context, x, kernel_size, stride, padding, dilation, ceil_mode) -> Node:
        """An empty stride means stride = kernel size; 1-d and 3-d windows are composed of max_pool2d."""
        kernel = _ntuple(kernel_size, n)
        strides = _ntuple(stride, n) if stride else kernel
        layer = lambda x: pool_nd(  # noqa: E731
            cx, x, "max_pool2d", kernel, strides, _symmetric(padding, n), bool(ceil_mode), _ntuple(dilation, n)
        )
        return _batched(cx, x, n, layer)

    convert.__name__ = f"max_pool{n}d"
    return convert


def _avg_pool(n: int) -> Converter:
    def convert(
        cx: Context, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None
    ) -> Node:
        """PyTorch's divisor rules (avg_pool2d's); 1-d and 3-d windows are composed of avg_pool2d."""
        if divisor_override is not None:
            raise FrontendError(f"avg_pool{n}d with divisor_override is not supported")
        kernel = _ntuple(kernel_size, n)
        strides = _ntuple(stride, n) if stride else kernel
        layer = lambda x: pool_nd(  # noqa: E731
            cx,
            x,
            "avg_pool2d",
            kernel,
            strides,
            _symmetric(padding, n),
            bool(ceil_mode),
            None,
            count_include_pad=bool(count_include_pad),
        )
        return _batched(cx, x, n, layer)

    convert.__name__ = f"avg_pool{n}d"
    return convert


def adaptive_avg_pool2d(cx: Context, x, output_size) -> Node:
    """1x1 output is global average pooling; an output that divides the input is a plain avg_pool2d."""
    (oh, ow), (h, w) = _pair(output_size), x.shape[-2:]
    if (oh, ow) == (1, 1):
        return cx.op("global_avg_pool2d", x)
    if h % oh or w % ow:
        raise FrontendError(
            f"adaptive_avg_pool2d from {h}x{w} to {oh}x{ow}: only a 1x1 output or one that divides the input "
            "is supported (uneven adaptive windows have no IR op)"
        )
    return cx.op("avg_pool2d", x, kernel=(h // oh, w // ow))


def adaptive_avg_pool1d(cx: Context, x, output_size) -> Node:
    """Average over windows of the last axis; only an output size that divides the input is even."""
    (out,), n = _pair(output_size)[:1], x.shape[-1]
    if n % out:
        raise FrontendError(f"adaptive_avg_pool1d from {n} to {out}: only an output size that divides the input")
    windows = cx.op("reshape", x, shape=(*x.shape[:-1], out, n // out))
    return cx.op("mean", windows, axes=(-1,))


def softmax(cx: Context, x, dim, dtype=None, half_to_float=False) -> Node:
    return cx.op("softmax", cx.cast(x, cx.out_dtype), axis=dim)


def log_softmax(cx: Context, x, dim, dtype=None, half_to_float=False) -> Node:
    return cx.op("log_softmax", cx.cast(x, cx.out_dtype), axis=dim)


def scaled_dot_product_attention(
    cx: Context, query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa
) -> Node:
    """softmax(Q @ K^T * scale + mask) @ V, spelled out with matmul, mul, add and softmax."""
    if dropout_p:
        raise FrontendError(f"scaled_dot_product_attention with dropout_p={dropout_p} is random; use 0 for inference")
    if enable_gqa:  # grouped-query attention: each key/value head serves heads // kv_heads query heads
        key, value = (_repeat_heads(cx, t, query.shape[-3]) for t in (key, value))
    dtype, rank = query.dtype, key.type.rank
    (q_len, depth), k_len = query.shape[-2:], key.shape[-2]
    key_t = cx.op("transpose", key, perm=(*range(rank - 2), rank - 1, rank - 2))
    scores = cx.op("matmul", query, key_t)
    scale = 1 / math.sqrt(depth) if scale is None else scale
    scores = cx.op("mul", scores, cx.const(scale, dtype, "scale"))
    if is_causal:  # query i may look at keys 0..i (top-left aligned, like torch.tril)
        causal = np.where(np.tril(np.ones((q_len, k_len), dtype=bool)), 0, -np.inf)
        scores = cx.op("add", scores, cx.const(causal, dtype, "causal_mask"))
    if attn_mask is None:
        return cx.op("matmul", cx.op("softmax", scores, axis=-1), value)
    scores = cx.op("add", scores, _additive_mask(cx, attn_mask, dtype))
    probs = cx.op("softmax", scores, axis=-1)
    if _may_mask_whole_rows(attn_mask):  # PyTorch's safe softmax: a query that may attend to nothing gets 0, not NaN
        probs = cx.op("where", _blocked_rows(cx, attn_mask, dtype), cx.const(0, dtype, "zero"), probs)
    return cx.op("matmul", probs, value)


def _blocked_rows(cx: Context, mask: Node, dtype: str) -> Node:
    """True for the query rows whose mask allows no key (read from the mask, not from -inf scores)."""
    allowed = mask if mask.dtype == "bool" else cx.op("not_equal", mask, cx.const(-np.inf, mask.dtype, "ninf"))
    any_allowed = cx.op("max", cx.cast(allowed, dtype), axes=(-1,), keepdims=True)
    return cx.op("equal", any_allowed, cx.const(0, dtype, "zero"))


def _may_mask_whole_rows(mask: Node) -> bool:
    """Whether some query row may have every key masked out (always, for a mask computed at run time)."""
    if mask.op != "constant":
        return True
    allowed = mask.value if mask.dtype == "bool" else mask.value != -np.inf
    return bool((~np.asarray(allowed, dtype=bool)).all(axis=-1).any())


def _repeat_heads(cx: Context, x: Node, heads: int) -> Node:
    """[..., kv_heads, L, D] -> [..., heads, L, D], each head repeated heads // kv_heads times in a row."""
    *lead, kv, length, depth = x.shape
    if heads % kv:
        raise FrontendError(f"enable_gqa: {heads} query heads is not a multiple of {kv} key/value heads")
    spread = cx.op("reshape", x, shape=(*lead, kv, 1, length, depth))
    tiled = cx.op("broadcast_to", spread, shape=(*lead, kv, heads // kv, length, depth))
    return cx.op("reshape", tiled, shape=(*lead, heads, length, depth))


def _additive_mask(cx: Context, mask: Node, dtype: str) -> Node:
    """A float mask is added as is; a boolean mask (True = may attend) becomes 0 / -inf."""
    if mask.dtype != "bool":
        return cx.cast(mask, dtype)
    if mask.op == "constant":
        return cx.const(np.where(mask.value, 0, -np.inf), dtype, "attn_mask")
    return cx.op("log", cx.cast(mask, dtype))  # log(1) = 0, log(0) = -inf: exact, with the IR's own ops


# == converters: lookups and indexing ============================================================
def embedding(cx: Context, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False) -> Node:
    """Rows of the table at the given positions (padding_idx only matters for training)."""
    return cx.op("take", weight, indices, axis=0)


def index_select(cx: Context, x, dim, index) -> Node:
    return cx.op("take", x, index, axis=dim % x.type.rank)


def index_tensor(cx: Context, x, indices) -> Node:
    """x[..., i, j, ...] with integer index tensors on adjacent axes (`x[:, idx]`, `x[rows, cols]`):
    the indexed axes are merged into one and read with a single `take` at the combined position."""
    axes = [d for d, i in enumerate(indices) if i is not None]
    if any(i.dtype == "bool" for i in indices if i is not None):
        raise FrontendError("indexing with a boolean mask gives a data-dependent shape; use torch.where instead")
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise FrontendError(f"advanced indexing on non-adjacent axes {axes} is not supported")
    first, n = axes[0], len(axes)
    sizes = x.shape[first : first + n]
    shape = tuple(np.broadcast_shapes(*(indices[d].shape for d in axes)))
    if n == 1:  # take itself counts a negative position from the end
        position = indices[first]
    else:
        position = None
        for d, size in zip(axes, sizes):
            i, n_i = cx.cast(indices[d], "int64"), cx.const(size, "int64", "size")
            i = cx.op("where", cx.op("less", i, cx.const(0, "int64", "zero")), cx.op("add", i, n_i), i)
            position = i if position is None else cx.op("add", cx.op("mul", position, n_i), i)
    if position.shape != shape:
        position = cx.op("broadcast_to", position, shape=shape)
    merged = x if n == 1 else cx.op("reshape", x, shape=x.shape[:first] + (math.prod(sizes),) + x.shape[first + n :])
    return cx.op("take", merged, position, axis=first)


def gather(cx: Context, x, dim, index, sparse_grad=False) -> Node:
    """torch.gather: out[i, j] = x[i, index[i, j]] (dim=1). The positions become flat offsets into x
    (a constant offset per element plus index * stride), read with one `take` from the flattened x."""
    rank = x.type.rank
    dim %= rank
    strides = [math.prod(x.shape[d + 1 :]) for d in range(rank)]
    grid = np.indices(index.shape, dtype=np.int64)
    offsets = sum(grid[d] * strides[d] for d in range(rank) if d != dim)
    i, n = cx.cast(index, "int64"), cx.const(x.shape[dim], "int64", "size")
    i = cx.op("where", cx.op("less", i, cx.const(0, "int64", "zero")), cx.op("add", i, n), i)
    scaled = cx.op("mul", i, cx.const(strides[dim], "int64", "stride"))
    flat = cx.op("add", scaled, cx.const(offsets, "int64", "offsets"))
    return cx.op("take", cx.op("reshape", x, shape=(x.type.numel,)), flat, axis=0)


def cumsum(cx: Context, x, dim, dtype=None) -> Node:
    """Running sum along `dim` as a matmul with an upper-triangular matrix of ones (exact for integers;
    n x n work, fine for the sequence lengths where models use it: position ids from a mask)."""
    out = cx.out_dtype
    rank, dim = max(x.type.rank, 1), dim % max(x.type.rank, 1)
    last = list(range(rank))
    last.append(last.pop(dim))
    moved = cx.cast(x, out) if dim == rank - 1 else cx.op("transpose", cx.cast(x, out), perm=tuple(last))
    n = x.shape[dim]
    y = cx.op("matmul", moved, cx.const(np.triu(np.ones((n, n))), out, "upper"))
    return y if dim == rank - 1 else cx.op("transpose", y, perm=tuple(int(p) for p in np.argsort(last)))


# == converters: comparisons, masks and boolean logic =============================================
def _promoted(cx: Context) -> str:
    """The dtype PyTorch compares two operands in (its type promotion of the fx node's first two arguments)."""
    a, b = (v.meta["val"] if isinstance(v, fx.Node) else v for v in cx.fx_node.args[:2])
    return _dtype(torch.result_type(a, b))


def _compare(op: str) -> Converter:
    def convert(cx: Context, x, other) -> Node:
        dtype = _promoted(cx)
        return cx.op(op, cx.tensor(x, dtype), cx.tensor(other, dtype))

    convert.__name__ = convert.__qualname__ = op
    return convert


def where(cx: Context, condition, x, other) -> Node:
    dtype = cx.out_dtype
    return cx.op("where", cx.tensor(condition, "bool"), cx.tensor(x, dtype), cx.tensor(other, dtype))


def masked_fill(cx: Context, x, mask, value) -> Node:
    """x with `value` where mask is True."""
    return cx.op("where", cx.tensor(mask, "bool"), cx.tensor(value, x.dtype), x)


def _logical(op: str) -> Converter:
    """and/or on bool tensors (`&`, `|` on masks); bitwise arithmetic on integers is not supported."""

    def convert(cx: Context, x, other) -> Node:
        if not all(isinstance(v, Node) and v.dtype == "bool" for v in (x, other)):
            raise FrontendError(f"{op} is supported on bool tensors (masks) only, not on integers")
        return cx.op(op, x, other)

    convert.__name__ = convert.__qualname__ = op
    return convert


def logical_not(cx: Context, x) -> Node:
    if x.dtype != "bool":
        raise FrontendError(f"~x / logical_not is supported on bool tensors (masks) only, not on {x.dtype}")
    return cx.op("logical_not", x)


def _triangle(keep: Any) -> Converter:
    """triu/tril: x where a constant triangular mask holds, else 0."""

    def convert(cx: Context, x, diagonal=0) -> Node:
        mask = keep(np.ones(x.shape[-2:], dtype=bool), diagonal)
        return cx.op("where", cx.const(mask, "bool", "mask"), x, cx.const(0, x.dtype, "zero"))

    convert.__name__ = convert.__qualname__ = keep.__name__
    return convert


# == converters: elementwise (the 1:1 ones are `same(...)` entries in the table) ==================
def hardtanh(cx: Context, x, min_val, max_val) -> Node:
    return cx.op("clip", x, min=float(min_val), max=float(max_val))


def relu6(cx: Context, x) -> Node:
    return cx.op("clip", x, min=0.0, max=6.0)


def clamp(cx: Context, x, min=None, max=None) -> Node:
    return cx.op("clip", x, min=min, max=max)


def hardsigmoid(cx: Context, x) -> Node:
    """relu6(x + 3) / 6, as PyTorch's kernel computes it."""
    shifted = cx.op("clip", cx.op("add", x, cx.const(3, x.dtype, "three")), min=0.0, max=6.0)
    return cx.op("div", shifted, cx.const(6, x.dtype, "six"))


def hardswish(cx: Context, x) -> Node:
    """x * relu6(x + 3) / 6, as PyTorch's kernel computes it."""
    shifted = cx.op("clip", cx.op("add", x, cx.const(3, x.dtype, "three")), min=0.0, max=6.0)
    return cx.op("div", cx.op("mul", x, shifted), cx.const(6, x.dtype, "six"))


def leaky_relu(cx: Context, x, negative_slope=0.01) -> Node:
    """max(x, slope * x), which equals leaky relu when 0 <= slope <= 1."""
    if not 0 <= negative_slope <= 1:
        raise FrontendError(f"leaky_relu with negative_slope={negative_slope} (only 0..1 is supported)")
    return cx.op("maximum", x, cx.op("mul", x, cx.const(negative_slope, x.dtype, "slope")))


def _binary(op: str) -> Converter:
    """Tensor-tensor and tensor-scalar forms alike: both operands are brought to the result's dtype
    (PyTorch's type promotion, which `same` does not do)."""

    def convert(cx: Context, x, other) -> Node:
        dtype = cx.out_dtype
        return cx.op(op, cx.tensor(x, dtype), cx.tensor(other, dtype))

    convert.__name__ = convert.__qualname__ = op
    return convert


def _add_or_sub(op: str) -> Converter:
    """x + alpha * other (or x - alpha * other)."""

    def convert(cx: Context, x, other, alpha=1) -> Node:
        dtype = cx.out_dtype
        if alpha != 1:
            scaled = cx.op("mul", other, cx.const(alpha, dtype, "alpha")) if isinstance(other, Node) else None
            other = scaled or other * alpha
        return cx.op(op, cx.tensor(x, dtype), cx.tensor(other, dtype))

    convert.__name__ = convert.__qualname__ = op
    return convert


def rsub(cx: Context, x, other, alpha=1) -> Node:
    """other - alpha * x (what `1 - x` becomes)."""
    return _add_or_sub("sub")(cx, other, x, alpha)


def div_mode(cx: Context, x, other, rounding_mode=None) -> Node:
    """x / y; on integers `rounding_mode="floor"` (x // y) is the IR's own integer div, which floors."""
    if rounding_mode == "floor" and not cx.out_dtype.startswith("float"):
        return _binary("div")(cx, x, other)
    if rounding_mode is not None:
        raise FrontendError(f"div with rounding_mode={rounding_mode!r} is not supported (the IR has no floor/trunc)")
    return _binary("div")(cx, x, other)


def floor_divide(cx: Context, x, other) -> Node:
    """x // y: the IR's integer div floors; floats would need a floor op the IR does not have."""
    return div_mode(cx, x, other, "floor")


def pow_(cx: Context, x, exponent) -> Node:
    dtype = cx.out_dtype
    return cx.op("pow", cx.tensor(x, dtype), cx.tensor(exponent, dtype))


def reciprocal(cx: Context, x) -> Node:
    """1 / x (what `2 / x` becomes, times 2)."""
    return cx.op("div", cx.const(1, x.dtype, "one"), x)


def type_as(cx: Context, x, other) -> Node:
    return cx.cast(x, other.dtype)


def to_dtype(cx: Context, x, dtype=None, **_: Any) -> Node:
    """x.to(dtype), x.float(): a cast (or nothing). Device and memory-format arguments do not matter here."""
    return x if dtype is None else cx.cast(x, _dtype(dtype))


# == converters: matrix products and reductions ==================================================
def matmul(cx: Context, x, other) -> Node:
    """torch.matmul; a 1-D operand is made a matrix first and its axis removed again afterwards."""
    a = cx.op("reshape", x, shape=(1, x.shape[0])) if x.type.rank == 1 else x
    b = cx.op("reshape", other, shape=(other.shape[0], 1)) if other.type.rank == 1 else other
    y = cx.op("matmul", a, b)
    shape = list(y.shape)
    if other.type.rank == 1:
        shape.pop(-1)
    if x.type.rank == 1:
        shape.pop(-2 if other.type.rank > 1 else -1)
    return y if tuple(shape) == y.shape else cx.op("reshape", y, shape=tuple(shape))


def mm(cx: Context, x, mat2) -> Node:
    return cx.op("matmul", x, mat2)


def addmm(cx: Context, x, mat1, mat2, beta=1, alpha=1) -> Node:
    """beta * x + alpha * (mat1 @ mat2) (GPT-2's Conv1D layers: bias + x @ W)."""
    y = cx.op("matmul", mat1, mat2)
    if alpha != 1:
        y = cx.op("mul", y, cx.const(alpha, y.dtype, "alpha"))
    if beta == 0:
        return y
    bias = x if beta == 1 else cx.op("mul", x, cx.const(beta, x.dtype, "beta"))
    return cx.op("add", y, cx.cast(bias, y.dtype))


def _reduce(op: str) -> Converter:
    """mean/sum/amax/amin over `dim` (None or [] means every axis)."""

    def convert(cx: Context, x, dim=None, keepdim=False, dtype=None) -> Node:
        axes = (dim,) if isinstance(dim, int) else (tuple(dim) if dim else None)
        return cx.op(op, cx.cast(x, cx.out_dtype), axes=axes, keepdims=bool(keepdim))

    convert.__name__ = convert.__qualname__ = op
    return convert


def vector_norm(cx: Context, x, ord=2, dim=None, keepdim=False, dtype=None) -> Node:
    """torch.linalg.vector_norm for ord=2: sqrt(sum(x^2)) over `dim` (other orders are not supported)."""
    if ord != 2:
        raise FrontendError(f"linalg.vector_norm with ord={ord} is not supported (only ord=2)")
    axes = (dim,) if isinstance(dim, int) else (tuple(dim) if dim else None)
    x = cx.cast(x, cx.out_dtype)
    return cx.op("sqrt", cx.op("sum", cx.op("mul", x, x), axes=axes, keepdims=bool(keepdim)))


# == converters: shapes ===========================================================================
def identity(cx: Context, x, **_: Any) -> Node:
    """clone, contiguous, detach, alias, ...: no computation in a value-semantics IR."""
    return x


def no_op(cx: Context, **_: Any) -> None:
    """Checks that torch.export inserts (tensor metadata asserts); they produce no value."""
    return None


def dropout(cx: Context, x, p, train) -> Node:
    if train and p > 0:
        raise FrontendError("dropout in training mode is random; call model.eval()")
    return x


def view(cx: Context, x, size) -> Node:
    return cx.op("reshape", x, shape=tuple(size))


def reshape(cx: Context, x, shape) -> Node:
    return cx.op("reshape", x, shape=tuple(shape))


def reshape_as(cx: Context, x, other) -> Node:
    return x if x.shape == other.shape else cx.op("reshape", x, shape=other.shape)


def flatten(cx: Context, x, start_dim=0, end_dim=-1) -> Node:
    rank = max(x.type.rank, 1)
    start, end = start_dim % rank, end_dim % rank
    shape = x.shape[:start] + (math.prod(x.shape[start : end + 1]),) + x.shape[end + 1 :]
    return x if shape == x.shape else cx.op("reshape", x, shape=shape)


def permute(cx: Context, x, dims) -> Node:
    return cx.op("transpose", x, perm=tuple(d % x.type.rank for d in dims))


def transpose(cx: Context, x, dim0, dim1) -> Node:
    perm = list(range(x.type.rank))
    perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
    return cx.op("transpose", x, perm=tuple(perm))


def t(cx: Context, x) -> Node:
    return x if x.type.rank < 2 else cx.op("transpose", x, perm=(1, 0))


def unsqueeze(cx: Context, x, dim) -> Node:
    shape = list(x.shape)
    shape.insert(dim % (x.type.rank + 1), 1)
    return cx.op("reshape", x, shape=tuple(shape))


def squeeze(cx: Context, x, dim=None) -> Node:
    """Remove size-1 axes (all of them, or those in `dim` that have size 1)."""
    rank = x.type.rank
    dims = range(rank) if dim is None else [dim] if isinstance(dim, int) else dim
    drop = {d % rank for d in dims if x.shape[d % rank] == 1} if rank else set()
    shape = tuple(s for i, s in enumerate(x.shape) if i not in drop)
    return x if shape == x.shape else cx.op("reshape", x, shape=shape)


def expand(cx: Context, x, size, implicit=False) -> Node:
    """-1 keeps an axis; new leading axes are added as NumPy broadcasting does."""
    lead = len(size) - x.type.rank
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(size))
    return x if shape == x.shape else cx.op("broadcast_to", x, shape=shape)


def repeat(cx: Context, x, repeats) -> Node:
    """x.repeat(r0, r1, ...): each axis s becomes (r, s) by broadcasting, then (r * s) by a reshape."""
    repeats = tuple(repeats)
    shape = (1,) * (len(repeats) - x.type.rank) + x.shape
    spread = cx.op("reshape", x, shape=tuple(d for s in shape for d in (1, s)))
    tiled = cx.op("broadcast_to", spread, shape=tuple(d for r, s in zip(repeats, shape) for d in (r, s)))
    return cx.op("reshape", tiled, shape=tuple(r * s for r, s in zip(repeats, shape)))


def tile(cx: Context, x, dims) -> Node:
    """torch.tile: repeat, with 1s prepended when `dims` is shorter than x's rank."""
    return repeat(cx, x, (1,) * (x.type.rank - len(dims)) + tuple(dims))


def stack(cx: Context, tensors, dim=0) -> Node:
    rank = tensors[0].type.rank + 1
    return cat(cx, [unsqueeze(cx, cx.cast(t, cx.out_dtype), dim % rank) for t in tensors], dim % rank)


def cat(cx: Context, tensors, dim=0) -> Node:
    return cx.op("concat", *(cx.cast(t, cx.out_dtype) for t in tensors), axis=dim)


def slice_(cx: Context, x, dim=0, start=None, end=None, step=1) -> Node:
    """x[start:end:step] along dim, with Python's clamping (aten writes `end` as 2**63 - 1 for `x[a:]`)."""
    start, end, step = slice(start, end, step).indices(x.shape[dim])
    if (start, end, step) == (0, x.shape[dim], 1):
        return x
    return cx.op("slice", x, axes=(dim,), starts=(start,), ends=(end,), steps=(step,))


def select(cx: Context, x, dim, index) -> Node:
    """x[..., index, ...]: a one-wide slice, then a reshape without that axis."""
    dim, index = dim % x.type.rank, index % x.shape[dim]
    piece = cx.op("slice", x, axes=(dim,), starts=(index,), ends=(index + 1,))
    return cx.op("reshape", piece, shape=x.shape[:dim] + x.shape[dim + 1 :])


def _split(cx: Context, x: Node, sizes: Sequence[int], dim: int) -> list[Node]:
    pieces, start = [], 0
    for size in sizes:
        pieces.append(cx.op("slice", x, axes=(dim,), starts=(start,), ends=(start + size,)))
        start += size
    return pieces


def split(cx: Context, x, split_size=1, dim=0) -> list[Node]:
    n = x.shape[dim]
    return _split(cx, x, [min(split_size, n - s) for s in range(0, n, split_size)], dim)


def split_with_sizes(cx: Context, x, split_sizes, dim=0) -> list[Node]:
    return _split(cx, x, split_sizes, dim)


def chunk(cx: Context, x, chunks, dim=0) -> list[Node]:
    """torch.chunk: pieces of ceil(n / chunks), so there may be fewer than `chunks`."""
    return split(cx, x, -(-x.shape[dim] // chunks), dim)


def unbind(cx: Context, x, dim=0) -> list[Node]:
    return [select(cx, x, dim, i) for i in range(x.shape[dim])]


def slice_scatter(cx: Context, x, src, dim=0, start=None, end=None, step=1) -> Node:
    """x with x[start:end] along dim replaced by src (a write through a slice, functionalised): a concat."""
    dim %= x.type.rank
    start, end, step = slice(start, end, step).indices(x.shape[dim])
    if step != 1:
        raise FrontendError(f"slice_scatter with step {step} (an in-place write to x[::{step}]) is not supported")
    end = max(start, end)
    src = cx.cast(src, x.dtype)
    pieces = []
    if start > 0:
        pieces.append(cx.op("slice", x, axes=(dim,), starts=(0,), ends=(start,)))
    pieces.append(src)
    if end < x.shape[dim]:
        pieces.append(cx.op("slice", x, axes=(dim,), starts=(end,), ends=(x.shape[dim],)))
    return pieces[0] if len(pieces) == 1 else cx.op("concat", *pieces, axis=dim)


def select_scatter(cx: Context, x, src, dim, index) -> Node:
    """x with x.select(dim, index) replaced by src: src gets its axis back, then as slice_scatter."""
    dim %= x.type.rank
    index %= x.shape[dim]
    shape = list(src.shape)
    shape.insert(dim, 1)
    return slice_scatter(cx, x, cx.op("reshape", src, shape=tuple(shape)), dim, index, index + 1)


def copy(cx: Context, x, src, non_blocking=False) -> Node:
    """x.copy_(src), functionalised: src broadcast to x's shape, in x's dtype."""
    src = cx.cast(src, x.dtype)
    return src if src.shape == x.shape else cx.op("broadcast_to", src, shape=x.shape)


def fill(cx: Context, x, value) -> Node:
    """x.fill_(value), functionalised: a constant of x's shape and dtype."""
    return cx.const(np.full(x.shape, value), x.dtype, "fill")


def pad_(cx: Context, x, pad, mode="constant", value=None) -> Node:
    """F.pad lists (before, after) pairs from the last axis backwards; the IR lists them from axis 0."""
    if mode != "constant":
        raise FrontendError(f"pad mode {mode!r} is not supported (only 'constant')")
    if min(pad, default=0) < 0:
        raise FrontendError(f"negative padding {list(pad)} (cropping) is not supported")
    pairs = [tuple(pad[i : i + 2]) for i in range(0, len(pad), 2)]
    pairs += [(0, 0)] * (x.type.rank - len(pairs))
    return cx.op("pad", x, pads=tuple(p for pair in reversed(pairs) for p in pair), value=float(value or 0.0))


def constant_pad_nd(cx: Context, x, pad, value=0) -> Node:
    return pad_(cx, x, pad, "constant", value)


# == converters: normalisation, reordering, resizing (composed in mlc_lab.frontends.composites) ====
def group_norm_(cx: Context, x, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True) -> Node:
    return group_norm(cx, x, num_groups, weight, bias, eps)


def instance_norm(
    cx: Context, x, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled
) -> Node:
    """Each sample's own statistics per channel (a group norm with one channel per group); an instance
    norm with track_running_stats in eval mode normalises with the running statistics (a batch norm)."""
    if use_input_stats:
        return group_norm(cx, x, x.shape[1], weight, bias, eps)
    return batch_norm(cx, x, weight, bias, running_mean, running_var, False, momentum, eps, cudnn_enabled)


def flip_(cx: Context, x, dims) -> Node:
    return flip(cx, x, dims)


def roll_(cx: Context, x, shifts, dims=()) -> Node:
    """No dims: roll the flattened tensor and restore its shape."""
    shifts = _ntuple(shifts, 1) if isinstance(shifts, int) else tuple(shifts)
    if dims:
        return roll(cx, x, shifts, _ntuple(dims, len(shifts)))
    flat = roll(cx, cx.op("reshape", x, shape=(x.type.numel,)), shifts, (0,))
    return cx.op("reshape", flat, shape=x.shape)


def _upsample(n: int, mode: str) -> Converter:
    """F.interpolate's nearest, nearest-exact and (bi/tri)linear modes over the last n axes: one constant
    interpolation matrix per resized axis (composites.resize_axes). The output size is PyTorch's."""

    def convert(cx: Context, x, output_size=None, scale_factors=None, align_corners=False) -> Node:
        out = tuple(cx.fx_node.meta["val"].shape[-n:])
        given = scale_factors if scale_factors is not None else [o / i for o, i in zip(out, x.shape[-n:])]
        if mode == "linear":
            coordinate, nearest = ("align_corners" if align_corners else "half_pixel"), ""
        elif mode == "nearest":
            coordinate, nearest = "asymmetric", "floor"
        else:  # nearest-exact
            coordinate, nearest = "half_pixel", "round_prefer_ceil"
        keep = x.type.rank - n
        sizes, scales = (*x.shape[:keep], *out), (*(1.0,) * keep, *(float(s) for s in given))
        return resize_axes(cx, x, sizes, scales, "nearest" if mode != "linear" else mode, coordinate, nearest)

    convert.__name__ = f"upsample_{mode}{n}d"
    return convert


# == the table ====================================================================================
ATEN_OPS: dict[torch._ops.OpOverload, Converter] = {
    # layers
    aten.conv1d.default: _conv(1),
    aten.conv1d.padding: _conv(1),
    aten.conv2d.default: _conv(2),
    aten.conv2d.padding: _conv(2),
    aten.conv3d.default: _conv(3),
    aten.conv3d.padding: _conv(3),
    aten.conv_transpose1d.default: _conv_transpose(1),
    aten.conv_transpose2d.input: _conv_transpose(2),
    aten.convolution.default: convolution,
    aten.linear.default: linear,
    aten.batch_norm.default: batch_norm,
    aten._native_batch_norm_legit_no_training.default: native_batch_norm_no_training,
    aten.layer_norm.default: layer_norm,
    aten.rms_norm.default: rms_norm,
    aten.max_pool1d.default: _max_pool(1),
    aten.max_pool2d.default: _max_pool(2),
    aten.max_pool3d.default: _max_pool(3),
    aten.avg_pool1d.default: _avg_pool(1),
    aten.avg_pool2d.default: _avg_pool(2),
    aten.avg_pool3d.default: _avg_pool(3),
    aten.group_norm.default: group_norm_,
    aten.instance_norm.default: instance_norm,
    aten.upsample_nearest1d.vec: _upsample(1, "nearest"),
    aten.upsample_nearest2d.vec: _upsample(2, "nearest"),
    aten.upsample_nearest3d.vec: _upsample(3, "nearest"),
    aten._upsample_nearest_exact1d.vec: _upsample(1, "nearest-exact"),
    aten._upsample_nearest_exact2d.vec: _upsample(2, "nearest-exact"),
    aten._upsample_nearest_exact3d.vec: _upsample(3, "nearest-exact"),
    aten.upsample_linear1d.vec: _upsample(1, "linear"),
    aten.upsample_bilinear2d.vec: _upsample(2, "linear"),
    aten.upsample_trilinear3d.vec: _upsample(3, "linear"),
    aten.adaptive_avg_pool2d.default: adaptive_avg_pool2d,
    aten.adaptive_avg_pool1d.default: adaptive_avg_pool1d,
    aten.softmax.int: softmax,
    aten._softmax.default: softmax,
    aten.log_softmax.int: log_softmax,
    aten._log_softmax.default: log_softmax,
    aten.scaled_dot_product_attention.default: scaled_dot_product_attention,
    # activations and other elementwise functions
    aten.relu.default: same("relu"),
    aten.sigmoid.default: same("sigmoid"),
    aten.tanh.default: same("tanh"),
    aten.silu.default: same("silu"),
    aten.exp.default: same("exp"),
    aten.log.default: same("log"),
    aten.sqrt.default: same("sqrt"),
    aten.rsqrt.default: same("rsqrt"),
    aten.erf.default: same("erf"),
    aten.neg.default: same("neg"),
    aten.abs.default: same("abs"),
    aten.gelu.default: same("gelu", "approximate"),
    aten.hardtanh.default: hardtanh,
    aten.relu6.default: relu6,
    aten.clamp.default: clamp,
    aten.hardsigmoid.default: hardsigmoid,
    aten.hardswish.default: hardswish,
    aten.leaky_relu.default: leaky_relu,
    aten.add.Tensor: _add_or_sub("add"),
    aten.add.Scalar: _add_or_sub("add"),
    aten.sub.Tensor: _add_or_sub("sub"),
    aten.sub.Scalar: _add_or_sub("sub"),
    aten.rsub.Scalar: rsub,
    aten.rsub.Tensor: rsub,
    aten.mul.Tensor: _binary("mul"),
    aten.mul.Scalar: _binary("mul"),
    aten.div.Tensor: _binary("div"),
    aten.div.Scalar: _binary("div"),
    aten.div.Tensor_mode: div_mode,
    aten.floor_divide.default: floor_divide,
    aten.maximum.default: _binary("maximum"),
    aten.minimum.default: _binary("minimum"),
    aten.pow.Tensor_Scalar: pow_,
    aten.pow.Tensor_Tensor: pow_,
    aten.reciprocal.default: reciprocal,
    aten.to.dtype: to_dtype,
    aten.to.dtype_layout: to_dtype,
    aten.to.device: to_dtype,
    aten._to_copy.default: to_dtype,
    aten.type_as.default: type_as,
    # lookups, comparisons, masks
    aten.embedding.default: embedding,
    aten.index_select.default: index_select,
    aten.index.Tensor: index_tensor,
    aten.gather.default: gather,
    aten.cumsum.default: cumsum,
    aten.eq.Tensor: _compare("equal"),
    aten.eq.Scalar: _compare("equal"),
    aten.ne.Tensor: _compare("not_equal"),
    aten.ne.Scalar: _compare("not_equal"),
    aten.lt.Tensor: _compare("less"),
    aten.lt.Scalar: _compare("less"),
    aten.le.Tensor: _compare("less_equal"),
    aten.le.Scalar: _compare("less_equal"),
    aten.gt.Tensor: _compare("greater"),
    aten.gt.Scalar: _compare("greater"),
    aten.ge.Tensor: _compare("greater_equal"),
    aten.ge.Scalar: _compare("greater_equal"),
    aten.where.self: where,
    aten.where.ScalarSelf: where,
    aten.where.ScalarOther: where,
    aten.where.Scalar: where,
    aten.masked_fill.Scalar: masked_fill,
    aten.masked_fill.Tensor: masked_fill,
    aten.logical_and.default: _logical("logical_and"),
    aten.logical_or.default: _logical("logical_or"),
    aten.bitwise_and.Tensor: _logical("logical_and"),
    aten.bitwise_or.Tensor: _logical("logical_or"),
    aten.__and__.Tensor: _logical("logical_and"),
    aten.__or__.Tensor: _logical("logical_or"),
    aten.logical_not.default: logical_not,
    aten.bitwise_not.default: logical_not,
    aten.triu.default: _triangle(np.triu),
    aten.tril.default: _triangle(np.tril),
    # matrix products and reductions
    aten.matmul.default: matmul,
    aten.mm.default: mm,
    aten.bmm.default: mm,
    aten.addmm.default: addmm,
    aten.mean.dim: _reduce("mean"),
    aten.mean.default: _reduce("mean"),
    aten.sum.dim_IntList: _reduce("sum"),
    aten.sum.default: _reduce("sum"),
    aten.amax.default: _reduce("max"),
    aten.amin.default: _reduce("min"),
    aten.linalg_vector_norm.default: vector_norm,
    # shapes (and ops that do nothing to values)
    aten.view.default: view,
    aten.reshape.default: reshape,
    aten.reshape_as.default: reshape_as,
    aten._unsafe_view.default: view,
    aten.flatten.using_ints: flatten,
    aten.permute.default: permute,
    aten.transpose.int: transpose,
    aten.t.default: t,
    aten.unsqueeze.default: unsqueeze,
    aten.squeeze.default: squeeze,
    aten.squeeze.dim: squeeze,
    aten.squeeze.dims: squeeze,
    aten.expand.default: expand,
    aten.cat.default: cat,
    aten.stack.default: stack,
    aten.repeat.default: repeat,
    aten.tile.default: tile,
    aten.flip.default: flip_,
    aten.roll.default: roll_,
    aten.slice.Tensor: slice_,
    aten.select.int: select,
    aten.split.Tensor: split,
    aten.split_with_sizes.default: split_with_sizes,
    aten.chunk.default: chunk,
    aten.unbind.int: unbind,
    aten.pad.default: pad_,
    aten.constant_pad_nd.default: constant_pad_nd,
    aten.dropout.default: dropout,
    # what functionalisation (`functionalize`) makes of writes through views, copy_ and fill_
    aten.slice_scatter.default: slice_scatter,
    aten.select_scatter.default: select_scatter,
    aten.copy.default: copy,
    aten.fill.Scalar: fill,
    aten.clone.default: identity,
    aten.contiguous.default: identity,
    aten.alias.default: identity,
    aten.detach.default: identity,
    aten.detach_.default: identity,
    aten.lift_fresh_copy.default: identity,
    aten._assert_tensor_metadata.default: no_op,
}
