"""Backends: where a graph runs. The reference is `mlc_lab.interpret`; `custom` holds accelerator models."""

from mlc_lab.backends.custom import (
    CerebrasLikeBackend,
    ConfigError,
    DataflowBackend,
    MappingError,
    SystolicArrayBackend,
)

__all__ = ["CerebrasLikeBackend", "ConfigError", "DataflowBackend", "MappingError", "SystolicArrayBackend"]
