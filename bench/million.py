"""Scale: `wenda index` of N passages with the model-free hash embedder, its wall time and the peak memory of its
whole process tree, then the marginal cost of a question over the result; for the growth curve towards 1M.

    .venv/bin/python bench/million.py [--sizes 100000 300000] [--work DIR] [--keep]

The corpus is written first (not timed): N passages made from the 92,622 xwlb news paragraphs of ../shared/data,
paragraph i % 92,622 followed by the first sentence of another one (so every passage is distinct past 92k),
100 passages a file, as a folder of .txt files a user would have. `WENDA_EMBEDDER=hash` (index/hash_embedder.py)
stands in for the model, so the figures are everything but the model: reading, chunking, tokenising, the
vector index, the lexical index and writing. Peak RSS is the largest sum of the resident memory of `wenda
index` and its children (the isolated reader), sampled every 0.2 s. The question cost is `wenda ask --json`
with 200 CMRC questions against 1 question, as bench/cold_start.py measures it, with the peak RSS of the 200.
`wenda index -v` says when each stage ends (scan, read = extract + chunk + tokenise + store, embed, vectors,
lexical, write): each stage's time and the peak memory sampled during it. Then one more file of 1,000 passages
is added and `wenda index` run again: the cost of an update at that size.

Keeps the rows in bench/results/million.jsonl and rewrites the table in docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
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
UPDATE = 1_000  # passages added to the built index, to measure an update
STAGE = re.compile(r"stage (\w+): ([\d.]+) s")
COLUMNS = [
    ("passages", lambda r: f"{r['passages']:,}"),
    ("chunks", lambda r: f"{r['chunks']:,}"),
    ("build", lambda r: f"{r['build_s'] / 60:.1f} min"),
    ("peak RSS (process tree) / of it anonymous", lambda r: f"{r['peak_rss_mb']:,.0f} / {anon(r, 'peak_anon_mb')}"),
    ("index on disk", lambda r: f"{r['disk_mb']:,.0f} MB"),
    ("vector index", lambda r: r["vector_index"]),
    ("one question, from start", lambda r: f"{r['first_answer_s']:.2f} s" if "first_answer_s" in r else "—"),
    ("per extra question", lambda r: f"{r['per_question_ms']:.1f} ms"),
    (
        "answering 200 questions: peak RSS / anonymous",
        lambda r: f"{r['serving_rss_mb']:,} / {anon(r, 'serving_anon_mb')}" if "serving_rss_mb" in r else "—",
    ),
    ("stages: seconds / peak MB (anonymous)", lambda r: stage_cell(r.get("stages", {}))),
    (
        "adding 1,000 passages",
        lambda r: update_cell(r["update"]) if "update" in r else "—",
    ),
    ("command", lambda r: f"`{r['command']}`"),
]


def anon(row: dict, key: str) -> str:
    """The anonymous peak, or "—" for rows measured before it was."""
    return f"{row[key]:,}" if key in row else "—"


def stage_cell(stages: dict) -> str:
    cells = (f"{n} {s['seconds']:.0f} s / {s['peak_mb']:,} ({anon(s, 'peak_anon_mb')})" for n, s in stages.items())
    return "; ".join(cells) or "—"


def update_cell(update: dict) -> str:
    return f"{update['seconds']:.0f} s / {update['peak_mb']:,} ({anon(update, 'peak_anon_mb')}) MB"


def table(rows: list[dict]) -> None:
    update_table("million", COLUMNS, sorted(rows, key=lambda r: r["passages"]), doc=ROOT / "docs" / "scale-out.md")


def first_sentences(paragraphs: list[str]) -> list[str]:
    return [p.split("。")[0] + "。" for p in paragraphs]


def write_corpus(folder: Path, size: int, paragraphs: list[str]) -> None:
    """`size` distinct passages from the xwlb paragraphs, `PER_FILE` to a file."""
    firsts = first_sentences(paragraphs)
    folder.mkdir(parents=True)
    for start in range(0, size, PER_FILE):
        texts = [
            paragraphs[i % len(paragraphs)] + (firsts[(i * 7919 + 13) % len(firsts)] if i >= len(paragraphs) else "")
            for i in range(start, min(size, start + PER_FILE))
        ]
        (folder / f"news{start // PER_FILE:06d}.txt").write_text("\n\n".join(texts) + "\n", encoding="utf-8")


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of a process and its descendants, in MB (Linux /proc), and the anonymous part of it (heap
    and stacks: what the machine must have; the rest is pages of memory-mapped files, which the kernel can drop
    and read again)."""
    total, anonymous, todo = 0, 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        total += int(fields.get("VmRSS", "0 kB").split()[0])
        anonymous += int(fields.get("RssAnon", "0 kB").split()[0])
        todo += [int(child) for child in children]
    return total / 1024, anonymous / 1024


