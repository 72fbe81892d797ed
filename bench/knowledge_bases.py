"""Several knowledge bases in one `wenda serve`: memory with five loaded against one, and the first question to
a knowledge base not loaded yet (issue 31's targets: ≤ 1.3× the memory, ≤ 1 s).

    .venv/bin/python bench/knowledge_bases.py [--bases 5]

Each knowledge base is a copy of the five bundled articles (built once, vectors from one embedding cache), all
declared in one wenda.toml. The server's resident memory (/proc/PID/status VmRSS) is read after the first
knowledge base answered, and again after every other one answered its first question; each first question is
timed from the client. Keeps the result in bench/results/knowledge_bases.jsonl and rewrites the table in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from report import ROOT, save, update_table

sys.path.insert(0, str(ROOT / "tests"))

from conftest import RAW_CORPUS, start_server, stop  # noqa: E402

QUESTION = "安阳2022年老旧小区改造项目的开工率是多少？"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wenda-kb-"))
    names = [f"kb{n}" for n in range(1, args.bases + 1)]
    config = root / "wenda.toml"
    config.write_text("".join(f'[kb.{name}]\ncorpus = "{name}"\n\n' for name in names), encoding="utf-8")
    env = {
        "WENDA_CONFIG": str(config),
        "WENDA_DATA_DIR": str(root / "data"),
        "WENDA_EMBEDDING_CACHE": str(root / "e.sqlite"),
    }
    for name in names:
        shutil.copytree(RAW_CORPUS, root / name)
        subprocess.run(
            [sys.executable, "-m", "wenda.bot.cli", "index", "-q", "--kb", name],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
    process, url, _ = start_server(env)
    try:

        def ask(name: str) -> float:
            started = time.perf_counter()
            reply = httpx.post(f"{url}/v1/ask", json={"question": QUESTION, "kb": name}, timeout=60)
            assert reply.status_code == 200 and reply.json()["results"], reply.text
            return time.perf_counter() - started

        ask(names[0])
        one = rss_mb(process.pid)
        firsts = [ask(name) for name in names[1:]]
        again = [ask(name) for name in names[1:]]
        every = rss_mb(process.pid)
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)
    row = {
        "bases": args.bases,
        "rss_one_mb": round(one),
        "rss_all_mb": round(every),
        "ratio": round(every / one, 2),
        "first_question_s": round(statistics.median(firsts), 2),
        "first_question_max_s": round(max(firsts), 2),
        "later_question_s": round(statistics.median(again), 3),
    }
    print(row, flush=True)
    rows = save("knowledge_bases", row, ())
    update_table(
        "knowledge_bases",
        [
            ("knowledge bases (bundled size each)", lambda r: str(r["bases"])),
            ("memory, one loaded", lambda r: f"{r['rss_one_mb']} MB"),
            ("memory, all loaded", lambda r: f"{r['rss_all_mb']} MB ({r['ratio']}×)"),
            (
                "first question to one not loaded (median / max)",
                lambda r: f"{r['first_question_s']} s / {r['first_question_max_s']} s",
            ),
            ("later questions (median)", lambda r: f"{r['later_question_s']} s"),
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
