"""index.agreement: an index embedded by one model is served by another only if their vectors agree."""

import json
import shutil
from pathlib import Path

import pytest
from wenda.index import agreement
from wenda.index.config import Settings
from wenda.index.embeddings import create_embedder
from wenda.index.errors import IndexMismatchError
from wenda.index.store import live_generation
from wenda.retrieval.retriever import Retriever

from tests.conftest import build, run_wenda


def test_different_models_disagree_and_stay_refused(minilm, embedder, small_corpus: Path, tmp_path: Path) -> None:
    build(small_corpus, tmp_path / "index", minilm)  # "built on the big machine" with sentence-transformers
    result = agreement.measure(tmp_path / "index", embedder)  # the built-in e5 model: same dim, other space
    assert result.chunks > 0 and not result.agrees and result.mean < 0.5
    with pytest.raises(IndexMismatchError, match="wenda agree"):
        Retriever(Settings(corpus=small_corpus, index_dir=tmp_path / "index"), embedder)
    run = run_wenda("agree", "--corpus", str(small_corpus), "--index-dir", str(tmp_path / "index"))
    assert run.returncode == 1 and b"do not agree" in run.stderr and b"Traceback" not in run.stderr
    manifest = json.loads((live_generation(tmp_path / "index") / "manifest.json").read_text())
    assert "servable_with" not in manifest


def test_same_weights_under_another_name_agree_and_may_serve(
    minilm, minilm_path: Path, small_corpus: Path, tmp_path: Path
) -> None:
    build(small_corpus, tmp_path / "index", minilm)
    copy = shutil.copytree(minilm_path, tmp_path / "minilm-copy")  # e.g. the same model downloaded elsewhere
    twin = create_embedder(str(copy))
    assert twin.identity() != minilm.identity()
    index_dir = tmp_path / "index"
    with pytest.raises(IndexMismatchError):
        Retriever(Settings(corpus=small_corpus, index_dir=index_dir), twin)
    result = agreement.measure(index_dir, twin)
    assert result.agrees and result.p5 > 0.999
    agreement.record(index_dir, twin, result)
    retriever = Retriever(Settings(corpus=small_corpus, index_dir=index_dir), twin)
    assert retriever.ask("清丰县出庭率", 1).results
    with pytest.raises(IndexMismatchError):  # updating still needs the model that built the index
        build(small_corpus, index_dir, twin)
    (small_corpus / "new.txt").write_text("新文件\n图书馆藏书120万册。\n", encoding="utf-8")
    build(small_corpus, index_dir, minilm)  # an update with the building model keeps the agreement
    assert Retriever(Settings(corpus=small_corpus, index_dir=index_dir), twin).ask("图书馆藏书", 1).results
    build(small_corpus, index_dir, minilm, rebuild=True)  # so does a rebuild with it
    assert Retriever(Settings(corpus=small_corpus, index_dir=index_dir), twin).ask("图书馆藏书", 1).results
    build(small_corpus, index_dir, twin, rebuild=True)  # a rebuild with another model starts without one
    assert "servable_with" not in json.loads((live_generation(index_dir) / "manifest.json").read_text())


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in model's weights written out by `wenda export-model`, as a user would on a GPU machine."""
    folder = tmp_path_factory.mktemp("export") / "e5-builtin"
    run = run_wenda("export-model", str(folder))
    assert run.returncode == 0, run.stderr.decode()
    return folder


def test_bulk_build_with_the_exported_model_is_served_by_the_builtin_one(
    exported: Path, embedder, small_corpus: Path, tmp_path: Path
) -> None:
    bulk = create_embedder(str(exported))  # sentence-transformers + torch, same weights in float32
    assert (bulk.query_prefix, bulk.passage_prefix) == ("query: ", "passage: ")
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, bulk)
    run = run_wenda("agree", "--corpus", str(small_corpus), "--index-dir", str(index_dir))
    assert run.returncode == 0, run.stderr.decode()
    assert b"they agree" in run.stdout
    result = agreement.measure(index_dir, embedder)
    # the same weights; the built-in passage engine runs them in int8 (cosine ≈ 0.997 to float32, bench/embedding.py)
    assert result.p5 > 0.99
    served = Retriever(Settings(corpus=small_corpus, index_dir=index_dir), embedder)
    assert (
        served.ask("清丰县机关负责人出庭率是多少？", 1).results[0].record.text
        == (
            Retriever(Settings(corpus=small_corpus, index_dir=index_dir), bulk).ask("清丰县机关负责人出庭率是多少？", 1)
        )
        .results[0]
        .record.text
    )
