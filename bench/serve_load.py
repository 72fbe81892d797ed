"""Load: concurrent clients ask the real `wenda serve` process questions over HTTP for a while.

    .venv/bin/python bench/serve_load.py [--index-dir DIR] [--questions FILE] [--clients 50] [--seconds 60]
                                         [--interval 1] [--k 5] [--label TEXT]

Starts `wenda serve --port 0` as a subprocess on the index (default: the seed corpus, indexed into a folder
under the system's temp directory and reused by later runs), with one API key per client and
WENDA_SERVE_RATE_LIMIT far above what the clients send, waits for /healthz, then runs `--clients` clients on
loopback (httpx, asyncio, one keep-alive connection each) for `--seconds`, each sending `POST /v1/ask`
{question, k} with questions drawn from `--questions` (`q` or `question` field of a .jsonl or .jsonl.gz file;
default the dev set).

Each client paces itself: one request per `--interval` seconds, the clients' first requests spread over the
first interval, at most one request in flight per client (a request due while the previous answer is still
awaited goes out when that answer arrives, and is counted as late). So the server is offered
clients / interval requests a second, like users who read an answer before asking again; a closed loop with no
pause between answer and next question would only measure queueing (latency = clients / throughput, whatever
the server does), and late sends say when the server did not keep up. Latency is from sending a request to
having its whole answer; a request is an error when the status is not 200, the body is not an answer
(no `results`), or it raised (timeout, connection reset), counted by kind.

Records throughput (answers a second over the run), latency p50 / p95 / p99 / max, errors by kind, late sends,
the server's resident memory (/proc/PID/status) at the start of the load, at half time and at the end, its CPU
use (cores busy on average, from /proc/PID/stat), the mean time per question the server itself measured
(`wenda_question_seconds` in /metrics) and this script's own CPU use (the clients share the machine with the
server). Keeps the result in bench/results/serve_load.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import httpx
from report import ms, percentiles, rss_mb, save, update_table
from wenda.index.passages import read_jsonl

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
SEED_INDEX = Path(tempfile.gettempdir()) / "wenda-serve-load-seed"
SERVING = re.compile(r"wenda: serving on (http://\S+)")
START_TIMEOUT = 300  # seconds for the server to load its index and say where it listens (92k: a few)
REQUEST_TIMEOUT = 30.0
COLUMNS = [
    ("index", lambda r: r["index"]),
    ("chunks", lambda r: f"{r['chunks']:,}"),
    ("clients × seconds, each asks every", lambda r: f"{r['clients']} × {r['seconds']:.0f}, {r['interval']:g} s"),
    ("sent (late)", lambda r: f"{r['sent']:,} ({r['late']:,})"),
    ("answered/s", lambda r: f"{r['throughput']:.1f}"),
    ("errors", lambda r: errors_cell(r["errors"])),
    ("latency p50 / p95 / p99", lambda r: ms(r["latency_ms"])),
    ("max", lambda r: f"{r['latency_ms']['max']:,.0f} ms"),
    ("server RSS: start → half → end", lambda r: " → ".join(f"{m:.0f}" for m in r["rss_mb"]) + " MB"),
    ("server CPU", lambda r: f"{r['server_cores']:.2f} cores"),
    ("command", lambda r: f"`{r['command']}`"),
]


def errors_cell(errors: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in sorted(errors.items())) or "0"


def table(rows: list[dict]) -> None:
    update_table("serve_load", COLUMNS, sorted(rows, key=lambda r: (r["chunks"], r["clients"], r["seconds"])))


def seed_index() -> Path:
    """The seed corpus's index in a temp folder: built the first time, brought up to date (nothing to embed) after."""
    command = [sys.executable, "-m", "wenda.bot.cli", "index", "-q", "--corpus", str(ROOT / "corpus"), "--index-dir"]
    subprocess.run([*command, str(SEED_INDEX)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return SEED_INDEX


class ServerProcess:
    """`wenda serve --port 0` in a subprocess; its stderr is drained by a thread (kept for the report)."""

    def __init__(self, index_dir: Path, keys: list[str], data_dir: Path) -> None:
        env = {
            **os.environ,
            "WENDA_INDEX_DIR": str(index_dir),
            "WENDA_API_KEYS": ",".join(keys),
            "WENDA_SERVE_RATE_LIMIT": "1000000",
            "WENDA_DATA_DIR": str(data_dir),
            "WENDA_QUERY_MEMORY": "0",  # the clients' questions come round again: time the model each time
        }
        for name in ("WENDA_SERVE_HOST", "WENDA_SERVE_PORT", "WENDA_SERVE_CORS_ORIGINS"):
            env.pop(name, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wenda.bot.cli", "serve", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.address = threading.Event()
        self.url = ""
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if not self.url and (match := SERVING.search(line)):
                self.url = match.group(1)
                self.address.set()
        self.address.set()  # the process ended

    def wait_until_serving(self) -> str:
        if not self.address.wait(START_TIMEOUT) or not self.url:
            self.stop()
            raise SystemExit("wenda serve did not start:\n" + "\n".join(self.lines[-20:]))
        return self.url

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (/proc/PID/stat, clock ticks)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class Load:
    """The clients' shared record of what was sent and what came back."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.late = 0
        self.last_answer = 0.0

    async def client(
        self, url: str, key: str, questions: list[str], k: int, first: float, interval: float, deadline: float
    ) -> None:
        """One user: a request every `interval` seconds from `first` until `deadline`, one at a time."""
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT) as http:
            due, turn = first, 0
            while due < deadline:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                question = questions[turn % len(questions)]
                turn += 1
                self.sent += 1
                started = time.monotonic()
                try:
                    response = await http.post("/v1/ask", json={"question": question, "k": k})
                    if response.status_code != 200:
                        self.errors[f"HTTP {response.status_code}"] += 1
                    elif "results" not in response.json():
                        self.errors["200 without results"] += 1
                    else:
                        self.latencies.append(time.monotonic() - started)
                except (httpx.HTTPError, json.JSONDecodeError) as exc:
                    self.errors[type(exc).__name__] += 1
                finished = time.monotonic()
                self.last_answer = max(self.last_answer, finished)
                due += interval
                if due < finished:  # the answer took longer than the pause: ask at once, no catching up
                    self.late += 1
                    due = finished


async def watch_memory(pid: int, started: float, seconds: float, marks: list[float]) -> None:
    """The server's resident memory at the start, at half time and at the end of the load."""
    marks.append(rss_mb(pid))
    await asyncio.sleep(max(0.0, started + seconds / 2 - time.monotonic()))
    marks.append(rss_mb(pid))


def server_metrics(url: str, key: str) -> dict[str, float]:
    """Count and sum of `wenda_question_seconds` from the server's /metrics."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10).text
    values = {}
    for name in ("count", "sum"):
        match = re.search(rf"^wenda_question_seconds_{name} (\S+)$", text, re.M)
        values[name] = float(match.group(1)) if match else 0.0
    return values


def load_questions(path: Path) -> list[str]:
    """The file's questions, shuffled; blank ones (CMRC 2018 has two) left out: they are no question."""
    questions = [row.get("q") or row["question"] for row in read_jsonl(path)]
    questions = [question for question in questions if question.strip()]
    random.Random(0).shuffle(questions)
    return questions


async def run_load(args: argparse.Namespace, url: str, keys: list[str], questions: list[str], pid: int) -> dict:
    load = Load()
    started = time.monotonic()
    deadline = started + args.seconds
    offsets = random.Random(1)
    memory: list[float] = []
    share = max(1, len(questions) // args.clients)
    clients = [
        load.client(
            url,
            keys[i],
            questions[i * share :] + questions[: i * share],  # each client starts elsewhere in the list
            args.k,
            started + offsets.uniform(0, args.interval),
            args.interval,
            deadline,
        )
        for i in range(args.clients)
    ]
    await asyncio.gather(watch_memory(pid, started, args.seconds, memory), *clients)
    memory.append(rss_mb(pid))
    return {"load": load, "started": started, "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, help="index to serve (default: the seed corpus's, in a temp folder)")
    parser.add_argument("--questions", type=Path, default=DEV, help="question file (default ../shared/eval/dev.jsonl)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between one client's requests")
    parser.add_argument("--k", type=int, default=5, help="passages asked for")
    parser.add_argument("--label", help="how the table names the index (default: its folder)")
    args = parser.parse_args()
    index_dir = args.index_dir or seed_index()
    questions = load_questions(args.questions)
    keys = [f"bench-{i:03d}-{os.urandom(6).hex()}" for i in range(args.clients)]
    with tempfile.TemporaryDirectory(prefix="wenda-serve-load-") as data_dir:
        server = ServerProcess(index_dir, keys, Path(data_dir))
        try:
            url = server.wait_until_serving()
            auth = {"Authorization": f"Bearer {keys[0]}"}
            health = httpx.get(f"{url}/healthz", timeout=30).json()
            for question in questions[:3]:  # warm-up, not counted: first-call costs are not load
                httpx.post(f"{url}/v1/ask", json={"question": question, "k": args.k}, headers=auth, timeout=60)
            before = server_metrics(url, keys[0])
            cpu_before, own_before = server.cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF)
            outcome = asyncio.run(run_load(args, url, keys, questions, server.process.pid))
            load: Load = outcome["load"]
            elapsed = max(load.last_answer, outcome["started"] + args.seconds) - outcome["started"]
            server_cpu = server.cpu_seconds() - cpu_before
            own = resource.getrusage(resource.RUSAGE_SELF)
            after = server_metrics(url, keys[0])
        finally:
            code = server.stop()
    if code not in (0, -signal.SIGTERM):
        print("\n".join(server.lines[-20:]), file=sys.stderr)
    if not load.latencies:
        raise SystemExit(f"no request was answered: {dict(load.errors)}\n" + "\n".join(server.lines[-20:]))
    answered = after["count"] - before["count"]
    own_cpu = (own.ru_utime - own_before.ru_utime) + (own.ru_stime - own_before.ru_stime)
    result = {
        "index": args.label or (str(args.index_dir) if args.index_dir else "seed corpus (corpus/)"),
        "chunks": health["chunks"],
        "questions_file": os.path.relpath(args.questions, ROOT),
        "clients": args.clients,
        "seconds": args.seconds,
        "interval": args.interval,
        "k": args.k,
        "offered_per_s": round(args.clients / args.interval, 2),
        "sent": load.sent,
        "answered": len(load.latencies),
        "late": load.late,
        "errors": dict(load.errors),
        "throughput": round(len(load.latencies) / elapsed, 2),
        "latency_ms": {**percentiles(load.latencies), "max": round(max(load.latencies) * 1000, 2)},
        "server_question_ms_mean": round((after["sum"] - before["sum"]) / answered * 1000, 2) if answered else None,
        "rss_mb": outcome["memory"],
        "server_cores": round(server_cpu / elapsed, 2),
        "client_cores": round(own_cpu / elapsed, 2),
        "server_exit": code,
        "versions": {name: version(name) for name in ("fastapi", "uvicorn", "httpx")},
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))
    table(save("serve_load", result, key=("index", "clients", "seconds", "interval", "k")))


if __name__ == "__main__":
    main()
