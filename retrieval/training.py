"""Train the ranker and the confidence model: `python -m wenda.retrieval.training` (needs the `train` extra).

Three corpora, three kinds of question, so that nothing is learned that only one of them rewards:

- seed: `corpus/` with dev.jsonl and bench/questions/{paraphrase,english,ood}.jsonl;
- newsmrc: the news reading-comprehension dev articles among 4,000 xwlb news paragraphs;
- cmrc: CMRC 2018 Wikipedia passages among 20,000 xwlb news paragraphs.

Each corpus also gets questions it cannot answer (the other corpora's questions, the off-topic set), so
the confidence model sees what "no answer" looks like on every index. Ranker figures are reported
leave-one-corpus-out and article-grouped 5-fold; the confidence model is fitted on out-of-fold ranker
scores and its calibration is reported on a corpus it was not fitted on. The shipped models are then
fitted on everything. Indexes go under `--work`, vectors into the `wenda eval` cache (first run: ~30 min).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder, embedder_for
from wenda.index.errors import QueryError
from wenda.index.probes import language

from . import benchsets, confidence, features, ranker
from .calibration import Calibration
from .evaluation import expected_calibration_error, nfkc, question_text, reliability_table
from .forest import export
from .query import clean_query
from .retriever import Retriever

ROOT = benchsets.ROOT
CROSS_QUESTIONS = 300  # questions of each other corpus asked where they have no answer
CUTOFFS = (1, 5, 20)
RANKER_PARAMS = {
    "objective": "lambdarank",
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "lambdarank_truncation_level": 20,
    "monotone_constraints_method": "advanced",
    "random_state": 7,
    "verbose": -1,
    "n_jobs": 2,
}


# More evidence never makes a candidate worse: monotone constraints keep the trees from learning a
# corpus's quirks backwards; with them the ranker trained on the news corpus alone ranks the seed corpus
# well, without them it ranked it at random (docs/quality.md).
RISING = {
    "dense", "dense_gap", "dense_z", "bm25_ratio", "bm25_z", "coverage", "sentence_coverage", "title_coverage",
    "bigram_share", "doc_dense_gap", "doc_bm25_ratio", "answer_type", "dense_vs_probes", "bm25_idf_share",
}  # fmt: skip
FALLING = {"dense_rank", "bm25_rank", "furniture"}
RANKER_PARAMS["monotone_constraints"] = [1 if n in RISING else -1 if n in FALLING else 0 for n in features.NAMES]


@dataclass
class Asked:
    """One question asked against one corpus: its candidates' features, labels and paragraph keys."""

    corpus: str
    qset: str
    group: str  # article or document the question is about (folds never split one)
    answerable: bool
    matrix: np.ndarray
    labels: np.ndarray
    keys: list[tuple[str, int]]
    language: str
    content_words: int
    profile: dict
    levels: Calibration


def corpora(work: Path, embedder: Embedder, names: tuple[str, ...]) -> dict[str, tuple[Retriever, dict]]:
    """Retrievers over the named benchmark corpora, with their question sets (contentless ones left out)."""
    loaded = {}
    for name in names:
        sets = {k: v for k, v in benchsets.questions(name).items() if k != "contentless"}
        retriever = Retriever(benchsets.index_settings(name, embedder, work), embedder, mode="dense")
        print(f"{name}: {retriever.calibration.describe()}", file=sys.stderr)
        print(f"{name} cosine levels: {json.dumps(retriever.calibration.dense)}", file=sys.stderr)
        loaded[name] = (retriever, sets)
    return loaded


def _sample(questions: list[dict], n: int) -> list[dict]:
    """A fixed sample (by hash of the text, so reruns agree)."""
    return sorted(questions, key=lambda q: hashlib.sha256(question_text(q).encode()).hexdigest())[:n]


def ask_all(retriever: Retriever, corpus: str, qset: str, questions: list[dict], answerable: bool) -> list[Asked]:
    """Features and labels of every question against one index (questions without content are skipped)."""
    asked = []
    for question in questions:
        try:
            text = clean_query(question_text(question))
            analysis = retriever.analyze(text)
        except QueryError:
            continue
        records = [analysis.records.get(int(i)) for i in analysis.candidates.ids]
        if not answerable:
            labels = np.zeros(len(records), dtype=np.int32)
        elif "gold_pids" in question:
            gold = set(question["gold_pids"])
            labels = np.array([r is not None and r.source in gold for r in records], dtype=np.int32)
        else:
            evidence = [nfkc(e) for e in question.get("ev", [])]
            labels = np.array([r is not None and any(e in nfkc(r.text) for e in evidence) for r in records], np.int32)
        group = (question.get("gold_pids") or [question.get("doc") or question.get("id") or text])[0]
        asked.append(
            Asked(
                corpus,
                qset,
                f"{corpus}:{group}",
                answerable and bool(question.get("ev") or question.get("gold_pids")),
                analysis.matrix,
                labels,
                [(r.source, r.paragraph) if r else ("", -1) for r in records],
                language(text),
                analysis.content_words,
                retriever.profile,
                retriever.calibration,
            )
        )
    return asked


