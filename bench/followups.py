"""Follow-up questions: are they understood, and are self-contained questions left alone?

    .venv/bin/python bench/followups.py [--corpora seed newsmrc cmrc] [--latency-index DIR]

- dialogues (bench/questions/dialogues.jsonl, 52 two-turn dialogues on the seed corpus, written before
  tuning): recall@1/@5 of the follow-up turn asked with the conversation (the first turn's understood
  question as context), alone (what Wenda did before), and as the two questions pasted together; and of the
  first turns.
- no harm: every answerable question of a set asked as the second turn after an unrelated first question
  (the next answerable question of the set about another document or article) against asked alone:
  recall@1, questions flagged unanswerable, and how many were completed from the context at all.
- --latency-index: at that index (e.g. 92k xwlb chunks plus the seed corpus from
  `bench/synthetic_generation.py DIR --with-corpus corpus`), the time of `ask` for each follow-up with its
  context against the same follow-up without, interleaved, 5 rounds; and how often a completed follow-up
  was in doubt and also measured alone (a second search).

Keeps the results in bench/results/followups.jsonl and rewrites the tables in docs/quality.md and
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from report import ROOT, percentiles, save, update_table

sys.path.insert(0, str(ROOT))

from wenda.index.config import Settings  # noqa: E402
from wenda.index.embeddings import embedder_for  # noqa: E402
from wenda.retrieval import benchsets  # noqa: E402
from wenda.retrieval.evaluation import judge, question_text  # noqa: E402
from wenda.retrieval.results import Response, Result  # noqa: E402
from wenda.retrieval.retriever import Retriever  # noqa: E402

DIALOGUES = ROOT / "bench" / "questions" / "dialogues.jsonl"
QUALITY_DOC = ROOT / "docs" / "quality.md"
K = 5


def rank_of(response: Response, hit: Callable[[Result], bool]) -> int | None:
    """1-based rank of the first result that answers, or None."""
    return next((result.rank for result in response.results if hit(result)), None)


def recall(ranks: list[int | None], k: int) -> float:
    return round(sum(r is not None and r <= k for r in ranks) / len(ranks), 3)


def dialogues(retriever: Retriever) -> dict:
    rows = [json.loads(line) for line in DIALOGUES.read_text(encoding="utf-8").splitlines() if line.strip()]
    first, with_context, alone, pasted = [], [], [], []
    kinds: dict[str, list[int | None]] = {}
    for row in rows:
        opening_turn, turn = row["turns"]
        hit = judge(turn)[1]
        opening = retriever.ask(opening_turn["q"], K)
        first.append(rank_of(opening, judge(opening_turn)[1]))
        followed = rank_of(retriever.ask(turn["q"], K, previous=opening.understood), hit)
        with_context.append(followed)
        kinds.setdefault(row["kind"], []).append(followed)
        alone.append(rank_of(retriever.ask(turn["q"], K), hit))
        pasted.append(rank_of(retriever.ask(f"{opening_turn['q']} {turn['q']}", K), hit))
    result: dict = {"set": "dialogues", "dialogues": len(rows)}
    for name, ranks in (("first", first), ("followup", with_context), ("alone", alone), ("pasted", pasted)):
        result[name] = {"recall@1": recall(ranks, 1), "recall@5": recall(ranks, 5)}
    result["kinds"] = {
        kind: {"n": len(ranks), "recall@1": recall(ranks, 1), "recall@5": recall(ranks, 5)}
        for kind, ranks in kinds.items()
    }
    return result


def questions_of(corpus: str) -> list[dict]:
    """A corpus's main question set: dev.jsonl for the seed corpus, the one set of the others."""
    sets = benchsets.questions(corpus)
    return sets["dev"] if corpus == "seed" else sets[corpus]


def about(question: dict) -> str:
    """What a question is about: its document, or its gold passages."""
    return question.get("doc") or ",".join(sorted(question.get("gold_pids", [])))


def answerable(question: dict) -> bool:
    return bool(question.get("ev") or question.get("gold_pids"))


def no_harm(retriever: Retriever, corpus: str) -> dict:
    items = questions_of(corpus)
    openers = [i for i, item in enumerate(items) if answerable(item)]
    alone_ranks, second_ranks = [], []
    flagged_alone = flagged_second = completed = 0
    for i, item in enumerate(items):
        # the first turn: the next answerable question about something else, wrapping around
        later = [j for j in openers if j > i] + [j for j in openers if j < i]
        opener = items[next(j for j in later if about(items[j]) != about(item))]
        opening = retriever.ask(question_text(opener), K)
        alone = retriever.ask(question_text(item), K)
        second = retriever.ask(question_text(item), K, previous=opening.understood)
        completed += second.resolved is not None
        flagged_alone += not alone.answerable
        flagged_second += not second.answerable
        if answerable(item):
            hit = judge(item)[1]
            alone_ranks.append(rank_of(alone, hit))
            second_ranks.append(rank_of(second, hit))
    return {
        "set": f"no-harm/{corpus}",
        "questions": len(items),
        "alone": {"recall@1": recall(alone_ranks, 1), "recall@5": recall(alone_ranks, 5), "flagged": flagged_alone},
        "second": {"recall@1": recall(second_ranks, 1), "recall@5": recall(second_ranks, 5), "flagged": flagged_second},
        "completed": completed,
    }


