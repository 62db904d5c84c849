"""The vectorised cache simulator equals a one-access-at-a-time LRU; traces follow the layouts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlc_lab.ir import layout as L
from mlc_lab.sim import CacheConfig, conv2d_input_trace, element_offsets, simulate_cache, simulate_cache_reference

configs = st.builds(
    lambda line, ways, sets: CacheConfig(line * ways * sets, line, ways),
    st.sampled_from([4, 16, 64]),
    st.integers(1, 8),
    st.sampled_from([1, 2, 4, 16]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4096), min_size=0, max_size=400), configs)
def test_matches_reference_on_random_traces(trace, config):
    stats = simulate_cache(np.array(trace, dtype=np.int64), config)
    assert stats.misses == simulate_cache_reference(np.array(trace), config)
    assert stats.accesses == len(trace)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NCHW4c"])
@pytest.mark.parametrize("order", ["oh ow kh kw c", "c kh kw oh ow"])
def test_matches_reference_on_conv_traces(layout, order):
    trace = conv2d_input_trace(layout, 8, 10, 10, loop_order=order)
    config = CacheConfig(2048, 64, 2)
    assert simulate_cache(trace, config).misses == simulate_cache_reference(trace, config)


def test_lru_replaces_least_recently_used():
    config = CacheConfig(size_bytes=2 * 64, line_bytes=64, ways=2)  # one set, two ways
    a, b, c = 0, 64, 128
    stats = simulate_cache(np.array([a, b, a, c, a, b]), config)
    # a miss, b miss, a hit, c miss (evicts b, the LRU), a hit, b miss
    assert stats.hit_mask.tolist() == [False, False, True, False, True, False]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NCHW8c", "NCHW2c"])
def test_offsets_agree_with_layout_conversion(layout):
    shape = (2, 16, 3, 5)
    n, c, h, w = np.indices(shape).reshape(4, -1)
    stored = L.to_layout(np.arange(np.prod(shape)).reshape(shape), "NCHW", layout).ravel()
    np.testing.assert_array_equal(stored[element_offsets(layout, shape, n, c, h, w)], np.arange(np.prod(shape)))


def test_channels_innermost_loop_prefers_channels_innermost_layout():
    config = CacheConfig(8 * 1024, 64, 4)
    misses = {
        lay: simulate_cache(conv2d_input_trace(lay, 32, 16, 16, loop_order="oh ow kh kw c"), config).misses
        for lay in ("NCHW", "NHWC", "NCHW8c")
    }
    assert misses["NHWC"] * 10 < misses["NCHW"]
    assert misses["NCHW8c"] * 10 < misses["NCHW"]


def test_bad_config_and_loop_order():
    with pytest.raises(ValueError, match="CacheConfig.ways must be positive"):
        CacheConfig(1024, 64, 0)
    with pytest.raises(ValueError, match="not a multiple of line_bytes"):
        CacheConfig(1000, 64, 2)
    with pytest.raises(ValueError, match="loop_order must order"):
        conv2d_input_trace("NCHW", 4, 8, 8, loop_order="oh ow c")
