"""`wenda index`: bring the stored index up to date with the corpus, embedding only what changed."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np
from tqdm import tqdm

from . import ivf_file, lexical, store
from .cache import EmbeddingCache, disk_full
from .chunking import chunk_paragraphs, paragraphs_of
from .config import ChunkingParams, Settings
from .embeddings import Embedder
from .errors import DamagedIndexError, IndexFormatError, IndexMismatchError, IndexMissingError, WendaError
from .formats import SkippedFile
from .formats.ocr import OcrOptions
from .isolation import Progress, Reading
from .loader import Document, discover, others, read_document, sidecars, unsupported_reason
from .metadata import SIDECAR, Rule, declared, read_sidecar, sidecar_of
from .probes import probe_profile
from .scratch import PendingTexts, VectorFile
from .sources import OPENING_LINES, load_sources, source_info
from .tokenization import tokenize
from .vectors import all_vectors, becomes_ivf, build_ivf, describe, for_queries, is_ivf, new_flat

BATCH_SIZE = 256  # texts handed to the engine at once (work for each of its threads); each batch is a checkpoint
SCRATCH = ".scratch"  # inside a generation being written: the texts to embed and vectors (index/scratch.py)


@dataclass
class BuildReport:
    """What a build did, for the CLI and for tests."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)  # a reader's traceback by source, for the build log
    log: Path | None = None  # where the details were written
    embedded_chunks: int = 0
    cached_chunks: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    embedded_on: str | None = None  # where the chunks were embedded, when not in this process
    engine: str | None = None  # what embedded them here, e.g. "onnxruntime 1.32.0 int8"
    embed_seconds: float = 0.0  # time spent embedding (model and cache), for the passages/s of the last line
    generation: str | None = None
    repaired: list[str] = field(default_factory=list)  # what was found damaged and what was done about it
    # seconds per stage: scan, read (extract, chunk, tokenise, store), embed, vectors, lexical, write
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def up_to_date(self) -> bool:
        return not (self.added or self.changed or self.removed)


class RemoteEmbedding(Protocol):
    """Embeds a build's cache misses elsewhere (index/cluster.py: a Ray cluster) and stores them in the cache;
    the builder then reads every vector from the cache, so the generation is written exactly as locally."""

    description: str

    def fill(self, pending: PendingTexts, cache: EmbeddingCache, progress: bool) -> int:
        """Embed the pending texts not in `cache` into it; return how many were embedded."""


@dataclass(frozen=True)
class BuildOptions:
    """How a build talks to the user (progress bar, warnings) and embeds (batch size, remote embedding)."""

    progress: bool
    batch_size: int
    warn: Callable[[str], None]
    remote: RemoteEmbedding | None = None
    on_progress: Callable[[int, int], None] | None = None  # (chunks embedded, to embed) after each batch
    on_stage: Callable[[str, float], None] | None = None  # (stage, seconds) as each stage ends


class Stages:
    """Times the stages of a build into `report.stages`, telling `on_stage` as each ends (`wenda index -v`,
    bench/million.py, which reads the peak memory of each from it)."""

    def __init__(self, report: BuildReport, on_stage: Callable[[str, float], None] | None) -> None:
        self.report, self.on_stage = report, on_stage
        self.started = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.report.stages[name] = round(now - self.started, 3)
        self.started = now
        if self.on_stage is not None:
            self.on_stage(name, self.report.stages[name])


@dataclass(frozen=True)
class CorpusFile:
    """A corpus file with the metadata declared for it; `fingerprint` changes when either does. What the document
    says about itself (its title, …) follows from its bytes, so the digest covers it."""

    document: Document
    entry: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> dict:
        return {"sha256": self.document.sha256, **self.entry}


def check_corpus(root: Path) -> None:
    """WendaError unless `root` is a folder: the corpus setting names the folder of documents."""
    if root.is_file():
        raise WendaError(f"{root} is a file; WENDA_CORPUS or --corpus takes the folder that holds your documents")
    if not root.is_dir():
        raise WendaError(f"corpus folder {root} does not exist; set WENDA_CORPUS or --corpus to a folder of .txt files")