def latency(index_dir: Path, rounds: int) -> dict:
    retriever = Retriever(Settings.from_env(index_dir=index_dir))
    retriever.warm_up()
    rows = [json.loads(line) for line in DIALOGUES.read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs = [(row["turns"][0]["q"], row["turns"][1]["q"]) for row in rows]
    contexts = {q1: retriever.ask(q1, K).understood for q1, _ in pairs}
    plain, followed, resolving, doubted = [], [], [], []
    for _ in range(rounds):
        for q1, q2 in pairs:
            started = time.perf_counter()
            retriever.ask(q2, K)
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = retriever.ask(q2, K, previous=contexts[q1])
            followed.append(time.perf_counter() - started)
            resolving.append(response.timings["followup"] / 1000)
            doubted.append("alone" in response.timings)
    added = np.array(followed) - np.array(plain)
    return {
        "set": "latency",
        "index": index_dir.name,
        "chunks": len(retriever.snapshot),
        "plain_ms": percentiles(plain),
        "followup_ms": percentiles(followed),
        "added_p50_ms": round(float(np.median(added)) * 1000, 2),
        "resolve_ms": percentiles(resolving),
        "measured_alone_too": round(sum(doubted) / len(doubted), 3),
    }


def quality_table(rows: list[dict]) -> None:
    dialogue_rows = [r for r in rows if r["set"] == "dialogues"]
    harm_rows = [r for r in rows if r["set"].startswith("no-harm/")]
    update_table(
        "followups",
        [
            ("dialogue turn", lambda r: r["turn"]),
            ("recall@1", lambda r: f"{r['recall@1']:.3f}"),
            ("recall@5", lambda r: f"{r['recall@5']:.3f}"),
            ("command", lambda r: f"`{r['command']}`"),
        ],
        [
            {"turn": label, **row[key], "command": row["command"], "machine": row["machine"]}
            for row in dialogue_rows
            for key, label in (
                ("first", "first turns"),
                ("followup", "follow-ups, with the conversation"),
                ("alone", "follow-ups alone (before)"),
                ("pasted", "follow-ups pasted after the first question"),
            )
        ]
        + [
            {"turn": f"follow-ups, {kind} ({v['n']})", **v, "command": row["command"], "machine": row["machine"]}
            for row in dialogue_rows
            for kind, v in row["kinds"].items()
        ],
        doc=QUALITY_DOC,
    )
    update_table(
        "followups_harm",
        [
            ("set", lambda r: r["set"].removeprefix("no-harm/")),
            ("questions", lambda r: str(r["questions"])),
            ("recall@1 alone / 2nd turn", lambda r: f"{r['alone']['recall@1']:.3f} / {r['second']['recall@1']:.3f}"),
            ("recall@5 alone / 2nd turn", lambda r: f"{r['alone']['recall@5']:.3f} / {r['second']['recall@5']:.3f}"),
            ("flagged unanswerable alone / 2nd turn", lambda r: f"{r['alone']['flagged']} / {r['second']['flagged']}"),
            ("completed from context", lambda r: str(r["completed"])),
            ("command", lambda r: f"`{r['command']}`"),
        ],
        harm_rows,
        doc=QUALITY_DOC,
    )


def latency_table(rows: list[dict]) -> None:
    update_table(
        "followups_latency",
        [
            ("index", lambda r: f"{r['index']} ({r['chunks']:,} chunks)"),
            ("plain p50 / p95", lambda r: f"{r['plain_ms']['p50']:.1f} / {r['plain_ms']['p95']:.1f} ms"),
            ("follow-up p50 / p95", lambda r: f"{r['followup_ms']['p50']:.1f} / {r['followup_ms']['p95']:.1f} ms"),
            ("added, median of pairs", lambda r: f"{r['added_p50_ms']:.1f} ms"),
            ("resolving p50 / p95", lambda r: f"{r['resolve_ms']['p50']:.2f} / {r['resolve_ms']['p95']:.2f} ms"),
            ("asked alone too (in doubt)", lambda r: f"{r['measured_alone_too']:.0%}"),
            ("command", lambda r: f"`{r['command']}`"),
        ],
        [r for r in rows if r["set"] == "latency"],
    )


def table(rows: list[dict]) -> None:
    quality_table(rows)
    latency_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="*", choices=benchsets.CORPORA, default=["seed", "newsmrc"])
    parser.add_argument("--latency-index", type=Path, help="an index folder to time follow-ups on")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    embedder = embedder_for(Settings())
    rows: list[dict] = []
    for corpus in args.corpora:
        retriever = Retriever(benchsets.index_settings(corpus, embedder), embedder)
        retriever.warm_up()
        if corpus == "seed":
            found = dialogues(retriever)
            print(json.dumps(found, ensure_ascii=False))
            rows = save("followups", found, ("set",))
        found = no_harm(retriever, corpus)
        print(json.dumps(found, ensure_ascii=False))
        rows = save("followups", found, ("set",))
    if args.latency_index:
        found = latency(args.latency_index, args.rounds)
        print(json.dumps(found, ensure_ascii=False))
        rows = save("followups", found, ("set", "index"))
    table(rows)


if __name__ == "__main__":
    main()
