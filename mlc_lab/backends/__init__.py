"""Backends: where a graph runs. The reference is `mlc_lab.interpret`; `custom` holds accelerator models."""

from mlc_lab.backends.custom import SystolicArrayBackend

__all__ = ["SystolicArrayBackend"]
