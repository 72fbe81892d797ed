"""Self-calibration per index: what it costs a build and what it does to the confidence, per corpus.

    .venv/bin/python bench/calibration.py [--corpora seed seed+sources newsmrc cmrc] [--runs 3] [--limit 600]

1. Cost: the bundled articles as a user has them (../shared/corpus, no sources.toml) built from scratch
   (an empty embedding cache each run), then its calibration measured, `--runs` times; medians of the
   build, of the calibration, and their ratio (target: calibration ≤ 10 % of the build).
2. Effect: every question set of each corpus (the first `--limit` of a big one) asked with the levels of
   the training corpora (what an index too small to measure gets) and with the index's own: ECE,
   answerable refused, unanswerable flagged.

Keeps the rows in bench/results/calibration.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from report import ROOT, save, update_table

sys.path.insert(0, str(ROOT))

from wenda.index.builder import build_index  # noqa: E402
from wenda.index.config import Settings  # noqa: E402
from wenda.index.embeddings import embedder_for  # noqa: E402
from wenda.retrieval import benchsets, calibration  # noqa: E402
from wenda.retrieval.evaluation import evaluate, summarize  # noqa: E402
from wenda.retrieval.retriever import Retriever  # noqa: E402


def cost(runs: int) -> dict:
    embedder = embedder_for(Settings.from_env())
    builds, fits = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as work:
            settings = Settings(
                corpus=benchsets.SHARED / "corpus", index_dir=Path(work) / "i", cache_path=Path(work) / "c.sqlite"
            )
            started = time.perf_counter()
            build_index(settings, embedder, progress=False, warn=lambda line: None)
            builds.append(time.perf_counter() - started)
            retriever = Retriever(settings, embedder)  # measures it (the cost is timed apart below)
            started = time.perf_counter()
            calibration.measure(retriever)
            fits.append(time.perf_counter() - started)
    build, fit = statistics.median(builds), statistics.median(fits)
    return {"corpus": "seed", "set": "build cost", "build_s": build, "calibration_s": fit, "share": fit / build}


def effect(corpora: list[str], limit: int) -> list[dict]:
    embedder = embedder_for(Settings.from_env())
    rows = []
    for corpus in corpora:
        retriever = Retriever(benchsets.index_settings(corpus, embedder), embedder)
        own = retriever.calibration
        for name, questions in benchsets.questions(corpus).items():
            if name == "contentless":
                continue
            questions = questions[:limit]
            row = {"corpus": corpus, "set": name, "questions": len(questions)}
            for label, used in (("general", calibration.Calibration()), ("own", own)):
                retriever.calibration = used
                summary = summarize(evaluate(retriever, questions))["all"]
                row[label] = {
                    "ece": summary["ece"],
                    "refused": summary.get("false_abstention"),
                    "flagged": None if summary.get("missed_abstention") is None else 1 - summary["missed_abstention"],
                    "recall@1": summary.get("recall@1"),
                }
            rows.append(row)
            print(row, flush=True)
    return rows


def cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


COLUMNS = [
    ("set", lambda r: f"{r['corpus']}/{r['set']}"),
    ("questions", lambda r: str(r.get("questions", "—"))),
    ("ECE default → own", lambda r: f"{cell(r['general']['ece'])} → {cell(r['own']['ece'])}" if "own" in r else "—"),
    (
        "answerable refused",
        lambda r: f"{cell(r['general']['refused'])} → {cell(r['own']['refused'])}" if "own" in r else "—",
    ),
    (
        "unanswerable flagged",
        lambda r: f"{cell(r['general']['flagged'])} → {cell(r['own']['flagged'])}" if "own" in r else "—",
    ),
    (
        "cost",
        lambda r: (
            f"build {r['build_s']:.1f} s, calibration {r['calibration_s']:.2f} s ({r['share']:.0%})"
            if "build_s" in r
            else ""
        ),
    ),
]


def table(rows: list[dict]) -> None:
    update_table("calibration", COLUMNS, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", choices=benchsets.MEASURED, default=list(benchsets.MEASURED))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=600, help="questions per set at most")
    args = parser.parse_args()
    rows = save("calibration", cost(args.runs), key=("corpus", "set"))
    for row in effect(args.corpora, args.limit):
        rows = save("calibration", row, key=("corpus", "set"))
    table(rows)
    share = next(r["share"] for r in rows if r["set"] == "build cost")
    return 0 if share <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
