"""Load: simulated users ask the real bot process questions through a fake Bot API for a while.

    .venv/bin/python bench/telegram_load.py [--users 50] [--seconds 60] [--interval 6]

Each user sends a dev-set question every `interval` seconds. Reports reply latency (update handed out
to answer received), answered / asked, and the bot's resident memory over the run. Keeps the result in
bench/results/telegram_load.jsonl and rewrites the table in docs/benchmarks.md. Needs an index of corpus/
(`make demo`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import ms, percentiles, rss_mb, save, update_table  # noqa: E402

from tests.fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "1:load-test"
COLUMNS = [
    ("users × seconds", lambda r: f"{r['users']} × {r['seconds']:.0f}"),
    ("asked", lambda r: f"{r['asked']:,}"),
    ("answered", lambda r: f"{r['answered']:,}"),
    ("reply p50 / p95 / p99", lambda r: ms(r["reply_ms"])),
    ("bot RSS: idle → 1st round → half → end", lambda r: rss_path(r["rss_mb_each_round"])),
    ("command", lambda r: f"`{r['command']}`"),
]


def rss_path(memory: list[float]) -> str:
    """Memory at the start, after the first round, at half time and at the end."""
    marks = [memory[0], memory[min(1, len(memory) - 1)], memory[len(memory) // 2], memory[-1]]
    return " → ".join(f"{m:.0f}" for m in marks) + " MB"


def table(rows: list[dict]) -> None:
    update_table("telegram_load", COLUMNS, sorted(rows, key=lambda r: r["seconds"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--interval", type=float, default=6)
    args = parser.parse_args()
    questions = [json.loads(line)["q"] for line in (ROOT.parent / "shared/eval/dev.jsonl").read_text().splitlines()]
    with FakeTelegram(TOKEN) as fake:
        bot = fake.start_bot(env={"WENDA_DATA_DIR": "/tmp/wenda-load", "WENDA_QUERY_MEMORY": "0"})  # questions recur
        try:
            fake.wait_for("setMyCommands", timeout=120)
            sent_at: dict[int, float] = {}
            memory: list[float] = []
            started = time.monotonic()
            count = 0
            while time.monotonic() - started < args.seconds:
                tick = time.monotonic()
                for user in range(1, args.users + 1):
                    fake.message(user=user, text=questions[(user + count) % len(questions)])
                    sent_at[user * 100_000 + count] = time.monotonic()
                count += 1
                memory.append(rss_mb(bot.pid))
                time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
            asked = len(sent_at)
            replies = fake.wait_for("sendMessage", lambda p: "_failed" not in p, count=asked, timeout=120)
        finally:
            bot.terminate()
            bot.wait(timeout=30)
    # replies to one user come in order; pair them with that user's questions
    latencies = []
    by_user: dict[int, list[float]] = {}
    for key in sorted(sent_at):
        by_user.setdefault(key // 100_000, []).append(sent_at[key])
    for reply in replies:
        user_times = by_user[int(reply["chat_id"])]
        latencies.append(reply["_received"] - user_times.pop(0))
    result = {
        "users": args.users,
        "seconds": args.seconds,
        "interval": args.interval,
        "asked": asked,
        "answered": len(replies),
        "reply_ms": percentiles(latencies),
        "rss_mb_each_round": memory,
    }
    print(json.dumps(result, indent=1))
    table(save("telegram_load", result, key=("users", "seconds", "interval")))


if __name__ == "__main__":
    main()
