"""Learned cost models over loop features: predict a config's (log) run time before building it.

`loop_features` describes a config by numbers a performance engineer would look at: tile sizes per
loop level (log2), the register tile, the working set of the inner tiles, parallel extent, vector
width, unrolling, cache_write, packing. Two models fit log(seconds) from those features:

- `GradientBoostingModel`: XGBoost trees, the kind of model AutoTVM and MetaSchedule use;
- `LinearModel`: ridge regression, whose coefficients read as "this feature costs/saves x%".
Only the ranking matters: the tuner measures the configs the model ranks best.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from mlc_lab.tuning.space import OPTIONAL_KNOBS, Config, KernelInfo


def loop_features(config: Config, info: KernelInfo) -> dict[str, float]:
    """Named numeric features of one config (see the module docstring)."""
    f: dict[str, float] = {}
    spatial = [config[f"tile_{n}"] for n, _ in info.spatial]
    reduce = [config[f"tile_{n}"] for n, _ in info.reduce]
    for (name, _), tile in zip(info.spatial + info.reduce, spatial + reduce):
        for level, factor in enumerate(tile):
            f[f"log2 {name}{level}"] = math.log2(factor)
    prod = lambda tiles, levels: math.prod(t[k] for t in tiles for k in levels)
    vector = spatial[-1][-1] if config.get("vectorize", True) else 1
    f["log2 register tile"] = math.log2(prod(spatial, [3]))
    f["vector registers"] = prod(spatial, [3]) / 16
    f["log2 vector width"] = math.log2(vector)
    f["vector width % 16"] = float(vector % 16 != 0)
    f["log2 inner tile"] = math.log2(prod(spatial, [2, 3]))
    f["log2 cache tile"] = math.log2(prod(spatial, [1, 2, 3]))
    f["log2 inner reduce"] = math.log2(prod(reduce, [1])) if reduce else 0.0
    parallel = prod(spatial, [0]) if config.get("parallel", True) else 1
    f["log2 parallel extent"] = math.log2(parallel)
    f["parallel < 2"] = float(parallel < 2)
    f["log2 unroll"] = math.log2(1 + int(config.get("unroll", 0)))
    for flag in ("cache_write", "pack", "inline_pad", "parallel", "vectorize", *OPTIONAL_KNOBS):
        f[flag] = float(bool(config.get(flag, False)))
    f["order srssrs"] = float(config.get("order") == "srssrs")
    f["log2 winograd tile"] = math.log2(max(1, int(config.get("winograd", 0))))
    return f


def generic_features(config: Config) -> dict[str, float]:
    """Any config as numbers: log2 of positive numbers (lists flattened), flags as 0/1, strings one-hot."""
    f: dict[str, float] = {}
    for name, value in sorted(config.items()):
        values = value if isinstance(value, list | tuple) else [value]
        for k, v in enumerate(values):
            label = f"{name}[{k}]" if isinstance(value, list | tuple) else name
            if isinstance(v, bool) or v is None:
                f[label] = float(bool(v))
            elif isinstance(v, int | float):
                f[label] = math.log2(v) if v > 0 else -1.0
            else:
                f[f"{label}={v}"] = 1.0
    return f


Featurizer = Callable[[Config], dict[str, float]]


def featurizer_for(info: KernelInfo | None) -> Featurizer:
    """Loop features for a TensorIR kernel; the generic encoding for any other space."""
    return generic_features if info is None else (lambda c: loop_features(c, info))


def feature_matrix(configs: list[Config], featurize: Featurizer) -> tuple[np.ndarray, list[str]]:
    rows = [featurize(c) for c in configs]
    names = sorted({n for r in rows for n in r})
    names = list(rows[0]) if rows else []
    return np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=np.float64), names


def log_costs(seconds: list[float]) -> np.ndarray:
    """The regression target, log(cost); a cost that is not finite and > 0 is a clear error, not a crash in XGBoost."""
    costs = np.asarray(seconds, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(costs) & (costs > 0)))
    if bad.size:
        raise ValueError(f"cost model: costs must be finite numbers > 0; #{bad[0]} is {costs[bad[0]]!r}")
    return np.log(costs)


class CostModel(Protocol):
    def fit(self, configs: list[Config], seconds: list[float]) -> None: ...
    def predict(self, configs: list[Config]) -> np.ndarray: ...


class LinearModel:
    """Ridge regression on standardised features: interpretable (`explain()`), weak on interactions."""

    def __init__(self, featurize: Featurizer = generic_features, ridge: float = 1.0) -> None:
        self.featurize, self.ridge = featurize, ridge
        self.coef: np.ndarray | None = None
        self.names: list[str] = []

    def fit(self, configs: list[Config], seconds: list[float]) -> None:
        x, self.names = feature_matrix(configs, self.featurize)
        y = log_costs(seconds)
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-9
        z = np.hstack([(x - self.mean) / self.scale, np.ones((len(x), 1))])
        reg = self.ridge * np.eye(z.shape[1])
        reg[-1, -1] = 0.0
        self.coef = np.linalg.solve(z.T @ z + reg, z.T @ y)

    def predict(self, configs: list[Config]) -> np.ndarray:
        if self.coef is None:
            return np.zeros(len(configs))
        x = _matrix(configs, self.featurize, self.names)
        z = np.hstack([(x - self.mean) / self.scale, np.ones((len(x), 1))])
        return z @ self.coef

    def explain(self, top: int = 8) -> list[tuple[str, float]]:
        """Features with the largest effect: (name, change in log-time per standard deviation)."""
        if self.coef is None:
            return []
        pairs = list(zip(self.names, self.coef[:-1]))
        return sorted(pairs, key=lambda p: -abs(p[1]))[:top]


class GradientBoostingModel:
    """XGBoost regression trees on the same features (captures 'this tile only helps with packing')."""

    def __init__(self, featurize: Featurizer = generic_features, rounds: int = 60, seed: int = 0) -> None:
        self.featurize, self.rounds, self.seed = featurize, rounds, seed
        self.names: list[str] = []
        self.booster = None

    def fit(self, configs: list[Config], seconds: list[float]) -> None:
        import xgboost as xgb

        x, self.names = feature_matrix(configs, self.featurize)
        data = xgb.DMatrix(x, label=log_costs(seconds))
        params = {"max_depth": 4, "eta": 0.2, "subsample": 0.9, "seed": self.seed, "nthread": 1, "verbosity": 0}
        self.booster = xgb.train(params, data, num_boost_round=self.rounds)

    def predict(self, configs: list[Config]) -> np.ndarray:
        if self.booster is None:
            return np.zeros(len(configs))
        import xgboost as xgb

        x = _matrix(configs, self.featurize, self.names)
        return self.booster.predict(xgb.DMatrix(x))


def _matrix(configs: list[Config], featurize: Featurizer, names: list[str]) -> np.ndarray:
    """Features in the column order a model was fitted with (unknown features dropped, missing = 0)."""
    return np.array([[row.get(n, 0.0) for n in names] for row in map(featurize, configs)], dtype=np.float64)
