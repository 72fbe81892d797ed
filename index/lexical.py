"""BM25 over jieba tokens, keyed by chunk id and saved inside each index generation.

The files are bm25s's (Lucene BM25, its array and vocabulary files, which bm25s itself loads); `write` computes
them out of core, in bounded memory whatever the corpus (bm25s holds every document's token numbers and the
whole matrix three times over: 10.9 GB at a million chunks), and answering reads them with numpy and sums them
the way bm25s does, so that a question imports neither bm25s nor the scipy it brings (0.15 s of every CLI
question's start). tests/test_lexical.py checks the files byte for byte against bm25s's own.
"""

from __future__ import annotations

import json
import math
import tempfile
from array import array
from collections.abc import Iterable
from pathlib import Path

import numpy as np

IDS_FILE = "ids.npy"
# bm25s's file names (BM25.save / BM25.load), so either can read what the other wrote.
PARAMS_FILE, VOCAB_FILE = "params.index.json", "vocab.index.json"
ARRAY_FILES = {"data": "data.csc.index.npy", "indices": "indices.csc.index.npy", "indptr": "indptr.csc.index.npy"}
K1, B = 1.5, 0.75  # Lucene's defaults, bm25s's too
# (word, document) pairs sorted at once while writing, whatever the size of the corpus: writing the 92,622 xwlb
# paragraphs' BM25 took 145 MB above its start, the vocabulary included (a one-off measurement of `write`).
BLOCK_PAIRS = 2_000_000
PARAMS = {"k1": K1, "b": B, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32"}


class LexicalIndex:
    """BM25 scores for token lists; `ids[i]` is the chunk id of BM25 document i, `vocabulary` numbers the
    tokens, and column t of the score matrix (CSC: `data`, `indices`, `indptr`) holds token t's score in
    every document that has it."""

    def __init__(self, vocabulary: dict[str, int], arrays: dict[str, np.ndarray], ids: np.ndarray):
        self.vocabulary = vocabulary
        self.data, self.indices, self.indptr = arrays["data"], arrays["indices"], arrays["indptr"]
        self.ids = ids

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> LexicalIndex:
        params = json.loads((path / PARAMS_FILE).read_text(encoding="utf-8"))
        if params.get("method") != "lucene":
            raise ValueError(f"{path / PARAMS_FILE}: BM25 variant {params.get('method')!r}, Wenda writes 'lucene'")
        vocabulary = json.loads((path / VOCAB_FILE).read_text(encoding="utf-8"))
        mode = "r" if mmap else None
        arrays = {name: np.load(path / file, mmap_mode=mode) for name, file in ARRAY_FILES.items()}
        columns = len(arrays["indptr"]) - 1
        vocabulary = {token: column for token, column in vocabulary.items() if column < columns}  # bm25s adds ""
        if len(vocabulary) != columns:
            raise ValueError(f"{path}: {columns} score columns for {len(vocabulary)} tokens")
        return cls(vocabulary, arrays, np.load(path / IDS_FILE, mmap_mode=mode))

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every document (aligned with `ids`); zeros for a query with no known token."""
        scores = np.zeros(len(self.ids), dtype=np.float32)
        # bm25s's sum (BM25._compute_relevance_from_scores): a repeated token counts again, in query order
        for token in tokens:
            column = self.vocabulary.get(token)
            if column is not None:
                start, end = self.indptr[column], self.indptr[column + 1]
                np.add.at(scores, self.indices[start:end], self.data[start:end])
        return scores

    def idf(self, tokens: list[str]) -> np.ndarray:
        """Lucene IDF of each token; a token the corpus never uses gets the highest IDF (df = 0)."""
        indptr, vocab = self.indptr, self.vocabulary
        df = np.array([indptr[vocab[t] + 1] - indptr[vocab[t]] if t in vocab else 0 for t in tokens], dtype=np.float64)
        return np.log1p((len(self.ids) - df + 0.5) / (df + 0.5))

    def position(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Row of each chunk id in `scores` (ids are stored sorted)."""
        return np.searchsorted(self.ids, chunk_ids)

    def search(self, tokens: list[str], k: int) -> list[tuple[int, float]]:
        """(chunk id, score) of the `k` best documents with a positive score, best first."""
        return self.top(self.scores(tokens), k)

    def top(self, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, score) of the `k` best positive entries of a `scores` array."""
        k = min(k, len(scores))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0]


def write(path: Path, ids: Iterable[int], token_lists: Iterable[list[str]], block_pairs: int = BLOCK_PAIRS) -> None:
    """Write the BM25 index of the documents `token_lists` gives (in `ids` order) into the folder `path`.

    `token_lists` is read twice and may stream from storage: first the vocabulary and the lengths, then each
    document's (word, document, count) triples, sorted a block at a time into runs on disk; the score matrix is
    then written column range by column range from the runs. Held in memory: the vocabulary, a number per
    document and one block. An empty document counts as the one word "" (so positions keep matching `ids`), as
    in bm25s; the vocabulary is numbered in sorted order, so the same chunks always give the same files."""
    path.mkdir(parents=True, exist_ok=True)
    ids = np.fromiter(ids, dtype=np.int64)
    words: set[str] = set()
    lengths = array("q")
    for tokens in token_lists:
        words.update(tokens or ("",))
        lengths.append(len(tokens) or 1)
    if len(lengths) != len(ids):
        raise ValueError(f"{len(ids)} ids for {len(lengths)} documents")
    ordered = sorted(words)
    del words  # before the dictionary is made: the set, the list and the dictionary are each the vocabulary's size
    vocabulary = {word: number for number, word in enumerate(ordered)}
    del ordered
    with tempfile.TemporaryDirectory(dir=path, prefix=".runs-") as scratch:
        runs, frequencies = _sorted_runs(Path(scratch), token_lists, vocabulary, len(lengths), block_pairs)
        indptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(frequencies, out=indptr[1:])
        lengths_array = np.frombuffer(lengths, dtype=np.int64)
        average = lengths_array.mean() if len(lengths_array) else 0.0
        _write_columns(path, runs, indptr, _idf(frequencies, len(lengths)), lengths_array, average, block_pairs)
    np.save(path / ARRAY_FILES["indptr"], indptr)
    np.save(path / IDS_FILE, ids)
    if "" not in vocabulary:  # bm25s's placeholder for queries without a known word
        vocabulary[""] = len(vocabulary)
    (path / VOCAB_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
    params = {**PARAMS, "int_dtype": "int32", "num_docs": len(lengths), "version": "wenda", "backend": "numpy"}
    (path / PARAMS_FILE).write_text(json.dumps(params, indent=4), encoding="utf-8")


class _Run:
    """One block's (word, document, count) triples sorted by word then document, in three raw files, and where
    each word's entries start (`starts`, one more than the vocabulary)."""

    def __init__(self, folder: Path, number: int, triples: tuple[np.ndarray, np.ndarray, np.ndarray], vocabulary: int):
        self.files = {name: folder / f"{number}.{name}" for name in ("words", "documents", "counts", "starts")}
        words, documents, counts = triples
        starts = np.searchsorted(words, np.arange(vocabulary + 1)).astype(np.int64)
        for name, values in (("words", words), ("documents", documents), ("counts", counts), ("starts", starts)):
            values.tofile(self.files[name])

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Entries of words first … last − 1."""
        begin, end = (np.fromfile(self.files["starts"], np.int64, count=1, offset=8 * i)[0] for i in (first, last))
        return int(begin), int(end)

    def read(self, name: str, begin: int, end: int) -> np.ndarray:
        dtype = np.float32 if name == "counts" else np.int32
        return np.fromfile(self.files[name], dtype=dtype, count=end - begin, offset=4 * begin)


def _sorted_runs(
    folder: Path, token_lists: Iterable[list[str]], vocabulary: dict[str, int], documents: int, block_pairs: int
) -> tuple[list[_Run], np.ndarray]:
    """The runs of (word, document, count), a block of ≥ `block_pairs` tokens each, and every word's document
    frequency."""
    frequencies = np.zeros(len(vocabulary), dtype=np.int64)
    runs: list[_Run] = []
    pending, first, document = array("i"), 0, 0
    sizes = array("q")

    def flush() -> None:
        nonlocal pending, first, sizes
        if not len(sizes):
            return
        numbers = np.frombuffer(pending, dtype=np.int32).astype(np.int64)
        owners = np.repeat(np.arange(first, first + len(sizes), dtype=np.int64), np.frombuffer(sizes, np.int64))
        keys, counts = np.unique(numbers * documents + owners, return_counts=True)
        words = (keys // documents).astype(np.int32)
        frequencies[:] += np.bincount(words, minlength=len(vocabulary))
        triples = (words, (keys % documents).astype(np.int32), counts.astype(np.float32))
        runs.append(_Run(folder, len(runs), triples, len(vocabulary)))
        pending, first, sizes = array("i"), first + len(sizes), array("q")

    for tokens in token_lists:
        pending.extend([vocabulary[word] for word in tokens or ("",)])
        sizes.append(len(tokens) or 1)
        document += 1
        if len(pending) >= block_pairs:
            flush()
    flush()
    if document != documents:
        raise ValueError(f"the documents changed between two readings: {documents}, then {document}")
    return runs, frequencies


def _idf(frequencies: np.ndarray, documents: int) -> np.ndarray:
    """Lucene IDF per word, float32, computed with math.log per distinct frequency as bm25s does (numpy's log
    may differ from it in the last bit)."""
    distinct, where = np.unique(frequencies, return_inverse=True)
    values = np.array([math.log(1 + (documents - df + 0.5) / (df + 0.5)) for df in distinct.tolist()])
    return values.astype(np.float32)[where]


def _write_columns(
    path: Path,
    runs: list[_Run],
    indptr: np.ndarray,
    idf: np.ndarray,
    lengths: np.ndarray,
    average: float,
    block_pairs: int,
) -> None:
    """Write the data and indices arrays (.npy) column range by column range, each range ≤ `block_pairs`
    entries (or one word): the entries of each run for the range, ordered by word then document, scored as
    bm25s scores them (float64 arithmetic, stored as float32)."""
    total = int(indptr[-1])
    outputs = {
        name: open(path / ARRAY_FILES[name], "wb")  # noqa: SIM115 - both closed below
        for name in ("data", "indices")
    }
    try:
        for name, dtype in (("data", "<f4"), ("indices", "<i4")):
            header = {"descr": dtype, "fortran_order": False, "shape": (total,)}
            np.lib.format.write_array_header_1_0(outputs[name], header)
        columns = len(indptr) - 1
        first = 0
        while first < columns:
            last = max(first + 1, int(np.searchsorted(indptr, indptr[first] + block_pairs, side="right")) - 1)
            last = min(last, columns)
            parts = []
            for run in runs:
                begin, end = run.span(first, last)
                if end > begin:
                    parts.append([run.read(name, begin, end) for name in ("words", "documents", "counts")])
            words, documents, counts = (np.concatenate([part[i] for part in parts]) for i in range(3))
            order = np.argsort(words, kind="stable")  # runs are in document order: stable keeps it per word
            words, documents, counts = words[order], documents[order], counts[order]
            norm = K1 * ((1 - B) + B * lengths[documents] / average)
            scores = (idf[words] * (counts / (norm + counts))).astype(np.float32)
            outputs["data"].write(scores.tobytes())
            outputs["indices"].write(documents.astype(np.int32).tobytes())
            first = last
    finally:
        for output in outputs.values():
            output.close()
