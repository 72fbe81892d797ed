"""Write an index generation of real xwlb paragraphs with random unit vectors, using whichever Wenda the
`index` package on PYTHONPATH belongs to (bench/integrity.py runs it for the code before and after a change).

    PYTHONPATH=TREE .venv/bin/python bench/synthetic_generation.py INDEX_DIR [--paragraphs 92622] [--with-corpus corpus]

Real chunking, jieba tokens, BM25, SQLite and IVF-SQ8 past FLAT_LIMIT; only the embeddings are random
(embedding 92k chunks takes two hours on a 2-core machine), so it measures what depends on the bytes on disk:
opening, verifying, loading, searching; not retrieval quality. With --with-corpus, that folder's chunks get
real vectors, so its questions (bench/followups.py --latency-index) take the paths they take in real use.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from wenda.index import store
from wenda.index.builder import SCRATCH, insert_sources, scan_corpus, vector_index, write_lexical
from wenda.index.config import ChunkingParams
from wenda.index.embeddings import BuiltinE5
from wenda.index.isolation import Reading
from wenda.index.passages import passage_files
from wenda.index.probes import probe_profile
from wenda.index.scratch import PendingTexts
from wenda.index.vectors import describe

XWLB = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xwlb.corpus.jsonl.gz"


def chunk_counts(db) -> list[tuple[str, int]]:
    """(source, chunks) in chunk id order: ids were given file by file, in `sources` order."""
    return db.execute("SELECT source, COUNT(*) FROM chunks GROUP BY source ORDER BY MIN(id)").fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index_dir", type=Path)
    parser.add_argument("--paragraphs", type=int, default=92_622)
    parser.add_argument(
        "--with-corpus",
        type=Path,
        help="also index this corpus folder with real embeddings (the paragraphs stay random distractors), so its "
        "questions find their passages among 92k chunks",
    )
    args = parser.parse_args()
    args.index_dir.mkdir(parents=True, exist_ok=True)
    files = passage_files(XWLB, limit=args.paragraphs)
    real = scan_corpus(args.with_corpus, print)[0] if args.with_corpus else {}
    files.update(real)
    tmp, db = store.new_generation(args.index_dir, None)
    scratch = tmp / SCRATCH
    scratch.mkdir()
    pending = PendingTexts(scratch / "texts.sqlite")
    sources = sorted(files)
    insert_sources(
        db, files, sources, 0, ChunkingParams(), lambda source, reason, _: print(source, reason), Reading(), {}, pending
    )
    texts = [text for _, batch in pending.batches(10_000) for text in batch]
    vectors = np.random.default_rng(0).normal(size=(len(texts), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    if real:
        owners = [source for source, count in chunk_counts(db) for _ in range(count)]
        rows = [i for i, source in enumerate(owners) if source in real]
        vectors[rows] = BuiltinE5().embed_passages([texts[i] for i in rows])
    batches = iter([(np.arange(len(texts), dtype=np.int64), vectors)])
    index, tuned = vector_index(None, np.zeros(0, np.int64), batches, len(texts), 384, scratch, tmp / store.VECTORS)
    pending.close()
    shutil.rmtree(scratch)
    embedder = BuiltinE5()
    manifest = {
        "format_version": store.FORMAT_VERSION,
        "model": embedder.identity(),
        "chunking": ChunkingParams().as_dict(),
        "probes": probe_profile(embedder, index),
        "vector_index": describe(index, tuned),
        "files": {source: files[source].fingerprint for source in sorted(files)},
        "next_id": len(texts),
    }
    write_lexical(db, tmp / store.LEXICAL)
    print(store.commit_generation(tmp, db, index, manifest))


if __name__ == "__main__":
    main()
