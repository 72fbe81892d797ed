"""Knowledge bases: several corpora served by one deployment, declared in a TOML file.

`WENDA_CONFIG` names the file (default `wenda.toml` in the working directory, when there is one). Each
`[kb.NAME]` table declares one: `corpus = "<folder>"` (required), `index = "<folder>"` (default
`<data dir>/kb/NAME/index`, the data dir from WENDA_DATA_DIR), optional `title`, `description` and
`language`, and a `[kb.NAME.metadata]` table of fields by file pattern (index/metadata.py). Relative folders
are read from the file's own folder. Without a file, the single corpus of WENDA_CORPUS (or `corpus/`) is the
knowledge base `default`, and everything works as it did before.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError, WendaError
from .metadata import Rule, rules_from
from .store import live_generation, live_manifest

CONFIG_FILE = "wenda.toml"
DEFAULT = "default"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a name that is safe in a path, a URL and a model id
FIELDS = ("corpus", "index", "title", "description", "language")


@dataclass(frozen=True)
class KnowledgeBase:
    """One declared corpus with its own index (and so its own calibration, freshness and build account)."""

    name: str
    corpus: Path
    index_dir: Path
    title: str = ""
    description: str = ""
    language: str = ""
    metadata: tuple[Rule, ...] = ()  # [kb.NAME.metadata]: fields of the files matching each pattern
    managed: bool = False  # created on the management page (`create`): its folders are Wenda's to delete


def config_path(env: Mapping[str, str] = os.environ) -> Path | None:
    """The configuration file in use: WENDA_CONFIG (which must exist), else ./wenda.toml if present, else None."""
    named = env.get("WENDA_CONFIG", "").strip()
    if named:
        path = Path(named)
        if not path.is_file():
            raise UsageError(f"WENDA_CONFIG names {path}, which is not a file")
        return path
    local = Path(CONFIG_FILE)
    return local if local.is_file() else None


def read_config(env: Mapping[str, str] = os.environ) -> tuple[Path, dict] | None:
    """The configuration file in use and its tables; None without one; UsageError when it cannot be read."""
    path = config_path(env)
    if path is None:
        return None
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a readable TOML file ({exc}); fix it or unset WENDA_CONFIG") from exc


def knowledge_bases(env: Mapping[str, str] = os.environ) -> dict[str, KnowledgeBase]:
    """The knowledge bases the configuration declares, in its order, then those created on the management
    page (`create`); empty when there are none: then the single corpus of WENDA_CORPUS is `default` (listed
    first when the management page created others beside it)."""
    created = managed_bases(env)
    config = read_config(env)
    if config is None:
        if not created:
            return {}
        single = KnowledgeBase(
            DEFAULT, Path(env.get("WENDA_CORPUS") or "corpus"), Path(env.get("WENDA_INDEX_DIR") or ".wenda-index")
        )
        return {DEFAULT: single, **created}
    bases = configured(*config, env)
    return {**bases, **{name: base for name, base in created.items() if name not in bases}}


def configured(path: Path, table: dict, env: Mapping[str, str]) -> dict[str, KnowledgeBase]:
    """The `[kb.NAME]` tables of the configuration file `path`."""
    declared = table.get("kb", {})
    if not isinstance(declared, dict):
        raise UsageError(f'{path}: `kb` must be tables: [kb.NAME] with corpus = "<folder>"')
    data_dir = data_folder(env)
    bases: dict[str, KnowledgeBase] = {}
    for name, entry in declared.items():
        where = f"{path}: [kb.{name}]"
        if not NAME.match(name):
            raise UsageError(f"{where}: a name of letters, digits, '-', '_' or '.' (at most 64), please")
        if not isinstance(entry, dict) or not isinstance(entry.get("corpus"), str) or not entry["corpus"].strip():
            raise UsageError(f'{where} needs corpus = "<folder>"')
        unknown = sorted(set(entry) - set(FIELDS) - {"metadata"})
        if unknown:
            raise UsageError(f"{where} has unknown keys {unknown}; use {list(FIELDS)}")
        if any(not isinstance(entry.get(key, ""), str) for key in FIELDS):
            raise UsageError(f"{where}: {', '.join(FIELDS)} must be strings")
        index = entry.get("index") or str(data_dir / "kb" / name / "index")
        bases[name] = KnowledgeBase(
            name,
            _near(path, entry["corpus"]),
            _near(path, index) if entry.get("index") else Path(index),
            entry.get("title", ""),
            entry.get("description", ""),
            entry.get("language", ""),
            rules_from(entry.get("metadata", {}), f"{where}.metadata", _refuse),
        )
    return bases


def data_folder(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env.get("WENDA_DATA_DIR") or ".wenda-data")


def registry_path(env: Mapping[str, str] = os.environ) -> Path:
    """Where the knowledge bases created on the management page are listed (their folders beside it)."""
    return data_folder(env) / "kb" / "created.json"


def managed_bases(env: Mapping[str, str] = os.environ) -> dict[str, KnowledgeBase]:
    """The knowledge bases created on the management page: `<data dir>/kb/NAME/{corpus,index}`."""
    path = registry_path(env)
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not readable ({exc}); fix or remove it") from exc
    folder = path.parent
    return {
        name: KnowledgeBase(
            name, folder / name / "corpus", folder / name / "index", str(entry.get("title", "")), managed=True
        )
        for name, entry in (listed.items() if isinstance(listed, dict) else [])
        if NAME.match(name) and isinstance(entry, dict)
    }


def create(name: str, title: str = "", env: Mapping[str, str] = os.environ) -> KnowledgeBase:
    """A new, empty knowledge base under the data folder, listed for every later process; UsageError when
    the name is not usable or taken."""
    if not NAME.match(name):
        raise UsageError(
            f"{name!r}: a name of letters, digits, '-', '_' or '.' (at most 64), starting with a letter or digit"
        )
    if name in knowledge_bases(env) or name == DEFAULT:
        raise UsageError(f"a knowledge base {name!r} exists already")
    path = registry_path(env)
    listed = {name: {"title": base.title} for name, base in managed_bases(env).items()}
    listed[name] = {"title": title.strip()[:200]}
    (path.parent / name / "corpus").mkdir(parents=True, exist_ok=True)
    _write(path, listed)
    return managed_bases(env)[name]


def delete(name: str, env: Mapping[str, str] = os.environ) -> None:
    """Remove a knowledge base created on the management page, its documents and index with it; UsageError
    for one declared in the configuration (that file is its owner's to edit) or unknown."""
    created = managed_bases(env)
    if name == DEFAULT and name not in created:
        raise UsageError(f"{name!r} is the corpus of WENDA_CORPUS; it is not deleted from here")
    if name not in created:
        declared = name in knowledge_bases(env)
        raise UsageError(
            f"{name!r} is declared in the configuration file: remove it there"
            if declared
            else f"no knowledge base {name!r} was created here"
        )
    path = registry_path(env)
    _write(path, {other: {"title": base.title} for other, base in created.items() if other != name})
    shutil.rmtree(path.parent / name, ignore_errors=True)


def _write(path: Path, listed: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(listed, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(partial, path)


def status(base: KnowledgeBase) -> dict:
    """One knowledge base's files, passages, last build and status, read from its index's live manifest (no
    model loaded): a line of `wenda kb list`, a row of the management page."""
    row = {"name": base.name, "title": base.title, "corpus": str(base.corpus), "index": str(base.index_dir)}
    try:
        generation = live_generation(base.index_dir) if base.index_dir.is_dir() else None
    except WendaError as exc:
        return {**row, "files": 0, "passages": 0, "built": None, "status": f"damaged: {exc}"}
    if generation is None:
        return {**row, "files": 0, "passages": 0, "built": None, "status": f"not built (wenda index --kb {base.name})"}
    manifest = live_manifest(base.index_dir)
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(generation.stat().st_mtime))
    passages = int(manifest.get("chunks", 0))
    return {**row, "files": len(manifest.get("files", {})), "passages": passages, "built": built, "status": "ready"}


def _refuse(problem: str) -> None:
    raise UsageError(problem)


def key_scopes(env: Mapping[str, str] = os.environ) -> dict[str, frozenset[str]]:
    """API keys limited to knowledge bases: `[keys.NAME]` tables with `key = "…"` and `kbs = ["reform", …]` in
    the configuration, and the environment's form, WENDA_KB_KEYS="reform:KEY reform,handbook:OTHER" (entries
    apart by spaces, the knowledge bases before the first colon); key → the knowledge bases it may use. These
    keys are accepted besides WENDA_API_KEYS (whose keys may use every knowledge base)."""
    config = read_config(env)
    bases = knowledge_bases(env) or {DEFAULT: None}
    scopes = _env_scopes(env.get("WENDA_KB_KEYS", ""), bases)
    if config is None:
        return scopes
    path, table = config
    keys = table.get("keys", {})
    if not isinstance(keys, dict):
        raise UsageError(f'{path}: `keys` must be tables: [keys.NAME] with key = "…" and kbs = [...]')
    for name, entry in keys.items():
        where = f"{path}: [keys.{name}]"
        key, kbs = (entry.get("key"), entry.get("kbs")) if isinstance(entry, dict) else (None, None)
        if not isinstance(key, str) or len(key.strip()) < 8:
            raise UsageError(f'{where} needs key = "<at least 8 characters>"')
        if not isinstance(kbs, list) or not kbs or not all(isinstance(kb, str) for kb in kbs):
            raise UsageError(f'{where} needs kbs = ["NAME", …]: the knowledge bases the key may use')
        unknown = [kb for kb in kbs if kb not in bases]
        if unknown:
            raise UsageError(
                f"{where} names unknown knowledge bases {unknown}; the configured ones are: {', '.join(bases)}"
            )
        scopes[key.strip()] = frozenset(kbs)
    return scopes


def _env_scopes(value: str, bases: Mapping[str, object]) -> dict[str, frozenset[str]]:
    scopes: dict[str, frozenset[str]] = {}
    for number, entry in enumerate(value.split(), start=1):
        kbs, colon, key = entry.partition(":")
        names = [name for name in kbs.split(",") if name]
        if not colon or not names or len(key) < 8:
            raise UsageError(
                f"WENDA_KB_KEYS entry {number} is not NAME[,NAME…]:KEY with a key of at least 8 characters "
                '(e.g. WENDA_KB_KEYS="reform:s3cret-key reform,handbook:other-key")'
            )
        unknown = [name for name in names if name not in bases]
        if unknown:
            raise UsageError(
                f"WENDA_KB_KEYS entry {number} names unknown knowledge bases {unknown}; the configured ones are: "
                + ", ".join(bases)
            )
        scopes[key] = frozenset(names)
    return scopes


def telegram_chats(env: Mapping[str, str] = os.environ) -> dict[int, str]:
    """Telegram chats bound to a knowledge base: `[telegram] chats = { "CHAT_ID" = "NAME", … }` in the
    configuration; a chat not listed answers from the first knowledge base (an admin may switch it with /kb)."""
    config = read_config(env)
    if config is None:
        return {}
    path, table = config
    telegram = table.get("telegram")
    chats = telegram.get("chats", {}) if isinstance(telegram, dict) else {}
    bases = knowledge_bases(env)
    bound: dict[int, str] = {}
    for chat, name in chats.items() if isinstance(chats, dict) else []:
        if not str(chat).lstrip("-").isdigit() or name not in bases:
            raise UsageError(
                f"{path}: [telegram] chats: {chat!r} = {name!r} needs a chat id and a configured knowledge base "
                f"({', '.join(bases)})"
            )
        bound[int(chat)] = name
    return bound


def _near(config: Path, folder: str) -> Path:
    """A folder named in the configuration, relative to the file's own folder."""
    given = Path(folder).expanduser()
    return given if given.is_absolute() else config.parent / given


def choose(name: str | None, env: Mapping[str, str] = os.environ) -> KnowledgeBase | None:
    """The knowledge base a command works on: NAME, or the only one declared; None when there is no
    configuration (the corpus of WENDA_CORPUS, called `default`). UsageError naming NAME and the known ones."""
    bases = knowledge_bases(env)
    if not bases:
        if name in (None, DEFAULT):
            return None
        raise UsageError(
            f"no knowledge base {name!r}: without a configuration (WENDA_CONFIG) there is only {DEFAULT!r}"
        )
    if name is None:
        if len(bases) == 1:
            return next(iter(bases.values()))
        raise UsageError(f"several knowledge bases are configured: pick one with --kb NAME ({', '.join(bases)})")
    if name not in bases:
        raise UsageError(f"no knowledge base {name!r}; the configured ones are: {', '.join(bases)}")
    return bases[name]
