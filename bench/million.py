"""Scale: `wenda index` of N passages with the model-free hash embedder, its wall time and the peak memory of its
whole process tree, then the marginal cost of a question over the result; for the growth curve towards 1M.

    .venv/bin/python bench/million.py [--sizes 100000 300000] [--work DIR] [--keep]

The corpus is written first (not timed): N passages made from the 92,622 xwlb news paragraphs of ../shared/data,
paragraph i % 92,622 followed by the first sentence of another one (so every passage is distinct past 92k),
100 passages a file, as a folder of .txt files a user would have. `WENDA_EMBEDDER=hash` (index/hash_embedder.py)
stands in for the model, so the figures are everything but the model: reading, chunking, tokenising, the
vector index, the lexical index and writing. Peak RSS is the largest sum of the resident memory of `wenda
index` and its children (the isolated reader), sampled every 0.2 s. The question cost is `wenda ask --json`
with 200 CMRC questions against 1 question, as bench/cold_start.py measures it.

Keeps the rows in bench/results/million.jsonl and rewrites the table in docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from report import ROOT, save, update_table

XWLB = ROOT.parent / "shared" / "data" / "xwlb.corpus.jsonl.gz"
CMRC = ROOT.parent / "shared" / "eval" / "cmrc2018.qa.jsonl.gz"
PER_FILE = 100
COLUMNS = [
    ("passages", lambda r: f"{r['passages']:,}"),
    ("chunks", lambda r: f"{r['chunks']:,}"),
    ("build", lambda r: f"{r['build_s'] / 60:.1f} min"),
    ("peak RSS (process tree)", lambda r: f"{r['peak_rss_mb']:,.0f} MB"),
    ("index on disk", lambda r: f"{r['disk_mb']:,.0f} MB"),
    ("vector index", lambda r: r["vector_index"]),
    ("per extra question", lambda r: f"{r['per_question_ms']:.1f} ms"),
    ("command", lambda r: f"`{r['command']}`"),
]


def table(rows: list[dict]) -> None:
    update_table("million", COLUMNS, sorted(rows, key=lambda r: r["passages"]), doc=ROOT / "docs" / "scale-out.md")


def write_corpus(folder: Path, size: int) -> None:
    """`size` distinct passages from the xwlb paragraphs, `PER_FILE` to a file."""
    with gzip.open(XWLB, "rt", encoding="utf-8") as handle:
        paragraphs = [json.loads(line)["text"].strip() for line in handle]
    firsts = [p.split("。")[0] + "。" for p in paragraphs]
    folder.mkdir(parents=True)
    for start in range(0, size, PER_FILE):
        texts = [
            paragraphs[i % len(paragraphs)] + (firsts[(i * 7919 + 13) % len(firsts)] if i >= len(paragraphs) else "")
            for i in range(start, min(size, start + PER_FILE))
        ]
        (folder / f"news{start // PER_FILE:06d}.txt").write_text("\n\n".join(texts) + "\n", encoding="utf-8")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        todo += [int(child) for child in children]
    return total / 1024


def run_measured(command: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak process-tree RSS (MB) and stdout of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(process.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = process.communicate()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return time.perf_counter() - started, peak[0], out + err


def question_cost(env: dict) -> float:
    """Milliseconds each extra question costs in a `wenda ask --json` batch (200 CMRC questions against 1)."""
    with gzip.open(CMRC, "rt", encoding="utf-8") as handle:
        questions = [q for q in (json.loads(line)["question"].strip() for line in handle) if q][:200]
    wenda = [sys.executable, "-m", "wenda.bot.cli", "ask", "--json"]
    times = {}
    for size in (1, len(questions), 1, len(questions)):
        lines = "".join(q + "\n" for q in questions[:size]).encode()
        started = time.perf_counter()
        subprocess.run(wenda, input=lines, cwd=ROOT, env=env, check=True, capture_output=True)
        times.setdefault(size, []).append(time.perf_counter() - started)
    one, many = min(times[1]), min(times[len(questions)])
    return (many - one) / (len(questions) - 1) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "wenda-million")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and indexes under --work")
    args = parser.parse_args()
    for size in args.sizes:
        folder = args.work / str(size)
        shutil.rmtree(folder, ignore_errors=True)
        write_corpus(folder / "corpus", size)
        env = {
            **os.environ,
            "WENDA_EMBEDDER": "hash",
            "WENDA_CORPUS": str(folder / "corpus"),
            "WENDA_INDEX_DIR": str(folder / "index"),
        }
        seconds, peak, said = run_measured([sys.executable, "-m", "wenda.bot.cli", "index", "-q"], env)
        manifest = json.loads(next((folder / "index").glob("gen-*/manifest.json")).read_text())
        disk = sum(p.stat().st_size for p in (folder / "index").rglob("*") if p.is_file()) / 2**20
        row = {
            "passages": size,
            "chunks": manifest["chunks"],
            "build_s": round(seconds, 1),
            "peak_rss_mb": round(peak),
            "disk_mb": round(disk),
            "vector_index": manifest.get("vector_index", {}).get("type", "flat"),
            "per_question_ms": round(question_cost(env), 1),
            "said": said.strip().splitlines()[-1:],
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)
        table(save("million", row, key=("passages",)))
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
