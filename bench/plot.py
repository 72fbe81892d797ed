"""How the figures grow with corpus size, as one image: docs/scaling.png (from bench/results/, no measuring).

.venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/plot.py
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt  # noqa: E402
from report import DOC, load  # noqa: E402

OUT = DOC.parent / "scaling.png"


def main() -> None:
    queries = sorted(load("query_latency"), key=lambda r: r["passages"])
    search = sorted(load("vector_search"), key=lambda r: r["vectors"])
    builds = sorted((r for r in load("indexing") if r["batch_size"] == 32), key=lambda r: r["chunks"])
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 3.8), dpi=90)

    sizes = [r["passages"] for r in queries]
    for key, label in (("p50", "hybrid p50"), ("p95", "hybrid p95")):
        left.plot(sizes, [r["hybrid_ms"][key] for r in queries], "o-", label=label)
    left.plot(sizes, [r["dense_only_ms"]["p50"] for r in queries], "s--", label="dense-only p50")
    left.set(title="whole query, in process (ms)", xlabel="chunks in the index")

    vectors = [r["vectors"] for r in search]
    middle.plot(vectors, [r["flat"]["search_ms"]["p95"] for r in search], "o-", label="Flat (exact) p95")
    middle.plot(vectors, [r["ivf_sq8"]["search_ms"]["p95"] for r in search], "s-", label="IVF-SQ8 p95")
    middle.axhline(10, color="grey", linestyle=":", label="10 ms target")
    middle.set(title="vector search only (ms)", xlabel="vectors")

    right.plot([r["chunks"] for r in builds], [r["peak_rss_mb"] for r in builds], "o-", label="indexing peak RSS")
    served = [r for r in queries if "rss_mb" in r]
    right.plot([r["passages"] for r in served], [r["rss_mb"] for r in served], "s-", label="serving RSS")
    right.set(title="memory (MB)", xlabel="chunks")

    for axis in (left, middle, right):
        axis.set_xscale("log")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