def scan_corpus(
    root: Path, warn: Callable[[str], None], follow_symlinks: bool = False, rules: tuple[Rule, ...] = ()
) -> tuple[dict[str, CorpusFile], list[tuple[str, str]]]:
    """Files to index by source path (not read yet), with the metadata declared for them (`metadata.declared`:
    `rules`, sources.toml, sidecars), and (source, reason) for each skipped one (warned once each); a file
    whose text turns out unusable is skipped when it is extracted (`insert_sources`)."""
    check_corpus(root)
    entries = load_sources(root)

    def problem(message: str) -> None:
        warn(f"warning: {message}")

    files: dict[str, CorpusFile] = {}
    skipped: list[tuple[str, str]] = []
    for path in discover(root):
        source = path.relative_to(root).as_posix()
        try:
            document = read_document(path, root, follow_symlinks)
        except SkippedFile as exc:
            warn(f"warning: skipped {source}: {exc}")
            skipped.append((source, str(exc)))
            continue
        sidecar = read_sidecar(sidecar_of(path), problem)
        files[source] = CorpusFile(document, declared(source, rules, entries.get(source, {}), sidecar))
    for path in others(root):
        source = path.relative_to(root).as_posix()
        warn(f"warning: skipped {source}: {unsupported_reason(path)}")
        skipped.append((source, unsupported_reason(path)))
    skipped.sort()
    for source in sorted(set(entries) - set(files) - {s for s, _ in skipped}):
        warn(f"warning: sources.toml names {source}, which is not in {root}")
    for path in sidecars(root):
        document = path.relative_to(root).as_posix()[: -len(SIDECAR)]
        if document not in files and document not in {s for s, _ in skipped}:
            warn(f"warning: {document}{SIDECAR} describes {document}, which is not in {root}")
    return files, skipped


def remove_sources(db: sqlite3.Connection, sources: list[str]) -> np.ndarray:
    """Delete every row of these files; their chunk ids, whose vectors the next vector index leaves out."""
    removed = []
    for source in sources:
        ids = [row[0] for row in db.execute("SELECT id FROM chunks WHERE source = ?", (source,))]
        db.executemany("DELETE FROM tokens WHERE id = ?", [(i,) for i in ids])
        for table in ("chunks", "paragraphs", "files"):
            db.execute(f"DELETE FROM {table} WHERE source = ?", (source,))
        removed += ids
    return np.array(removed, dtype=np.int64)


def insert_sources(
    db: sqlite3.Connection,
    files: dict[str, CorpusFile],
    sources: list[str],
    next_id: int,
    params: ChunkingParams,
    skip: Callable[[str, str, str | None], None],
    reading: Reading,
    read: dict[str, dict],
    pending: PendingTexts,
    warn: Callable[[str], None] = lambda line: None,
) -> None:
    """Extract these files one at a time, each isolated (`reading`), and store their rows and tokens, and in
    `pending` the texts to embed, for ids next_id, next_id + 1, … A file that cannot be extracted is passed to
    `skip` with the reason instead; how each file was read (pages, OCR, what was left out) goes into `read`, and
    to `warn`."""
    for source in sources:
        corpus_file = files[source]
        try:
            extraction = reading.extract(corpus_file.document)
        except SkippedFile as exc:
            skip(source, str(exc), exc.detail)
            continue
        if not extraction.blocks:
            skip(source, "no text in it", None)
            continue
        read[source] = {"pages": len(extraction.pages) if extraction.unit else None, "ocr": extraction.ocr}
        if extraction.notes:  # read, but not all of it as it was: said at the build and in its account
            read[source]["notes"] = list(extraction.notes)
            for note in extraction.notes:
                warn(f"note: {source}: {note}")
        opening = [block.text for block in extraction.blocks[:OPENING_LINES]]
        whole = "\n".join(block.text for block in extraction.blocks)
        info = source_info(corpus_file.entry, opening, extraction.meta, source, whole)
        db.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                source,
                info.title,
                info.publisher,
                info.place,
                info.date,
                extraction.encoding,
                corpus_file.document.reader,
                info.url,
                json.dumps(info.extra, ensure_ascii=False) if info.extra else None,
            ),
        )
        paragraphs = paragraphs_of(extraction, params, info.title)
        db.executemany(
            "INSERT INTO paragraphs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (source, p.number, p.line, p.section, p.text, p.lines, json.dumps(p.where) if p.where else None)
                for p in paragraphs
            ],
        )
        for chunk in chunk_paragraphs(paragraphs, params):
            chunk_id = next_id + len(pending)
            text = store.embedding_text(info.place, info.title, chunk.paragraph.section, chunk.text)
            db.execute(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?)",
                (chunk_id, source, chunk.paragraph.number, chunk.start, chunk.end),
            )
            db.execute("INSERT INTO tokens VALUES (?, ?)", (chunk_id, " ".join(tokenize(text))))
            pending.add(chunk_id, text)


