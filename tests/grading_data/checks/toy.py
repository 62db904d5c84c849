"""Synthetic official checks for the `toy` notebooks in tests/grading_data (not a real chapter)."""

from mlc_lab.grading.session import Grading, check


@check(points=2)
def check_add(g: Grading) -> None:
    add = g.need("add")
    for a, b in [(2, 3), *((int(x), int(y)) for x, y in g.rng.integers(-50, 50, (3, 2)))]:
        g.compare(f"add({a}, {b})", lambda a=a, b=b: add(a, b), a + b)


@check(points=1)
def check_squares(g: Grading) -> None:
    make_squares = g.need("make_squares")
    for n in (4, int(g.rng.integers(5, 12))):
        g.compare(f"make_squares({n})", lambda n=n: list(make_squares(n)), [i * i for i in range(n)])


def check_total(g: Grading) -> None:
    with g.case("the variable `total`", expected=15) as case:
        info = g.probe("lookup", "total")
        assert info.get("defined"), "no variable `total`: the cell that computes it did not run to the end"
        total = g.probe("value", "total")
        case.got = repr(total)
        assert total == 15, f"total is {total!r}, expected 15"
