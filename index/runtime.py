"""How a process shares the machine: the CPUs it may use, native thread pools sized per calling thread, and
the low priority of batch work, so a bot and a build on one small machine do not fight (docs/benchmarks.md,
"Answering while the index updates").

Three native runtimes live in one Wenda process (the model's OpenMP, FAISS's OpenMP with its OpenBLAS,
numpy's OpenBLAS), each sized to every core by default. OpenMP keeps its thread count per calling thread,
so whoever calls into native code sizes the calling thread first (`size_native_pools`).
"""

from __future__ import annotations

import os
import threading
import time
from functools import cache
from pathlib import Path

import threadpoolctl

_sized = threading.local()


@cache
def cpu_budget() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (in a container the
    libraries' own defaults see the host's cores, which is how a 2-CPU VPS ends up running 64 threads)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, quota) if quota else cpus)


def _cgroup_quota() -> int | None:
    """Whole CPUs allowed by the cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), None when unlimited."""
    candidates = [
        (Path("/sys/fs/cgroup/cpu.max"), None),
        (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")),
    ]
    for quota_file, period_file in candidates:
        try:
            fields = quota_file.read_text().split()
            if period_file is not None:
                fields.append(period_file.read_text().strip())
            quota, period = int(fields[0]), int(fields[1])
        except (OSError, ValueError, IndexError):
            continue  # "max" (no limit), no such file, or a layout we do not know
        return max(1, quota // period) if quota > 0 else None
    return None


# A task this nice or nicer yields its core to a question at once (`wenda index` runs at 19): not competition.
BACKGROUND_NICE = 10
# How long a count of competing tasks stays good: a build lasts minutes, scanning /proc costs ~1 ms.
COMPETITION_TTL = 1.0
_competition: tuple[float, int] = (-COMPETITION_TTL, 0)


def idle_cpus() -> int:
    """CPUs of the budget a question can have now, for a decision per question: the whole budget when nothing
    else is runnable (/proc/loadavg, ~10 µs) or when only background tasks are (nice ≥ 10: they yield at
    once), less one for each other runnable task of normal priority; the whole budget where the OS does not
    say."""
    global _competition
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return cpu_budget()
    if running <= 1:  # the caller itself is one of the runnable tasks
        return cpu_budget()
    checked, competing = _competition
    if time.monotonic() - checked > COMPETITION_TTL:
        competing = _competing_tasks()
        _competition = (time.monotonic(), competing)
    return max(1, cpu_budget() - competing)


def _competing_tasks() -> int:
    """Runnable threads of normal priority on the machine, the caller's own thread left out."""
    me = str(threading.get_native_id())
    count = 0
    for process in os.scandir("/proc"):
        if not process.name.isdigit():
            continue
        try:
            tasks = list(os.scandir(f"/proc/{process.name}/task"))
        except OSError:
            continue  # ended meanwhile, or not ours to see
        for task in tasks:
            if task.name == me:
                continue
            try:
                fields = Path(task.path, "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            count += fields[0] == "R" and int(fields[16]) < BACKGROUND_NICE
    return count


def free_cpus(window: float = 0.25) -> int:
    """CPUs of the budget others left free over `window` seconds (from /proc/stat's busy time), for sizing a
    long job once. Not the load average: it trails by minutes, so a build right after another would count
    the previous build as load and run on one core."""
    before = _cpu_times()
    if before is None:
        return cpu_budget()
    time.sleep(window)
    after = _cpu_times()
    busy, total = (a - b for a, b in zip(after, before, strict=True))  # type: ignore[arg-type]
    others = busy / total * (os.cpu_count() or 1) if total > 0 else 0.0
    return max(1, cpu_budget() - round(others))


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user and nice
    return total - idle, total


def size_native_pools(threads: int) -> None:
    """Size every native thread pool loaded now (OpenMP runtimes, BLAS) to `threads` for the calling thread.
    Cheap when nothing changed; a library loaded later is not covered (LightGBM gets `num_threads` per call)."""
    if getattr(_sized, "threads", None) != threads:
        threadpoolctl.threadpool_limits(limits=threads)
        _sized.threads = threads


def pools_of(folder: str) -> list[threadpoolctl.LibController]:
    """The native thread pools loaded from libraries under `folder` (one package's own runtimes)."""
    return [pool for pool in threadpoolctl.ThreadpoolController().lib_controllers if pool.filepath.startswith(folder)]


def lower_priority() -> str:
    """Make this process a background job: lowest CPU priority (nice 19), lowest best-effort I/O priority
    where the OS has one. Linux keeps the CPU priority per thread: each running thread is lowered, and
    threads started later inherit it. Returns what was done, for a log line."""
    import psutil

    process = psutil.Process()
    for thread in process.threads():  # threads already started (e.g. numpy's OpenBLAS pool) included
        os.setpriority(os.PRIO_PROCESS, thread.id, 19)
    done = "CPU priority lowered (nice 19)"
    if hasattr(psutil, "IOPRIO_CLASS_BE"):
        # best-effort level 7 rather than the idle class: idle I/O can starve a build on a disk kept busy
        process.ionice(psutil.IOPRIO_CLASS_BE, value=7)
        done += ", I/O priority lowered (best effort, level 7)"
    return done


# glibc serves allocations from this size on with their own mappings, returned to the system when freed. By default
# the threshold rises to the largest block freed so far (up to 32 MB): after a build frees its first big numpy
# arrays, blocks of up to that size come from the heap, which keeps them after they are freed. Fixed, the vectors
# stage's peak above its start measured 163 MB at 100k vectors and 173 MB at 300k; with the moving threshold, 193
# and 228 MB (a throw-away script timing `vectors.build_ivf` on random vectors; docs/scale-out.md).
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD, so big blocks freed by a long build go back to the system
    instead of staying in its heap; False where the C library is not glibc (nothing done)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
