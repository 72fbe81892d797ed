"""CLI cold start: process start to first printed answer, `wenda ask` on an existing index.

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
COLUMNS = [
    ("runs", lambda r: str(r["runs"])),
    ("median", lambda r: f"{r['median_s']:.2f} s"),
    ("max", lambda r: f"{r['max_s']:.2f} s"),
    ("command", lambda r: f"`{r['command']}`"),
]


def table(rows: list[dict]) -> None:
    update_table("cold_start", COLUMNS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default="安阳市区营运出租车中有多少台纯电动车？")
    args = parser.parse_args()
    wenda = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*wenda, "index", "-q"], cwd=ROOT, check=True, capture_output=True)
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([*wenda, "ask", "-k", "3", args.question], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    result = {"runs": args.runs, "median_s": round(float(np.median(times)), 3), "max_s": round(max(times), 3)}
    print(json.dumps(result))
    table(save("cold_start", result, key=()))


if __name__ == "__main__":
    main()
