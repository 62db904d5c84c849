"""The schedule space: every knob value builds and gives the interpreter's answer; failures keep a reason."""

import numpy as np
import pytest

from mlc_lab.tuning.database import TuningDatabase
from mlc_lab.tuning.measure import MeasuredCost, scheduled_func
from mlc_lab.tuning.space import factorizations, space_for
from mlc_lab.tuning.task import conv2d_task, dense_task, matmul_task
from mlc_lab.tuning.tuner import tune_space

TASKS = {
    "matmul": lambda: matmul_task(16, 32, 8),
    "dense": lambda: dense_task(8, 32, 16),
    "conv2d_nchw": lambda: conv2d_task(1, 6, 8, 8, 3, "NCHW"),
    "conv2d_nhwc": lambda: conv2d_task(1, 6, 8, 16, 3, "NHWC"),
    "conv2d_nchw8c": lambda: conv2d_task(1, 6, 8, 16, 3, "NCHW8c"),
}


def test_factorizations():
    assert sorted(factorizations(4, 2)) == [[1, 4], [2, 2], [4, 1]]
    assert all(np.prod(f) == 12 for f in factorizations(12, 4))
    assert len(factorizations(8, 4)) == 20  # C(3 + 3, 3) ordered factorizations of 2^3
    assert all(f[-1] <= 2 for f in factorizations(8, 4, innermost_max=2))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_knob_value_builds_and_validates(name):
    task = TASKS[name]()
    cost = MeasuredCost(task, repeat=1, min_repeat_ms=0)
    space = space_for(cost.info)
    rng = np.random.default_rng(0)
    configs = []
    for knob, choices in space.knobs.items():  # each choice of each knob at least once (tiles: a sample)
        picks = choices if len(choices) <= 4 else [choices[i] for i in rng.choice(len(choices), 4, replace=False)]
        for choice in picks:
            config = space.sample(rng)
            config[knob] = choice
            if space.violation(config) is None:
                configs.append(config)
    failures = [(c, r.error) for c in configs if not (r := cost(c)).ok]
    assert not failures, failures[:3]


def test_packing_and_cache_write_appear_in_the_schedule():
    task = matmul_task(16, 32, 8)
    cost = MeasuredCost(task, repeat=1, min_repeat_ms=0)
    config = {
        "tile_i0": [2, 2, 1, 4],
        "tile_i1": [2, 1, 1, 16],
        "tile_k": [2, 4],
        "order": "ssrsrs",
        "cache_write": True,
        "pack": True,
        "parallel": True,
        "vectorize": True,
        "unroll": 16,
    }
    assert cost(config).ok
    script = scheduled_func(task, config, cost.info)[0].script()
    assert "T.parallel" in script and "T.vectorized" in script
    assert 'scope="local"' in script  # cache_write
    assert "(2, 8, 16)" in script  # B packed as [N / 16, K, 16]
    assert "pragma_auto_unroll_max_step" in script


def test_failed_builds_are_logged_with_their_reason(tmp_path):
    task = matmul_task(16, 32, 8)
    cost = MeasuredCost(task, repeat=1, min_repeat_ms=0)
    space = space_for(cost.info)
    space.knobs["tile_i0"] = [[3, 1, 1, 1]]  # 3 does not tile 16: the split primitive refuses
    db = TuningDatabase(tmp_path / "log.jsonl")
    result = tune_space(space, cost, 3, key=task.key, strategy="random", db=db, progress=False)
    assert len(result.failures) == 3
    records = db.records(task.key)
    assert len(records) == 3 and all(r.error and r.error.startswith("build:") for r in records)
    assert all(not r.ok for r in records)
