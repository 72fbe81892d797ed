"""CLI cold start: process start to first printed answer, `wenda ask` on an existing index; `wenda chat` from
start to its prompt (stdin closed, so it leaves at once); the imports of `wenda.bot.cli` (`python -X
importtime`); and what each extra question costs in batch mode (`wenda ask --json` with Chinese and English
questions on stdin): the time for all of them less the time for the first alone, over the extra ones
(medians of `--runs`), measured again while `wenda index` builds the first 3,000 news paragraphs of
../shared/data into another folder beside it (from an empty embedding cache, so it embeds throughout; target:
≤ 1.5× the idle figure). `--label` names the row (a rerun with the same label replaces it), so a state of the
code before a change can be measured with the same script and kept beside the state after it.

    .venv/bin/python bench/cold_start.py [--runs 5] [--label now]

Keeps the result in bench/results/cold_start.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from report import save, update_table

ROOT = Path(__file__).resolve().parent.parent
NEWS = ROOT.parent / "shared" / "data" / "xwlb.corpus.jsonl.gz"
QUESTIONS = [ROOT.parent / "shared" / "eval" / "dev.jsonl"] + [
    ROOT / "bench" / "questions" / f"{name}.jsonl" for name in ("paraphrase", "english")
]
COLUMNS = [
    ("code", lambda r: r.get("label", "—")),
    ("runs", lambda r: str(r["runs"])),
    ("median", lambda r: f"{r['median_s']:.2f} s"),
    ("max", lambda r: f"{r['max_s']:.2f} s"),
    (
        "English question",
        lambda r: f"{r['english_median_s']:.2f} s ({r['english_ratio']:.2f}×)" if "english_ratio" in r else "—",
    ),
    ("chat prompt", lambda r: f"{r['chat_median_s']:.2f} s" if "chat_median_s" in r else "—"),
    ("imports", lambda r: f"{r['imports_s']:.2f} s" if "imports_s" in r else "—"),
    ("batch (zh + en)", lambda r: f"{r['batch_questions']} questions {r['batch_s']:.2f} s" if "batch_s" in r else "—"),
    ("per extra question", lambda r: f"{r['per_extra_ms']:.1f} ms" if "per_extra_ms" in r else "—"),
    (
        "the same beside a build",
        lambda r: (
            f"{r['build_per_extra_ms']:.1f} ms ({r['build_per_extra_ms'] / r['per_extra_ms']:.2f}×)"
            if "build_per_extra_ms" in r
            else "—"
        ),
    ),
    ("command", lambda r: f"`{r['command']}`"),
]


def table(rows: list[dict]) -> None:
    update_table("cold_start", COLUMNS, rows)


def batch_seconds(wenda: list[str], questions: list[str], runs: int) -> tuple[float, float]:
    """Median seconds of `wenda ask --json` with the first question alone and with all of them, alternating."""
    batch: dict[int, list[float]] = {1: [], len(questions): []}
    for _ in range(runs):
        for size in batch:
            lines = "".join(question + "\n" for question in questions[:size]).encode()
            started = time.perf_counter()
            subprocess.run([*wenda, "ask", "--json"], input=lines, cwd=ROOT, check=True, capture_output=True)
            batch[size].append(time.perf_counter() - started)
    return float(np.median(batch[1])), float(np.median(batch[len(questions)]))


def start_build(wenda: list[str], work: Path) -> subprocess.Popen:
    """`wenda index` of 3,000 news paragraphs (30 files) into `work`, embedding all of them, started now."""
    corpus = work / "news"
    corpus.mkdir()
    with gzip.open(NEWS, "rt", encoding="utf-8") as handle:
        paragraphs = [json.loads(line)["text"] for line in itertools.islice(handle, 3000)]
    for number in range(30):
        (corpus / f"news{number:02d}.txt").write_text("\n\n".join(paragraphs[number * 100 : (number + 1) * 100]))
    env = {**os.environ, "WENDA_EMBEDDING_CACHE": str(work / "cache.sqlite")}
    command = [*wenda, "index", "-q", "--corpus", str(corpus), "--index-dir", str(work / "index")]
    build = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)  # past its start-up, into embedding
    return build


def import_seconds() -> float:
    """Cumulative import time of `wenda.bot.cli` as `python -X importtime` reports it."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import wenda.bot.cli"], cwd=ROOT, check=True, capture_output=True
    )
    for line in done.stderr.decode().splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2] == "wenda.bot.cli":
            return int(fields[1]) / 1e6
    raise RuntimeError("python -X importtime did not report wenda.bot.cli")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default="安阳市区营运出租车中有多少台纯电动车？")
    parser.add_argument("--english", default="How many pure electric taxis are there in Anyang's urban area?")
    parser.add_argument("--label", default="now", help="names the row in the table")
    args = parser.parse_args()
    wenda = [sys.executable, "-m", "wenda.bot.cli"]
    subprocess.run([*wenda, "index", "-q"], cwd=ROOT, check=True, capture_output=True)
    times, english, chat, imports = [], [], [], []
    for _ in range(args.runs):  # all alternate, so each sees the same machine
        for question, kept in ((args.question, times), (args.english, english)):
            started = time.perf_counter()
            subprocess.run([*wenda, "ask", "-k", "3", question], cwd=ROOT, check=True, capture_output=True)
            kept.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run([*wenda, "chat"], stdin=subprocess.DEVNULL, cwd=ROOT, check=True, capture_output=True)
        chat.append(time.perf_counter() - started)
        imports.append(import_seconds())
    questions = [json.loads(line)["q"] for path in QUESTIONS for line in path.read_text(encoding="utf-8").splitlines()]
    one, many = batch_seconds(wenda, questions, args.runs)
    with tempfile.TemporaryDirectory() as work:
        build = start_build(wenda, Path(work))
        try:
            build_one, build_many = batch_seconds(wenda, questions, args.runs)
            if build.poll() is not None:
                raise SystemExit("the build beside the batches ended before them: the figure would be idle")
        finally:
            build.kill()
            build.wait()
    result = {
        "label": args.label,
        "runs": args.runs,
        "median_s": round(float(np.median(times)), 3),
        "max_s": round(max(times), 3),
        "english_median_s": round(float(np.median(english)), 3),
        "english_ratio": round(float(np.median(english) / np.median(times)), 3),
        "chat_median_s": round(float(np.median(chat)), 3),
        "imports_s": round(float(np.median(imports)), 3),
        "batch_questions": len(questions),
        "batch_s": round(many, 3),
        "per_extra_ms": round((many - one) / (len(questions) - 1) * 1000, 1),
        "build_per_extra_ms": round((build_many - build_one) / (len(questions) - 1) * 1000, 1),
    }
    print(json.dumps(result))
    table(save("cold_start", result, key=("label",)))


if __name__ == "__main__":
    main()
