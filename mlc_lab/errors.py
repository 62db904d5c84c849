"""The package-wide base error: `except MlcLabError` catches every error mlc_lab raises on purpose.

Each error class also keeps the built-in base it had (`ValueError` for bad input, `RuntimeError` for a
failed step), so code that catches those keeps working. This module imports nothing: every layer,
core included, can take its base class from here.
"""

from __future__ import annotations

__all__ = ["MlcLabError"]


class MlcLabError(Exception):
    """An error mlc_lab raises on purpose, with a message that names the op, node, file or value at fault."""
