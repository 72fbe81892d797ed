"""Answering while the index updates: warm query latency of Chinese and English questions when the machine is
idle and while `wenda index` builds news paragraphs into another folder on the same machine, with the time of
each stage of a question, and the build's throughput alone and next to the questions.

    .venv/bin/python bench/contention.py [--index-dir DIR --label NAME] [--paragraphs 5000] [--rate 4]
        [--priority low|normal] [--library-defaults]

Questions: ../shared/eval/dev.jsonl and bench/questions/{paraphrase,english}.jsonl, split into Chinese and
English, asked in process by one `Retriever` (the bot's own path), warm. Idle: every question `--repeat`
times. Under build: the first `--paragraphs` of ../shared/data/xwlb.corpus.jsonl.gz are written as a corpus
folder and `wenda index` (a real subprocess, fresh index folder and embedding cache, `--priority` as given)
builds it while the questions are asked at `--rate` a second, alternating Chinese and English, until it ends.
The same build also runs alone first, for its throughput without questions. `--library-defaults` leaves every
native thread pool at its library's default (all cores, as before issue 12), for comparison.
Keeps the result in bench/results/contention.jsonl and rewrites two tables in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from report import save, update_table
from wenda.index import runtime
from wenda.index.builder import build_index
from wenda.index.config import EVAL_CACHE, Settings
from wenda.index.embeddings import embedder_for
from wenda.index.passages import read_jsonl
from wenda.index.store import open_snapshot
from wenda.retrieval.retriever import Retriever

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
QUESTION_FILES = [SHARED / "eval" / "dev.jsonl", ROOT / "bench" / "questions" / "paraphrase.jsonl"]
ENGLISH_FILE = ROOT / "bench" / "questions" / "english.jsonl"
STAGES = ("words", "model", "faiss", "bm25", "pool", "features", "ranker", "answer")


def latency(values: list[float]) -> dict:
    """p50, p95 and max of milliseconds."""
    array = np.array(values)
    return {"p50": round(float(np.percentile(array, 50)), 1), "p95": round(float(np.percentile(array, 95)), 1),
            "max": round(float(array.max()), 1), "n": len(values)}  # fmt: skip


def stage_figures(timings: list[dict[str, float]]) -> dict:
    return {stage: latency([t.get(stage, 0.0) for t in timings]) for stage in STAGES}


def question_sets() -> dict[str, list[str]]:
    chinese, english = [], []
    for path in QUESTION_FILES:
        for item in read_jsonl(path):
            (english if item["type"] == "english" else chinese).append(item["q"])
    english += [item["q"] for item in read_jsonl(ENGLISH_FILE)]
    return {"zh": chinese, "en": english}


def ask(retriever: Retriever, question: str, lang: str, samples: dict) -> None:
    started = time.perf_counter()
    response = retriever.ask(question, 5)
    samples[lang]["ms"].append((time.perf_counter() - started) * 1000)
    samples[lang]["timings"].append(response.timings)


def write_corpus(folder: Path, paragraphs: int) -> None:
    """The first `paragraphs` news paragraphs as one file per story: its title line, then its paragraphs."""
    folder.mkdir(parents=True)
    stories: dict[str, list[dict]] = {}
    for item in itertools.islice(read_jsonl(SHARED / "data" / "xwlb.corpus.jsonl.gz"), paragraphs):
        stories.setdefault(item["pid"].rsplit("-", 1)[0], []).append(item)
    for story, items in stories.items():
        text = "\n\n".join([items[0]["title"], *(item["text"] for item in items)])
        (folder / f"{story}.txt").write_text(text + "\n", encoding="utf-8")


def start_build(corpus: Path, index_dir: Path, priority: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "wenda.bot.cli", "index", "--quiet", "--corpus", str(corpus)]
    command += ["--index-dir", str(index_dir), "--priority", priority]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(build: subprocess.Popen, started: float, index_dir: Path) -> dict:
    _, errors = build.communicate()
    seconds = time.perf_counter() - started
    if build.returncode != 0:
        raise SystemExit(f"wenda index failed: {errors.decode(errors='replace')[-500:]}")
    chunks = len(open_snapshot(index_dir))
    return {"seconds": round(seconds, 1), "chunks": chunks, "chunks_per_second": round(chunks / seconds, 2)}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, default=None, help="index to ask (default: a seed corpus index)")
    parser.add_argument("--label", help="how the table names the index")
    parser.add_argument("--paragraphs", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=4.0, help="questions a second while the build runs")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every question when idle")
    parser.add_argument("--priority", choices=("low", "normal"), default="low", help="the build's --priority")
    parser.add_argument("--library-defaults", action="store_true", help="leave native thread pools unsized")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wenda-contention-") as tmp:
        work = Path(tmp)
        index_dir = args.index_dir
        if index_dir is None:  # the seed corpus, built here (vectors from the benchmark cache)
            index_dir = work / "seed"
            seed = Settings(corpus=ROOT / "corpus", index_dir=index_dir, cache_path=EVAL_CACHE)
            build_index(seed, embedder_for(seed), progress=False)
        # questions come round again and again: the model must run each time, not the remembered vectors
        retriever = Retriever(Settings.from_env(index_dir=index_dir, query_memory=0))
        if args.library_defaults:
            runtime.size_native_pools = lambda threads: None  # type: ignore[assignment]
            retriever.embedder.use_threads = lambda threads: None  # type: ignore[method-assign]
        retriever.warm_up()
        questions = question_sets()
        for question in questions["zh"][:3] + questions["en"][:3]:
            retriever.ask(question, 5)

        idle = {lang: {"ms": [], "timings": []} for lang in questions}
        for _ in range(args.repeat):
            for lang, batch in questions.items():
                for question in batch:
                    ask(retriever, question, lang, idle)

        write_corpus(work / "news", args.paragraphs)
        print(f"build alone: {args.paragraphs} paragraphs …", file=sys.stderr)
        alone = finish(start_build(work / "news", work / "alone", args.priority), time.perf_counter(), work / "alone")
        print(f"build alone: {alone}", file=sys.stderr)

        loaded = {lang: {"ms": [], "timings": []} for lang in questions}
        pairs = zip(questions["zh"], itertools.cycle(questions["en"]))  # every Chinese one, English repeating
        turns = itertools.cycle([turn for zh, en in pairs for turn in (("zh", zh), ("en", en))])
        started, cpu_before = time.perf_counter(), cpu_seconds()
        build = start_build(work / "news", work / "loaded", args.priority)
        next_at = started
        while build.poll() is None:
            lang, question = next(turns)
            ask(retriever, question, lang, loaded)
            next_at += 1.0 / args.rate
            time.sleep(max(0.0, next_at - time.perf_counter()))
        wall = time.perf_counter() - started
        share = (cpu_seconds() - cpu_before) / (wall * runtime.cpu_budget())
        with_questions = finish(build, started, work / "loaded")
        print(f"build with questions: {with_questions}", file=sys.stderr)

    result = {
        "index": args.label or ("seed corpus (corpus/)" if args.index_dir is None else str(index_dir)),
        "chunks": len(retriever.snapshot),
        "config": ("library defaults" if args.library_defaults else "sized pools")
        + f", build --priority {args.priority}",
        "paragraphs": args.paragraphs,
        "rate": args.rate,
        "idle": {lang: latency(s["ms"]) for lang, s in idle.items()},
        "under_build": {lang: latency(s["ms"]) for lang, s in loaded.items()},
        "stages_idle": stage_figures(idle["zh"]["timings"] + idle["en"]["timings"]),
        "stages_under_build": stage_figures(loaded["zh"]["timings"] + loaded["en"]["timings"]),
        "build_alone": alone,
        "build_with_questions": with_questions,
        "question_cpu_share": round(share, 3),
    }
    print(json.dumps(result, indent=1))
    table(save("contention", result, key=("index", "config", "paragraphs")))


def table(rows: list[dict]) -> None:
    def figures(row: dict, phase: str, lang: str) -> str:
        values = row[phase][lang]
        return f"{values['p50']:,.1f} / {values['p95']:,.1f} / {values['max']:,.1f}"

    def build(row: dict) -> str:
        alone, loaded = row["build_alone"]["chunks_per_second"], row["build_with_questions"]["chunks_per_second"]
        return f"{alone:.1f} → {loaded:.1f} ({(loaded / alone - 1) * 100:+.0f} %)"

    rows = sorted(rows, key=lambda r: (r["chunks"], r["config"]))
    columns = [
        ("index", lambda r: f"{r['index']} ({r['chunks']:,} chunks)"),
        ("query path, build", lambda r: r["config"]),
        ("zh idle p50 / p95 / max", lambda r: figures(r, "idle", "zh") + " ms"),
        ("zh under build", lambda r: figures(r, "under_build", "zh") + " ms"),
        ("en idle", lambda r: figures(r, "idle", "en") + " ms"),
        ("en under build", lambda r: figures(r, "under_build", "en") + " ms"),
        ("build chunks/s alone → with questions", build),
        ("questions' CPU share", lambda r: f"{r['question_cpu_share'] * 100:.1f} %"),
        ("command", lambda r: f"`{r['command']}`"),
    ]
    update_table("contention", columns, rows)
    stage_columns = [
        ("index", lambda r: f"{r['index']} ({r['chunks']:,} chunks)"),
        ("query path, build", lambda r: r["config"]),
        ("while", lambda r: r["while"]),
        *[
            (stage, lambda r, s=stage: f"{r['stages'][s]['p50']:,.1f} / {r['stages'][s]['p95']:,.1f}")
            for stage in STAGES
        ],
    ]
    stage_rows = [
        {**row, "while": label, "stages": row[key]}
        for row in rows
        for label, key in (("idle", "stages_idle"), ("build runs", "stages_under_build"))
    ]
    update_table("contention_stages", stage_columns, stage_rows)


if __name__ == "__main__":
    main()
