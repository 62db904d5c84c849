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


@dataclass(frozen=True)
class SymDim:
    """A dimension known only at run time (a sequence length), at most `upper`: `SymDim("n", upper=256)`.

    Two SymDims with the same name are the same length wherever they appear in a graph; the
    interpreter binds the name from the actual input shapes and refuses a length above `upper`.
    Sizes (memory limits, costs) use `upper`, the most the dimension can be.
    """

    name: str
    upper: int

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"SymDim name {self.name!r} is not an identifier")
        if isinstance(self.upper, bool) or not isinstance(self.upper, (int, np.integer)) or self.upper < 1:
            raise ValueError(f"SymDim {self.name!r}: upper bound must be a positive int, got {self.upper!r}")
        object.__setattr__(self, "upper", int(self.upper))

    def __str__(self) -> str:
        return f"{self.name}<={self.upper}"


#: A dimension: a static size or a symbolic one.
Dim = int | SymDim


def upper(d: Dim) -> int:
    """The largest value a dimension can take (itself, for a static one)."""
    return d.upper if isinstance(d, SymDim) else d


def is_static(shape: tuple[Dim, ...]) -> bool:
    return not any(isinstance(d, SymDim) for d in shape)


def bind_shape(shape: tuple[Dim, ...], sizes: dict[str, int]) -> tuple[int, ...]:
    """`shape` with every SymDim replaced by its bound size (KeyError for an unbound one)."""
    return tuple(sizes[d.name] if isinstance(d, SymDim) else d for d in shape)


def broadcast_shapes(*shapes: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """NumPy's broadcasting rule over static and symbolic dimensions.

    A symbolic dimension broadcasts against 1 and against itself; against any other size it is an
    error (ValueError), since it could be a different length at run time.
    """
    if all(is_static(s) for s in shapes):
        return tuple(np.broadcast_shapes(*shapes))
    rank = max(len(s) for s in shapes)
    result: list[Dim] = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            sizes = sorted(map(str, dims))
            raise ValueError(f"shapes {[list(s) for s in shapes]} do not broadcast (axis {axis}: {sizes})")
        result.append(dims.pop() if dims else 1)
    return tuple(result)


def _dimension(d: object, shape: object) -> Dim:
    """One dimension as an int or a SymDim; a bool, a fraction or a non-number is an error naming the shape."""
    if isinstance(d, SymDim):
        return d
    if isinstance(d, (bool, np.bool_)) or (isinstance(d, float) and not d.is_integer()):
        raise ValueError(f"shape {shape!r}: dimension {d!r} is not an integer")
    try:
        return operator.index(d) if not isinstance(d, float) else int(d)
    except TypeError:
        raise ValueError(f"shape {shape!r}: dimension {d!r} is not an integer") from None


@dataclass(frozen=True)
class TensorType:
    """A shape plus an element type. A dimension is an int or a `SymDim` (a run-time length with a bound)."""

    shape: tuple[Dim, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        shape = tuple(_dimension(d, self.shape) for d in self.shape)
        if any(upper(d) < 0 for d in shape):
            raise ValueError(f"negative dimension in shape {list(shape)}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return is_static(self.shape)

    @property
    def symbols(self) -> dict[str, SymDim]:
        """The symbolic dimensions of this type, by name."""
        return {d.name: d for d in self.shape if isinstance(d, SymDim)}

    @property
    def numel(self) -> int:
        """Elements (at most: a symbolic dimension counts as its upper bound)."""
        return math.prod(upper(d) for d in self.shape)  # a Python int: np.prod's int64 silently wraps around

    def bind(self, sizes: dict[str, int]) -> TensorType:
        """This type with its symbolic dimensions replaced by `sizes`."""
        return TensorType(bind_shape(self.shape, sizes), self.dtype) if not self.is_static else self

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
