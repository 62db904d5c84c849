"""Running emitted MLIR on the CPU, two ways.

- IREE (`compile_iree`): IREE's optimizing compiler (tiling, vectorization, weight packing) with
  the llvm-cpu backend for this machine's CPU, run by IREE's runtime. This is the fast path.
- The upstream path (`compile_jit`): our own pass pipeline (`pipeline.py`) lowers the module all the
  way to the LLVM dialect and MLIR's ExecutionEngine JIT-compiles it. Plain loops, so slow, but every
  step is upstream MLIR you can print.

Both run a function with dynamic dimensions (`tensor<?x...>`, from a graph with `SymDim`s) at every
size from one compiled artifact. Given the graph, they check each call's inputs with the interpreter's
`check_inputs` (the check TVM's CompiledGraph makes): a size above a SymDim's bound, or two sizes for
one SymDim, is refused with a message naming the input and axis, before the compiled code runs.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence

import numpy as np

from mlc_lab.codegen.mlir.module import MLIRModule
from mlc_lab.ir import Graph
from mlc_lab.ir.interpreter import InterpreterError, bind_inputs, fresh_outputs

#: `host`: compile for this machine's CPU (AVX-512 etc.). IREE demotes f64 to f32 by default, which
#: silently changes a float64 graph's signature: keep f64 as it is.
IREE_FLAGS = ("--iree-llvmcpu-target-cpu=host", "--iree-input-demote-f64-to-f32=false")


class IREEFunction:
    """A compiled entry point: NumPy arrays in, a list of NumPy arrays out.

    Safe to call from several threads: IREE does not promise that one VM context takes concurrent
    invocations, so calls take a lock and run one at a time (the uncontended lock costs ~0.2 us).
    Each output is the caller's own: IREE hands back one value returned twice as one buffer, and such
    outputs (or any that could be an input) are copied.
    """

    def __init__(
        self, vmfb: bytes, entry: str = "main", driver: str = "local-sync", graph: Graph | None = None
    ) -> None:
        import iree.runtime as rt

        self.vmfb = vmfb
        self.driver = driver
        self.graph = graph  #: when given, each call's inputs are checked against it (shapes, dtypes, SymDim bounds)
        self._module = rt.load_vm_flatbuffer(vmfb, driver=driver)
        self._fn = self._module[entry]
        self._lock = threading.Lock()

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        results = self.call_on_device(*arrays)
        outputs = [np.asarray(r.to_host() if hasattr(r, "to_host") else r) for r in results]
        return fresh_outputs(outputs, arrays)

    def call_on_device(self, *args: object) -> list[object]:
        """Call with NumPy arrays or IREE DeviceArrays (passed as they are, never copied); outputs stay
        DeviceArrays. For a loop that feeds outputs back as inputs (a K/V cache): nothing goes through NumPy."""
        import iree.runtime as rt

        on_host = not any(isinstance(a, rt.DeviceArray) for a in args)
        if self.graph is not None and on_host:  # device arrays came out of this module: shapes already bound
            args = tuple(_checked(self.graph, args)[0])
        # np.require, not ascontiguousarray: the latter makes 0-d arrays 1-d
        inputs = [a if isinstance(a, rt.DeviceArray) else np.require(a, requirements="C") for a in args]
        with self._lock:
            result = self._fn(*inputs)
        return list(result) if isinstance(result, (tuple, list)) else [result]


def compile_vmfb(text: str, extra_args: Sequence[str] = ()) -> bytes:
    """MLIR text -> an IREE VM flatbuffer for this CPU (IREE parses and re-verifies the text itself)."""
    import iree.compiler as ic

    from mlc_lab.codegen.mlir.iree_workarounds import guard_reductions

    text = guard_reductions(text)
    return ic.compile_str(text, target_backends=["llvm-cpu"], extra_args=[*IREE_FLAGS, *extra_args])


def compile_iree(
    module: MLIRModule | str,
    entry: str = "main",
    driver: str = "local-sync",
    extra_args: Sequence[str] = (),
    graph: Graph | None = None,
) -> IREEFunction:
    """Compile with IREE; `driver` "local-sync" runs on the calling thread, "local-task" uses a pool.
    `graph` (the one emitted): calls are checked against its inputs."""
    text = module.text if isinstance(module, MLIRModule) else module
    return IREEFunction(compile_vmfb(text, extra_args), entry, driver, graph)


def _checked(graph: Graph, arrays: Sequence[np.ndarray]) -> tuple[list[np.ndarray], dict[str, int]]:
    """The interpreter's input check (with each SymDim's size), as a ValueError like TVM's CompiledGraph."""
    try:
        return bind_inputs(graph, tuple(arrays))
    except InterpreterError as e:
        raise ValueError(str(e)) from None


