"""Answer quality on every question set in dense, BM25 and learned (hybrid) mode; a regression check.

    .venv/bin/python bench/quality.py [--corpora seed newsmrc cmrc]

Exits 1, naming the set and the cutoff, when the learned ranking falls below BM25-only or dense-only
recall@1/5/20 on any set, or when an abstention target is missed (every dev unanswerable flagged, at
least 90 % of bench/questions/ood.jsonl, every contentless question). Keeps the results in
bench/results/quality.jsonl and rewrites the table in docs/quality.md. The first run embeds the
benchmark corpora (about 45 minutes on 2 cores); later runs take a few minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from report import ROOT, save, update_table

sys.path.insert(0, str(ROOT))

from wenda.index.config import Settings  # noqa: E402
from wenda.index.embeddings import embedder_for  # noqa: E402
from wenda.retrieval import benchsets  # noqa: E402
from wenda.retrieval.evaluation import CUTOFFS, evaluate, summarize  # noqa: E402
from wenda.retrieval.ranker import MODES  # noqa: E402
from wenda.retrieval.retriever import Retriever  # noqa: E402

DOC = ROOT / "docs" / "quality.md"
# Share of a set that must be flagged unanswerable (None: not an abstention set).
ABSTAIN = {"ood": 0.9, "contentless": 1.0}


def cell(row: dict, key: str) -> str:
    value = row.get(key)
    return "—" if value is None else f"{value:.3f}"


COLUMNS = [
    ("set", lambda r: f"{r['corpus']}/{r['set']}"),
    ("mode", lambda r: r["mode"]),
    ("questions", lambda r: str(r["questions"])),
    *((f"recall@{k}", lambda r, k=k: cell(r, f"recall@{k}")) for k in CUTOFFS),
    ("MRR", lambda r: cell(r, "mrr")),
    # the answer sentence exists only for answered questions, decided on the learned ranking's evidence
    ("answer holds it", lambda r: cell(r, "answer_hit") if r["mode"] == "hybrid" else "—"),
    ("false abstention", lambda r: cell(r, "false_abstention")),
    ("flagged unanswerable", lambda r: cell(r, "flagged")),
    ("ECE", lambda r: cell(r, "ece")),
]


def table(rows: list[dict]) -> None:
    update_table("quality", COLUMNS, rows, doc=DOC)


def problems(rows: dict[str, dict], name: str) -> list[str]:
    """What this set's rows (by mode) break: the learned ranking below a single retriever, or abstention."""
    found = []
    hybrid = rows["hybrid"]
    for k in CUTOFFS:
        key = f"recall@{k}"
        for single in ("dense", "bm25"):
            if hybrid.get(key) is not None and hybrid[key] < rows[single][key]:
                found.append(f"{name}: {key} learned {hybrid[key]:.3f} < {single}-only {rows[single][key]:.3f}")
    want = ABSTAIN.get(name.split("/")[1])
    if want is not None and hybrid.get("flagged", 0.0) < want:
        found.append(f"{name}: {hybrid['flagged']:.3f} flagged unanswerable, target {want}")
    if name == "seed/dev" and hybrid.get("missed_unanswerable", 0) > 0:
        found.append(f"{name}: an unanswerable question was answered")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", choices=benchsets.MEASURED, default=list(benchsets.MEASURED))
    parser.add_argument("--work", type=Path, default=benchsets.WORK, help="where the benchmark indexes are kept")
    args = parser.parse_args()
    embedder = embedder_for(Settings.from_env())  # WENDA_ENGINE and WENDA_EMBEDDING_MODEL apply
    failures: list[str] = []
    rows: list[dict] = []
    for corpus in args.corpora:
        retriever = Retriever(benchsets.index_settings(corpus, embedder, args.work), embedder)
        for name, questions in benchsets.questions(corpus).items():
            by_mode = {}
            for mode in MODES:
                retriever.mode = mode
                summary = summarize(evaluate(retriever, questions), abstention=mode == "hybrid")["all"]
                row = {"corpus": corpus, "set": name, "mode": mode, **summary}
                if summary.get("missed_abstention") is not None:
                    row["missed_unanswerable"] = summary["missed_abstention"]
                    row["flagged"] = 1 - summary["missed_abstention"]
                by_mode[mode] = row
                rows = save("quality", row, key=("corpus", "set", "mode"))
                print({k: v for k, v in row.items() if k not in ("machine", "command")}, flush=True)
            failures += problems(by_mode, f"{corpus}/{name}")
    table(rows)
    for failure in failures:
        print(f"QUALITY REGRESSION: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
