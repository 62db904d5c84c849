"""Node -> scheduled PrimFunc, through the compiler's own lowering.

`lower(node, hook)` returns the PrimFunc `mlc_lab.codegen.tvm.build` compiles for `node` with `hook`
as its schedule, plus the arrays of constants the kernel takes as extra inputs. Tuning through
this one function is what makes a tuned config apply to exactly the kernel the compiler builds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlc_lab.ir.graph import Node

ScheduleHook = Callable[..., None]


def lower(node: Node, hook: ScheduleHook | None) -> tuple[object, list[np.ndarray]]:
    from mlc_lab.codegen.tvm.lower import lower_node

    kernel = lower_node(node, schedule=hook)
    return kernel.func, list(kernel.constants)
