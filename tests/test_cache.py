"""index.cache: vectors come back per model and text."""

from pathlib import Path

import numpy as np

from index.cache import EmbeddingCache


def test_round_trip_is_per_model_and_text(tmp_path: Path) -> None:
    vectors = np.arange(8, dtype=np.float32).reshape(2, 4)
    cache = EmbeddingCache(tmp_path / "c.sqlite", "model-a", 4)
    cache.put(["甲", "乙"], vectors)
    found = cache.get(["乙", "丙", "甲"])
    assert sorted(found) == [0, 2] and np.array_equal(found[0], vectors[1])
    assert EmbeddingCache(tmp_path / "c.sqlite", "model-b", 4).get(["甲"]) == {}
    assert EmbeddingCache(tmp_path / "c.sqlite", "model-a", 8).get(["甲"]) == {}  # other dimension: ignored
