"""The generated GPU code and the facts read from it: CUDA C, PTX, launch geometry, shared memory, registers.

`device_module(funcs, target)` runs TVM's TIR pipeline as `tvm.tirx.build` does and keeps the device half:
one PrimFunc per CUDA kernel (a PrimFunc with a padding stage becomes two kernels). From those:
- launch geometry: the `thread_extent` attributes (blockIdx.* extents = grid, threadIdx.* = block);
- shared memory: the kernel's `shared`-scope allocations (exact: the sizes the CUDA source declares);
- registers: `ptxas -v` on the PTX where a CUDA toolkit is installed (what ptxas allocates for LLVM's
  PTX of the same TIR; the CUDA C that runs is compiled by nvcc/NVRTC and may get a few more or fewer);
  otherwise an *estimate*: the virtual registers LLVM's PTX declares (`.reg .f32 %f<57>;`), 64-bit ones
  counted twice, capped at 255 and at what one block may use (65,536 / threads). PTX registers are
  unlimited and SSA-like, so the estimate is usually high: it predicts occupancy pessimistically.
  (The PTX may also allocate more shared memory than the CUDA C: LLVM's path stages cross-thread
  reductions in shared memory where CUDA C uses warp shuffles. The facts here are the CUDA C's.)
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tvm
from tvm.tirx.build import split_host_device_mods

from mlc_lab.codegen.tvm.gpu.target import find_ptxas, libdevice_lookup, target_arch

MAX_REGISTERS_PER_THREAD = 255
REGISTERS_PER_SM = 65536


@dataclass(frozen=True)
class DeviceKernel:
    """One CUDA kernel as generated: its launch geometry and the on-chip memory it asks for."""

    name: str
    grid: tuple[int, int, int]  #: blocks along x, y, z
    block: tuple[int, int, int]  #: threads per block along x, y, z
    shared_bytes: int  #: static shared memory per block
    local_bytes: int  #: per-thread "local" arrays (registers if indexed statically, else local memory)

    @property
    def blocks(self) -> int:
        return math.prod(self.grid)

    @property
    def threads_per_block(self) -> int:
        return math.prod(self.block)


def device_module(funcs: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """The device kernels of `funcs` (scheduled PrimFuncs) after TVM's TIR pipeline for `target`."""
    bound = target if target.host is not None else target.with_host(tvm.target.Target({"kind": "llvm"}))
    mod = tvm.tirx.transform.BindTarget(bound)(funcs)
    pipeline, _, finalize_device = tvm.tirx.get_default_tir_pipeline(bound)
    _, devices = split_host_device_mods(pipeline(mod))
    kernels = {}
    for device in devices.values():
        kernels.update(dict(finalize_device()(device).functions.items()))
    return tvm.IRModule(kernels)


def kernel_facts(device: tvm.IRModule) -> list[DeviceKernel]:
    """Launch geometry and on-chip allocations of every kernel, in the order TVM names them."""
    facts = []
    for gvar, func in sorted(device.functions.items(), key=lambda item: item[0].name_hint):
        extents: dict[str, int] = {}
        allocations: list[tvm.tirx.Buffer] = []
        _walk(func.body, extents, allocations)
        axes = ("x", "y", "z")
        grid = tuple(extents.get(f"blockIdx.{a}", 1) for a in axes)
        block = tuple(extents.get(f"threadIdx.{a}", 1) for a in axes)
        facts.append(
            DeviceKernel(
                name=str(func.attrs.get("global_symbol", gvar.name_hint)),
                grid=grid,
                block=block,
                shared_bytes=sum(_nbytes(b) for b in allocations if b.scope().startswith("shared")),
                local_bytes=sum(_nbytes(b) for b in allocations if b.scope() == "local"),
            )
        )
    return facts


def _nbytes(buffer: tvm.tirx.Buffer) -> int:
    dtype = tvm.DataType(str(buffer.dtype))
    return math.prod(int(d) for d in buffer.shape) * dtype.bits * dtype.lanes // 8


