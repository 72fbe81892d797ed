"""The same build locally and on a local Ray cluster of 1 and 2 worker nodes: time, chunks/s, Ray's overhead,
and the agreement of the vectors (docs/scale-out.md).

    .venv/bin/python bench/ray_indexing.py --limit 20000          # local, then Ray with 1 and 2 worker nodes
    .venv/bin/python bench/ray_indexing.py --limit 2000 --runs ray2

Every build starts from an empty embedding cache, in a fresh process. The cluster (`ray.cluster_utils.Cluster`,
all on 127.0.0.1) has a head without CPUs, so the embedding runs on the worker nodes, which share this machine's
cores: one node with all of them, or two with half each. The indexes are kept (--keep) for the agreement check,
and bench/quality.py or bench/query_latency.py can serve them. Keeps each result in
bench/results/ray_indexing.jsonl and rewrites the table in docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from report import ROOT, load, save, update_table
from wenda.index import agreement
from wenda.index.builder import build_index
from wenda.index.cluster import RayEmbedding, RayOptions, import_ray
from wenda.index.config import Settings
from wenda.index.embeddings import create_embedder
from wenda.index.passages import passage_files
from wenda.index.runtime import cpu_budget

PASSAGES = ROOT.parent / "shared" / "data" / "xwlb.corpus.jsonl.gz"
RUNS = ("local", "ray1", "ray2")
COLUMNS = [
    ("input", lambda r: r["input"]),
    ("build", lambda r: r["run_label"]),
    ("chunks", lambda r: f"{r['chunks']:,}"),
    ("time", lambda r: f"{r['seconds']:,.1f} s"),
    ("chunks/s", lambda r: f"{r['chunks_per_second']}"),
    ("vs local", lambda r: r.get("overhead", "")),
    ("first vectors after", lambda r: f"{r['first_vectors_s']:.1f} s" if r.get("first_vectors_s") else ""),
    ("cosine to local (min / mean)", lambda r: r.get("agreement", "")),
    ("driver peak RSS", lambda r: f"{r['peak_rss_mb']:,.0f} MB"),
    ("command", lambda r: f"`{r['command']}`"),
]
LABELS = {
    "local": "local (one process)",
    "ray1": "Ray, 1 worker node × {cpus} CPU",
    "ray2": "Ray, 2 worker nodes × {half} CPU",
}


class Timed(RayEmbedding):
    """RayEmbedding that notes when the first vectors came back (start-up of the cluster's actors)."""

    first: float | None = None

    def _vectors(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        for batch in super()._vectors(*args, **kwargs):
            self.first = self.first or time.perf_counter()
            yield batch


def build(run: str, limit: int, index_dir: Path, address: str | None) -> dict:
    """One build in this process (the child); the row for the table."""
    settings = Settings(index_dir=index_dir)
    embedder = create_embedder("builtin")
    embedder.use_threads(cpu_budget())
    files = passage_files(PASSAGES, limit)
    remote = Timed(settings, RayOptions(address=address)) if address else None
    started = time.perf_counter()
    report = build_index(settings, embedder, rebuild=True, progress=True, files=files, remote=remote)
    seconds = time.perf_counter() - started
    return {
        "run": run,
        "chunks": report.total_chunks,
        "embedded": report.embedded_chunks,
        "seconds": round(seconds, 1),
        "chunks_per_second": round(report.embedded_chunks / seconds, 1),
        "first_vectors_s": round(remote.first - started, 1) if remote and remote.first else None,
        "embedded_on": report.embedded_on,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def cluster(nodes: int):  # noqa: ANN201 - a ray.cluster_utils.Cluster
    """A head without CPUs and `nodes` worker nodes sharing this machine's CPUs, on loopback."""
    import_ray("127.0.0.1:0")  # keeps Ray on loopback (see index/cluster.py)
    from ray.cluster_utils import Cluster

    loopback = {"node_ip_address": "127.0.0.1", "include_dashboard": False}
    ray_cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **loopback})
    for _ in range(nodes):
        ray_cluster.add_node(num_cpus=cpu_budget() // nodes, **loopback)
    ray_cluster.wait_for_nodes()
    return ray_cluster


def child(run: str, limit: int, index_dir: Path, address: str | None) -> dict:
    command = [sys.executable, __file__, "--child", run, "--limit", str(limit), "--keep", str(index_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([*command, *(["--address", address] if address else [])], env=env, stdout=subprocess.PIPE)
    if result.returncode:
        raise SystemExit(f"the {run} build failed")
    return json.loads(result.stdout.decode().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=20_000, help="first N xwlb paragraphs")
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--keep", type=Path, default=ROOT.parent / "bench-ray", help="folder for the indexes")
    parser.add_argument("--child", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(build(args.child, args.limit, args.keep, args.address)), flush=True)
        return
    rows = []
    for run in args.runs:
        index_dir = args.keep / f"{run}-{args.limit}"
        if run == "local":
            row = child(run, args.limit, index_dir, None)
        else:
            ray_cluster = cluster(int(run[-1]))
            try:
                row = child(run, args.limit, index_dir, ray_cluster.address)
            finally:
                ray_cluster.shutdown()
        cpus = cpu_budget()
        row["run_label"] = LABELS[run].format(cpus=cpus, half=cpus // 2)
        row["input"] = f"{PASSAGES.name} (first {args.limit:,})"
        rows.append(row)
        print(json.dumps(row), flush=True)
    for row in rows:
        save("ray_indexing", row, key=("input", "run"))
    kept = load("ray_indexing")
    local = next((r for r in kept if r["run"] == "local" and r["input"] == rows[0]["input"]), None)
    for row in rows:
        if row["run"] != "local" and local is not None:
            row["overhead"] = f"{(row['seconds'] / local['seconds'] - 1) * 100:+.1f} %"
            result = agreement.between(args.keep / f"{row['run']}-{args.limit}", args.keep / f"local-{args.limit}")
            row["agreement"] = f"{result.min:.6f} / {result.mean:.6f}"
            kept = save("ray_indexing", row, key=("input", "run"))
    kept.sort(key=lambda r: (r["chunks"], r["run"]))
    update_table("ray_indexing", COLUMNS, kept, ROOT / "docs" / "scale-out.md")


if __name__ == "__main__":
    main()
