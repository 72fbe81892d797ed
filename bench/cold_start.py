"""CLI cold start: process start to first printed answer, `wenda ask` on an existing index.

    .venv/bin/python bench/cold_start.py [--runs 5]

Writes bench/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


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
    (ROOT / "bench" / "results" / "cold_start.json").write_text(json.dumps(result) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
