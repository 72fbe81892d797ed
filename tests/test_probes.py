"""The off-topic probes' vectors: the built-in model's are kept once per machine, read back bit for bit, and a
damaged or unwritable copy only means embedding them again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wenda.index import probes
from wenda.index.embeddings import Embedder
from wenda.index.hash_embedder import HashEmbedder
from wenda.index.tokenization import normalize


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WENDA_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setattr(probes, "_embedded", {})  # as a new process
    return tmp_path / "models"


@pytest.fixture(scope="module")
def reference(embedder: Embedder) -> np.ndarray:
    """The probes embedded now, by the model itself."""
    return embedder.embed_queries([normalize(q) for q in probes.probe_questions()])


def test_kept_vectors_are_the_model_s_own(embedder: Embedder, model_cache: Path, reference, monkeypatch) -> None:
    first = probes.probe_vectors(embedder)
    [kept] = model_cache.glob("probes-*.npz")
    monkeypatch.setattr(probes, "_embedded", {})
    monkeypatch.setattr(embedder, "embed_queries", lambda texts: pytest.fail("embedded again"))
    again = probes.probe_vectors(embedder)
    monkeypatch.undo()
    assert np.array_equal(again, first) and np.array_equal(again, reference)
    assert again.shape == (len(probes.probe_questions()), embedder.dim) and kept.stat().st_size > 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_copy_is_embedded_again_and_replaced(
    embedder: Embedder, model_cache: Path, reference, monkeypatch, damage
) -> None:
    probes.probe_vectors(embedder)
    [kept] = model_cache.glob("probes-*.npz")
    data = bytearray(kept.read_bytes())
    if damage == "flip":  # inside the stored vectors (npz members are stored uncompressed)
        data[len(data) // 2] ^= 0x40
    kept.write_bytes(bytes(data[: len(data) // 3]) if damage == "truncate" else b"" if damage == "empty" else data)
    monkeypatch.setattr(probes, "_embedded", {})
    assert np.array_equal(probes.probe_vectors(embedder), reference)
    monkeypatch.setattr(probes, "_embedded", {})
    assert probes._read_kept(kept, embedder.dim) is not None  # written anew


def test_an_unwritable_cache_still_gives_the_vectors(
    embedder: Embedder, reference, tmp_path: Path, monkeypatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("WENDA_MODEL_CACHE", str(blocker / "models"))
    monkeypatch.setattr(probes, "_embedded", {})
    assert np.array_equal(probes.probe_vectors(embedder), reference)


def test_a_model_not_from_packages_is_never_kept(model_cache: Path) -> None:
    hashed = HashEmbedder()
    assert np.array_equal(
        probes.probe_vectors(hashed), hashed.embed_queries([normalize(q) for q in probes.probe_questions()])
    )
    assert not list(model_cache.glob("probes-*"))
