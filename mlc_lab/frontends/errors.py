"""The errors every frontend raises, in a module of their own so that importing them needs no framework.

(The ONNX and TensorFlow importers must not pull in PyTorch just to name an error.)
"""

from __future__ import annotations

from mlc_lab.errors import MlcLabError

__all__ = ["FrontendError", "UnsupportedOpError"]


class FrontendError(MlcLabError, ValueError):
    """The model uses something the importer cannot express faithfully; the message says what and where."""


class UnsupportedOpError(FrontendError):
    """An op of the source framework has no converter in the importer's table."""
