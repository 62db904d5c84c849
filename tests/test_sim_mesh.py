"""The mesh pieces: shapes, the slicing floorplan, and link loads from XY-routed bundles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlc_lab.sim.mesh import Rect, Router, mesh_shape, slice_floorplan


def test_mesh_shapes():
    assert mesh_shape(400_000) == (625, 640)
    assert mesh_shape(850_000) == (850, 1000)
    assert mesh_shape(16) == (4, 4)
    rows, cols = mesh_shape(97)  # prime: no exact factorisation, a few cores dropped
    assert rows * cols <= 97 and rows * cols > 97 - rows
    with pytest.raises(ValueError, match="cores"):
        mesh_shape(0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.data())
def test_floorplan_tiles_the_mesh_exactly(rows, cols, data):
    n = data.draw(st.integers(1, rows * cols))
    weights = data.draw(st.lists(st.floats(0.001, 100), min_size=n, max_size=n))
    rects = slice_floorplan(weights, rows, cols)
    cover = np.zeros((rows, cols), dtype=int)
    for r in rects:
        assert r.area >= 1
        cover[r.r0 : r.r0 + r.h, r.c0 : r.c0 + r.w] += 1
    assert (cover == 1).all()


def test_floorplan_areas_follow_the_weights():
    weights = [4, 2, 1, 1]
    rects = slice_floorplan(weights, 100, 80)
    areas = np.array([r.area for r in rects])
    np.testing.assert_allclose(areas / areas.sum(), np.array(weights) / 8, atol=0.02)
    with pytest.raises(ValueError, match="cannot fit"):
        slice_floorplan([1] * 5, 2, 2)


def test_side_by_side_regions_exchange_a_horizontal_bundle():
    router = Router(10, 20)
    src, dst = Rect(2, 0, 4, 6), Rect(0, 10, 8, 6)  # rows 2..5 shared
    hops = router.route(src, dst, 800.0)
    loads = router.loads()
    assert hops == abs(4 - 4) + abs(13 - 3)
    assert loads.east[2:6, 3:13] == pytest.approx(np.full((4, 10), 200.0))  # 800 B over 4 lanes
    assert loads.east.sum() == pytest.approx(800.0 * 10) and loads.south.sum() == 0
    assert loads.total == pytest.approx(8000.0) and loads.max_load == pytest.approx(200.0)


def test_diagonal_regions_take_an_l_shaped_bundle():
    router = Router(10, 10)
    src, dst = Rect(0, 0, 2, 2), Rect(6, 6, 4, 4)
    router.route(src, dst, 100.0)
    loads = router.loads()
    assert loads.east[0:2, 1:8].min() == pytest.approx(50.0)  # along both of the source's rows
    assert loads.south[1:8, 6:10].min() == pytest.approx(25.0)  # down all four destination columns
    assert router.route_from_edge(dst, 40.0) == 8 + 1
