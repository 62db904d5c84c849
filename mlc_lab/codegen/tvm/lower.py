"""Lowering one node, or one fused group, to one TensorIR PrimFunc.

1. compose: the TE functions of the node (or of every node of a fused node's sub-graph) are chained
   on TE tensors, so a fused group becomes one TE expression DAG with the group's inputs as
   placeholders (constants inside a sub-graph become extra placeholders, passed in by Relax);
2. `te.create_prim_func` turns the DAG into one PrimFunc with one block per stage;
3. `inline_stages`: every elementwise/injective stage but the last is inlined into its consumers
   (`compute_inline`), so those intermediates never exist in memory. What is left: reductions (a
   conv, matmul, the row max of a softmax), padding copies (kept on purpose: see te_ops/nn.py), and
   the output stage;
4. the schedule hook (`schedule(sch, node)`) may tile, parallelise, vectorise;
5. `attach_epilogue`: if the output stage is an elementwise epilogue of a reduction of the same
   shape (conv -> bias -> bn -> relu), and the hook left it as its own loop nest, it is moved inside
   the reduction's loops (`reverse_compute_at`), so the reduction's result lives in a tile of one
   element (one vector under the default schedule) and the kernel writes only its output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import s_tir, te

from mlc_lab.codegen.tiling import PREPACK_ANNOTATION
from mlc_lab.codegen.tvm.native import native_kernel
from mlc_lab.codegen.tvm.symbolic_schedule import schedule_symbolic
from mlc_lab.codegen.tvm.te_ops import PAD_TAG, TE_OPS, UnsupportedOpError
from mlc_lab.codegen.tvm.te_ops.elementwise import te_function
from mlc_lab.codegen.tvm.te_ops.registry import MATERIALIZE_TAG, SYMBOLS, WINOGRAD_TILE, compute, const, extent
from mlc_lab.errors import MlcLabError
from mlc_lab.ir.empty_inputs import data_free_value
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.ops import OpKind, get_op, is_source
from mlc_lab.ir.types import SymDim, TensorType

ScheduleFn = Callable[[s_tir.Schedule, Node], None]


class LoweringError(MlcLabError, RuntimeError):
    """A TE function produced the wrong shape/dtype, or a schedule broke the kernel."""


@dataclass
class Kernel:
    """One PrimFunc and the node it computes.

    The PrimFunc's parameters are: the node's inputs, then `constants` (arrays of constants that sit
    inside a fused sub-graph, passed in as extra inputs), then the output buffer.
    """

    name: str
    func: tvm.tirx.PrimFunc
    node: Node
    constants: list[np.ndarray] = field(default_factory=list)
    #: indices of the inputs the kernel overwrites (its result is that buffer: Relax call_tir_inplace)
    inplace: tuple[int, ...] = ()

    def script(self) -> str:
        return self.func.script()

    def intermediates(self) -> dict[str, tuple[int, ...]]:
        """Buffers the kernel allocates besides its inputs and output, as TVM will size them."""
        return intermediate_buffers(self.func)


def sanitize(name: str) -> str:
    """A node name as an identifier (TVMScript prints buffer and function names)."""
    name = re.sub(r"\W", "_", name)
    return name if name and not name[0].isdigit() else f"v_{name}"


# -- 1. compose TE functions ------------------------------------------------------------------------------
def te_compute(node: Node, inputs: Sequence[te.Tensor], prefix: str = "") -> te.Tensor:
    """The TE tensor computing `node` from `inputs`, checked against the node's type.

    A node whose inputs are all empty (a sum over an axis of size 0) computes a constant
    (`data_free_value`): a reduction loop of extent 0 would never run its init and leave garbage.
    """
    fill = data_free_value(node)
    if fill is not None or node.type.numel == 0:  # an empty output holds no element: any fill will do
        value = fill.reshape(-1)[0].item() if fill is not None else 0
        return compute(node.shape, lambda *i: const(value, node.dtype), name=sanitize(prefix + node.name))
    fn = te_function(node.op)
    if fn is not None and node.dtype == "bool" and get_op(node.op).kind != OpKind.INJECTIVE and node.op != "cast":
        return _bool_via_int32(fn, node, inputs, sanitize(prefix + node.name))
    if fn is None:
        raise UnsupportedOpError(
            f"node %{node.name}: op {node.op!r} has no TE lowering in mlc_lab.codegen.tvm "
            f"(supported: {', '.join(sorted(TE_OPS))})"
        )
    result = fn(*inputs, **node.attrs, out=node.type, name=sanitize(prefix + node.name))
    if not _same_shape(result.shape, node.type.shape) or str(result.dtype) != node.type.dtype:
        raise LoweringError(
            f"node %{node.name} ({node.op}): TE gave {result.dtype}{list(result.shape)}, the IR type is {node.type}"
        )
    return result


def _same_shape(te_shape: Sequence, ir_shape: tuple) -> bool:
    """A TE shape (ints, or the kernel's TIR variables for symbolic dimensions) against an IR shape."""
    if len(te_shape) != len(ir_shape):
        return False
    return all(a.same_as(extent(b)) if isinstance(b, SymDim) else
               isinstance(a, tvm.tirx.IntImm) and int(a) == b for a, b in zip(te_shape, ir_shape))  # fmt: skip


def _bool_via_int32(fn, node: Node, inputs: Sequence[te.Tensor], name: str) -> te.Tensor:
    """Arithmetic on booleans, which TIR has not: compute in int32, then `!= 0` (True + True is True).

    That is NumPy's meaning: add is or, mul is and, max is any, a sum of booleans is whether any is set.
    """
    wide = [
        compute(x.shape, lambda *i, x=x: x[*i].astype("int32"), name=f"{name}_in{k}") if str(x.dtype) == "bool" else x
        for k, x in enumerate(inputs)
    ]
    attrs = {**node.attrs, "out": TensorType(node.shape, "int32"), "name": f"{name}_i32"}
    result = fn(*wide, **attrs)
    return compute(node.shape, lambda *i: result[*i] != const(0, "int32"), name=name)


def compose(graph: Graph, inputs: Sequence[te.Tensor], prefix: str = "") -> tuple[te.Tensor, list[tuple]]:
    """Chain the TE functions of a (sub-)graph; returns (output tensor, [(placeholder, array)] for its constants)."""
    env: dict[Node, te.Tensor] = dict(zip(graph.inputs, inputs))
    lifted: list[tuple[te.Tensor, np.ndarray]] = []
    if len({sanitize(n.name) for n in graph.nodes}) < len(graph.nodes):
        raise LoweringError(f"graph {graph.name!r}: node names collide as identifiers (stage names must be unique)")
    for node in graph.nodes:
        if node.op == "input":
            continue
        if node.op == "constant":
            env[node] = te.placeholder(node.shape, node.dtype, name=sanitize(prefix + node.name))
            lifted.append((env[node], node.value))
        elif node.op == "fused":  # a fused node inside a sub-graph: its ops join this kernel too
            env[node], more = compose(node.subgraph, [env[i] for i in node.inputs], f"{prefix}{node.name}_")
            lifted += more
        else:
            env[node] = te_compute(node, [env[i] for i in node.inputs], prefix)
    return env[graph.outputs[0]], lifted


def _as_compute(tensor: te.Tensor, name: str) -> te.Tensor:
    """create_prim_func needs the output to be computed: copy a bare placeholder."""
    if isinstance(tensor.op, te.PlaceholderOp):
        return te.compute(tensor.shape, lambda *i: tensor[*i], name=name)
    return tensor


def pad_stage_names(output: te.Tensor) -> set[str]:
    """Names of the stages tagged as padding copies, found by walking the TE DAG."""
    names, seen, stack = set(), set(), [output]
    while stack:
        t = stack.pop()
        if t.op.name in seen:
            continue
        seen.add(t.op.name)
        if t.op.tag in (PAD_TAG, MATERIALIZE_TAG):
            names.add(t.op.name)
        stack.extend(t.op.input_tensors)
    return names


# -- 3. inlining and 5. the epilogue -----------------------------------------------------------------------
def root_blocks(sch: s_tir.Schedule) -> list:
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def block_name(sch: s_tir.Schedule, block) -> str:
    return sch.get(block).name_hint


def is_reduction(sch: s_tir.Schedule, block) -> bool:
    return any(int(iv.iter_type) != 0 for iv in sch.get(block).iter_vars)  # 0 = data parallel


def inline_stages(sch: s_tir.Schedule, keep: set[str]) -> None:
    """Inline every non-reduction stage except the output and the padding copies named in `keep`."""
    outputs = {block_name(sch, b) for b in sch.get_output_blocks(sch.get_sblock("root"))}
    for block in reversed(root_blocks(sch)):
        name = block_name(sch, block)
        if name in outputs or name in keep or is_reduction(sch, block):
            continue
        try:
            sch.compute_inline(block)
        except s_tir.ScheduleError:  # e.g. a stage TVM cannot inline: it stays a buffer, still correct
            continue


def _write_shape(sch: s_tir.Schedule, block) -> tuple[int, ...]:
    return tuple(int(d) for d in sch.get(block).writes[0].source.shape)


def epilogue_pair(sch: s_tir.Schedule) -> tuple | None:
    """(reduction block, epilogue block) when the kernel's output stage is an elementwise epilogue."""
    outputs = list(sch.get_output_blocks(sch.get_sblock("root")))
    if len(outputs) != 1 or is_reduction(sch, outputs[0]):
        return None
    epilogue = outputs[0]
    anchors = [
        p
        for p in sch.get_producers(epilogue)
        if is_reduction(sch, p) and _write_shape(sch, p) == _write_shape(sch, epilogue)
    ]
    return (anchors[0], epilogue) if len(anchors) == 1 else None


def num_spatial(sch: s_tir.Schedule, block) -> int:
    return sum(int(iv.iter_type) == 0 for iv in sch.get(block).iter_vars)


def _same_loop(sch: s_tir.Schedule, a, b) -> bool:
    return sch.get(a).same_as(sch.get(b))


def attach_epilogue(sch: s_tir.Schedule) -> None:
    """Move a still-separate epilogue under the reduction's innermost spatial loop (see the module doc)."""
    pair = epilogue_pair(sch)
    if pair is None:
        return
    anchor, epilogue = pair
    anchor_loops, epilogue_loops = sch.get_loops(anchor), sch.get_loops(epilogue)
    if not epilogue_loops or not anchor_loops or _same_loop(sch, anchor_loops[0], epilogue_loops[0]):
        return  # nothing to attach to, or the schedule already placed it
    spatial = num_spatial(sch, anchor)
    if spatial == 0 or len(anchor_loops) != len(sch.get(anchor).iter_vars):
        return  # a transformed loop nest: leave it to whoever transformed it
    try:
        sch.reverse_compute_at(epilogue, anchor_loops[spatial - 1])
    except s_tir.ScheduleError:
        pass


def prepack_only_constants(sch: s_tir.Schedule, constant_params: set[str]) -> None:
    """Unmark weight-packing blocks that read a non-constant: only a constant is packed at build time
    (`mlc_lab.codegen.tvm.prepack`); an activation is packed inside the kernel, as scheduled."""
    for block in root_blocks(sch):
        stmt = sch.get(block)
        if PREPACK_ANNOTATION in stmt.annotations and stmt.reads[0].source.name not in constant_params:
            sch.unannotate(block, PREPACK_ANNOTATION)


# -- the algorithm ------------------------------------------------------------------------------------------
def chosen_winograd_tile(schedule: ScheduleFn | None, node: Node) -> int:
    """The Winograd tile size the schedule hook picks for this kernel (its `algorithm(node)`; 0: direct).

    The algorithm must be known before the TE stages are built, so a hook that can choose one says so
    through this method (`mlc_lab.codegen.tiling.ConfigSchedule`, the tuning-log hooks); a plain function
    hook always gets the direct lowering."""
    choose = getattr(schedule, "algorithm", None)
    if schedule is None or not callable(choose) or not is_static_kernel(node):
        return 0
    return int(choose(node) or 0)


def _note_direct_info(sch: s_tir.Schedule, node: Node, name: str) -> None:
    """Annotate a Winograd kernel's matmul with the direct conv's `KernelInfo` (its knob names; see `analyze`)."""
    from mlc_lab.codegen import winograd
    from mlc_lab.codegen.tiling import analyze

    for block in root_blocks(sch):
        if winograd.TILE_ANNOTATION not in sch.get(block).annotations:
            continue
        found: list = []
        lower_node(node, lambda direct, _: found.append(analyze(direct)), name)  # a plain hook: direct
        sch.annotate(block, winograd.DIRECT_INFO_ANNOTATION, winograd.info_to_json(found[0]))
        return


# -- inspecting a kernel ------------------------------------------------------------------------------------
def intermediate_buffers(func: tvm.tirx.PrimFunc) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every buffer allocated inside `func`, after TVM's CompactBufferAllocation.

    Compaction shrinks a buffer to the region one iteration of its enclosing loops touches: an
    accumulator computed under the epilogue's loop becomes a tile ((1, 1, 1, 1), or the vector
    width), while a stage computed in its own loop nest keeps its full shape.
    """
    passes = [
        s_tir.transform.LowerInitBlock(),
        s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(),
        s_tir.transform.CompactBufferAllocation(),
    ]
    body = tvm.transform.Sequential(passes)(tvm.IRModule({"main": func}))["main"].body
    found: dict[str, tuple[int, ...]] = {}
    _collect_allocations(body, found)
    return found


def _collect_allocations(stmt, found: dict[str, tuple[int, ...]]) -> None:
    for buffer in getattr(stmt, "alloc_buffers", ()):
        found[buffer.name] = tuple(int(d) for d in buffer.shape)
    for child in ("block", "body", "then_case", "else_case"):
        if getattr(stmt, child, None) is not None:
            _collect_allocations(getattr(stmt, child), found)
    for child in getattr(stmt, "seq", ()):
        _collect_allocations(child, found)


def is_static_kernel(node: Node) -> bool:
    """No symbolic dimension in the node's inputs or output."""
    return node.type.is_static and all(x.type.is_static for x in node.inputs)