def _walk(stmt, extents: dict[str, int], allocations: list) -> None:
    """Collect thread extents and allocations (statements only: this TVM has no Python TIR visitor)."""
    kind = type(stmt).__name__
    if kind == "AttrStmt" and stmt.attr_key == "thread_extent":
        tag = stmt.node.thread_tag
        extents[tag] = max(extents.get(tag, 1), int(stmt.value))
    elif kind == "AllocBuffer":
        allocations.append(stmt.buffer)
    for child in ("body", "then_case", "else_case"):
        if getattr(stmt, child, None) is not None:
            _walk(getattr(stmt, child), extents, allocations)
    for child in getattr(stmt, "seq", ()):
        _walk(child, extents, allocations)


# -- source code ---------------------------------------------------------------------------------------------
def cuda_source(device: tvm.IRModule, target: tvm.target.Target) -> str:
    """CUDA C for the kernels (TVM's `target.build.cuda`; no GPU or CUDA toolkit needed)."""
    return tvm.get_global_func("target.build.cuda")(device, target).inspect_source()


#: TVM 0.27 writes __syncthreads for NVPTX as `llvm.nvvm.barrier.cta.sync.aligned.all()`, but the LLVM in
#: the wheel (21+) wants its barrier id, `(i32 0)`: module verification fails on every kernel with shared
#: memory. The same intrinsic called with the id is what CUDA's __syncthreads() is.
_TVM_SYNC = 'T.tvm_storage_sync("shared")'
_NVPTX_SYNC = 'T.call_llvm_intrin("void", "llvm.nvvm.barrier.cta.sync.aligned.all", 0)'
#: TVM turns a * b + c into libdevice's scalar `__nv_fmaf` even on vectors (float32x4), which LLVM rejects
#: or ptxas cannot link; written back as a * b + c, LLVM forms the (vector) FMA itself.
_VECTOR_FMA = re.compile(r'T\.call_pure_extern\("float\d+x\d+", "__nv_fmaf?", ')


def _unvectorize_fma(script: str) -> str:
    out, pos = [], 0
    for m in _VECTOR_FMA.finditer(script):
        if m.start() < pos:
            continue
        args, end = _call_args(script, m.end())
        out += [script[pos : m.start()], f"({args[0]} * {args[1]} + {args[2]})"]
        pos = end
    return "".join(out) + script[pos:]


