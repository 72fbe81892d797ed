"""What the integrity checks cost: opening a generation with and without verifying every file's checksum (page
cache warm, and cold after evicting the files' pages), and `wenda ask` cold start and per-question cost in a batch
against the commit before the checks existed, alternated in one run.

    .venv/bin/python bench/integrity.py [--chunks 92622] [--runs 7] [--baseline d7ec5c8]

The large generation holds real xwlb paragraphs (real chunking, jieba tokens, bm25s, SQLite, IVF-SQ8 past
FLAT_LIMIT) with random unit vectors in place of embeddings: embedding 92k chunks takes two hours on this machine,
and verification cost depends on the bytes on disk, not on what they mean. Keeps the results in
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

from index import store  # noqa: E402
from index.builder import insert_sources, lexical_index  # noqa: E402
from index.config import ChunkingParams  # noqa: E402
from index.embeddings import BuiltinE5  # noqa: E402
from index.passages import passage_files  # noqa: E402
from index.vectors import describe, fit, new_flat  # noqa: E402

XWLB = ROOT.parent / "shared" / "data" / "xwlb.corpus.jsonl.gz"
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


def synthetic_generation(index_dir: Path, paragraphs: int) -> Path:
    """A generation of real xwlb paragraphs with random unit vectors, written by the real store code."""
    files = passage_files(XWLB, limit=paragraphs)
    tmp, db = store.new_generation(index_dir, None)
    texts = insert_sources(db, files, sorted(files), 0, ChunkingParams())
    vectors = np.random.default_rng(0).normal(size=(len(texts), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = new_flat(384)
    index.add_with_ids(vectors, np.arange(len(texts), dtype=np.int64))
    index = fit(index)
    manifest = {
        "format_version": store.FORMAT_VERSION,
        "model": BuiltinE5().identity(),
        "chunking": ChunkingParams().as_dict(),
        "probes": {},
        "vector_index": describe(index),
        "files": {source: files[source].fingerprint for source in sorted(files)},
        "next_id": len(texts),
    }
    return store.commit_generation(tmp, db, index, lexical_index(db), manifest)


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


def cli_timings(baseline: str, runs: int) -> str:
    """`wenda ask` on the seed corpus at the baseline commit and in this tree, alternated: process start to exit
    for one question, and the cost of each extra question of a batch (Chinese and English, `--json`)."""
    work = Path(tempfile.mkdtemp(prefix="wenda-integrity-"))
    trees = {"before": work / "before", "after": ROOT}
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(trees["before"]), baseline], cwd=ROOT, check=True)
    questions = [json.loads(line)["q"] for path in QUESTIONS for line in path.read_text(encoding="utf-8").splitlines()]
    batch = "".join(question + "\n" for question in questions).encode()
    try:
        envs = {}
        for name, tree in trees.items():
            envs[name] = {
                **os.environ,
                "PYTHONPATH": str(tree),
                "WENDA_CORPUS": str(ROOT / "corpus"),
                "WENDA_INDEX_DIR": str(work / f"index-{name}"),
                "WENDA_EMBEDDING_CACHE": str(work / f"cache-{name}.sqlite"),
            }
            shutil.copy(ROOT / ".wenda-index" / "embeddings.sqlite", work / f"cache-{name}.sqlite")
            subprocess.run([sys.executable, "-m", "bot.cli", "index", "-q"], cwd=tree, env=envs[name], check=True)
        one: dict[str, list[float]] = {name: [] for name in trees}
        many: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(runs):
            for name, tree in trees.items():
                for times, stdin, args in ((one, None, ["-k", "3", QUESTION]), (many, batch, ["--json"])):
                    started = time.perf_counter()
                    done = subprocess.run(
                        [sys.executable, "-m", "bot.cli", "ask", *args],
                        cwd=tree,
                        env=envs[name],
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
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(trees["before"])], cwd=ROOT, check=False)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=92_622, help="xwlb paragraphs in the large generation")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", default="d7ec5c8", help="commit before the checks, for the cold start")
    args = parser.parse_args()
    seed_dir = Path(tempfile.mkdtemp(prefix="wenda-seed-"))
    env = {**os.environ, "WENDA_INDEX_DIR": str(seed_dir)}
    subprocess.run([sys.executable, "-m", "bot.cli", "index", "-q"], cwd=ROOT, env=env, check=True)
    seed = {"label": "seed corpus (real vectors)", **measure_open(store.live_generation(seed_dir), args.runs)}
    seed["cli"] = cli_timings(args.baseline, args.runs)
    rows = save("integrity", seed, key=("label",))
    large_dir = Path(tempfile.mkdtemp(prefix="wenda-large-"))
    try:
        generation = synthetic_generation(large_dir, args.chunks)
        label = f"{args.chunks:,} xwlb paragraphs (random vectors)"
        rows = save("integrity", {"label": label, **measure_open(generation, args.runs)}, key=("label",))
    finally:
        shutil.rmtree(large_dir, ignore_errors=True)
        shutil.rmtree(seed_dir, ignore_errors=True)
    table(rows)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
