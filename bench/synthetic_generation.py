"""Write an index generation of real xwlb paragraphs with random unit vectors, using whichever Wenda the
`index` package on PYTHONPATH belongs to (bench/integrity.py runs it for the code before and after a change).

    PYTHONPATH=TREE .venv/bin/python bench/synthetic_generation.py INDEX_DIR [--paragraphs 92622]

Real chunking, jieba tokens, bm25s, SQLite and IVF-SQ8 past FLAT_LIMIT; only the embeddings are random
(embedding 92k chunks takes two hours on a 2-core machine), so it measures what depends on the bytes on disk:
opening, verifying, loading, searching; not retrieval quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from index import store
from index.builder import insert_sources, lexical_index
from index.config import ChunkingParams
from index.embeddings import BuiltinE5
from index.passages import passage_files
from index.probes import probe_profile
from index.vectors import describe, fit, new_flat

XWLB = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xwlb.corpus.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index_dir", type=Path)
    parser.add_argument("--paragraphs", type=int, default=92_622)
    args = parser.parse_args()
    args.index_dir.mkdir(parents=True, exist_ok=True)
    files = passage_files(XWLB, limit=args.paragraphs)
    tmp, db = store.new_generation(args.index_dir, None)
    texts = insert_sources(db, files, sorted(files), 0, ChunkingParams())
    vectors = np.random.default_rng(0).normal(size=(len(texts), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = new_flat(384)
    index.add_with_ids(vectors, np.arange(len(texts), dtype=np.int64))
    index = fit(index)
    embedder = BuiltinE5()
    manifest = {
        "format_version": store.FORMAT_VERSION,
        "model": embedder.identity(),
        "chunking": ChunkingParams().as_dict(),
        "probes": probe_profile(embedder, index),
        "vector_index": describe(index),
        "files": {source: files[source].fingerprint for source in sorted(files)},
        "next_id": len(texts),
    }
    print(store.commit_generation(tmp, db, index, lexical_index(db), manifest))


if __name__ == "__main__":
    main()
