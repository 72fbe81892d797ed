"""A trained LightGBM model as plain arrays, evaluated with numpy: the query path needs no LightGBM.

Importing LightGBM costs 1.2-2 s (its compatibility layer imports scikit-learn and scipy), paid by every CLI
question and every bot start. The ranker is a few hundred small trees; `export` flattens them at training time
into arrays stored with `numpy.savez` (no pickle) and `Forest.predict` evaluates every tree for every row at
once (QuickScorer's bit vectors, `_prepare`) with LightGBM's own decision rule (missing values, the zero
threshold), so the scores equal the library's (tests/test_forest.py checks it on real feature rows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# LightGBM's missing-value handling of a numerical split (include/LightGBM/tree.h, NumericalDecision).
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
_MISSING = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}
ZERO_THRESHOLD = 1e-35  # kZeroThreshold: |x| below it is "zero" for a Zero-missing split


class Forest:
    """A sum of binary trees over a feature matrix. Children >= 0 are split nodes, < 0 are leaves (~index)."""

    FIELDS = ("feature", "threshold", "left", "right", "default_left", "missing", "leaf_value", "roots")

    def __init__(self, arrays: dict[str, np.ndarray], features: tuple[str, ...]) -> None:
        self.feature = arrays["feature"].astype(np.intp)
        self.threshold = arrays["threshold"].astype(np.float64)
        self.left = arrays["left"].astype(np.intp)
        self.right = arrays["right"].astype(np.intp)
        self.default_left = arrays["default_left"].astype(bool)
        self.missing = arrays["missing"].astype(np.int8)
        self.leaf_value = arrays["leaf_value"].astype(np.float64)
        self.roots = arrays["roots"].astype(np.intp)
        self.features = features
        self.has_zero_missing = bool((self.missing == MISSING_ZERO).any())
        self._prepare()

    @classmethod
    def load(cls, path: Path) -> Forest:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in cls.FIELDS}
            names = tuple(str(name) for name in data["features"])
        return cls(arrays, names)

    def save(self, path: Path) -> None:
        arrays = {name: getattr(self, name) for name in self.FIELDS}
        with path.open("wb") as handle:
            np.savez_compressed(handle, features=np.array(self.features), **arrays)

    def _prepare(self) -> None:
        """QuickScorer's bit vectors (Lucchese et al., SIGIR 2015): per split node, the leaves of its tree that
        stay reachable when a row goes right (its left subtree's leaves cleared). A row's exit leaf is the
        leftmost leaf still set after AND-ing the vectors of every split it fails, so all trees are
        evaluated in a few whole-matrix numpy operations instead of a walk per level."""
        span = np.zeros((len(self.feature), 2), dtype=np.intp)  # leaves under each split node: [lo, hi)

        def leaves(child: int) -> tuple[int, int]:
            return (~child, ~child + 1) if child < 0 else (int(span[child, 0]), int(span[child, 1]))

        for node in range(len(self.feature) - 1, -1, -1):  # children follow their parent (preorder)
            span[node] = leaves(int(self.left[node]))[0], leaves(int(self.right[node]))[1]
        split = self.roots >= 0  # trees with at least one split; the others are a constant
        self.split_starts = self.roots[split]  # a tree's split nodes are contiguous, from its root (preorder)
        tree_of_node = np.searchsorted(self.split_starts, np.arange(len(self.feature)), side="right") - 1
        first_leaf = np.array([leaves(int(root))[0] for root in self.roots], dtype=np.int64)
        widest = int(np.max(np.diff(np.append(first_leaf, len(self.leaf_value))))) if len(self.roots) else 1
        if widest > 64:
            raise ValueError(f"trees of up to 64 leaves can be evaluated, this model has {widest}")
        self.bits = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.dtype(t).itemsize * 8 >= widest)
        self.split_first_leaf = first_leaf[split]
        offset = self.split_first_leaf[tree_of_node]
        lo = np.array([leaves(int(child))[0] for child in self.left], dtype=np.int64) - offset
        hi = np.array([leaves(int(child))[1] for child in self.left], dtype=np.int64) - offset
        cleared = ((np.uint64(1) << (hi - lo).astype(np.uint64)) - np.uint64(1)) << lo.astype(np.uint64)
        self.mask = (np.uint64(np.iinfo(self.bits).max) & ~cleared).astype(self.bits)
        self.constant = float(self.leaf_value[~self.roots[~split]].sum())

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """The raw score of each row (LightGBM's `predict` for a ranking or regression model)."""
        x = np.asarray(matrix, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"expected rows of {len(self.features)} features, got shape {x.shape}")
        if len(x) == 0 or len(self.split_starts) == 0:
            return np.full(len(x), self.constant)
        value = x[:, self.feature]
        go_left = value <= self.threshold
        nan = np.isnan(value)
        if nan.any() or self.has_zero_missing:
            value = np.where(nan & (self.missing != MISSING_NAN), 0.0, value)
            by_default = ((self.missing == MISSING_ZERO) & (np.abs(value) <= ZERO_THRESHOLD)) | (
                (self.missing == MISSING_NAN) & nan
            )
            go_left = np.where(by_default, self.default_left, value <= self.threshold)
        reachable = np.where(go_left, np.iinfo(self.bits).max, self.mask).astype(self.bits)
        exits = np.bitwise_and.reduceat(reachable, self.split_starts, axis=1)
        lowest = exits & (~exits + self.bits(1))  # the lowest set bit alone
        leaf = np.log2(lowest.astype(np.float64)).astype(np.intp) + self.split_first_leaf
        return self.leaf_value[leaf].sum(axis=1) + self.constant


def export(booster) -> Forest:
    """Flatten a trained `lightgbm.Booster` (numerical splits only) into a Forest."""
    dump = booster.dump_model()
    names = tuple(dump["feature_names"])
    arrays: dict[str, list] = {name: [] for name in Forest.FIELDS}

    def add(node: dict) -> int:
        if "leaf_value" in node:
            arrays["leaf_value"].append(float(node["leaf_value"]))
            return ~(len(arrays["leaf_value"]) - 1)
        if node["decision_type"] != "<=":
            raise ValueError(f"only numerical splits can be exported, not {node['decision_type']!r}")
        index = len(arrays["feature"])
        arrays["feature"].append(int(node["split_feature"]))
        arrays["threshold"].append(float(node["threshold"]))
        arrays["default_left"].append(bool(node["default_left"]))
        arrays["missing"].append(_MISSING[node["missing_type"]])
        arrays["left"].append(0)
        arrays["right"].append(0)
        left = add(node["left_child"])
        right = add(node["right_child"])
        arrays["left"][index], arrays["right"][index] = left, right
        return index

    for tree in dump["tree_info"]:
        arrays["roots"].append(add(tree["tree_structure"]))
    types = {"feature": np.int32, "threshold": np.float64, "left": np.int32, "right": np.int32}
    types |= {"default_left": bool, "missing": np.int8, "leaf_value": np.float64, "roots": np.int32}
    return Forest({name: np.array(values, dtype=types[name]) for name, values in arrays.items()}, names)
