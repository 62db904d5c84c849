"""mlc_lab.codegen.tvm: compile a Graph with Apache TVM and run it on the CPU.

Every op node or fused group becomes one TensorIR PrimFunc (written in TE, see te_ops/), the
graph becomes a Relax module that calls them (relax_module.py), and `tvm.compile` + the Relax VM
run it (build.py). `mlc_lab.interop.relax_reference` runs TVM's own Relax pipeline on the same PyTorch
model, for comparison.
"""

from mlc_lab.codegen.tvm.build import CompiledGraph, build, host_target
from mlc_lab.codegen.tvm.lower import Kernel, LoweringError, ScheduleFn, lower_node
from mlc_lab.codegen.tvm.relax_module import lower_kernels, to_relax
from mlc_lab.codegen.tvm.schedule import default_schedule
from mlc_lab.codegen.tvm.te_ops import TE_OPS, UnsupportedOpError

__all__ = [
    "TE_OPS",
    "CompiledGraph",
    "Kernel",
    "LoweringError",
    "ScheduleFn",
    "UnsupportedOpError",
    "build",
    "default_schedule",
    "host_target",
    "lower_kernels",
    "lower_node",
    "to_relax",
]
