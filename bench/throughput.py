"""Throughput: how many answers a second `wenda serve` gives to 1, 2, 4 … 64 clients that ask without pause.

    .venv/bin/python bench/throughput.py [--index-dir DIR] [--questions FILE] [--clients 1 2 4 8 16 32 64]
                                         [--seconds 20] [--label TEXT]

Starts the real `wenda serve --port 0` process once (bench/serve_load.py's `ServerProcess`: one API key per
client, the rate limit out of the way; default index: the seed corpus in a temp folder), warms it with a
few questions, then for each client count runs that many closed-loop clients (httpx, asyncio, one keep-alive
connection each, the next question sent the moment an answer arrives) for `--seconds`. Records answers a
second, latency p50 / p95, and the server's CPU time per answer (user + system over the step, from
/proc/PID/stat). The clients share the two cores with the server, as users on the same box would.
A closed loop measures capacity; bench/serve_load.py measures latency at a paced load below it.

Keeps the rows in bench/results/throughput.jsonl and rewrites the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
from report import ms, percentiles, save, update_table
from serve_load import DEV, Load, ServerProcess, load_questions, seed_index

COLUMNS = [
    ("index", lambda r: r["index"]),
    ("clients", lambda r: str(r["clients"])),
    ("answers/s", lambda r: f"{r['throughput']:.1f}"),
    ("× one client", lambda r: f"{r['speedup']:.2f}×"),
    ("latency p50 / p95 / p99", lambda r: ms(r["latency_ms"])),
    ("errors", lambda r: str(r["errors"])),
    ("server CPU per answer", lambda r: f"{r['cpu_ms_per_answer']:.1f} ms"),
    ("command", lambda r: f"`{r['command']}`"),
]


def table(rows: list[dict]) -> None:
    update_table("throughput", COLUMNS, sorted(rows, key=lambda r: (r["index"], r["clients"])))


async def closed_loop(url: str, keys: list[str], questions: list[str], clients: int, seconds: float) -> Load:
    """`clients` users asking back to back for `seconds` (serve_load's client with no pause)."""
    load = Load()
    started = time.monotonic()
    share = max(1, len(questions) // clients)
    rotated = [questions[i * share :] + questions[: i * share] for i in range(clients)]  # each starts elsewhere
    await asyncio.gather(
        *(load.client(url, keys[i], rotated[i], 5, started, 0.0, started + seconds) for i in range(clients))
    )
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, help="default: the seed corpus, indexed into a temp folder")
    parser.add_argument("--questions", type=Path, default=DEV)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--label", help="the index's name in the table")
    args = parser.parse_args()
    index_dir = args.index_dir or seed_index()
    label = args.label or ("seed corpus (corpus/)" if args.index_dir is None else index_dir.name)
    questions = load_questions(args.questions)
    keys = [f"throughput-key-{i:03d}" for i in range(max(args.clients))]
    with tempfile.TemporaryDirectory() as data_dir:
        server = ServerProcess(index_dir, keys, Path(data_dir))
        try:
            url = server.wait_until_serving()
            for question in questions[:10]:  # the first answers load what is loaded lazily
                httpx.post(f"{url}/v1/ask", json={"question": question}, headers={"Authorization": f"Bearer {keys[0]}"})
            rows, single = [], None
            for clients in args.clients:
                cpu = server.cpu_seconds()
                started = time.monotonic()
                load = asyncio.run(closed_loop(url, keys, questions, clients, args.seconds))
                elapsed = time.monotonic() - started
                answered = len(load.latencies)
                throughput = answered / elapsed
                single = single or throughput
                row = {
                    "index": label,
                    "clients": clients,
                    "seconds": args.seconds,
                    "answered": answered,
                    "throughput": round(throughput, 2),
                    "speedup": round(throughput / single, 3),
                    "latency_ms": percentiles(load.latencies),
                    "errors": sum(load.errors.values()),
                    "cpu_ms_per_answer": round((server.cpu_seconds() - cpu) / max(answered, 1) * 1000, 2),
                }
                print(row, flush=True)
                rows = save("throughput", row, key=("index", "clients"))
        finally:
            server.stop()
    table(rows)


if __name__ == "__main__":
    main()