def collect(work: Path, embedder: Embedder, names: tuple[str, ...]) -> list[Asked]:
    """Every question against its own corpus, plus the unanswerable cross questions."""
    loaded = corpora(work, embedder, names)
    asked: list[Asked] = []
    for corpus, (retriever, sets) in loaded.items():
        for qset, questions in sets.items():
            started = time.perf_counter()
            asked += ask_all(retriever, corpus, qset, questions, answerable=qset != "ood")
            print(
                f"{corpus}/{qset}: {len(questions)} questions in {time.perf_counter() - started:.0f} s", file=sys.stderr
            )
        others = [q for name, (_, sets) in loaded.items() if name != corpus for qs in sets.values() for q in qs]
        unanswerable = [q for q in others if q.get("ev") or q.get("gold_pids")]
        if corpus != "seed":
            unanswerable += loaded["seed"][1]["ood"]
        asked += ask_all(retriever, corpus, "cross", _sample(unanswerable, CROSS_QUESTIONS), answerable=False)
    return asked


def ranking_of(item: Asked, scores: np.ndarray) -> list[int]:
    """Candidate positions best first, windows of one paragraph once (what `Retriever.ask` shows)."""
    seen, ranked = set(), []
    for i in ranker.order(scores, item.matrix):
        if item.keys[i] not in seen:
            seen.add(item.keys[i])
            ranked.append(int(i))
    return ranked


def recall(items: list[Asked], scores: list[np.ndarray]) -> dict:
    """recall@k and MRR over answerable questions, from per-question candidate scores."""
    ranks = []
    for item, s in zip(items, scores, strict=True):
        if not item.answerable:
            continue
        ranked = ranking_of(item, s)
        hit = next((r for r, i in enumerate(ranked[: max(CUTOFFS)], start=1) if item.labels[i]), 10**9)
        ranks.append(hit)
    ranks = np.array(ranks)
    row = {f"recall@{k}": float(np.mean(ranks <= k)) for k in CUTOFFS}
    row.update(mrr=float(np.mean(1.0 / ranks)), questions=int(len(ranks)))
    return row


def fit_ranker(items: list[Asked]):
    """LambdaRank on the answerable questions whose right passage is among the candidates; every corpus
    weighs the same in total, whatever its number of questions."""
    import lightgbm

    train = [item for item in items if item.answerable and item.labels.any()]
    per_corpus = {c: sum(1 for item in train if item.corpus == c) for c in {item.corpus for item in train}}
    weights = [len(train) / (len(per_corpus) * per_corpus[item.corpus]) for item in train]
    model = lightgbm.LGBMRanker(**RANKER_PARAMS)
    model.fit(
        np.vstack([item.matrix for item in train]),
        np.concatenate([item.labels for item in train]),
        group=[len(item.labels) for item in train],
        sample_weight=np.concatenate([np.full(len(item.labels), w) for item, w in zip(train, weights, strict=True)]),
        feature_name=list(features.NAMES),
    )
    return model


def _score(model, item: Asked) -> np.ndarray:
    return model.booster_.predict(item.matrix, num_threads=2) if len(item.matrix) else np.zeros(0)


def out_of_fold(items: list[Asked], folds: list[list[int]]) -> list[np.ndarray]:
    """Each question scored by a ranker fitted without its fold."""
    scores: list[np.ndarray | None] = [None] * len(items)
    for held in folds:
        held_set = set(held)
        model = fit_ranker([item for i, item in enumerate(items) if i not in held_set])
        for i in held:
            scores[i] = _score(model, items[i])
    return scores  # type: ignore[return-value]


def group_folds(items: list[Asked], k: int = 5) -> list[list[int]]:
    """k folds that never split the questions about one article or document."""
    folds: list[list[int]] = [[] for _ in range(k)]
    for i, item in enumerate(items):
        folds[int(hashlib.sha256(item.group.encode()).hexdigest(), 16) % k].append(i)
    return folds


def corpus_folds(items: list[Asked]) -> list[list[int]]:
    """One fold per corpus: the ranker is always judged on a corpus it has never seen."""
    names = sorted({item.corpus for item in items})
    return [[i for i, item in enumerate(items) if item.corpus == name] for name in names]


def evidence_matrix(items: list[Asked], scores: list[np.ndarray]) -> np.ndarray:
    """The confidence model's inputs for every question, from the given ranker scores."""
    return np.array(
        [
            confidence.question_features(
                item.matrix,
                s,
                ranker.order(s, item.matrix),
                item.profile,
                item.language,
                item.content_words,
                item.levels,
            )
            for item, s in zip(items, scores, strict=True)
        ]
    )