def run_measured(
    command: list[str], env: dict, stdin: bytes | None = None
) -> tuple[float, tuple[float, float], str, dict]:
    """Wall seconds, peak process-tree RSS and its peak anonymous part (MB), output, and per stage {"seconds",
    "peak_mb", "peak_anon_mb"} of a command whose
    stderr says "stage NAME: S s" as each stage ends (`wenda index -v`): the memory samples are split at the
    times those lines arrive."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    samples: list[tuple[float, tuple[float, float]]] = []
    ends: list[tuple[float, str, float]] = []
    errors: list[str] = []

    def sample() -> None:
        while process.poll() is None:
            samples.append((time.perf_counter(), tree_rss_mb(process.pid)))
            time.sleep(0.2)

    def read_errors() -> None:
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace")
            errors.append(line)
            if match := STAGE.match(line):
                ends.append((time.perf_counter(), match[1], float(match[2])))

    threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=read_errors, daemon=True)]
    for thread in threads:
        thread.start()
    if stdin is not None:
        process.stdin.write(stdin)
    process.stdin.close()
    out = process.stdout.read().decode("utf-8", "replace")
    process.wait()
    for thread in threads:
        thread.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{''.join(errors)[-3000:]}")
    stages, begin = {}, started
    for end, name, seconds in ends:
        inside = [rss for when, rss in samples if begin <= when <= end + 0.2]
        stages[name] = {
            "seconds": seconds,
            "peak_mb": round(max((total for total, _ in inside), default=0.0)),
            "peak_anon_mb": round(max((anonymous for _, anonymous in inside), default=0.0)),
        }
        begin = end
    peak = max((rss[0] for _, rss in samples), default=0.0)
    anonymous = max((rss[1] for _, rss in samples), default=0.0)
    return time.perf_counter() - started, (peak, anonymous), out + "".join(errors), stages


def question_cost(env: dict) -> tuple[float, tuple[float, float], float]:
    """Milliseconds each extra question costs in a `wenda ask --json` batch (200 CMRC questions against 1), the
    peak RSS and its anonymous part (MB) of answering the 200, and the seconds from start to exit of answering one
    (opening the index, its checksums verified, included)."""
    with gzip.open(CMRC, "rt", encoding="utf-8") as handle:
        questions = [q for q in (json.loads(line)["question"].strip() for line in handle) if q][:200]
    wenda = [sys.executable, "-m", "wenda.bot.cli", "ask", "--json"]
    times, peaks = {}, []
    for size in (1, len(questions), 1, len(questions)):
        lines = "".join(q + "\n" for q in questions[:size]).encode()
        seconds, (peak, anonymous), _, _ = run_measured(wenda, env, stdin=lines)
        times.setdefault(size, []).append(seconds)
        peaks.append((peak, anonymous))
    one, many = min(times[1]), min(times[len(questions)])
    return (many - one) / (len(questions) - 1) * 1000, max(peaks), one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "wenda-million")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and indexes under --work")
    args = parser.parse_args()
    with gzip.open(XWLB, "rt", encoding="utf-8") as handle:
        paragraphs = [json.loads(line)["text"].strip() for line in handle]
    firsts = first_sentences(paragraphs)
    for size in args.sizes:
        folder = args.work / str(size)
        shutil.rmtree(folder, ignore_errors=True)
        write_corpus(folder / "corpus", size, paragraphs)
        env = {
            **os.environ,
            "WENDA_EMBEDDER": "hash",
            "WENDA_CORPUS": str(folder / "corpus"),
            "WENDA_INDEX_DIR": str(folder / "index"),
        }
        command = [sys.executable, "-m", "wenda.bot.cli", "index", "-q", "-v"]
        seconds, (peak, anonymous), said, stages = run_measured(command, env)
        manifest = json.loads(next((folder / "index").glob("gen-*/manifest.json")).read_text())
        disk = sum(p.stat().st_size for p in (folder / "index").rglob("*") if p.is_file()) / 2**20
        per_question, serving, first = question_cost(env)
        # an update: one more file of 1,000 passages (distinct from the others) into the built index
        extra = folder / "corpus" / "update.txt"
        extra.write_text("\n\n".join(f"更新段落{i}：" + firsts[i] for i in range(UPDATE)) + "\n", encoding="utf-8")
        update_s, (update_peak, update_anonymous), _, update_stages = run_measured(
            [sys.executable, "-m", "wenda.bot.cli", "index", "-q", "-v"], env
        )
        row = {
            "passages": size,
            "chunks": manifest["chunks"],
            "build_s": round(seconds, 1),
            "peak_rss_mb": round(peak),
            "peak_anon_mb": round(anonymous),
            "disk_mb": round(disk),
            "vector_index": manifest.get("vector_index", {}).get("type", "flat"),
            "per_question_ms": round(per_question, 1),
            "serving_rss_mb": round(serving[0]),
            "serving_anon_mb": round(serving[1]),
            "first_answer_s": round(first, 2),
            "stages": stages,
            "update": {
                "passages": UPDATE,
                "seconds": round(update_s, 1),
                "peak_mb": round(update_peak),
                "peak_anon_mb": round(update_anonymous),
                "stages": update_stages,
            },
            "said": said.strip().splitlines()[-1:],
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)
        table(save("million", row, key=("passages",)))
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
