"""Memory passes: choosing tensor layouts, and planning where intermediate tensors live."""

from mlc_lab.passes.memory.buffer_planner import MemoryPlan, lifetimes, plan_memory
from mlc_lab.passes.memory.cancel import CancelLayoutTransforms
from mlc_lab.passes.memory.layout import MemoryLayout, MemoryLayoutOptimizer

__all__ = ["CancelLayoutTransforms", "MemoryLayout", "MemoryLayoutOptimizer", "MemoryPlan", "lifetimes", "plan_memory"]
