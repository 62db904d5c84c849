"""Custom accelerator backends: a systolic array, a wafer-scale processor, a CGRA-like dataflow engine.

Each has `compile(graph) -> CompiledProgram` and `execute(program, inputs) -> (outputs, report)`;
outputs equal `mlc_lab.interpret`, reports hold cycles, utilization, traffic and time.
"""

from mlc_lab.backends.custom.base import CompiledProgram, ConfigError, LayerReport, MappingError, Report
from mlc_lab.backends.custom.dataflow import DataflowBackend, DataflowProgram, DataflowReport
from mlc_lab.backends.custom.systolic import SystolicArrayBackend, SystolicProgram, SystolicReport
from mlc_lab.backends.custom.wafer import CerebrasLikeBackend, WaferProgram, WaferReport

__all__ = [
    "CerebrasLikeBackend",
    "CompiledProgram",
    "ConfigError",
    "DataflowBackend",
    "DataflowProgram",
    "DataflowReport",
    "LayerReport",
    "MappingError",
    "Report",
    "SystolicArrayBackend",
    "SystolicProgram",
    "SystolicReport",
    "WaferProgram",
    "WaferReport",
]
