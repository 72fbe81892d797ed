"""`wenda index --ray` on a real two-node Ray cluster on loopback (ray.cluster_utils): the index it writes is the
local build's, a killed driver resumes from the cache, a killed worker is retried, a wrong address fails fast."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import RAW_CORPUS, ROOT, SEED_CORPUS, dev_questions, run_wenda
from ray.cluster_utils import Cluster
from wenda.index import agreement
from wenda.index.cluster import Plan, RayOptions, host_port, import_ray, is_loopback, plan
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder
from wenda.index.errors import WendaError
from wenda.index.store import live_manifest
from wenda.retrieval.retriever import Retriever

SAME = ("format_version", "model", "chunking", "files", "next_id", "vector_index", "chunks", "skipped")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head with no CPUs (so the work goes to the workers) and two one-CPU worker nodes, all on 127.0.0.1."""
    import_ray("127.0.0.1:0")  # Ray keeps to loopback and sends no usage statistics, as in `wenda index --ray`
    loopback = {"node_ip_address": "127.0.0.1", "include_dashboard": False}
    ray_cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **loopback})
    for _ in range(2):
        ray_cluster.add_node(num_cpus=1, **loopback)
    ray_cluster.wait_for_nodes()
    yield ray_cluster.address
    ray_cluster.shutdown()


def index_command(corpus: Path, index_dir: Path, address: str) -> list[str]:
    return [sys.executable, "-m", "wenda.bot.cli", "index", "--corpus", str(corpus), "--index-dir", str(index_dir),
            "--ray", address, "--batch-size", "8", "--quiet"]  # fmt: skip


