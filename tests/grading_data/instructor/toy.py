"""An instructor's hidden checks for the `toy` notebooks: run with `--checks`, besides the official ones."""

from mlc_lab.grading.session import Grading, check

#: Cases of this module are instructor-only: `--hide-hidden` keeps their inputs and answers out of feedback.
HIDDEN = True


@check(points=3)
def check_add_negative(g: Grading) -> None:
    add = g.need("add")
    for a, b in [(1, 1), (0, 5), (-1, -1), (-3, 2)]:
        g.compare(f"add({a}, {b})", lambda a=a, b=b: add(a, b), a + b)
