"""The question sets Wenda is measured and trained on, and the indexes they are asked against.

- seed: the five articles as a user has them (../shared/corpus/*.txt, no sources.toml) with
  ../shared/eval/dev.jsonl and bench/questions/*.jsonl (paraphrase, english, ood, contentless), all written
  before any tuning;
- seed+sources: the same with the metadata an owner may write (`corpus/` and its sources.toml), to show what
  the override adds (never trained on);
- newsmrc: the news reading-comprehension dev articles among 4,000 xwlb news paragraphs;
- cmrc: CMRC 2018 Wikipedia passages among 20,000 xwlb news paragraphs.

Benchmark indexes live under a work folder; their vectors go to the `wenda eval` cache, so each passage
is embedded once per machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wenda.index.builder import build_index
from wenda.index.config import EVAL_CACHE, Settings
from wenda.index.embeddings import Embedder
from wenda.index.passages import passage_files, read_jsonl

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
QUESTIONS = ROOT / "bench" / "questions"
WORK = EVAL_CACHE.parent / "benchmarks"
CORPORA = ("seed", "newsmrc", "cmrc")  # trained and validated on
MEASURED = (*CORPORA[:1], "seed+sources", *CORPORA[1:])  # reported
SEED_SETS = ("dev", "paraphrase", "english", "ood", "contentless")
# (passage file stem in ../shared/eval, how many xwlb paragraphs join them as distractors)
PASSAGES = {"newsmrc": ("newsmrc.dev", 4000), "cmrc": ("cmrc2018", 20000)}


def questions(corpus: str) -> dict[str, list[dict]]:
    """Question sets of one corpus by name."""
    if corpus in ("seed", "seed+sources"):
        files = {"dev": SHARED / "eval" / "dev.jsonl"}
        files.update({name: QUESTIONS / f"{name}.jsonl" for name in SEED_SETS[1:]})
    else:
        files = {corpus: SHARED / "eval" / f"{PASSAGES[corpus][0]}.qa.jsonl.gz"}
    missing = [str(path) for path in files.values() if not path.exists()]
    if missing:
        raise FileNotFoundError(f"missing question files: {', '.join(missing)} (../shared must be beside the project)")
    return {name: list(read_jsonl(path)) for name, path in files.items()}


def index_settings(corpus: str, embedder: Embedder, work: Path = WORK) -> Settings:
    """Settings of the corpus's benchmark index, built (or brought up to date) first."""
    folder = ROOT / "corpus" if corpus == "seed+sources" else SHARED / "corpus"
    settings = Settings(corpus=folder, index_dir=work / corpus, cache_path=EVAL_CACHE)
    files = None
    if corpus in PASSAGES:
        stem, distractors = PASSAGES[corpus]
        files = passage_files(SHARED / "eval" / f"{stem}.corpus.jsonl.gz")
        files.update(passage_files(SHARED / "data" / "xwlb.corpus.jsonl.gz", limit=distractors))
    report = build_index(settings, embedder, progress=sys.stderr.isatty(), files=files, warn=lambda line: None)
    print(f"{corpus}: {report.total_chunks} chunks, {report.embedded_chunks} embedded", file=sys.stderr)
    return settings
