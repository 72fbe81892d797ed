"""What an index type change costs in answers: the same questions against two generations of one index
(e.g. the exact Flat generation and the IVF-SQ8 one after FLAT_LIMIT changed), whole hybrid query path.

    .venv/bin/python bench/generations.py --index-dir DIR --old gen-000001 --new gen-000002 \\
        --questions ../shared/eval/cmrc2018.qa.jsonl.gz --limit 1000

Prints, and keeps in bench/results/generations.jsonl: how often the top passage is the same, and what share
of the old top 5 the new top 5 keeps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from report import save
from wenda.index.config import Settings
from wenda.index.passages import read_jsonl
from wenda.index.store import Snapshot
from wenda.retrieval.retriever import Retriever


def pin(retriever: Retriever, snapshot: Snapshot) -> None:
    """Make `retriever` answer from `snapshot`, whatever generation CURRENT names."""
    retriever.snapshot = snapshot
    retriever.refresh = lambda: False


def top_ids(retriever: Retriever, snapshot: Snapshot, questions: list[str], k: int) -> list[list[int]]:
    pin(retriever, snapshot)
    return [[r.record.id for r in retriever.ask(q, k).results] for q in questions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()
    questions = [q.get("q") or q["question"] for q in read_jsonl(args.questions)][: args.limit]
    retriever = Retriever(Settings.from_env(index_dir=args.index_dir))
    old = top_ids(retriever, Snapshot(args.index_dir / args.old), questions, args.k)
    new = top_ids(retriever, Snapshot(args.index_dir / args.new), questions, args.k)
    same_top = sum(a[:1] == b[:1] for a, b in zip(old, new, strict=True)) / len(questions)
    kept = sum(len(set(a) & set(b)) / max(1, len(a)) for a, b in zip(old, new, strict=True)) / len(questions)
    row = {
        "index": str(args.index_dir),
        "old": args.old,
        "new": args.new,
        "questions": len(questions),
        "same_top1": round(same_top, 4),
        f"top{args.k}_kept": round(kept, 4),
    }
    print(json.dumps(row))
    save("generations", row, key=("index", "old", "new"))


if __name__ == "__main__":
    main()
