"""Pack constant weights once, at build time, instead of on every call.

A register-tiled contraction reads its weight in a packed layout (`mlc_lab.codegen.tiling`: the vector
tile innermost, BLAS's packed B), copied by a block the schedule marks `PREPACK_ANNOTATION`. Left in
the kernel, that copy runs on every call: for a transformer's 512x128 dense, 256 kB read and written
per call. Here TVM's `SplitLayoutRewritePreproc` moves each marked block into a kernel of its own
(`<kernel>_weight_prepack`, called before `<kernel>_prepacked`), and `fold_prepacks` runs that kernel
on this machine where its input is a Relax constant, so the module holds the packed constant and the
model's kernels read it as it is.

Only prepack calls are folded (not every call on constants, as Relax's FoldConstant would): a graph
output computed from constants alone must stay a kernel, or the VM would return the same constant's
memory on every call. A weight that is a graph input keeps its prepack call (packed on every call, as before).
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

#: Suffix TVM's SplitLayoutRewritePreproc gives the kernel it splits off.
PREPACK_SUFFIX = "_weight_prepack"


def prepack_constants(module: tvm.IRModule) -> tvm.IRModule:
    """Split every marked weight-packing block off its kernel, and run it now on constant weights."""
    split = relax.transform.SplitLayoutRewritePreproc()(module)
    if split.same_as(module):
        return module
    return relax.transform.DeadCodeElimination(["main"])(fold_prepacks(split))


def fold_prepacks(module: tvm.IRModule) -> tvm.IRModule:
    """Replace each `call_tir(<x>_weight_prepack, constants)` in `main` by its result, a constant."""
    folder = _PrepackFolder(module)
    module = module.copy() if hasattr(module, "copy") else module
    module["main"] = folder.visit_expr(module["main"])
    return module


@relax.expr_functor.mutator
class _PrepackFolder(relax.PyExprMutator):
    def __init__(self, module: tvm.IRModule) -> None:
        super().__init__(module)
        self.module = module
        self.compiled: dict[str, tvm.runtime.Module] = {}  #: one build per prepack kernel

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.call_tir"):
            return call
        callee, args = call.args[0], call.args[1]
        if not (isinstance(callee, relax.GlobalVar) and callee.name_hint.endswith(PREPACK_SUFFIX)):
            return call
        fields = args.fields if isinstance(args, relax.Tuple) else [args]
        if not all(isinstance(a, tvm.ir.GenericConst) for a in fields):
            return call
        return relax.const(self._run(callee, [a.value.numpy() for a in fields], call.ty), call.ty.dtype)

    def _run(self, callee: relax.GlobalVar, inputs: list[np.ndarray], out_ty) -> np.ndarray:
        name = callee.name_hint
        if name not in self.compiled:
            func = self.module[callee].with_attr("global_symbol", "main")
            # built for the machine doing the build (it runs here), whatever the model's target is
            self.compiled[name] = tvm.compile(tvm.IRModule({"main": func}), "llvm")
        out = tvm.runtime.empty([int(d) for d in out_ty.shape], out_ty.dtype, tvm.cpu())
        self.compiled[name]["main"](*[tvm.runtime.tensor(x) for x in inputs], out)
        return out.numpy()


def prepacked_kernel(func: tvm.tirx.PrimFunc, args: list[np.ndarray], constant: list[bool]):
    """`func` as the model runs it: (the PrimFunc left after packing, its arguments with the constant
    weights packed), so a kernel timed alone (the tuner's trials) pays no packing the model does not pay.

    `args` are the arrays of `func`'s inputs (output excluded); `constant[i]` says whether the model
    holds input i as a constant. Without a marked packing block, `func` and `args` come back as they are.
    """
    bb = relax.BlockBuilder()
    params = [relax.Var(f"a{i}", relax.TensorType(list(a.shape), a.dtype.name)) for i, a in enumerate(args)]
    free = [p for p, is_const in zip(params, constant) if not is_const]
    out_ty = func.ty.params[-1]  # the output buffer's tensor type
    with bb.function("main", free):
        with bb.dataflow():
            gv = bb.add_func(func, "kernel")
            call_args = [relax.const(a, a.dtype.name) if c else p for a, c, p in zip(args, constant, params)]
            result = bb.emit_output(bb.emit(relax.call_tir(gv, call_args, out_ty)))
        bb.emit_func_output(result)
    module = prepack_constants(bb.get())
    bindings = [b for block in module["main"].body.blocks for b in block.bindings]
    value = {b.var: b.value for b in bindings}  # a folded prepack is bound to a var: lv = <constant>
    call = next(b.value for b in bindings if isinstance(b.value, relax.Call))
    given = dict(zip(free, (a for a, c in zip(args, constant) if not c)))
    arrays = []
    for arg in call.args[1].fields:
        arg = value.get(arg, arg)
        arrays.append(arg.value.numpy() if isinstance(arg, tvm.ir.GenericConst) else given[arg])
    return module[call.args[0]], arrays
