"""Our MLIR next to torch-mlir's for the same model: how big each IR is, stage by stage.

torch-mlir's path is PyTorch's own: FX graph -> `torch` dialect -> linalg on tensors (its
`export_and_import`). Ours is torch.export -> mlc_lab Graph -> `emit`. From linalg on tensors on,
both modules go through the same upstream stages (`pipeline.STAGES`), so the sizes are comparable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlc_lab.codegen.mlir.module import MLIRModule
from mlc_lab.codegen.mlir.pipeline import STAGES, Stage, lower


@dataclass(frozen=True)
class IRSize:
    """The size of one module: printed lines (weights elided), ops in total, linalg ops, functions."""

    lines: int
    ops: int
    linalg_ops: int

    @classmethod
    def of(cls, module: MLIRModule) -> IRSize:
        counts = module.op_counts()
        return cls(
            lines=len(str(module).splitlines()),
            ops=sum(counts.values()),
            linalg_ops=sum(n for op, n in counts.items() if op.startswith("linalg.") and op != "linalg.yield"),
        )


def torch_mlir_module(model: Any, example_inputs: Sequence[Any], output_type: str = "linalg-on-tensors") -> MLIRModule:
    """torch-mlir's FX importer, kept as a module of the same (torch-mlir) bindings we use."""
    from torch_mlir import fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = fx.export_and_import(model.eval(), *example_inputs, output_type=output_type)
    return MLIRModule(module.operation.get_asm(enable_debug_info=True), module)


def compare(
    ours: MLIRModule, theirs: MLIRModule, torch_dialect: MLIRModule | None = None, stages: Sequence[Stage] = STAGES
) -> list[tuple[str, IRSize | None, IRSize]]:
    """[(stage, our size, torch-mlir's size)]; the "torch" row has no counterpart on our side."""
    rows: list[tuple[str, IRSize | None, IRSize]] = []
    if torch_dialect is not None:
        rows.append(("torch dialect", None, IRSize.of(torch_dialect)))
    for (name, a), (_, b) in zip(lower(ours, stages), lower(theirs, stages)):
        rows.append(("linalg on tensors" if name == "input" else name, IRSize.of(a), IRSize.of(b)))
    return rows


def format_table(rows: Sequence[tuple[str, IRSize | None, IRSize]]) -> str:
    """A plain-text table: lines / ops / linalg ops for each side."""
    columns = f"{'ops':>6s} {'linalg':>6s}"
    head = f"{'stage':20s} {'ours: lines':>11s} {columns}   {'torch-mlir: lines':>17s} {columns}"
    out = [head, "-" * len(head)]
    for stage, a, b in rows:
        left = f"{a.lines:11d} {a.ops:6d} {a.linalg_ops:6d}" if a else f"{'-':>11s} {'-':>6s} {'-':>6s}"
        out.append(f"{stage:20s} {left}   {b.lines:17d} {b.ops:6d} {b.linalg_ops:6d}")
    return "\n".join(out)


def compare_zoo_model(name: str, stages: Sequence[Stage] = STAGES) -> list[tuple[str, IRSize | None, IRSize]]:
    """Both paths for one model of the zoo (ours from `zoo.load(name).graph()`)."""
    from mlc_lab import zoo
    from mlc_lab.codegen.mlir import emit

    model = zoo.load(name)
    theirs = torch_mlir_module(model.module, model.example_inputs)
    torch_ir = torch_mlir_module(model.module, model.example_inputs, output_type="torch")
    return compare(emit(model.graph()), theirs, torch_ir, stages)
