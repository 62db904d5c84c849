"""IR listings a page can show whole: long lines wrapped, and cuts to the lines the text discusses.

MLIR prints one op per line, and a `linalg.generic` line (its indexing maps, iterator types, operands
and types) easily runs past 150 characters; a page cuts such a line off exactly where the part the
text explains begins. `wrap` breaks long lines before `ins(`, `outs(`, `attrs`, `->` and, if that is
not enough, at spaces, indenting the continuation; `between` keeps the lines from one marker to another.
`show` prints a module for a page.
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


def between(
    ir: object,
    start: str,
    end: str | None = None,
    width: int = 96,
    occurrence: int = 0,
    names: bool = False,
) -> str:
    """The lines of `ir` (text, or a module printed as by `show`) from a line containing `start` to the
    next containing `end` (inclusive), wrapped after cutting so no continuation line is lost.

    Without `end`, only the block that starts there: up to the line that closes its indentation.
    `occurrence` picks which line containing `start` (0: the first, -1: the last). Raises ValueError
    naming the marker when it is not in the IR (a listing that silently shows nothing would hide that
    the IR changed).
    """
    text = ir if isinstance(ir, str) else show(ir, width=None, names=names)
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if start in line]
    if not starts:
        raise ValueError(f"{start!r} does not occur in the IR")
    if not -len(starts) <= occurrence < len(starts):
        raise ValueError(f"{start!r} occurs {len(starts)} times in the IR, there is no occurrence {occurrence}")
    first = starts[occurrence]
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


def show(module: object, width: int | None = 96, names: bool = False, elide: int = 4) -> str:
    """A module's listing for a page: constants over `elide` elements elided, long lines wrapped.

    `names=False` prints plain SSA numbers (`%0`, `%1`): after a transformation the node-name prefixes
    of the emitter (`%fc_bias`) land on ops the node never had (hoisted constants, loop bounds) and mislead.
    """
    operation = module.module.operation if hasattr(module, "module") else module.operation
    text = operation.get_asm(large_elements_limit=elide, use_name_loc_as_prefix=names)
    return text if width is None else wrap(text, width)