# -- the whole lowering -----------------------------------------------------------------------------------
def lower_node(node: Node, schedule: ScheduleFn | None = None, name: str | None = None) -> Kernel:
    """Lower one op node or fused node to one PrimFunc (steps 1-5 of the module docstring)."""
    if is_source(node.op):
        raise ValueError(f"node %{node.name} is a {node.op}: it has no kernel")
    name = sanitize(name or node.name)
    builder = native_kernel(node.op)
    if builder is not None:  # a hand-written, already scheduled TensorIR kernel (codegen/tvm/native)
        return Kernel(name, builder(node).with_attr("global_symbol", name), node)
    tile = chosen_winograd_tile(schedule, node)
    token, tile_token = SYMBOLS.set({}), WINOGRAD_TILE.set(tile)  # this kernel's TIR variables for SymDims
    try:
        params = [te.placeholder([extent(d) for d in x.shape], x.dtype, name=sanitize(x.name)) for x in node.inputs]
        if node.op == "fused":
            output, lifted = compose(node.subgraph, params)
        else:
            output, lifted = te_compute(node, params), []
        output = _as_compute(output, f"{name}_out")
    finally:
        SYMBOLS.reset(token)
        WINOGRAD_TILE.reset(tile_token)
    func = te.create_prim_func([*params, *(t for t, _ in lifted), output])
    sch = s_tir.Schedule(func)
    inline_stages(sch, pad_stage_names(output))
    if tile:
        _note_direct_info(sch, node, name)
    static = is_static_kernel(node)
    if schedule is not None:
        try:
            if static:
                schedule(sch, node)
            else:  # the schedules size tiles from loop extents, which a SymDim leaves unknown
                schedule_symbolic(sch)
        except s_tir.ScheduleError as e:
            raise LoweringError(f"schedule {schedule!r} failed on kernel {name}: {e}") from e
    if static:
        attach_epilogue(sch)
    constant_params = {sanitize(x.name) for x in node.inputs if x.op == "constant"} | {t.op.name for t, _ in lifted}
    prepack_only_constants(sch, constant_params)
    func = sch.mod["main"].with_attr("global_symbol", name)  # create_prim_func names every function "main"
    return Kernel(name, func, node, [array for _, array in lifted])
