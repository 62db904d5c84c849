"""Tensor types: a shape and an element type. Every value in the IR has one."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

#: Element types the IR knows, with their short names used by the printer.
DTYPES: dict[str, str] = {
    "float32": "f32",
    "float64": "f64",
    "float16": "f16",
    "int8": "i8",
    "int32": "i32",
    "int64": "i64",
    "bool": "i1",
}
_SHORT_TO_DTYPE = {short: full for full, short in DTYPES.items()}


def canonical_dtype(dtype: object) -> str:
    """Normalise numpy/torch/str dtypes to one of DTYPES, or raise naming the bad one."""
    text = str(dtype).removeprefix("torch.")
    text = _SHORT_TO_DTYPE.get(text, text)
    try:
        text = np.dtype(text).name
    except TypeError:
        pass
    if text not in DTYPES:
        raise TypeError(f"unsupported dtype {dtype!r}; the IR supports {', '.join(DTYPES)}")
    return text


def _dimension(d: object, shape: object) -> int:
    """One dimension as an int; a bool, a fraction or a non-number is an error naming the shape."""
    if isinstance(d, (bool, np.bool_)) or (isinstance(d, float) and not d.is_integer()):
        raise ValueError(f"shape {shape!r}: dimension {d!r} is not an integer")
    try:
        return operator.index(d) if not isinstance(d, float) else int(d)
    except TypeError:
        raise ValueError(f"shape {shape!r}: dimension {d!r} is not an integer") from None


@dataclass(frozen=True)
class TensorType:
    """A static shape plus an element type; the IR has no dynamic shapes."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        shape = tuple(_dimension(d, self.shape) for d in self.shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"negative dimension in shape {list(shape)}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)  # a Python int: np.prod's int64 silently wraps around

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @classmethod
    def of(cls, array: np.ndarray) -> TensorType:
        return cls(tuple(array.shape), array.dtype.name)

    def __str__(self) -> str:
        return f"{DTYPES[self.dtype]}[{', '.join(map(str, self.shape))}]"
