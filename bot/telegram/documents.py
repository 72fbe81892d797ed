"""Documents through the Telegram bot: admins send files (or photos, read by OCR) to add them to the corpus and
`/remove` them; anyone allowed to use the bot lists them with `/docs`, and every corpus file with what became
of it with `/sources`.

Who: the users in WENDA_TELEGRAM_ADMINS, in a private chat with the bot. Anyone else's file is refused politely
before anything is fetched: no getFile call, so nothing they send is downloaded or stored. Files sent in groups
are ignored (the handler is registered for private chats only): a file shared in a group is meant for its
members, and with privacy mode on the bot does not even see it. An admin's file is a document to add; its
caption is not read as a question. Without admins the bot treats files as before (their caption is the question).

How an upload goes, edited into one status message (received → reading → indexing → done, or exactly why not):
the declared size is checked first (a bot may download at most 20 MB), then the bytes are downloaded and
`index.intake.admit` checks and saves them in a worker thread (format by content, size, decompression bombs,
scans and pictures with no legible text, encrypted or damaged PDFs, duplicates). Indexing runs in a background
task: one build at a time, waiting a while when a `wenda index` process holds the index; when the new
generation is committed the retriever switches to it before "done" is said, so the next question is answered
from it, without a restart. A build that fails undoes the change (the saved file is removed, a removed one is
put back), so the corpus and the index agree. Every name and title shown is escaped: they come from the sender.

Builds run on a thread of their own, at low priority (WENDA_INDEX_PRIORITY; Linux keeps it per thread, so
questions keep their speed), with an embedder of their own, loaded on the first build: the Embedder interface
promises nothing about two threads at once (the built-in engine keeps its thread count per thread,
sentence-transformers' torch per process), and the built-in model is memory-mapped, so a second copy costs
little memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from html import escape
from pathlib import Path

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes
from wenda.index import runtime
from wenda.index.account import corpus_account
from wenda.index.builder import BuildReport, build_index
from wenda.index.embeddings import Embedder, embedder_for
from wenda.index.errors import IndexLockedError, WendaError
from wenda.index.intake import Admitted, admit, digests, remove, safe_name, write_new
from wenda.index.loader import MAX_FILE_BYTES
from wenda.index.store import live_manifest
from wenda.retrieval.retriever import Retriever

from ..render import terminal_safe
from .format import TELEGRAM_LIMIT, telegram_length, trim
from .send import retrying

log = logging.getLogger("wenda.telegram")

BOT_DOWNLOAD_LIMIT = 20 * 2**20  # the Bot API gives bots files up to 20 MB
LOCK_WAITS = (2, 4, 8, 15, 30)  # seconds between tries while another process holds the index: about a minute
NAME_CHARS = 80  # of a file name in a message
TITLE_CHARS = 60

NOT_ADMIN = "抱歉，只有管理员可以向语料库添加文档；这个文件没有被下载或保存。如需提问，请直接发送文字。"
RECEIVED = "📥 已收到 {name}，正在下载…"
READING = "📖 正在读取 {name}…"
INDEXING = "⏳ 已保存为 <code>{source}</code>（《{title}》），正在建立索引…"
WAITING = "⏳ 另一个 <code>wenda index</code> 正在更新索引，{seconds} 秒后重试（第 {attempt}/{attempts} 次）…"
ADDED = "✅ 已加入语料：《{title}》\n文件 <code>{source}</code>，已索引 {passages} 个片段。现在可以提问了。"
REFUSED = "❌ 未添加 {name}：{reason}"
UNDONE = "❌ 未添加 {name}：建立索引失败，{reason}；文件已从语料中移除。"
TOO_BIG_FOR_BOTS = "文件有 {size:.1f} MB，超过 Telegram 允许机器人下载的 20 MB 上限，没有下载"
TOO_BIG_FOR_CORPUS = "文件有 {size:.1f} MB，超过语料单个文件 {limit} MB 的上限（WENDA_MAX_FILE_MB），没有下载"
DOWNLOAD_FAILED = "下载失败，请稍后重新发送"
REMOVE_USAGE = "用法：/remove 文件名（文件名见 /docs）"
REMOVE_NOT_ADMIN = "抱歉，只有管理员可以从语料库删除文档。"
REMOVING = "🗑 正在删除 <code>{source}</code> 并更新索引…"
REMOVED = "✅ 已删除《{title}》（<code>{source}</code>），索引已更新。"
NOT_REMOVED = "❌ 没有删除 <code>{source}</code>：{reason}"
RESTORED = "❌ 没有删除 <code>{source}</code>：更新索引失败，{reason}；文件已放回语料。"
LOCKED = "另一个索引进程（<code>wenda index</code>）一直在更新索引，请稍后再试"
UNEXPECTED = "出现意外错误（详情见日志），请稍后再试"
ADMIN_HELP = (
    "\n\n<b>管理员</b>\n"
    "• 私聊发给我一个文件（PDF、Word .docx、EPUB、HTML、Markdown、纯文本，20 MB 以内）即加入语料。\n"
    "• 发给我一张照片或图片（通知、扫描页），文字经 OCR 识别后加入语料。\n"
    "• /remove 文件名 — 从语料删除（文件名见 /docs）。"
)

# What the index floor's (English) reasons mean, for the admin; the exact reason follows in italics.
REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"decompression bomb|unpacks to more than", "疑似压缩炸弹（解压后远大于文件本身），已拒绝"),
        (r"no text layer|no Unicode mapping|only in images", "没有可用的文字层（扫描件或图片），且无法做 OCR 文字识别"),
        (r"need OCR, over the limit", "需要 OCR 的页数超过上限"),
        (r"no legible text", "图片中没有可识别的文字"),
        (r"encrypted", "PDF 有密码保护，请另存一份不加密的副本"),
        (r"already in the corpus as", "与语料中已有的文件重复"),
        (r"too large", "文件太大"),
        (r"pages, over the limit", "页数超过上限"),
        (r"truncated|damaged|not a valid|not a readable", "文件已损坏，或不是它声称的格式"),
        (r"binary file|^not .* text$", "不是支持的文档格式（PDF、Word .docx、EPUB、HTML、Markdown、纯文本）"),
        (r"empty|no text|no article text", "文件里没有可索引的文字"),
        (r"no readable documents", "语料中将没有可读的文档"),
        (r"no such document|not a document of the corpus", "语料中没有这个文档，请用 /docs 查看文件名"),
        (r"cannot (save|delete) it", "无法写入语料目录（权限或磁盘空间）"),
        (r"no space left", "服务器磁盘空间不足"),
        (r"cannot write the index folder", "索引目录不可写"),
    )
)


def reason_html(exc: Exception) -> str:
    """Why, in Chinese, then in italics the exact reason the index floor gave (it names the file); escaped."""
    if isinstance(exc, IndexLockedError):
        return LOCKED
    if not isinstance(exc, WendaError):
        return UNEXPECTED
    detail = str(exc)
    reason = detail.split(": ", 1)[-1]
    summary = escape(next((text for pattern, text in REASONS if pattern.search(reason)), "无法加入语料"))
    if duplicate := re.search(r" already in the corpus as (.+)$", detail):
        summary += f" <code>{escape(duplicate[1])}</code>"
    return f"{summary}\n<i>{escape(trim(detail, 300))}</i>"


def name_html(name: str) -> str:
    """A sender's file name as shown: made safe like the corpus would name it (no folders, control or bidi
    characters), shortened, escaped."""
    shown = safe_name(name or "document")
    if len(shown) > NAME_CHARS:
        shown = shown[: NAME_CHARS - 1] + "…"
    return f"<code>{escape(shown)}</code>"


def title_html(title: str) -> str:
    return escape(trim(" ".join(title.split()), TITLE_CHARS))


def index_thread(priority: str) -> None:
    """Start of the build thread: the lowest CPU priority for it alone (and the engine threads it starts)."""
    if priority == "low" and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            log.info("could not lower the priority of the index thread")


class Library:
    """The corpus as admins change it through the bot: checks and saves uploads, removes documents, and keeps the
    index and the retriever in step, one build at a time."""

    def __init__(self, retriever: Retriever, admins: frozenset[int]) -> None:
        self.retriever = retriever
        self.settings = retriever.settings
        self.admins = admins
        self.changing = asyncio.Lock()  # saving and removing one at a time: two copies of a file cannot both get in
        self.building = asyncio.Lock()  # one build at a time
        self.executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="wenda-index",
            initializer=index_thread,
            initargs=(self.settings.index_priority,),
        )
        self._embedder: Embedder | None = None  # the build's own, loaded by the first build

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admins

    # --- blocking work, in worker threads ---------------------------------------------------------------
    def _admit(self, data: bytes, name: str) -> Admitted:
        corpus = self.settings.corpus
        indexed = live_manifest(self.settings.index_dir).get("files", {})
        try:
            return admit(corpus, data, name, digests(corpus, indexed), ocr_cache=self.settings.ocr_cache)
        except OSError as exc:  # the folder is read-only, the disk full, …
            raise WendaError(
                f"{safe_name(name)}: cannot save it into the corpus folder ({exc.strerror or exc})"
            ) from exc

    def _remove(self, source: str) -> tuple[Path, bytes]:
        """Delete a corpus document; its place and bytes, to put it back if the index cannot follow."""
        path = self.settings.corpus / source
        try:
            data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            return remove(self.settings.corpus, source), data
        except OSError as exc:
            raise WendaError(f"{source}: cannot delete it from the corpus folder ({exc.strerror or exc})") from exc

    def _build(self) -> BuildReport:
        if self._embedder is None:
            self._embedder = embedder_for(self.settings)
            self._embedder.use_threads(self.settings.index_threads or runtime.cpu_budget())
        warnings: list[str] = []
        report = build_index(self.settings, self._embedder, progress=False, warn=warnings.append)
        for line in warnings:
            log.warning("index: %s", terminal_safe(line))
        log.info(
            "index updated: %d added, %d changed, %d removed, %d passages embedded",
            len(report.added),
            len(report.changed),
            len(report.removed),
            report.embedded_chunks,
        )
        if report.total_chunks:
            self.refresh()  # measures the new generation's calibration now, not at the next question
            log.info("%s", self.retriever.calibration.describe())
        return report

    def refresh(self) -> None:
        """Switch the retriever to the newest generation now (questions would on their own, but /docs and the
        'done' message read it directly)."""
        try:
            self.retriever.refresh()
        except WendaError as exc:  # the retriever keeps the generation it has; questions report the problem
            log.error("could not open the new index generation: %s", exc)

    def catalogue(self) -> list[tuple[str, str, int]]:
        self.refresh()
        return [(d["source"], d["title"], d["passages"]) for d in self.retriever.snapshot.catalogue()]

    def account(self) -> list[dict]:
        self.refresh()
        return corpus_account(self.retriever.snapshot, self.settings.corpus)

    # --- on the event loop ----------------------------------------------------------------------------
    async def save(self, data: bytes, name: str) -> Admitted:
        async with self.changing:
            return await asyncio.to_thread(self._admit, data, name)

    async def delete(self, source: str) -> tuple[Path, bytes]:
        async with self.changing:
            return await asyncio.to_thread(self._remove, source)

    async def reindex(self, tell: Callable[[str], Awaitable[None]]) -> BuildReport:
        """Update the index and switch the retriever to it; while another process holds the index, wait and try
        again (telling the user with `tell`), then give up with IndexLockedError."""
        async with self.building:
            loop = asyncio.get_running_loop()
            for attempt, wait in enumerate((*LOCK_WAITS, None), 1):
                try:
                    report = await loop.run_in_executor(self.executor, self._build)
                    break
                except IndexLockedError:
                    if wait is None:
                        raise
                    log.info("the index is locked by another process; trying again in %d s", wait)
                    await tell(WAITING.format(seconds=wait, attempt=attempt, attempts=len(LOCK_WAITS)))
                    await asyncio.sleep(wait)
            await asyncio.to_thread(self.refresh)
            return report


def library_of(context: ContextTypes.DEFAULT_TYPE, update: Update) -> Library:
    """The documents of the knowledge base the update's chat answers from."""
    bot = context.application.bot_data["wenda"]
    chat = update.effective_chat
    return bot.library_for(bot.kb_of(chat.id if chat else None))