def top_right(items: list[Asked], scores: list[np.ndarray]) -> np.ndarray:
    """1 where the top result answers (always 0 for a question the corpus cannot answer)."""
    pairs = zip(items, scores, strict=True)
    return np.array([int(item.answerable and item.labels[ranking_of(item, s)[0]]) for item, s in pairs])


def fit_confidence(evidence: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression

    mean, scale = evidence.mean(axis=0), evidence.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, max_iter=1000).fit((evidence - mean) / scale, labels)
    return {
        "features": list(confidence.NAMES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": model.coef_[0].tolist(),
        "intercept": float(model.intercept_[0]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wenda.retrieval.training", description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=benchsets.WORK, help="where the benchmark indexes are kept")
    parser.add_argument("--report", type=Path, default=ROOT / "bench" / "results" / "training.json")
    parser.add_argument(
        "--corpora", nargs="+", choices=benchsets.CORPORA, default=list(benchsets.CORPORA), help="train on these only"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse the questions' features of the last run")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    dump = args.work / ("features-" + "-".join(args.corpora) + ".pickle")
    if args.reuse and dump.exists():
        items = pickle.loads(dump.read_bytes())
    else:
        items = collect(args.work, embedder_for(Settings()), tuple(args.corpora))
        dump.write_bytes(pickle.dumps(items))
    report: dict = {"questions": {}, "ranker": {}, "confidence": {}}
    for corpus in sorted({i.corpus for i in items}):
        for qset in sorted({i.qset for i in items if i.corpus == corpus}):
            report["questions"][f"{corpus}/{qset}"] = sum(1 for i in items if i.corpus == corpus and i.qset == qset)

    def by_set(scores: list[np.ndarray]) -> dict:
        rows = {}
        for corpus, qset in sorted({(i.corpus, i.qset) for i in items if i.answerable}):
            chosen = [n for n, i in enumerate(items) if i.corpus == corpus and i.qset == qset]
            rows[f"{corpus}/{qset}"] = recall([items[n] for n in chosen], [scores[n] for n in chosen])
        return rows

    for column in ("dense", "bm25_ratio"):
        report["ranker"][column] = by_set([i.matrix[:, features.NAMES.index(column)] for i in items])
    grouped = out_of_fold(items, group_folds(items))
    report["ranker"]["learned, article-grouped 5-fold"] = by_set(grouped)
    report["ranker"]["learned, leave-one-corpus-out"] = by_set(out_of_fold(items, corpus_folds(items)))
    evidence, labels = evidence_matrix(items, grouped), top_right(items, grouped)
    corpus_of = np.array([i.corpus for i in items])
    qset_of = np.array([i.qset for i in items])
    answerable = np.array([i.answerable for i in items])
    fold_of = np.zeros(len(items), dtype=int)
    for number, fold in enumerate(group_folds(items)):
        fold_of[fold] = number
    # Calibration is judged on questions the confidence model was not fitted on: other articles and
    # documents (5-fold, as for the ranker), and, harder, a whole corpus it has never seen.
    for split, groups in (("article-grouped 5-fold", fold_of), ("leave-one-corpus-out", corpus_of)):
        held_out = np.zeros(len(items))
        for group in sorted(set(groups)):
            fitted = confidence.ConfidenceModel(fit_confidence(evidence[groups != group], labels[groups != group]))
            held_out[groups == group] = [fitted.probability(e) for e in evidence[groups == group]]
        rows = report["confidence"][split] = {}
        for corpus in sorted(set(corpus_of)):
            for name, chosen in (("answerable", answerable), ("all", np.ones(len(items), bool))):
                mask = (corpus_of == corpus) & chosen
                table = reliability_table(held_out[mask], labels[mask].astype(float))
                ece = expected_calibration_error(table)
                rows[f"{corpus}/{name}"] = {"ece": ece, "n": int(mask.sum()), "table": table}
        report["answered share"] = report.get("answered share", {})
        report["answered share"][split] = {
            f"{threshold:.2f}": {q: float(np.mean(held_out[qset_of == q] >= threshold)) for q in sorted(set(qset_of))}
            for threshold in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6)
        }
    final = fit_ranker(items)
    ranker.MODELS.mkdir(exist_ok=True)
    final.booster_.save_model(str(ranker.RANKER_FILE))
    export(final.booster_).save(ranker.RANKER_ARRAYS)
    meta = {"features": list(features.NAMES), "params": RANKER_PARAMS, "trained_on": report["questions"]}
    ranker.RANKER_META.write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    fitted = fit_confidence(evidence, labels)
    fitted["trained_on"] = report["questions"]
    confidence.MODEL_FILE.write_text(json.dumps(fitted, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    ece = {split: {k: round(v["ece"], 3) for k, v in rows.items()} for split, rows in report["confidence"].items()}
    print(json.dumps({"ranker": report["ranker"], "ece": ece}, indent=1))
    return 0


if __name__ == "__main__":
    # Run through the module's own name, so the pickled features name `retrieval.training.Asked`.
    sys.exit(importlib.import_module("wenda.retrieval.training").main())