def _call_args(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments from `start` to the call's closing parenthesis, and the index after it."""
    args, depth, begin = [], 0, start
    for i in range(start, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append(text[begin:i].strip())
                return args, i + 1
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[begin:i].strip())
            begin = i + 1
    raise ValueError("unbalanced call in TVMScript")


def ptx_source(device: tvm.IRModule, target: tvm.target.Target) -> str:
    """PTX for the kernels via LLVM's NVPTX backend (`target.build.nvptx`; `device` lowered for nvptx).

    Three fixes for TVM 0.27 against its newer LLVM: the barrier call and vector FMAs (above); kernels come out as
    `.func` (LLVM 20 dropped the `nvvm.annotations` kernel marker TVM still writes), so each kernel's
    `.visible .func` becomes `.visible .entry`, as CUDA C's `__global__` functions are. libdevice is
    linked only into kernels that call a math function (linking it costs a second per module).
    """
    script = device.script()
    fixed = _unvectorize_fma(script.replace(_TVM_SYNC, _NVPTX_SYNC))
    if fixed != script:
        device = tvm.script.parse(fixed, check_well_formed=False)
    build = tvm.get_global_func("target.build.nvptx")
    with libdevice_lookup(""):
        ptx = build(device, target).inspect_source()
    if ".extern .func" in ptx and "__nv_" in ptx:
        with libdevice_lookup():
            ptx = build(device, target).inspect_source()
    for gvar, func in device.functions.items():
        if int(func.attrs.get("calling_conv", 0)) == 2:  # a kernel launched from the host
            name = func.attrs.get("global_symbol", gvar.name_hint)
            ptx = re.sub(rf"\.visible \.func\s+{name}\(", f".visible .entry {name}(", ptx)
    return ptx


_SHARED_DECL = re.compile(r"__shared__\s+(?:alignas\(\d+\)\s+)?(\w+)\s+\w+\[(\d+)\]")
_CUDA_BYTES = {"float": 4, "half": 2, "double": 8, "int": 4, "uint": 4, "int64_t": 8, "float2": 8, "float4": 16}


def cuda_shared_bytes(source: str) -> dict[str, int]:
    """Static `__shared__` bytes declared per kernel in CUDA source (a check on `DeviceKernel.shared_bytes`)."""
    found: dict[str, int] = {}
    for name, body in _cuda_kernels(source).items():
        found[name] = sum(_CUDA_BYTES.get(t, 4) * int(n) for t, n in _SHARED_DECL.findall(body))
    return found


def _cuda_kernels(source: str) -> dict[str, str]:
    """Kernel name -> its body text, for kernels defined (not only declared) in `source`."""
    heads = list(re.finditer(r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\([^)]*\)\s*\{', source))
    return {
        m.group(1): source[m.end() : heads[k + 1].start() if k + 1 < len(heads) else len(source)]
        for k, m in enumerate(heads)
    }


# -- registers ------------------------------------------------------------------------------------------------
_PTX_ENTRY = re.compile(r"\.entry\s+(\w+)\s*\(")
_PTX_REG = re.compile(r"\.reg\s+\.(\w+)\s+%\w+<(\d+)>;")
_REG_WORDS = {"pred": 0, "b16": 1, "f16": 1, "u16": 1, "s16": 1, "b64": 2, "f64": 2, "u64": 2, "s64": 2}


def ptx_register_estimate(ptx: str, threads_per_block: dict[str, int] | None = None) -> dict[str, int]:
    """Per kernel, 32-bit registers its PTX declares (64-bit count 2), capped at 255 and at 65,536 over the
    kernel's threads per block where given (ptxas must fit a block on an SM): an estimate."""
    entries = list(_PTX_ENTRY.finditer(ptx))
    found = {}
    for k, m in enumerate(entries):
        body = ptx[m.end() : entries[k + 1].start() if k + 1 < len(entries) else len(ptx)]
        words = sum(_REG_WORDS.get(kind, 1) * int(n) for kind, n in _PTX_REG.findall(body))
        cap = MAX_REGISTERS_PER_THREAD
        if threads_per_block and m.group(1) in threads_per_block:
            cap = min(cap, REGISTERS_PER_SM // threads_per_block[m.group(1)] // 8 * 8)
        found[m.group(1)] = max(1, min(words, cap))
    return found


def ptxas_registers(ptx: str, arch: str, timeout_s: float = 60) -> dict[str, int] | None:
    """Per kernel, registers ptxas allocates (`ptxas -v`), or None where no ptxas is installed."""
    ptxas = find_ptxas()
    if ptxas is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernels.ptx"
        path.write_text(ptx)
        run = subprocess.run(
            [ptxas, f"-arch={arch}", "-v", "-o", str(Path(tmp) / "kernels.cubin"), str(path)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if run.returncode != 0:
        return None  # e.g. a math call left unresolved without libdevice: fall back to the estimate
    found, current = {}, None
    for line in run.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line) or re.search(r"Function properties for (\w+)", line)
        if m:
            current = m.group(1)
        m = re.search(r"Used (\d+) registers", line)
        if m and current:
            found[current] = int(m.group(1))
    return found


def registers_per_kernel(
    ptx: str, target: tvm.target.Target, threads_per_block: dict[str, int] | None = None
) -> tuple[dict[str, int], str]:
    """(kernel -> registers per thread, where the numbers come from: "ptxas" or "PTX estimate")."""
    exact = ptxas_registers(ptx, target_arch(target))
    if exact:
        return exact, "ptxas"
    return ptx_register_estimate(ptx, threads_per_block), "PTX estimate"


def inspect_kernel(func: tvm.tirx.PrimFunc, target: object = "cuda") -> tuple[str, list[DeviceKernel]]:
    """(CUDA C, kernel facts) of one scheduled PrimFunc: what a chapter or a check reads off a schedule."""
    from mlc_lab.codegen.tvm.gpu.target import gpu_target

    cuda = gpu_target(target)
    name = str(func.attrs.get("global_symbol", "main")) if func.attrs is not None else "main"
    device = device_module(tvm.IRModule({name: func.with_attr("global_symbol", name)}), cuda)
    return cuda_source(device, cuda), kernel_facts(device)
