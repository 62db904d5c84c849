"""TVM's own pipeline on the same PyTorch model, for the fusion chapter's side-by-side comparison.

    ref = relax_reference(model, example_inputs)                 # or layout="NHWC"
    ref.num_groups, ref.group_names                             # what FuseOps + FuseTIR made
    ref(*numpy_inputs)                                          # runs it (compiled on first call)

The pipeline, in the order that works in TVM 0.27:
1. `from_exported_program` imports the model with its weights as Relax constants;
2. `DecomposeOpsForInference` turns batch_norm into arithmetic, and `FoldBatchnormToConv2D` (optional)
   folds it into the conv weights, like our FoldBatchNorm;
3. `FoldConstant`, then (for NHWC) `ConvertLayout`, then `FoldConstant` again so the transposed
   weights become constants. FoldConstant must come first: ConvertLayout crashed on a bias-free conv
   whose folded weights were still expressions;
4. `LegalizeOps` (every Relax op -> a TE-generated PrimFunc), `AnnotateTIROpPattern` (classify each
   PrimFunc as elementwise / broadcast / injective / reduction / out-fusable), `FuseOps` (group by
   those kinds: the rules our ElementwiseFusionPass copies), `FuseTIR` (merge each group into one
   PrimFunc). Fusion needs legalised PrimFuncs: on un-legalised Relax ops it finds nothing to fuse.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tvm
from tvm import relax

from mlc_lab.codegen.target import TargetLike, resolve_target
from mlc_lab.interop import relax_from_torch

#: ConvertLayout's wish list for NHWC: conv activations NHWC, kernels OHWI. Pools and elementwise ops
#: follow their input's layout (naming a pool here fails a check inside ConvertLayout).
NHWC_LAYOUTS = {"relax.nn.conv2d": ["NHWC", "OHWI"]}


def prepare(mod: tvm.IRModule, layout: str = "NCHW", fold_batch_norm: bool = True) -> tvm.IRModule:
    """Steps 2 and 3 of the module docstring: inference rewrites, constant folding, layout."""
    passes = [relax.transform.DecomposeOpsForInference()]
    if fold_batch_norm:
        passes = [relax.transform.FoldBatchnormToConv2D(), *passes]
    passes += [relax.transform.CanonicalizeBindings(), relax.transform.FoldConstant()]
    if layout == "NHWC":
        passes += [relax.transform.ConvertLayout(NHWC_LAYOUTS), relax.transform.FoldConstant()]
    passes += [relax.transform.DeadCodeElimination()]
    return tvm.transform.Sequential(passes)(mod)


def fuse(mod: tvm.IRModule) -> tvm.IRModule:
    """Step 4: legalise, classify, fuse, merge."""
    seq = tvm.transform.Sequential(
        [
            relax.transform.LegalizeOps(),
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(),
            relax.transform.FuseOps(),
            relax.transform.FuseTIR(),
            relax.transform.DeadCodeElimination(),
        ]
    )
    return seq(mod)


def kernel_calls(mod: tvm.IRModule) -> list[str]:
    """The PrimFuncs `main` calls, in order (one entry per call_tir)."""
    return re.findall(r"R\.call_tir\((?:cls\.)?(\w+)", mod["main"].script())


@dataclass
class RelaxReference:
    """TVM's view of a model: the Relax module before and after fusion, and its kernel groups."""

    imported: tvm.IRModule  #: straight from the importer
    prepared: tvm.IRModule  #: after inference rewrites, constant folding and ConvertLayout
    fused: tvm.IRModule  #: after LegalizeOps, FuseOps, FuseTIR
    layout: str
    target: tvm.target.Target
    _vm: Any = field(default=None, repr=False)

    @property
    def group_names(self) -> list[str]:
        """One name per kernel call after fusion, like 'fused_conv2d_add_relu'."""
        return kernel_calls(self.fused)

    @property
    def num_groups(self) -> int:
        """Kernel launches per run after FuseOps + FuseTIR."""
        return len(self.group_names)

    @property
    def num_fused_groups(self) -> int:
        """Kernels that hold more than one op (TVM names them `fused_...`)."""
        return sum(name.startswith("fused_") for name in self.group_names)

    def group_counts(self) -> Counter:
        """Calls per kernel kind, TVM's numbering removed ('fused_conv2d1_add_relu1' -> 'fused_conv2d_add_relu')."""
        return Counter("_".join(t.rstrip("0123456789") for t in name.split("_")) for name in self.group_names)

    def compile(self) -> relax.VirtualMachine:
        """Build with TVM's default pipeline (no tuning: TVM's loops are as naive as ours unscheduled)."""
        if self._vm is None:
            start = time.perf_counter()
            executable = tvm.compile(self.fused, self.target)
            self.compile_seconds = time.perf_counter() - start
            self._vm = relax.VirtualMachine(executable, tvm.cpu())
        return self._vm

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        result = self.compile()["main"](*(tvm.runtime.tensor(np.require(x, requirements="C")) for x in inputs))
        return [t.numpy() for t in (result if isinstance(result, (list, tuple)) else list(result))]

    def time(self, *inputs: np.ndarray, repeat: int = 10) -> float:
        """Median seconds per run."""
        args = [tvm.runtime.tensor(np.require(x, requirements="C")) for x in inputs]
        return float(self.compile().time_evaluator("main", tvm.cpu(), number=1, repeat=repeat)(*args).median)


def relax_reference(
    model: Any,
    example_inputs: tuple,
    *,
    layout: str = "NCHW",
    fold_batch_norm: bool = True,
    target: TargetLike = "llvm",
) -> RelaxReference:
    """Import a PyTorch model into Relax and run TVM's fusion pipeline on it (see the module docstring)."""
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout {layout!r}: relax_reference supports 'NCHW' and 'NHWC'")
    imported = relax_from_torch(model, example_inputs)
    prepared = prepare(imported, layout, fold_batch_norm)
    target = resolve_target(target)
    with target:
        fused = fuse(prepared)
    return RelaxReference(imported, prepared, fused, layout, target)
