"""Check the stored copies of the benchmark documents listed in bench/documents.toml.

    .venv/bin/python bench/fetch_documents.py            # is each file there, with the right sha256?

The documents are real Chinese PDFs, web pages, a .docx and an EPUB taken from public repositories (each
entry's `origin` names the repository, commit and path). They are not in this repository and this script
downloads nothing: it looks for them in ~/.cache/wenda/documents/ (or $WENDA_DOCUMENTS), checks each
against its sha256 and, for a missing or different file, prints where it must come from. Exit status 1
when any is missing or different.

bench/pdf_libraries.py and bench/html_extractors.py import the helpers below.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tomllib
import unicodedata
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parent / "documents.toml"


def documents_dir() -> Path:
    return Path(os.environ.get("WENDA_DOCUMENTS", Path.home() / ".cache" / "wenda" / "documents"))


def load_catalogue() -> dict[str, dict]:
    """File name -> its table in documents.toml, in file order."""
    with CATALOGUE.open("rb") as handle:
        return tomllib.load(handle)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def where_from(entry: dict) -> str:
    origin = entry["origin"]
    if "repository" in origin:
        return f"GitHub repository {origin['repository']}, commit {origin['commit']}, path {origin['path']}"
    return f"{origin['package']} {origin['version']} (PyPI), path {origin['path']}"


def check(name: str, entry: dict, folder: Path) -> str | None:
    """None when the stored copy is there and matches, else why not."""
    path = folder / name
    if not path.is_file():
        return "missing"
    if sha256(path) != entry["sha256"]:
        return "sha256 differs"
    return None


def present(formats: tuple[str, ...]) -> list[tuple[str, dict, Path]]:
    """(name, entry, path) of each catalogued document of these formats whose copy is there and matches;
    prints a line for each one skipped."""
    folder = documents_dir()
    found = []
    for name, entry in load_catalogue().items():
        if entry["format"] not in formats:
            continue
        problem = check(name, entry, folder)
        if problem:
            print(f"skipped {name}: {problem} in {folder} (from {where_from(entry)})", file=sys.stderr)
            continue
        found.append((name, entry, folder / name))
    return found


def norm(text: str) -> str:
    """Letters and digits only, after NFKC: spacing, line breaks and punctuation width do not count."""
    return "".join(c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c)[0] in "LN")


def main() -> int:
    folder = documents_dir()
    catalogue = load_catalogue()
    bad = 0
    for name, entry in catalogue.items():
        problem = check(name, entry, folder)
        if problem is None:
            print(f"ok       {name}")
            continue
        bad += 1
        print(f"{problem:8} {name}\n         copy it to {folder / name} from {where_from(entry)}")
    print(f"{len(catalogue) - bad} of {len(catalogue)} documents present in {folder}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
