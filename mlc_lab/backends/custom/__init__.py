"""Custom accelerator backends: a systolic array, a wafer-scale processor, a CGRA-like dataflow engine.

Each has `compile(graph) -> CompiledProgram` and `execute(program, inputs) -> (outputs, report)`.
"""

from mlc_lab.backends.custom.base import CompiledProgram, ConfigError, LayerReport, MappingError, Report
from mlc_lab.backends.custom.systolic import SystolicArrayBackend, SystolicProgram, SystolicReport

__all__ = [
    "CompiledProgram",
    "ConfigError",
    "LayerReport",
    "MappingError",
    "Report",
    "SystolicArrayBackend",
    "SystolicProgram",
    "SystolicReport",
]
