"""End-to-end answer quality of the approximate (IVF-SQ8) vector index against exact search, real model.

    .venv/bin/python bench/ivf_quality.py [--corpora newsmrc cmrc] [--limit 1000]

Each benchmark index (retrieval/benchsets.py: real passages among xwlb news paragraphs, embedded with the
built-in model) is asked its questions twice through the whole pipeline (BM25, ranker, confidence): with its
exact Flat vectors, then with an IVF-SQ8 index built from the same stored vectors by `vectors.build_ivf` (trained
on a sample, nprobe tuned to recall@10 ≥ 0.98 against exact search), as an index past FLAT_LIMIT gets. Recall@1/5/20
of the right passage, and the difference. Embedding a million passages with the model takes ~18 h on this
machine, so the million-passage builds (bench/million.py) use the model-free embedder; this measures what the
approximation costs on real vectors, at the sizes whose vectors are cached.

Keeps the rows in bench/results/ivf_quality.jsonl and rewrites the table in docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import faiss
from report import ROOT, save, update_table

sys.path.insert(0, str(ROOT))

from wenda.index import vectors  # noqa: E402
from wenda.index.config import Settings  # noqa: E402
from wenda.index.embeddings import embedder_for  # noqa: E402
from wenda.index.scratch import VectorFile  # noqa: E402
from wenda.retrieval import benchsets  # noqa: E402
from wenda.retrieval.evaluation import evaluate, summarize  # noqa: E402
from wenda.retrieval.retriever import Retriever  # noqa: E402

CUTS = ("recall@1", "recall@5", "recall@20")


def approximate(index: faiss.Index) -> tuple[faiss.Index, float]:
    """An IVF-SQ8 index of the vectors of a Flat one, built as a large index is, read back into memory."""
    ids, data = vectors.all_vectors(index)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        source = VectorFile(folder / "vectors.f32", data.shape[1])
        source.append(ids, data)
        _, tuned = vectors.build_ivf(source, folder / "ivf.faiss", folder)
        source.close()
        return vectors.for_queries(faiss.read_index(str(folder / "ivf.faiss"))), tuned


def measure(corpus: str, limit: int) -> dict:
    embedder = embedder_for(Settings.from_env())
    retriever = Retriever(benchsets.index_settings(corpus, embedder), embedder)
    questions = next(iter(benchsets.questions(corpus).values()))[:limit]
    exact = summarize(evaluate(retriever, questions))["all"]
    ivf, tuned = approximate(retriever.snapshot.index)
    retriever.snapshot.index = ivf
    approx = summarize(evaluate(retriever, questions))["all"]
    detail = faiss.downcast_index(ivf)
    return {
        "corpus": corpus,
        "chunks": int(ivf.ntotal),
        "questions": len(questions),
        "nlist": int(detail.nlist),
        "nprobe": int(detail.nprobe),
        "tuned_recall@10": round(tuned, 4),
        "exact": {cut: exact[cut] for cut in CUTS},
        "ivf": {cut: approx[cut] for cut in CUTS},
    }


COLUMNS = [
    ("index", lambda r: r["corpus"]),
    ("chunks", lambda r: f"{r['chunks']:,}"),
    ("questions", lambda r: f"{r['questions']:,}"),
    ("IVF lists / probed", lambda r: f"{r['nlist']:,} / {r['nprobe']}"),
    ("tuned recall@10", lambda r: f"{r['tuned_recall@10']:.3f}"),
    ("R@1 / R@5 / R@20 exact", lambda r: " / ".join(f"{r['exact'][c]:.3f}" for c in CUTS)),
    ("R@1 / R@5 / R@20 IVF-SQ8", lambda r: " / ".join(f"{r['ivf'][c]:.3f}" for c in CUTS)),
    ("R@5 difference", lambda r: f"{r['ivf']['recall@5'] - r['exact']['recall@5']:+.3f}"),
    ("command", lambda r: "`.venv/bin/python bench/ivf_quality.py`"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", default=["newsmrc", "cmrc"], choices=["newsmrc", "cmrc"])
    parser.add_argument("--limit", type=int, default=1000, help="questions asked of each index")
    args = parser.parse_args()
    rows: list[dict] = []
    for corpus in args.corpora:
        row = measure(corpus, args.limit)
        print(row, flush=True)
        rows = save("ivf_quality", row, key=("corpus",))
    update_table("ivf_quality", COLUMNS, rows, doc=ROOT / "docs" / "scale-out.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
