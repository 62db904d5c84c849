"""IR listings a page can show whole: long lines wrapped, and cuts to the lines the text discusses.

MLIR prints one op per line, and a `linalg.generic` line (its indexing maps, iterator types, operands
and types) easily runs past 150 characters; a page cuts such a line off exactly where the part the
text explains begins. `wrap` breaks long lines before `ins(`, `outs(`, `attrs`, `->` and, if that is
not enough, at spaces, indenting the continuation; `between` keeps the lines from one marker to another.
"""

from __future__ import annotations

import re
import textwrap

#: Where a long op line breaks first: before its operand lists, attributes and result types.
BREAKS = re.compile(r" (?=ins\(|outs\(|attrs = |-> |iterator_types = |permutation_map = )")


def wrap(text: str, width: int = 96) -> str:
    """`text` with every line longer than `width` broken into indented continuation lines."""
    out = []
    for line in str(text).splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        pieces = BREAKS.split(line.strip())
        for k, piece in enumerate(pieces):
            first = indent if k == 0 else indent + "    "
            later = indent + "        "
            out += textwrap.wrap(
                piece,
                width,
                initial_indent=first,
                subsequent_indent=later,
                break_long_words=False,
                break_on_hyphens=False,
            ) or [first]
    return "\n".join(out)


def between(text: str, start: str, end: str | None = None, width: int = 96) -> str:
    """The wrapped lines from the first containing `start` to the next containing `end` (inclusive).

    Without `end`, only the block that starts there: up to the line that closes its indentation.
    Raises ValueError naming the marker when it is not in the text (a listing that silently shows
    nothing would hide that the IR changed).
    """
    lines = str(text).splitlines()
    first = next((i for i, line in enumerate(lines) if start in line), None)
    if first is None:
        raise ValueError(f"{start!r} does not occur in the IR")
    if end is None:
        depth = len(lines[first]) - len(lines[first].lstrip())
        last = next(
            (i for i in range(first + 1, len(lines)) if len(lines[i]) - len(lines[i].lstrip()) <= depth),
            len(lines) - 1,
        )
    else:
        last = next((i for i in range(first, len(lines)) if end in lines[i]), None)
        if last is None:
            raise ValueError(f"{end!r} does not occur after {start!r} in the IR")
    return wrap("\n".join(lines[first : last + 1]), width)


def show(module: object, width: int = 96, names: bool = False, elide: int = 4) -> str:
    """A module's listing for a page: constants over `elide` elements elided, long lines wrapped.

    `names=False` prints plain SSA numbers (`%0`, `%1`): after a transformation the node-name prefixes
    of the emitter (`%fc_bias`) land on ops the node never had (hoisted constants, loop bounds) and mislead.
    """
    operation = module.module.operation if hasattr(module, "module") else module.operation
    return wrap(operation.get_asm(large_elements_limit=elide, use_name_loc_as_prefix=names), width)
