"""The `wenda` command: `index` builds the index, `ask` answers once or in batch, `chat` talks."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from index import agreement, runtime
from index.builder import BATCH_SIZE, build_index
from index.config import DEFAULT_TOP_K, EVAL_CACHE, PRIORITIES, Settings
from index.embeddings import embedder_for
from index.errors import IndexMissingError, WendaError
from index.passages import passage_files, read_jsonl
from index.store import live_generation, live_manifest
from retrieval.evaluation import evaluate, format_table, summarize
from retrieval.ranker import MODES
from retrieval.results import Response
from retrieval.retriever import Retriever

from .render import render_report, render_response

HISTORY_FILE = Path(os.environ.get("WENDA_HISTORY", "~/.wenda_history")).expanduser()


def settings_from(args: argparse.Namespace) -> Settings:
    """Flags override WENDA_* environment variables, which override the defaults."""
    return Settings.from_env(
        corpus=args.corpus,
        index_dir=args.index_dir,
        embedding_model=args.model,
        index_priority=getattr(args, "priority", None),
        index_threads=getattr(args, "threads", None),
    )


def command_index(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    # before the model starts its threads: they inherit the priority of the thread that starts them
    how = runtime.lower_priority() if settings.index_priority == "low" else "normal priority"
    embedder = embedder_for(settings)
    threads = settings.index_threads or runtime.free_cpus()
    runtime.size_native_pools(threads)
    embedder.use_threads(threads)
    report = build_index(settings, embedder, rebuild=args.rebuild, progress=not args.quiet, batch_size=args.batch_size)
    if report.embedded_chunks and not args.quiet:
        print(f"embedded on {threads} thread{'s' if threads > 1 else ''}, {how}", file=sys.stderr)
    print(render_report(report))
    return 0


def command_agree(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    embedder = embedder_for(settings)
    built = live_manifest(settings.index_dir).get("model")
    if built is None:
        raise IndexMissingError(f"no readable index in {settings.index_dir}; run `wenda index` to build one")
    if built == embedder.identity():
        print(f"the index was built with the configured model ({built['name']}): nothing to check")
        return 0
    result = agreement.measure(settings.index_dir, embedder, args.sample)
    print(
        f"index model {built['name']} vs configured {embedder.name}: cosine over {result.chunks} chunks "
        f"mean {result.mean:.4f}, 5th percentile {result.p5:.4f}, min {result.min:.4f}"
    )
    if not result.agrees:
        print(
            f"the vectors do not agree (5th percentile below {agreement.MIN_P5_COSINE}): serving this index with "
            "the configured model stays refused; rebuild it with the configured model instead",
            file=sys.stderr,
        )
        return 1
    agreement.record(settings.index_dir, embedder, result)
    print("they agree: recorded in the index manifest; the configured model may now serve this index")
    return 0


def command_export_model(args: argparse.Namespace) -> int:
    from index.export import export_builtin

    try:
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise WendaError("export-model needs `pip install 'wenda[st]'` (after torch==2.13.0)") from exc
    folder = export_builtin(args.folder)
    print(f"wrote the built-in model as a sentence-transformers folder: {folder}")
    print(f"embed with it anywhere: WENDA_EMBEDDING_MODEL={folder} wenda index …; then `wenda agree` where you serve")
    return 0


def open_retriever(args: argparse.Namespace) -> Retriever:
    """The retriever for the configured index, building the index first when there is none."""
    settings = settings_from(args)
    embedder = embedder_for(settings)
    if live_generation(settings.index_dir) is None:
        print(f"no index in {settings.index_dir} yet: building it now (same as `wenda index`)", file=sys.stderr)
        print(render_report(build_index(settings, embedder)), file=sys.stderr)
    return Retriever(settings, embedder)


def answer_line(retriever: Retriever, raw: bytes, k: int) -> Response:
    """Answer one line of batch input; a line that is not UTF-8 gets an error, not an exception."""
    try:
        line = raw.rstrip(b"\r\n").decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return Response(query=raw.decode("utf-8", "replace").strip(), error="input line is not UTF-8 text")
    return retriever.ask(line, k)


def emit(response: Response, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(response.to_dict(), ensure_ascii=False), flush=True)
    else:
        print(render_response(response), end="\n\n", flush=True)


def command_ask(args: argparse.Namespace) -> int:
    retriever = open_retriever(args)
    if args.question is not None:
        emit(retriever.ask(" ".join(args.question), args.k), args)
        return 0
    # Batch mode: one question per input line, one answer per line, model and index loaded once.
    for raw in sys.stdin.buffer:
        emit(answer_line(retriever, raw, args.k), args)
    return 0


def command_chat(args: argparse.Namespace) -> int:
    import readline  # noqa: F401 - gives input() line editing and history

    retriever = open_retriever(args)
    threading.Thread(target=retriever.warm_up, daemon=True).start()  # while the user types
    try:
        readline.read_history_file(HISTORY_FILE)
    except OSError:
        pass
    print(f"Wenda chat over {retriever.settings.corpus} ({len(retriever.snapshot)} passages). Ctrl-D to leave.")
    try:
        while True:
            try:
                question = input("问> ")
            except KeyboardInterrupt:
                print()
                continue
            if question.strip():
                emit(retriever.ask(question, args.k), args)
    except EOFError:
        print()
    finally:
        try:
            readline.write_history_file(HISTORY_FILE)
        except OSError:
            pass
    return 0


def command_eval(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    questions = list(read_jsonl(args.file))[: args.limit]
    if args.passages is None:
        retriever = open_retriever(args)
    else:
        files = passage_files(args.passages)
        if args.distractors is not None:
            files.update(passage_files(args.distractors, limit=args.n_distractors))
        index_dir = args.index_dir or Path(tempfile.mkdtemp(prefix="wenda-eval-"))
        settings = replace(settings, index_dir=index_dir, cache_path=args.cache)
        embedder = embedder_for(settings)
        print(render_report(build_index(settings, embedder, progress=not args.quiet, files=files)), file=sys.stderr)
        retriever = Retriever(settings, embedder)
    modes = MODES if args.mode == "all" else (args.mode,)
    summaries = {}
    for mode in modes:
        retriever.mode = mode
        summaries[mode] = summarize(evaluate(retriever, questions), abstention=mode == "hybrid")
    print(json.dumps(summaries, ensure_ascii=False, indent=1) if args.json else format_table(summaries))
    return 0


def command_telegram(args: argparse.Namespace) -> int:
    from .telegram_run import run_telegram

    return run_telegram(args, open_retriever(args))


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", type=Path, help="corpus folder (env WENDA_CORPUS, default ./corpus)")
    common.add_argument("--index-dir", type=Path, help="index folder (env WENDA_INDEX_DIR, default ./.wenda-index)")
    common.add_argument("--model", help="'builtin' or a sentence-transformers folder/name (env WENDA_EMBEDDING_MODEL)")
    main = argparse.ArgumentParser(prog="wenda", description="Answer questions from a corpus of Chinese documents.")
    commands = main.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", parents=[common], help="build or update the index")
    index.add_argument("--rebuild", action="store_true", help="discard the index and embed everything again")
    index.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    index.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help=f"chunks embedded (and checkpointed) at a time (default {BATCH_SIZE}; larger on a GPU)",
    )
    index.add_argument(
        "--priority",
        choices=PRIORITIES,
        help="low (default, env WENDA_INDEX_PRIORITY): a background job that yields the CPU and disk to the bot; "
        "normal: a dedicated build machine",
    )
    index.add_argument(
        "--threads", type=int, help="threads for embedding (env WENDA_INDEX_THREADS; default: the CPUs free now)"
    )
    index.set_defaults(run=command_index)

    agree = commands.add_parser(
        "agree", parents=[common], help="check that the configured model may serve an index built by another"
    )
    agree.add_argument("--sample", type=int, default=agreement.SAMPLE, help="chunks to compare")
    agree.set_defaults(run=command_agree)

    export = commands.add_parser(
        "export-model", help="write the built-in model as a sentence-transformers folder (for bulk builds on a GPU)"
    )
    export.add_argument("folder", type=Path, help="where to write it (about 500 MB)")
    export.set_defaults(run=command_export_model)

    ask = commands.add_parser("ask", parents=[common], help="answer a question (or one per stdin line)")
    ask.add_argument("question", nargs="*", help="the question; none: read one per line from stdin")
    ask.add_argument("-k", type=int, default=DEFAULT_TOP_K, help=f"number of passages (default {DEFAULT_TOP_K})")
    ask.add_argument("--json", action="store_true", help="print JSON (JSON Lines in batch mode)")
    ask.set_defaults(run=command_ask)

    chat = commands.add_parser("chat", parents=[common], help="interactive chat in the terminal")
    chat.add_argument("-k", type=int, default=3, help="number of passages per answer (default 3)")
    chat.add_argument("--json", action="store_true", help="print JSON instead of text")
    chat.set_defaults(run=command_chat)

    evaluation = commands.add_parser("eval", parents=[common], help="measure retrieval quality on a question file")
    evaluation.add_argument("file", type=Path, help='questions: dev.jsonl format, or {"qid","question","gold_pids"}')
    evaluation.add_argument(
        "--passages", type=Path, help='passages {"pid","title","text"} to index instead of the corpus'
    )
    evaluation.add_argument("--distractors", type=Path, help="more passages, in the same format, added as distractors")
    evaluation.add_argument("--n-distractors", type=int, help="use only the first N distractors")
    evaluation.add_argument("--mode", choices=(*MODES, "all"), default="hybrid", help="retrieval mode(s) to measure")
    evaluation.add_argument("--limit", type=int, help="only the first N questions")
    evaluation.add_argument(
        "--cache", type=Path, default=EVAL_CACHE, help=f"embedding cache for --passages (default {EVAL_CACHE})"
    )
    evaluation.add_argument("--json", action="store_true", help="print JSON")
    evaluation.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    evaluation.set_defaults(run=command_eval)

    telegram = commands.add_parser("telegram", parents=[common], help="run the Telegram bot (TELEGRAM_BOT_TOKEN)")
    telegram.add_argument("--webhook-url", help="public HTTPS URL Telegram posts updates to (default: long polling)")
    telegram.add_argument("--listen", default="127.0.0.1", help="webhook listen address (default 127.0.0.1)")
    telegram.add_argument("--port", type=int, default=8443, help="webhook listen port (default 8443)")
    telegram.add_argument("--url-path", default="telegram", help="webhook path on this server (default telegram)")
    telegram.set_defaults(run=command_telegram)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "question", None) == []:
        args.question = None
        if sys.stdin.isatty():
            parser().error("give a question, or pipe questions one per line into `wenda ask`")
    if getattr(args, "k", 1) < 1:
        parser().error("-k must be at least 1")
    if getattr(args, "batch_size", 1) < 1:
        parser().error("--batch-size must be at least 1")
    if (getattr(args, "threads", None) or 1) < 1:
        parser().error("--threads must be at least 1")
    try:
        return args.run(args)
    except WendaError as exc:
        print(f"wenda: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback on request
        if os.environ.get("WENDA_DEBUG"):
            raise
        print(
            f"wenda: internal error: {type(exc).__name__}: {exc} (rerun with WENDA_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
