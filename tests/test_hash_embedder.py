"""index.hash_embedder: the model-free test embedder (WENDA_EMBEDDER=hash) gives deterministic, normalized
vectors of the model's dimension; an index built with it answers (its BM25 side is real) and is never served
with the real model, nor the real model's index with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from conftest import RAW_CORPUS, run_wenda
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder, create_embedder, embedder_for
from wenda.index.hash_embedder import DIM, HashEmbedder

QUESTION = "安阳市区营运出租车中有多少台纯电动车?"


def test_vectors_are_deterministic_normalized_and_share_words(embedder: Embedder) -> None:
    hashed = create_embedder("hash")
    assert isinstance(hashed, HashEmbedder) and hashed.dim == DIM == embedder.dim  # sized as the real model
    texts = ["安阳市的纯电动出租车", "纯电动出租车在安阳", "襄阳高香茶入选中欧地理标志", "", "Leaders of the table"]
    first, again = hashed.embed_passages(texts), HashEmbedder().embed_queries(texts)
    assert first.dtype == np.float32 and first.shape == (5, DIM) and np.array_equal(first, again)
    norms = np.linalg.norm(first, axis=1)
    assert np.allclose(norms[[0, 1, 2, 4]], 1.0, atol=1e-6) and norms[3] == 0.0  # no words: no direction
    assert first[0] @ first[1] > 0.5 > abs(float(first[0] @ first[2]))


def test_an_index_built_with_it_answers_and_is_never_mixed_with_the_model(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(RAW_CORPUS, corpus)
    hashed = {"WENDA_CORPUS": str(corpus), "WENDA_INDEX_DIR": str(tmp_path / "hashed"), "WENDA_EMBEDDER": "hash"}
    built = run_wenda("index", "-q", env=hashed)
    assert built.returncode == 0, built.stderr.decode()
    asked = json.loads(run_wenda("ask", "--json", QUESTION, env=hashed).stdout)
    assert any("纯电动" in result["text"] for result in asked["results"][:3])
    with_model = run_wenda("ask", "--json", QUESTION, env={**hashed, "WENDA_EMBEDDER": ""})
    error = json.loads(with_model.stdout)["error"]
    assert with_model.returncode == 1 and "hash" in error and "model-free test tool" in error
    settings = Settings(corpus=corpus, index_dir=tmp_path / "hashed", embedding_model="hash")
    assert embedder_for(settings).identity()["backend"] == "HashEmbedder"


def test_the_models_index_is_not_served_with_it(seed_settings: Settings) -> None:
    env = {"WENDA_CORPUS": str(seed_settings.corpus), "WENDA_INDEX_DIR": str(seed_settings.index_dir)}
    asked = run_wenda("ask", "--json", QUESTION, env={**env, "WENDA_EMBEDDER": "hash"})
    assert asked.returncode == 1 and "model-free test tool" in json.loads(asked.stdout)["error"]