async def show(status: Message, text: str) -> None:
    """Edit the status message; a failed edit is logged, never fatal: the work goes on."""
    try:
        await retrying(lambda: status.edit_text(text, parse_mode=ParseMode.HTML))
    except TelegramError as exc:
        log.warning("could not update a status message: %s", exc)


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file in a private chat: an admin's is downloaded, checked, saved and indexed; anyone else's is refused
    unread."""
    library = library_of(context, update)
    message = update.effective_message
    document = message.document
    user = update.effective_user
    if not library.is_admin(user.id if user else None):
        log.info("refused a document from a user who is not an admin (not downloaded)")
        await retrying(lambda: message.reply_text(NOT_ADMIN))
        return
    await receive(update, context, document.file_id, document.file_name or "document", document.file_size)


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo an admin sends (Telegram compresses it to a JPEG): its largest size is added like a file and read
    by OCR; the handler is registered for admins only, so anyone else's photo caption stays a question."""
    message = update.effective_message
    photo = message.photo[-1]  # Telegram lists the sizes smallest first
    name = f"photo-{message.date:%Y%m%d-%H%M%S}-{photo.file_unique_id}.jpg"
    await receive(update, context, photo.file_id, name, photo.file_size)


async def receive(
    update: Update, context: ContextTypes.DEFAULT_TYPE, file_id: str, name: str, size: int | None
) -> None:
    """An admin's upload: downloaded, checked, saved, then indexed in the background with the status shown."""
    library = library_of(context, update)
    message = update.effective_message
    shown = name_html(name)
    if size is not None and size > min(BOT_DOWNLOAD_LIMIT, MAX_FILE_BYTES):
        why = (
            TOO_BIG_FOR_BOTS.format(size=size / 2**20)
            if size > BOT_DOWNLOAD_LIMIT
            else TOO_BIG_FOR_CORPUS.format(size=size / 2**20, limit=MAX_FILE_BYTES // 2**20)
        )
        await retrying(lambda: message.reply_html(REFUSED.format(name=shown, reason=escape(why))))
        return
    status = await retrying(lambda: message.reply_html(RECEIVED.format(name=shown)))
    try:
        telegram_file = await retrying(lambda: context.bot.get_file(file_id))
        data = bytes(await retrying(lambda: telegram_file.download_as_bytearray()))
    except TelegramError as exc:
        log.warning("could not download a document: %s", exc)
        await show(status, REFUSED.format(name=shown, reason=DOWNLOAD_FAILED))
        return
    await show(status, READING.format(name=shown))
    try:
        admitted = await library.save(data, name)
    except Exception as exc:  # noqa: BLE001 - a hostile file may break a reader in ways nobody foresaw
        if isinstance(exc, WendaError):
            log.info("refused a document: %s", terminal_safe(str(exc)))
        else:
            log.error("reading a document failed", exc_info=exc)
        await show(status, REFUSED.format(name=shown, reason=reason_html(exc)))
        return
    log.info("saved %s into the corpus; indexing it", terminal_safe(admitted.source))
    source = escape(admitted.source)
    await show(status, INDEXING.format(source=source, title=title_html(admitted.title)))
    context.application.create_task(index_upload(library, status, admitted, shown), update=update)


async def index_upload(library: Library, status: Message, admitted: Admitted, shown: str) -> None:
    """The background half of an upload: index it, then say what was added, or remove it again and say why."""
    try:
        report = await library.reindex(lambda text: show(status, text))
        skipped = dict(report.skipped).get(admitted.source)
        if skipped:
            raise WendaError(f"{admitted.source}: {skipped}")
        passages, title = await asyncio.to_thread(indexed, library, admitted.source)
        if not passages:
            raise WendaError(f"{admitted.source}: not in the new index generation")
    except Exception as exc:  # noqa: BLE001 - whatever failed, the corpus must go back to what the index holds
        log.error(
            "indexing %s failed: %s", terminal_safe(admitted.source), exc, exc_info=not isinstance(exc, WendaError)
        )
        try:
            await asyncio.to_thread(remove, library.settings.corpus, admitted.source)
        except (WendaError, OSError) as undo:
            log.error("could not remove %s again: %s", terminal_safe(admitted.source), undo)
        await show(status, UNDONE.format(name=shown, reason=reason_html(exc)))
        return
    await show(status, ADDED.format(title=title_html(title), source=escape(admitted.source), passages=passages))


def indexed(library: Library, source: str) -> tuple[int, str]:
    """(passages, title) of `source` in the generation the retriever answers from; (0, "") when absent."""
    for document in library.retriever.snapshot.catalogue():
        if document["source"] == source:
            return document["passages"], document["title"]
    return 0, ""


async def on_remove(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/remove NAME` (admins): delete a corpus document and re-index in the background."""
    library = library_of(context, update)
    message = update.effective_message
    user = update.effective_user
    if not library.is_admin(user.id if user else None):
        await retrying(lambda: message.reply_text(REMOVE_NOT_ADMIN))
        return
    parts = (message.text or "").split(maxsplit=1)
    source = parts[1].strip() if len(parts) > 1 else ""
    if not source:
        await retrying(lambda: message.reply_text(REMOVE_USAGE))
        return
    shown = escape(source[:200])
    status = await retrying(lambda: message.reply_html(REMOVING.format(source=shown)))
    titles = {name: title for name, title, _ in await asyncio.to_thread(library.catalogue)}
    try:
        path, data = await library.delete(source)
    except WendaError as exc:
        await show(status, NOT_REMOVED.format(source=shown, reason=reason_html(exc)))
        return
    log.info("removed %s from the corpus; indexing", terminal_safe(source))
    title = titles.get(source, source)
    context.application.create_task(index_removal(library, status, source, title, path, data), update=update)


async def index_removal(library: Library, status: Message, source: str, title: str, path: Path, data: bytes) -> None:
    """The background half of a removal: index without it, or put it back and say why."""
    shown = escape(source[:200])
    try:
        await library.reindex(lambda text: show(status, text))
    except Exception as exc:  # noqa: BLE001 - whatever failed, the corpus must go back to what the index holds
        log.error(
            "indexing without %s failed: %s", terminal_safe(source), exc, exc_info=not isinstance(exc, WendaError)
        )
        if data:
            try:
                await asyncio.to_thread(write_new, path.parent, path.name, data)
            except (WendaError, OSError) as undo:
                log.error("could not put %s back: %s", terminal_safe(source), undo)
        await show(status, RESTORED.format(source=shown, reason=reason_html(exc)))
        return
    await show(status, REMOVED.format(title=title_html(title), source=shown))


async def on_docs(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/docs`: the indexed documents with their titles and passages."""
    rows = await asyncio.to_thread(library_of(context, update).catalogue)
    await retrying(lambda: update.effective_message.reply_html(docs_html(rows)))


def docs_html(rows: list[tuple[str, str, int]]) -> str:
    """The document list as one message: as many whole lines as fit, then how many were left out."""
    text = f"<b>语料中的文档</b>（共 {len(rows)} 篇）"
    for number, (source, title, passages) in enumerate(rows, 1):
        line = f"\n{number}. 《{title_html(title)}》 <code>{escape(source)}</code> · {passages} 个片段"
        if telegram_length(text + line) > TELEGRAM_LIMIT - 40:  # whole lines only: never cut inside a tag
            return text + f"\n…（另有 {len(rows) - number + 1} 篇未列出）"
        text += line
    return text


async def on_sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/sources`: the build account, as `wenda sources` gives it: every corpus file, indexed (passages, OCR) or
    skipped with the reason, or added after the last build."""
    entries = await asyncio.to_thread(library_of(context, update).account)
    await retrying(lambda: update.effective_message.reply_html(sources_html(entries)))


SOURCE_STATUS = {"indexed": "✓", "skipped": "✗", "pending": "…"}


def sources_html(entries: list[dict]) -> str:
    """The account as one message: the counts, then the files that need a hand (skipped, pending) before the
    indexed ones, as many whole lines as fit."""
    counts = {status: sum(e["status"] == status for e in entries) for status in SOURCE_STATUS}
    text = f"<b>语料文件</b>：已索引 {counts['indexed']}，跳过 {counts['skipped']}"
    text += f"，待索引 {counts['pending']}" if counts["pending"] else ""
    ordered = sorted(entries, key=lambda e: (e["status"] == "indexed", e["source"]))
    for number, entry in enumerate(ordered, 1):
        line = f"\n{SOURCE_STATUS.get(entry['status'], '?')} <code>{escape(trim(entry['source'], NAME_CHARS))}</code>"
        if entry["status"] == "indexed":
            line += f" · {entry['passages']} 个片段" + ("（OCR 识别）" if entry["ocr"] else "")
        else:
            line += f"：<i>{escape(trim(entry['reason'] or '', 200))}</i>"
        if telegram_length(text + line) > TELEGRAM_LIMIT - 40:  # whole lines only: never cut inside a tag
            return text + f"\n…（另有 {len(ordered) - number + 1} 个文件未列出，完整列表见 wenda sources）"
        text += line
    return text