# -- the upstream path: fully lowered LLVM dialect + ExecutionEngine ----------------------------------
class JITFunction:
    """Calls a function lowered with `pipeline.LLVM_STAGES`: results become out-parameters (memrefs)."""

    def __init__(
        self,
        llvm_module: MLIRModule,
        input_types: Sequence[tuple[tuple[int, ...], str]],
        output_types: Sequence[tuple[tuple[int, ...], str]],
        entry: str = "main",
        opt_level: int = 2,
        graph: Graph | None = None,
    ) -> None:
        from torch_mlir.execution_engine import ExecutionEngine

        self.inputs, self.outputs, self.entry = list(input_types), list(output_types), entry
        #: when given, inputs are checked against it and dynamic output shapes are bound from the inputs
        self.graph = graph
        self.engine = ExecutionEngine(llvm_module.module, opt_level=opt_level)
        # memref.copy between strided views lowers to a call of `memrefCopy`, a helper from MLIR's
        # runtime library that the wheel does not ship: we provide it (symbols resolve lazily).
        self.engine.raw_register_runtime("memrefCopy", ctypes.cast(_MEMREF_COPY, ctypes.c_void_p))

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        from torch_mlir.runtime import get_ranked_memref_descriptor

        shapes = [shape for shape, _ in self.outputs]
        if self.graph is not None:
            arrays_, sizes = _checked(self.graph, arrays)
            arrays, shapes = tuple(arrays_), [o.type.bind(sizes).shape for o in self.graph.outputs]
        # the caller allocates the results, so a dynamic one needs its size before the call: from the graph
        outs = [np.zeros(shape, dtype) for shape, (_, dtype) in zip(shapes, self.outputs)]
        ins = [np.require(a, requirements="C") for a in arrays]
        descriptors = [get_ranked_memref_descriptor(a) for a in ins + outs]
        pointers = [ctypes.pointer(ctypes.pointer(d)) for d in descriptors]
        # buffer-results-to-out-params puts the inputs first, then one out-parameter per result:
        # the function writes its results straight into our NumPy arrays.
        self.engine.invoke(self.entry, *pointers)
        return outs


class _UnrankedMemRef(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int64), ("descriptor", ctypes.c_void_p)]


def _strided_view(memref: _UnrankedMemRef, elem_size: int) -> np.ndarray:
    """A NumPy view of a ranked memref descriptor: {allocated, aligned, offset, sizes[r], strides[r]}."""
    rank = memref.rank
    fields = (ctypes.c_int64 * (3 + 2 * rank)).from_address(memref.descriptor)
    aligned, offset = fields[1], fields[2]
    sizes, strides = list(fields[3 : 3 + rank]), list(fields[3 + rank : 3 + 2 * rank])
    span = 1 + sum((n - 1) * s for n, s in zip(sizes, strides)) if all(sizes) else 0
    raw = (ctypes.c_char * (max(span, 1) * elem_size)).from_address(aligned + offset * elem_size)
    flat = np.frombuffer(raw, dtype=np.dtype(f"V{elem_size}"))
    return np.lib.stride_tricks.as_strided(flat, sizes, [s * elem_size for s in strides])


@ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.POINTER(_UnrankedMemRef), ctypes.POINTER(_UnrankedMemRef))
def _MEMREF_COPY(elem_size: int, src: object, dst: object) -> None:  # noqa: N802
    _strided_view(dst.contents, elem_size)[...] = _strided_view(src.contents, elem_size)


def compile_jit(graph: object, opt_level: int = 2) -> JITFunction:
    """Emit `graph`, lower it with the upstream pipeline to LLVM, and JIT it with MLIR's ExecutionEngine."""
    from mlc_lab.codegen.mlir import emit
    from mlc_lab.codegen.mlir.pipeline import lower_to_llvm

    llvm = lower_to_llvm(emit(graph))
    sig = lambda nodes: [(n.shape, n.dtype) for n in nodes]  # noqa: E731
    return JITFunction(llvm, sig(graph.inputs), sig(graph.outputs), opt_level=opt_level, graph=graph)
