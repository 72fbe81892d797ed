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
from ray.cluster_utils import Cluster
from wenda.index import agreement
from wenda.index.config import Settings
from wenda.index.store import live_manifest

from conftest import ROOT, SEED_CORPUS, run_wenda

SAME = ("format_version", "model", "chunking", "files", "next_id", "vector_index", "chunks", "skipped")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head with no CPUs (so the work goes to the workers) and two one-CPU worker nodes, all on 127.0.0.1."""
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
    """Same manifest (but for where the corpus was read), same chunk ids and texts, vectors within 0.9999."""
    ours, theirs = live_manifest(built), live_manifest(reference)
    assert {key: ours.get(key) for key in SAME} == {key: theirs.get(key) for key in SAME}
    result = agreement.between(built, reference)
    assert result.chunks == ours["chunks"] > 0
    assert result.min >= 0.9999, result


def test_ray_build_equals_local_build(cluster: str, small_index: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    result = run_wenda(*index_command(small_index / "corpus", index_dir, cluster)[3:])
    assert result.returncode == 0, result.stderr.decode()
    embedded, total = live_manifest(small_index / "index")["chunks"], live_manifest(index_dir)["chunks"]
    assert f"({embedded} chunks embedded on the Ray cluster at {cluster} (2 actors × 1 CPU, batches of 8), " in (
        result.stdout.decode()
    )
    assert embedded == total
    assert_same_index(index_dir, small_index / "index")
    answer = run_wenda("ask", "--index-dir", str(index_dir), "--corpus", str(small_index / "corpus"), "--json",
                       "安阳2022年老旧小区改造项目的开工率是多少？")  # fmt: skip
    local = run_wenda("ask", "--index-dir", str(small_index / "index"), "--corpus", str(small_index / "corpus"),
                      "--json", "安阳2022年老旧小区改造项目的开工率是多少？")  # fmt: skip
    assert answer.returncode == local.returncode == 0
    assert answer.stdout.replace(str(index_dir).encode(), b"") == local.stdout.replace(
        str(small_index / "index").encode(), b""
    )


def test_killed_driver_resumes_and_dead_worker_is_retried(
    cluster: str, seed_settings: Settings, tmp_path: Path
) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(SEED_CORPUS, corpus)
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
    assert f"({total - done} chunks embedded on the Ray cluster at {cluster} (2 actors" in out, out
    assert_same_index(index_dir, seed_settings.index_dir)


def test_unreachable_or_malformed_address_fails_fast(small_index: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    corpus = small_index / "corpus"
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
