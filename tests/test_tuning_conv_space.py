"""The conv knobs of the tuner's space (taps_outer, init_inner, fuse_pad): what their TIR looks like, that it
computes the interpreter's answer, and that logs written before the knobs existed still apply unchanged."""

import re

import pytest

from mlc_lab.codegen.tiling import VectorISA, default_config
from mlc_lab.tuning.measure import MeasuredCost, kernel_info, scheduled_func
from mlc_lab.tuning.space import space_for
from mlc_lab.tuning.task import conv2d_task

AVX512 = VectorISA("AVX-512", 16, 32)


def _update_loops(script: str) -> tuple[list[str], list[int]]:
    """Names and extents of the T.grid right above the conv's update block (the register tile's loops)."""
    match = re.search(r"for ([\w, ]*rc_1[\w, ]*) in T\.grid\(([\d, ]+)\):", script)
    assert match, script
    return [n.strip() for n in match[1].split(",")], [int(e) for e in match[2].split(",")]


@pytest.fixture(scope="module")
def conv16c():
    task = conv2d_task(1, 8, 32, 32, 3, "NCHW16c")
    cost = MeasuredCost(task, repeat=1, min_repeat_ms=0)
    return task, cost, default_config(cost.info, AVX512)


def test_the_default_avx512_conv_point_is_a_16_lane_register_tile_over_taps_then_channels(conv16c):
    task, cost, config = conv16c
    assert config["taps_outer"] and config["init_inner"] and config["fuse_pad"] and not config["cache_write"]
    assert space_for(cost.info).violation(config) is None  # the tuner starts there and a log can store it
    script = scheduled_func(task, config)[0].script()
    assert "for i4_3 in T.vectorized(16):" in script  # one zmm of output channels per accumulator
    names, extents = _update_loops(script)
    reduction = [n for n in names if n[0] == "r"]
    assert reduction == ["ry_0", "rx_0", "rc_0", "ry_1", "rx_1", "rc_1"]  # taps outside, channels innermost
    tile = dict(zip(names, extents))
    assert tile["rc_1"] == 32 and tile["ry_1"] == tile["rx_1"] == 3  # the whole reduction per register tile
    accumulators = tile["i2_3"] * tile["i3_3"]  # rows x image columns, one 16-lane vector each
    assert 8 <= accumulators <= AVX512.registers - 4
    # zeroing sits inside the cache tile, right before its register tile (registers, not a memory pass)
    assert script.index("i2_2") < script.index('T.sblock("conv2d_init")') < script.index("rc_1")
    # the padding copy runs inside each parallel tile, on the rows that tile reads
    assert script.index("_fused in T.parallel(") < script.index('T.sblock("conv2d_pad")')
    trial = cost(config)
    assert trial.ok, trial.error  # the interpreter's answer (MeasuredCost checks every output)


def test_a_record_from_before_the_conv_knobs_still_applies_as_it_did(conv16c):
    task, cost, config = conv16c
    old = {k: v for k, v in config.items() if k not in ("taps_outer", "init_inner", "fuse_pad")}
    old.update(cache_write=True, tile_rc=[2, 16])
    assert space_for(cost.info).violation(old) is None  # a missing new knob means its old behaviour
    script = scheduled_func(task, old)[0].script()
    names, _ = _update_loops(script)
    assert [n for n in names if n[0] == "r"][:3] == ["rc_0", "ry_0", "rx_0"]  # channels outermost, as before
    assert script.index('T.sblock("conv2d_pad")') < script.index("_fused in T.parallel(")  # whole image, first
    assert cost(old).ok


def test_only_windowed_channels_innermost_convs_get_the_new_defaults():
    one_by_one = kernel_info(conv2d_task(1, 8, 32, 32, 1, "NHWC"))
    assert "taps_outer" not in space_for(one_by_one).knobs and "taps_outer" not in default_config(one_by_one, AVX512)
    nchw = kernel_info(conv2d_task(1, 8, 16, 16, 3, "NCHW"))  # lanes along the image row: the old default
    assert "taps_outer" in space_for(nchw).knobs and "taps_outer" not in default_config(nchw, AVX512)
    assert default_config(nchw, AVX512)["cache_write"] and not default_config(nchw, AVX512)["fuse_pad"]
