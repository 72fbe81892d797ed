"""CLI cold start: process start to first printed answer, `wenda ask` on an existing index; and what each
extra question costs in batch mode (`wenda ask --json` with Chinese and English questions on stdin): the
time for all of them less the time for the first alone, over the extra ones (medians of `--runs`).

    .venv/bin/python bench/cold_start.py [--runs 5]

Keeps the result in bench/results/cold_start.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from report import save, update_table

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [ROOT.parent / "shared" / "eval" / "dev.jsonl"] + [
    ROOT / "bench" / "questions" / f"{name}.jsonl" for name in ("paraphrase", "english")
]
COLUMNS = [
    ("runs", lambda r: str(r["runs"])),
    ("median", lambda r: f"{r['median_s']:.2f} s"),
    ("max", lambda r: f"{r['max_s']:.2f} s"),
    (
        "English question",
        lambda r: f"{r['english_median_s']:.2f} s ({r['english_ratio']:.2f}×)" if "english_ratio" in r else "—",
    ),
    ("batch (zh + en)", lambda r: f"{r['batch_questions']} questions {r['batch_s']:.2f} s" if "batch_s" in r else "—"),
    ("per extra question", lambda r: f"{r['per_extra_ms']:.1f} ms" if "per_extra_ms" in r else "—"),
    ("command", lambda r: f"`{r['command']}`"),
]


def table(rows: list[dict]) -> None:
    update_table("cold_start", COLUMNS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default="安阳市区营运出租车中有多少台纯电动车？")
    parser.add_argument("--english", default="How many pure electric taxis are there in Anyang's urban area?")
    args = parser.parse_args()
    wenda = [sys.executable, "-m", "wenda.bot.cli"]
    subprocess.run([*wenda, "index", "-q"], cwd=ROOT, check=True, capture_output=True)
    times, english = [], []
    for _ in range(args.runs):  # Chinese and English alternate, so both see the same machine
        for question, kept in ((args.question, times), (args.english, english)):
            started = time.perf_counter()
            subprocess.run([*wenda, "ask", "-k", "3", question], cwd=ROOT, check=True, capture_output=True)
            kept.append(time.perf_counter() - started)
    questions = [json.loads(line)["q"] for path in QUESTIONS for line in path.read_text(encoding="utf-8").splitlines()]
    batch = {1: [], len(questions): []}
    for _ in range(args.runs):
        for size in batch:
            lines = "".join(question + "\n" for question in questions[:size]).encode()
            started = time.perf_counter()
            subprocess.run([*wenda, "ask", "--json"], input=lines, cwd=ROOT, check=True, capture_output=True)
            batch[size].append(time.perf_counter() - started)
    one, many = float(np.median(batch[1])), float(np.median(batch[len(questions)]))
    result = {
        "runs": args.runs,
        "median_s": round(float(np.median(times)), 3),
        "max_s": round(max(times), 3),
        "english_median_s": round(float(np.median(english)), 3),
        "english_ratio": round(float(np.median(english) / np.median(times)), 3),
        "batch_questions": len(questions),
        "batch_s": round(many, 3),
        "per_extra_ms": round((many - one) / (len(questions) - 1) * 1000, 1),
    }
    print(json.dumps(result))
    table(save("cold_start", result, key=()))


if __name__ == "__main__":
    main()
