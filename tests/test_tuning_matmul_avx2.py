"""The matmul default on 16-register ISAs (AVX2): the register tile starts from zeroed registers (init_inner),
the packed weight is copied in whole vectors, the tuner can search that knob, and logs from before it still
apply as they did."""

import re

import pytest

from mlc_lab.codegen.tiling import VectorISA, default_config
from mlc_lab.tuning.measure import MeasuredCost, scheduled_func
from mlc_lab.tuning.space import space_for
from mlc_lab.tuning.task import dense_task, matmul_task

AVX2 = VectorISA("AVX2", 8, 16)
AVX512 = VectorISA("AVX-512", 16, 32)


@pytest.fixture(scope="module")
def matmul64():
    task = matmul_task(64, 64, 64)
    cost = MeasuredCost(task, repeat=1, min_repeat_ms=0)
    return task, cost, default_config(cost.info, AVX2)


def _init_and_update(script: str) -> tuple[int, int]:
    return script.index('T.sblock("matmul_init")'), script.index('T.sblock("matmul_update")')


def test_the_avx2_matmul_default_zeroes_each_register_tile_right_before_its_whole_reduction(matmul64):
    task, cost, config = matmul64
    assert config["init_inner"] and config["tile_k"] == [1, 64]  # the whole k inside the register tile
    assert config["tile_i0"][3] * config["tile_i1"][3] == 4 * 16  # 4 rows x 2 ymm: 8 accumulators
    assert space_for(cost.info, isa=AVX2).start == [config]  # a point of the space: the search starts there
    script = scheduled_func(task, config)[0].script()
    init, update = _init_and_update(script)
    # zeroing sits inside the cache tile's loops (i1_2), right before the reduction loop of its register tile
    assert script.index("i1_2") < init < script.index("k_1") < update
    assert re.search(r"for i0_3_init in range\(4\):\s+for i1_3_init in T\.vectorized\(16\):", script)
    trial = cost(config)
    assert trial.ok, trial.error  # the interpreter's answer (MeasuredCost checks every output)


def test_the_packed_weight_is_copied_in_whole_vectors(matmul64):
    task, _, config = matmul64
    script = scheduled_func(task, config)[0].script()
    # B[k, 16 lanes] -> B_global[n // 16, k, 0:16]: the copy's innermost loop is one 16-lane vector
    assert re.search(r'for ax1_1 in T\.vectorized\(16\):\s+with T\.sblock\("B_global"\)', script)


def test_a_record_without_init_inner_still_applies_as_before(matmul64):
    task, cost, config = matmul64
    old = {k: v for k, v in config.items() if k != "init_inner"}
    assert space_for(cost.info).violation(old) is None  # a missing knob means off: the old behaviour
    script = scheduled_func(task, old)[0].script()
    init, update = _init_and_update(script)
    # the whole cache tile zero-filled first (its own loop nest), then the register tiles over it
    assert init < script.index("for k_0, i0_2, i1_2, k_1") < update
    assert cost(old).ok


def test_avx512_and_split_reductions_keep_their_old_defaults():
    dense = MeasuredCost(dense_task(32, 256, 256), repeat=1, min_repeat_ms=0).info
    assert "init_inner" not in default_config(dense, AVX512)
    assert default_config(dense, AVX2)["init_inner"]
    long_k = MeasuredCost(matmul_task(16, 16, 2048), repeat=1, min_repeat_ms=0).info
    config = default_config(long_k, AVX2)
    assert config["tile_k"][0] > 1 and "init_inner" not in config  # the reduction split: nothing to move
