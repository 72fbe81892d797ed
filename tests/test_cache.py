"""index.cache: vectors come back per model and text, and a damaged row or file is never reused."""

import sqlite3
from pathlib import Path

import numpy as np
from wenda.index.cache import EmbeddingCache, check_cache


def unit(rows: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_round_trip_is_per_model_and_text(tmp_path: Path) -> None:
    vectors = unit(2)
    cache = EmbeddingCache(tmp_path / "c.sqlite", "model-a", 4)
    cache.put(["甲", "乙"], vectors)
    found = cache.get(["乙", "丙", "甲"])
    assert sorted(found) == [0, 2] and np.array_equal(found[0], vectors[1])
    assert EmbeddingCache(tmp_path / "c.sqlite", "model-b", 4).get(["甲"]) == {}
    assert EmbeddingCache(tmp_path / "c.sqlite", "model-a", 8).get(["甲"]) == {}  # other dimension: ignored
    assert check_cache(tmp_path / "c.sqlite") == (2, 0)


def test_a_row_failing_its_checksum_or_norm_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = EmbeddingCache(path, "m", 4)
    cache.put(["甲", "乙", "丙"], unit(3))
    cache.close()
    db = sqlite3.connect(path)
    tampered = unit(1, seed=1)[0].tobytes()  # a unit vector, but not the one its checksum vouches for
    db.execute("UPDATE vectors SET vector = ? WHERE key = ?", (tampered, EmbeddingCache.key("甲")))
    too_long = (unit(1, seed=2)[0] * 143).tobytes()  # the damaged vector had a norm of about 143
    db.execute("UPDATE vectors SET vector = ?, checksum = NULL WHERE key = ?", (too_long, EmbeddingCache.key("乙")))
    db.commit()
    db.close()
    assert check_cache(path) == (3, 2)
    cache = EmbeddingCache(path, "m", 4)
    assert sorted(cache.get(["甲", "乙", "丙"])) == [2] and cache.dropped == 2
    assert cache.get(["甲", "乙"]) == {}  # deleted, so embedded again next time
    cache.close()
    assert check_cache(path) == (1, 0)


def test_a_damaged_cache_file_is_replaced_by_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = EmbeddingCache(path, "m", 4)
    assert cache.repaired and "damaged" in cache.repaired and cache.get(["甲"]) == {}
    cache.put(["甲"], unit(1))
    assert sorted(cache.get(["甲"])) == [0]