def start(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def cached(index_dir: Path) -> int:
    """Vectors in the build's embedding cache so far (read beside the writing build: WAL)."""
    path = index_dir / "embeddings.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        db.close()


def wait_until(condition, what: str, process: subprocess.Popen, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the build ended before {what}: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


def embedding_actors() -> list[psutil.Process]:
    """The processes of Ray Data's embedding actors (named by Ray after the class)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any("EmbeddingActor" in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def assert_same_index(built: Path, reference: Path) -> None:
    """Same manifest (but for where and when the corpus was read), same chunk ids and texts, vectors within
    cosine 0.9999; in fact the same files: the built-in engine gives the same bits in an actor."""
    ours, theirs = live_manifest(built), live_manifest(reference)
    assert {key: ours.get(key) for key in SAME} == {key: theirs.get(key) for key in SAME}
    result = agreement.between(built, reference)
    assert result.chunks == ours["chunks"] > 0
    assert result.min >= 0.9999, result
    assert ours["checksums"] == theirs["checksums"]


def answers(retriever: Retriever, docs: set[str]) -> list:
    """The JSON answers to the development questions about `docs` (scores to 4 places) and to one the corpus
    cannot answer."""
    questions = [q["q"] for q in dev_questions() if q["doc"] in docs][:8] + ["火星上的第一座城市叫什么名字？"]
    return [rounded(retriever.ask(question, 5).to_dict()) for question in questions]


def rounded(value):  # noqa: ANN001, ANN201 - JSON values
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


# Alone (`make test`'s serial part): beside busy test workers a Ray node's actors took over a minute to start.
@pytest.mark.serial
def test_ray_build_resumes_after_a_killed_driver_and_a_killed_worker_and_equals_the_local_build(
    cluster: str, seed_settings: Settings, retriever: Retriever, embedder: Embedder, tmp_path: Path
) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(RAW_CORPUS, corpus)  # the articles the session index (seed_settings) holds
    total = live_manifest(seed_settings.index_dir)["chunks"]

    driver = start(index_command(corpus, index_dir, cluster))
    wait_until(lambda: cached(index_dir) >= 16, "vectors in the cache", driver)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    done = cached(index_dir)
    assert 16 <= done < total
    # Ray ends a dead driver's actors; wait for that, so the worker killed below is one of the resumed build's.
    deadline = time.monotonic() + 30
    while embedding_actors() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not embedding_actors()

    resumed = start(index_command(corpus, index_dir, cluster))
    wait_until(lambda: cached(index_dir) >= done + 8, "the resumed build's first vectors", resumed)
    victims = embedding_actors()
    assert victims and cached(index_dir) < total and resumed.poll() is None
    victims[0].kill()  # mid-build: Ray restarts the actor and retries its blocks
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    # Only what the killed driver had not finished was embedded again; the killed worker's blocks were redone.
    assert f"({total - done} chunks embedded on the Ray cluster at {cluster} (2 actors × 1 CPU, batches of 8)" in out
    assert_same_index(index_dir, seed_settings.index_dir)
    ray_built = Retriever(Settings(corpus=corpus, index_dir=index_dir), embedder)
    docs = {"000", "001", "002", "003", "004"}
    assert answers(ray_built, docs) == answers(retriever, docs)


def test_unreachable_or_malformed_address_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    corpus = SEED_CORPUS
    started = time.monotonic()
    result = run_wenda(*index_command(corpus, tmp_path / "index", f"127.0.0.1:{port}")[3:])
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    error = result.stderr.decode()
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port} (Connection refused)" in error
    assert "Traceback" not in error and not (tmp_path / "index" / "CURRENT").exists()

    result = run_wenda(*index_command(corpus, tmp_path / "index", "head-node")[3:])
    assert result.returncode == 1
    assert "Ray address 'head-node' is not host:port" in result.stderr.decode()


@pytest.mark.parametrize(
    ("nodes", "options", "builtin", "expected"),
    [
        ([{"CPU": 2.0}], RayOptions(), True, Plan(1, 2.0, 0.0, 32)),
        ([{"CPU": 0.0}, {"CPU": 1.0}, {"CPU": 1.0}], RayOptions(), True, Plan(2, 1.0, 0.0, 32)),
        ([{"CPU": 16.0}] * 3 + [{"CPU": 3.0}], RayOptions(), True, Plan(25, 2.0, 0.0, 32)),
        ([{"CPU": 16.0, "GPU": 2.0}] * 2, RayOptions(), False, Plan(4, 1.0, 1.0, 256)),
        ([{"CPU": 16.0, "GPU": 2.0}] * 2, RayOptions(), True, Plan(16, 2.0, 0.0, 32)),  # a CPU engine
        ([{"CPU": 16.0, "GPU": 1.0}], RayOptions(gpus_per_actor=0.5, batch_size=512), False, Plan(2, 1.0, 0.5, 512)),
        ([{"CPU": 16.0}], RayOptions(actors=3, cpus_per_actor=4), True, Plan(3, 4.0, 0.0, 32)),
        ([{"CPU": 16.0, "GPU": 1.0}], RayOptions(gpus_per_actor=0), False, Plan(8, 2.0, 0.0, 32)),
    ],
)
def test_actor_pool_defaults_fit_the_cluster(nodes: list, options: RayOptions, builtin: bool, expected: Plan) -> None:
    assert plan(nodes, options, builtin) == expected


@pytest.mark.parametrize(
    ("nodes", "options", "builtin", "message"),
    [
        ([{"CPU": 0.0}], RayOptions(), True, "room for 0 embedding actors of 1 CPU each, not 1"),
        ([{"CPU": 4.0}], RayOptions(actors=3), True, "room for 2 embedding actors of 2 CPU each, not 3"),
        ([{"CPU": 4.0}], RayOptions(gpus_per_actor=1), False, "room for 0 embedding actors of 1 GPU and 1 CPU"),
        ([{"CPU": 4.0, "GPU": 1.0}], RayOptions(gpus_per_actor=1), True, "the built-in engine runs on CPUs only"),
    ],
)
def test_actor_pool_that_cannot_run_is_refused(nodes: list, options: RayOptions, builtin: bool, message: str) -> None:
    with pytest.raises(WendaError, match=message):
        plan(nodes, options, builtin)


@pytest.mark.parametrize(
    ("address", "host", "port", "loopback"),
    [
        ("127.0.0.1:6379", "127.0.0.1", 6379, True),
        ("localhost:1", "localhost", 1, True),
        ("[::1]:6379", "::1", 6379, True),
        ("ray://10.0.0.5:10001", "10.0.0.5", 10001, False),
        ("head.example.org:6379", "head.example.org", 6379, False),
    ],
)
def test_addresses(address: str, host: str, port: int, loopback: bool) -> None:
    assert host_port(address) == (host, port)
    assert is_loopback(address) is loopback
