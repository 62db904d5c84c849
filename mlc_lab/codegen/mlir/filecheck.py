"""FileCheck on a string: LLVM's way of testing compiler output, here from Python (the `filecheck` package).

A compiler test does not compare whole printouts (SSA names and constant order change with every
upstream release); it states what must appear, in which order, and what must not, as `// CHECK:`
lines. `filecheck(output, checks)` runs those directives against `output` and raises
`FileCheckFailure` with FileCheck's own explanation (the directive, its line, where matching stopped).
"""

from __future__ import annotations

import io
import re

from mlc_lab.errors import MlcLabError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class FileCheckFailure(MlcLabError, AssertionError):
    """The output does not satisfy the CHECK directives; the message is FileCheck's diagnosis."""


def filecheck(output: str, checks: str, name: str = "checks") -> None:
    """Match `output` against the CHECK/CHECK-NEXT/CHECK-SAME/CHECK-NOT/CHECK-LABEL lines in `checks`."""
    from filecheck.finput import FInput
    from filecheck.matcher import Matcher
    from filecheck.options import Options
    from filecheck.parser import Parser, pattern_for_opts

    opts = Options(match_filename=name, input_file="output")
    parser = Parser(opts, io.StringIO(checks), *pattern_for_opts(opts))
    matcher = Matcher(opts, FInput("output", FInput.canonicalize_line_ends(output)), parser)
    report = io.StringIO()
    matcher.stderr = report
    if matcher.run() != 0:
        lines = [line for line in _ANSI.sub("", report.getvalue()).splitlines() if line.strip()]
        raise FileCheckFailure("FileCheck: " + "\n".join(lines[:6]))
