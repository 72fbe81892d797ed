"""`wenda index --watch`: seconds from saving an edit to a corpus file until a new generation is live.

    .venv/bin/python bench/watch_latency.py [--edits 5]

Works on a copy of the seed corpus and index (the embedding cache of ./.wenda-index is reused), appends one
paragraph per edit and polls CURRENT; prints each latency and the median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wenda.index.store import read_current  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wenda-watch-"))
    try:
        shutil.copytree(ROOT / "corpus", work / "corpus")
        (work / "index").mkdir()
        shutil.copy(ROOT / ".wenda-index" / "embeddings.sqlite", work / "index" / "embeddings.sqlite")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "WENDA_CORPUS": str(work / "corpus"),
            "WENDA_INDEX_DIR": str(work / "index"),
        }
        watcher = subprocess.Popen(
            [sys.executable, "-m", "wenda.bot.cli", "index", "--watch", "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while b"watching" not in watcher.stderr.readline():
                assert watcher.poll() is None, "the watcher exited"
            seconds = []
            path = work / "corpus" / "003_71e5a5211310dfa3.txt"
            for edit in range(args.edits):
                before = read_current(work / "index")
                path.write_text(path.read_text(encoding="utf-8") + f"\n测试段落第{edit}次修改。\n", encoding="utf-8")
                started = time.monotonic()
                while read_current(work / "index") == before:
                    time.sleep(0.05)
                seconds.append(time.monotonic() - started)
                time.sleep(1)
        finally:
            watcher.terminate()
            watcher.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("seconds:", " ".join(f"{s:.2f}" for s in seconds), f"median {np.median(seconds):.2f}")


if __name__ == "__main__":
    main()