def embed_missing(
    pending: PendingTexts,
    embedder: Embedder,
    cache: EmbeddingCache,
    progress: bool,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed the pending texts the cache lacks into it; return how many. They are found first, so the progress
    bar (and `on_progress`) counts only the chunks that are really embedded."""
    missing = array("q")
    for ids, texts in pending.batches(batch_size):
        missing.extend(ids[i] for i in cache.missing(texts))
    with tqdm(total=len(missing), desc="embedding", unit="chunk", disable=not progress or not missing) as bar:
        for begin in range(0, len(missing), batch_size):
            texts = pending.texts(list(missing[begin : begin + batch_size]))
            cache.put(texts, embedder.embed_passages(texts))
            bar.update(len(texts))
            if on_progress is not None:
                on_progress(begin + len(texts), len(missing))
    return len(missing)


def pending_vectors(
    pending: PendingTexts, embedder: Embedder, cache: EmbeddingCache, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) of the pending texts from the cache, a batch at a time in id order; a vector the cache
    lost since (a damaged row it dropped) is embedded again."""
    for ids, texts in pending.batches(batch_size):
        found = cache.get(texts)
        lost = [i for i in range(len(texts)) if i not in found]
        if lost:
            fresh = embedder.embed_passages([texts[i] for i in lost])
            cache.put([texts[i] for i in lost], fresh)
            found.update(zip(lost, fresh, strict=True))
        yield np.array(ids, dtype=np.int64), np.stack([found[i] for i in range(len(texts))]).astype(np.float32)


def vector_index(
    previous: store.Snapshot | None,
    removed: np.ndarray,
    batches: Iterator[tuple[np.ndarray, np.ndarray]],
    added: int,
    dim: int,
    scratch: Path,
    target: Path,
) -> tuple[faiss.Index, float | None]:
    """The vector index of the new generation: the `previous` one's less the `removed` ids, with the `added` new
    vectors of `batches`, and the recall@10 against exact search that a new IVF index was tuned to (None when none
    was built). A Flat index is updated in memory (written at commit); one that reaches FLAT_LIMIT becomes
    IVF-SQ8, trained on a sample of all vectors kept in a scratch file; an IVF index (memory-mapped) is written
    anew to `target` list by list, its kept lists and the new vectors' codes merged: memory never holds every
    float vector nor every code."""
    base = previous.index if previous is not None else None
    total = (base.ntotal if base is not None else 0) - len(removed) + added
    if base is not None and is_ivf(base):
        ivf = faiss.downcast_index(base)
        encoded = ivf_file.Encoded(scratch, ivf.code_size)
        try:
            ivf_file.stored_lists(ivf, previous.path / store.VECTORS, removed, encoded)
            ivf_file.encode(ivf, batches, encoded)
            ivf_file.write(target, ivf, encoded)
        finally:
            encoded.close()
        return for_queries(faiss.read_index(str(target), faiss.IO_FLAG_MMAP)), None
    if base is not None and len(removed):
        base.remove_ids(removed)
    if not becomes_ivf(base, total):
        index = base if base is not None else new_flat(dim)
        for ids, vectors in batches:
            index.add_with_ids(vectors, ids)
        return index, None
    source = VectorFile(scratch / "vectors.f32", dim)
    try:
        if base is not None:
            source.append(*all_vectors(base))
        for ids, vectors in batches:
            source.append(ids, vectors)
        return build_ivf(source, target, scratch)
    finally:
        source.close()


def without(index: faiss.Index, ids: np.ndarray, tmp: Path) -> faiss.Index:
    """`index` less these ids; one already written into the generation `tmp` (IVF) is read back into memory for
    it and written again with its positions (files deleted during a build: rare)."""
    written = tmp / store.VECTORS
    if not written.exists():
        index.remove_ids(ids)
        return index
    index = faiss.read_index(str(written))
    index.remove_ids(ids)
    replacement = written.with_name(f"{written.name}.new")  # the caller's index still maps the written file
    faiss.write_index(index, str(replacement))
    os.replace(replacement, written)
    np.save(ivf_file.positions_path(written), ivf_file.positions_of(index))
    return for_queries(faiss.read_index(str(written), faiss.IO_FLAG_MMAP))


class StoredTokens:
    """Every chunk's stored tokens in id order, read from SQLite as they are iterated, on each pass anew."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __iter__(self) -> Iterator[list[str]]:
        for (tokens,) in self.db.execute("SELECT tokens FROM tokens ORDER BY id"):
            yield tokens.split()


def write_lexical(db: sqlite3.Connection, folder: Path) -> None:
    """BM25 over the stored tokens of every chunk (tokenizing happened once, at insert), streamed from SQLite."""
    ids = (row[0] for row in db.execute("SELECT id FROM tokens ORDER BY id"))
    lexical.write(folder, ids, StoredTokens(db))


def open_base(index_dir: Path, report: BuildReport) -> store.Snapshot | None:
    """The newest intact generation to update, noting in `report` what was damaged or outdated; None: build anew."""
    try:
        base = store.open_snapshot(index_dir)  # an IVF index memory-mapped: `vector_index` writes its update anew
    except IndexMissingError:
        return None
    except IndexFormatError:
        report.repaired.append("the index was written by an older Wenda: rebuilt in the current format")
        return None
    except DamagedIndexError as exc:
        report.repaired.append(f"{exc.what}: no intact generation left, rebuilt from the corpus")
        return None
    if base.problem:
        report.repaired.append(f"{base.problem}: repaired from {base.path.name}, the newest intact generation")
    return base


def build_index(
    settings: Settings,
    embedder: Embedder,
    rebuild: bool = False,
    progress: bool = True,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    files: dict[str, CorpusFile] | None = None,
    batch_size: int = BATCH_SIZE,
    remote: RemoteEmbedding | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_stage: Callable[[str, float], None] | None = None,
) -> BuildReport:
    """Update (or with `rebuild`, recreate) the index of `settings.corpus` (or of `files`) in `settings.index_dir`,
    repairing on the way whatever it finds damaged: CURRENT, a generation, the cache, leftover folders. With
    `remote`, the chunks to embed are embedded there (into the cache) instead of by `embedder`."""
    started = time.perf_counter()
    report = BuildReport()
    stages = Stages(report, on_stage)
    if files is None:
        # before the lock creates the index folder
        files, report.skipped = scan_corpus(settings.corpus, warn, settings.follow_symlinks, settings.metadata_rules)
    files = dict(files)  # files deleted during the build are dropped from it
    if not files:
        raise WendaError(f"no readable documents in {settings.corpus}; nothing to index")
    index_dir = settings.index_dir
    with store.write_lock(index_dir):
        report.repaired += [f"removed {path.name}, left by an interrupted build" for path in store.leftovers(index_dir)]
        store.remove_leftovers(index_dir)
        previous = open_base(index_dir, report) if not rebuild else None
        manifest = {
            "format_version": store.FORMAT_VERSION,
            "model": embedder.identity(),
            "chunking": settings.chunking.as_dict(),
        }
        if previous is not None:
            store.check_model(previous.manifest, manifest["model"])
            if previous.manifest["chunking"] != manifest["chunking"]:
                raise IndexMismatchError(f"chunking settings changed since the index was built; {store.REBUILD_HINT}")
        old = previous.manifest["files"] if previous else {}
        known_bad = previous.manifest.get("skipped", {}) if previous else {}
        carried: dict[str, dict] = {}  # unchanged files that could not be extracted last time: not tried again
        for source, corpus_file in list(files.items()):
            if source not in old and known_bad.get(source, {}).get("fingerprint") == corpus_file.fingerprint:
                carried[source] = known_bad[source]
                warn(f"warning: skipped {source}: {carried[source]['reason']}")
                report.skipped.append((source, carried[source]["reason"]))
                del files[source]
            elif source not in old:
                report.added.append(source)
            elif old[source] != corpus_file.fingerprint:
                report.changed.append(source)
            else:
                report.unchanged.append(source)
        report.removed = sorted(set(old) - set(files))
        if previous is not None and report.up_to_date:
            if previous.problem:
                store.switch_current(index_dir, previous.path)
                store.prune(index_dir, keep={previous.path})
            report.total_chunks = len(previous)
            report.seconds = time.perf_counter() - started
            previous.close()
            return report
        db = None
        try:
            tmp, db = store.new_generation(index_dir, previous)
            stages.done("scan")
            options = BuildOptions(progress, batch_size, warn, remote, on_progress, on_stage)
            # every file left out, with its reason: what `wenda sources` reports; a file whose extraction failed
            # keeps its fingerprint, so it is not tried again until it changes
            manifest["skipped"] = {**{source: {"reason": reason} for source, reason in report.skipped}, **carried}
            final = write_generation(settings, embedder, report, files, previous, tmp, db, manifest, options, stages)
        except BaseException as exc:
            full = no_space(exc, index_dir)  # before the cleanup frees the space again
            if db is not None:
                db.close()
            store.remove_leftovers(index_dir)  # a partial generation is useless, and may fill the disk
            if full:
                raise out_of_space(index_dir, previous) from exc
            raise
        finally:
            if previous is not None:
                previous.close()
        store.prune(index_dir, keep={final, previous.path} if report.repaired and previous else None)
        report.log = write_log(index_dir, report.details)
        report.generation = final.name
        report.seconds = time.perf_counter() - started
        return report


BUILD_LOG = "build.log"


def write_log(index_dir: Path, details: dict[str, str]) -> Path | None:
    """Write what readers raised on the files this build skipped to `build.log` in the index folder (replacing an
    earlier one): the one-line reasons are for people, the tracebacks for a bug report. None when nothing failed."""
    if not details:
        return None  # a later build that skips nothing new keeps the log of the one that did
    path = index_dir / BUILD_LOG
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    text = "".join(f"== {source} ({stamp})\n{detail.rstrip()}\n\n" for source, detail in sorted(details.items()))
    path.write_text(text, encoding="utf-8")
    return path


def write_generation(
    settings: Settings,
    embedder: Embedder,
    report: BuildReport,
    files: dict[str, CorpusFile],
    previous: store.Snapshot | None,
    tmp: Path,
    db: sqlite3.Connection,
    manifest: dict,
    options: BuildOptions,
    stages: Stages,
) -> Path:
    """Fill the temporary generation `tmp` with the changes in `report`, then commit it."""
    if previous is not None:
        removed = remove_sources(db, report.changed + report.removed)
    else:
        removed = np.zeros(0, dtype=np.int64)
    next_id = previous.manifest["next_id"] if previous else 0

    def skip(source: str, reason: str, detail: str | None) -> None:
        options.warn(f"warning: skipped {source}: {reason}")
        report.skipped.append((source, reason))
        if detail:
            report.details[source] = detail
        manifest["skipped"][source] = {"fingerprint": files.pop(source).fingerprint, "reason": reason}
        if source in report.changed:  # its old passages are gone with the old text
            report.changed.remove(source)
            report.removed.append(source)
        else:
            report.added.remove(source)

    read = {s: r for s, r in (previous.manifest.get("read", {}) if previous else {}).items() if s in files}
    reading = Reading(options=OcrOptions(cache=settings.ocr_cache), progress=ocr_progress(options.progress))
    todo = report.added + report.changed
    scratch = tmp / SCRATCH
    scratch.mkdir()
    pending = PendingTexts(scratch / "texts.sqlite")
    try:
        insert_sources(db, files, todo, next_id, settings.chunking, skip, reading, read, pending, options.warn)
        if not files:
            raise WendaError(f"none of the documents in {settings.corpus} could be read (see the warnings above)")
        added = len(pending)
        stages.done("read")
        vectors, tuned = embed_pending(settings, embedder, report, previous, removed, pending, tmp, options, stages)
    finally:
        pending.close()
    shutil.rmtree(scratch)
    # which engines embedded the vectors of this generation, each with its certified agreement with the engine
    # that embeds questions (checked when the index is served: index.agreement.check_engines)
    engines = dict(previous.manifest.get("engines", {})) if previous is not None else {}
    if report.embedded_chunks:
        report.engine = embedder.engine
        engines[embedder.engine] = embedder.agreement
    manifest["engines"] = engines
    for source in vanished(settings.corpus, files):
        options.warn(f"warning: {source} was deleted while it was being indexed: left out")
        vectors = without(vectors, remove_sources(db, [source]), tmp)
        del files[source]
        report.removed.append(source)
    live_manifest = store.live_manifest(settings.index_dir)  # read before the switch; also across --rebuild
    if live_manifest.get("model") == manifest["model"] and "servable_with" in live_manifest:
        manifest["servable_with"] = live_manifest["servable_with"]  # same building model, same agreement
    manifest.update(
        read={source: read[source] for source in sorted(files) if source in read},
        probes=probe_profile(embedder, vectors, tmp / store.VECTORS if is_ivf(vectors) else None),
        vector_index=describe(vectors, tuned, previous.manifest.get("vector_index") if previous else None),
        files={source: files[source].fingerprint for source in sorted(files)},
        stats={source: files[source].document.stat for source in sorted(files) if files[source].document.stat},
        next_id=next_id + added,
    )
    if manifest["stats"]:  # where the files were read, so readers can tell when a cited one changed; relative
        # to the index folder (readers check the corpus in use, WENDA_CORPUS: a copied pair reads its own files)
        manifest["corpus"] = os.path.relpath(settings.corpus.resolve(), settings.index_dir.resolve())
    report.total_chunks = int(vectors.ntotal)
    stages.done("vectors")
    write_lexical(db, tmp / store.LEXICAL)
    stages.done("lexical")
    final = store.commit_generation(tmp, db, vectors, manifest)
    stages.done("write")
    return final


def embed_pending(
    settings: Settings,
    embedder: Embedder,
    report: BuildReport,
    previous: store.Snapshot | None,
    removed: np.ndarray,
    pending: PendingTexts,
    tmp: Path,
    options: BuildOptions,
    stages: Stages,
) -> tuple[faiss.Index, float | None]:
    """Embed what the cache lacks of the pending texts (on the cluster with `options.remote`), then return the
    vector index of the new generation `tmp` holding them, less the `removed` ids (and `vector_index`'s recall)."""
    cache = EmbeddingCache(settings.embedding_cache, json.dumps(embedder.signature(), sort_keys=True), embedder.dim)
    embedding_started = time.perf_counter()
    try:
        if options.remote is not None:
            report.embedded_chunks = options.remote.fill(pending, cache, options.progress)
            report.embedded_on = options.remote.description if report.embedded_chunks else None
        report.embedded_chunks += embed_missing(
            pending, embedder, cache, options.progress, options.batch_size, options.on_progress
        )
        report.embed_seconds = time.perf_counter() - embedding_started
        report.cached_chunks = len(pending) - report.embedded_chunks
        stages.done("embed")
        batches = pending_vectors(pending, embedder, cache, options.batch_size)
        vectors, tuned = vector_index(
            previous, removed, batches, len(pending), embedder.dim, tmp / SCRATCH, tmp / store.VECTORS
        )
        if cache.repaired:
            report.repaired.append(cache.repaired)
        if cache.dropped:
            report.repaired.append(
                f"dropped {cache.dropped} damaged vector{'s' if cache.dropped > 1 else ''} from the embedding cache "
                "and embedded them again"
            )
    finally:
        cache.close()
    return vectors, tuned


def ocr_progress(progress: bool) -> Callable[[Progress], None] | None:
    """A progress bar per long OCR read: pages done of the file's pages, with the time left."""
    if not progress:
        return None
    bars: dict[str, tqdm] = {}

    def update(step: Progress) -> None:
        bar = bars.get(step.source)
        if bar is None:
            bar = bars[step.source] = tqdm(total=step.total, desc=f"OCR {terminal_name(step.source)}", unit="page")
        bar.n = step.done
        bar.refresh()
        if step.done >= step.total:
            bar.close()

    return update


def terminal_name(source: str) -> str:
    """A file name for a progress bar: control characters and bidi overrides in it shown as escapes."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in source)[-40:]


def vanished(root: Path, files: dict[str, CorpusFile]) -> list[str]:
    """Files read from disk for this build that are gone now: they must not be committed and then cited."""
    return [source for source, file in files.items() if file.document.stat and not (root / source).exists()]


def no_space(exc: BaseException, index_dir: Path) -> bool:
    """A write failed for lack of space (FAISS reports it as a RuntimeError, SQLite as "disk is full" or, at
    times, as a bare I/O error on a full device)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    if not isinstance(exc, (OSError, RuntimeError, sqlite3.Error)):  # numpy: "OSError: 1321 requested and 496 written"
        return False
    words = ("No space left", "disk is full", "File too large", "quota exceeded")
    return any(word in str(exc) for word in words) or disk_full(index_dir)


def out_of_space(index_dir: Path, previous: store.Snapshot | None) -> WendaError:
    """The message for a full disk: how much a generation needs and how much is free."""
    needed = sum(p.stat().st_size for p in previous.path.rglob("*") if p.is_file()) if previous else 0
    free = shutil.disk_usage(index_dir).free
    need = f"about {needed / 2**20:.0f} MB" if needed else "more space"
    return WendaError(
        f"no space left on the device holding {index_dir}: a new index generation needs {need}, "
        f"{free / 2**20:.0f} MB are free; the partial generation was removed and the previous index still answers. "
        "Free some space and run `wenda index` again"
    )
