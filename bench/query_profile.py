"""Where a query's time goes: embedding the question, dense top-100 search, tokenizing, BM25 top 100, the
candidate pool, fetching its rows, the ranking features, the learned ranker, and the whole `Retriever.ask`,
each timed alone over the same questions (p50 / p95, ms). Prints; keeps no table.

    .venv/bin/python bench/query_profile.py --index-dir DIR --questions ../shared/eval/cmrc2018.qa.jsonl.gz \
        [--generation gen-000001]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from generations import pin
from report import percentiles
from wenda.index.config import Settings
from wenda.index.passages import read_jsonl
from wenda.index.probes import language
from wenda.index.store import Snapshot
from wenda.index.tokenization import normalize, tokenize
from wenda.retrieval import ranker
from wenda.retrieval.candidates import POOL_SIZE, gather
from wenda.retrieval.features import Question, features
from wenda.retrieval.query import clean_query
from wenda.retrieval.retriever import Retriever


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--generation", help="profile this generation (e.g. gen-000001) instead of the live one")
    args = parser.parse_args()
    retriever = Retriever(Settings.from_env(index_dir=args.index_dir))
    if args.generation:
        pin(retriever, Snapshot(args.index_dir / args.generation))
    snapshot = retriever.snapshot
    questions = [q.get("q") or q["question"] for q in read_jsonl(args.questions)][: args.limit]
    retriever.ask(questions[0], 5)  # warm up
    steps = {
        "embed question": lambda q: retriever.embedder.embed_queries([normalize(clean_query(q))]),
        f"dense top {POOL_SIZE}": lambda q: snapshot.search(vectors[q], POOL_SIZE),
        "tokenize": lambda q: tokenize(clean_query(q)),
        f"BM25 top {POOL_SIZE}": lambda q: snapshot.lexical.search(tokens[q], POOL_SIZE),
        "candidate pool, both scores": lambda q: gather(snapshot, vectors[q], tokens[q]),
        "fetch candidate rows": lambda q: snapshot.records(pools[q].ids.tolist()),
        "features": lambda q: features(Question.of(q), pools[q], rows[q], retriever.profile.get(language(q))),
        "learned ranker": lambda q: ranker.shipped().score(matrices[q]),
        "whole ask": lambda q: retriever.ask(q, 5),
    }
    vectors = {q: retriever.embedder.embed_queries([normalize(clean_query(q))])[0] for q in questions}
    tokens = {q: tokenize(clean_query(q)) for q in questions}
    pools = {q: gather(snapshot, vectors[q], tokens[q]) for q in questions}
    rows = {q: snapshot.records(pools[q].ids.tolist()) for q in questions}
    matrices = {q: features(Question.of(q), pools[q], rows[q], retriever.profile.get(language(q))) for q in questions}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for question in questions:
        for name, step in steps.items():
            started = time.perf_counter()
            step(question)
            times[name].append(time.perf_counter() - started)
    result = {"index": str(snapshot.path), "vector_index": snapshot.manifest["vector_index"]}
    result.update(questions=len(questions), **{name: percentiles(samples) for name, samples in times.items()})
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
