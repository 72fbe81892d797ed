"""What the integrity checks cost: opening a generation with and without verifying every file's checksum (page
cache warm, and cold after evicting the files' pages), and `wenda ask` cold start and per-question cost in a batch
against the commit before the checks existed, alternated in one run.

    .venv/bin/python bench/integrity.py [--chunks 92622] [--runs 7] [--baseline d7ec5c8]

The large generations (bench/synthetic_generation.py, written by each tree's own code) hold real xwlb paragraphs
with random unit vectors in place of embeddings: embedding 92k chunks takes two hours on this machine, and what
is measured here depends on the bytes on disk, not on what they mean. Keeps the results in
bench/results/integrity.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from report import save, update_table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wenda.index import store  # noqa: E402

QUESTION = "安阳市区营运出租车中有多少台纯电动车？"
QUESTIONS = [ROOT.parent / "shared" / "eval" / "dev.jsonl"] + [
    ROOT / "bench" / "questions" / f"{name}.jsonl" for name in ("paraphrase", "english")
]
COLUMNS = [
    ("generation", lambda r: r["label"]),
    ("chunks", lambda r: f"{r['chunks']:,}"),
    ("bytes", lambda r: f"{r['megabytes']:.0f} MB"),
    ("open, warm: unchecked / checked", lambda r: f"{r['warm_unchecked_ms']:.0f} / {r['warm_checked_ms']:.0f} ms"),
    ("open, cold: unchecked / checked", lambda r: f"{r['cold_unchecked_ms']:.0f} / {r['cold_checked_ms']:.0f} ms"),
    ("`wenda ask`, before / after the checks", lambda r: r.get("cli", "—")),
    ("command", lambda r: f"`{r['command']}`"),
]


def table(rows: list[dict]) -> None:
    update_table("integrity", COLUMNS, rows)


def evict(generation: Path) -> None:
    """Drop the generation's pages from the page cache (no root needed): the next open reads from disk."""
    for path in generation.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def open_ms(generation: Path, verify: bool, cold: bool) -> float:
    if cold:
        evict(generation)
    started = time.perf_counter()
    store.Snapshot(generation, mmap=True, verify=verify).close()
    return (time.perf_counter() - started) * 1000


def measure_open(generation: Path, runs: int) -> dict:
    """Medians of alternated opens, unchecked and checked, warm and cold."""
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        for cold in (False, True):
            for verify in (False, True):
                name = f"{'cold' if cold else 'warm'}_{'checked' if verify else 'unchecked'}_ms"
                times.setdefault(name, []).append(open_ms(generation, verify, cold))
    chunks = len(store.Snapshot(generation))
    size = sum(p.stat().st_size for p in generation.rglob("*") if p.is_file())
    return {"chunks": chunks, "megabytes": size / 2**20, **{k: float(np.median(v)) for k, v in times.items()}}


def ask_timings(trees: dict[str, dict], runs: int) -> str:
    """`wenda ask` in each tree (by its environment), alternated: process start to exit for one question, and the
    cost of each extra question of a batch (Chinese and English, `--json`); medians."""
    questions = [json.loads(line)["q"] for path in QUESTIONS for line in path.read_text(encoding="utf-8").splitlines()]
    batch = "".join(question + "\n" for question in questions).encode()
    one: dict[str, list[float]] = {name: [] for name in trees}
    many: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(runs):
        for name, env in trees.items():
            for times, stdin, args in ((one, None, ["-k", "3", QUESTION]), (many, batch, ["--json"])):
                started = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "wenda.bot.cli", "ask", *args],
                    cwd=env["PYTHONPATH"],  # `-m` puts the working folder first on sys.path
                    env=env,
                    input=stdin,
                    capture_output=True,
                )
                times[name].append(time.perf_counter() - started)
                assert done.stdout, done.stderr.decode()
    cold = {name: float(np.median(one[name])) for name in trees}
    extra = {name: (float(np.median(many[name])) - cold[name]) / (len(questions) - 1) * 1000 for name in trees}
    return (
        f"{cold['before']:.2f} / {cold['after']:.2f} s ({cold['after'] / cold['before'] - 1:+.0%}); per extra "
        f"question {extra['before']:.1f} / {extra['after']:.1f} ms ({extra['after'] / extra['before'] - 1:+.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=92_622, help="xwlb paragraphs in the large generation")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", default="d7ec5c8", help="commit before the checks, for `wenda ask`")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wenda-integrity-"))
    trees = {"before": work / "before", "after": ROOT}
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(trees["before"]), args.baseline], cwd=ROOT, check=True
    )
    try:
        seed, large = {}, {}
        for name, tree in trees.items():
            seed[name] = {
                **os.environ,
                "PYTHONPATH": str(tree),
                "WENDA_CORPUS": str(ROOT / "corpus"),
                "WENDA_INDEX_DIR": str(work / f"seed-{name}"),
            }
            (work / f"seed-{name}").mkdir()
            shutil.copy(ROOT / ".wenda-index" / "embeddings.sqlite", work / f"seed-{name}" / "embeddings.sqlite")
            subprocess.run([sys.executable, "-m", "wenda.bot.cli", "index", "-q"], cwd=tree, env=seed[name], check=True)
            large[name] = {**seed[name], "WENDA_INDEX_DIR": str(work / f"large-{name}")}
            script = [sys.executable, str(ROOT / "bench" / "synthetic_generation.py"), str(work / f"large-{name}")]
            subprocess.run([*script, "--paragraphs", str(args.chunks)], env=seed[name], check=True)
        label = "seed corpus (real vectors)"
        row = {"label": label, **measure_open(store.live_generation(work / "seed-after"), args.runs)}
        rows = save("integrity", {**row, "cli": ask_timings(seed, args.runs)}, key=("label",))
        label = f"{args.chunks:,} xwlb paragraphs (random vectors)"
        row = {"label": label, **measure_open(store.live_generation(work / "large-after"), args.runs)}
        rows = save("integrity", {**row, "cli": ask_timings(large, args.runs)}, key=("label",))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(trees["before"])], cwd=ROOT, check=False)
        shutil.rmtree(work, ignore_errors=True)
    table(rows)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
