"""Corpora given as JSON Lines passages `{"pid","title","text"}` (benchmarks), where `pid` is the source."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from .builder import CorpusFile
from .errors import WendaError
from .loader import Document


def read_jsonl(path: Path) -> Iterator[dict]:
    """Objects of a .jsonl or .jsonl.gz file; a bad line is an error naming the file and line."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise WendaError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    except OSError as exc:
        raise WendaError(f"cannot read {path}: {exc.strerror or exc}") from exc


def passage_files(path: Path, limit: int | None = None) -> dict[str, CorpusFile]:
    """The first `limit` passages of a file as corpus files keyed by pid."""
    files: dict[str, CorpusFile] = {}
    for number, item in enumerate(read_jsonl(path), start=1):
        if limit is not None and len(files) >= limit:
            break
        if not isinstance(item, dict) or not isinstance(item.get("pid"), str) or not isinstance(item.get("text"), str):
            raise WendaError(f'{path}:{number}: expected {{"pid": str, "title": str, "text": str}}')
        text = item["text"]
        document = Document(item["pid"], hashlib.sha256(text.encode("utf-8")).hexdigest(), "text", text=text)
        title = str(item.get("title") or text.strip().split("\n")[0][:40])
        files[item["pid"]] = CorpusFile(document, {"title": title})
    return files
