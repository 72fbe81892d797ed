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
    builds = sorted((r for r in load("indexing") if r.get("embedded", r["chunks"])), key=lambda r: r["chunks"])
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 3.8), dpi=90)

    for kind, style in (("flat", "-"), ("ivf-sq8", "--")):
        rows = [r for r in queries if r.get("vector_index") == kind]
        sizes = [r["passages"] for r in rows]
        for key in ("p50", "p95"):
            left.plot(sizes, [r["hybrid_ms"][key] for r in rows], "o" + style, label=f"{kind} {key}")
    left.axhline(30, color="grey", linestyle=":", label="30 ms p50 budget")
    left.set(title="whole hybrid query, in process (ms)", xlabel="chunks in the index")

    vectors = [r["vectors"] for r in search]
    middle.plot(vectors, [r["flat"]["search_ms"]["p95"] for r in search], "o-", label="Flat (exact) p95")
    middle.plot(vectors, [r["ivf_sq8"]["search_ms"]["p95"] for r in search], "s-", label="IVF-SQ8 p95 (tuned)")
    middle.axhline(10, color="grey", linestyle=":", label="10 ms target")
    middle.set(title="vector search only (ms)", xlabel="vectors")

    for model, marker in (("builtin", "o-"), ("../e5-st", "s-")):
        rows = [r for r in builds if r["model"] == model and r["batch_size"] == (32 if model == "builtin" else 256)]
        right.plot([r["chunks"] for r in rows], [r["peak_rss_mb"] for r in rows], marker, label=f"indexing, {model}")
    for kind, marker in (("flat", "^:"), ("ivf-sq8", "v:")):
        served = [r for r in queries if "rss_mb" in r and r.get("vector_index") == kind]
        right.plot([r["passages"] for r in served], [r["rss_mb"] for r in served], marker, label=f"serving, {kind}")
    right.set(title="peak / serving memory (MB)", xlabel="chunks")

    for axis in (left, middle, right):
        axis.set_xscale("log")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
