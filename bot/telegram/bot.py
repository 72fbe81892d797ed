"""The Telegram front end: handlers, registered in one place by `build_application`.

Retrieval runs in a worker thread so the event loop keeps serving other users; the model and index
are loaded once, and the retriever switches to a new index generation by itself.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import escape

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest
from wenda.index.errors import WendaError
from wenda.index.knowledge import KnowledgeBase
from wenda.index.store import Snapshot
from wenda.retrieval.results import Response
from wenda.retrieval.retriever import Retriever
from wenda.retrieval.retrievers import Retrievers

from ..activity import ActivityLog
from ..feedback import FeedbackStore
from ..privacy import UserHasher
from ..ratelimit import RateLimiter
from .conversations import ConversationStore
from .documents import ADMIN_HELP, Library, on_docs, on_document, on_photo, on_remove, on_sources
from .format import answer_html, paragraph_html, trim
from .knowledge import KnowledgeBindings
from .send import retrying
from .settings import CONVERSATIONS_KEPT, MAX_QUESTION_CHARS, MAX_RESULTS, PAGE_SIZE, TelegramSettings
from .update_journal import JournaledApplication, JournalingBot, UpdateJournal

log = logging.getLogger("wenda.telegram")

SESSIONS_KEPT = 2000  # answers whose buttons still work; older presses get a polite "expired"
COMMANDS = [
    ("start", "Wenda 能回答什么"),
    ("help", "使用说明"),
    ("docs", "语料中的文档"),
    ("sources", "每个语料文件的索引情况（已索引、跳过及原因）"),
    ("ask", "提问（群组中使用）：/ask 问题"),
    ("new", "开始新的对话（不再联系上文）"),
    ("kb", "查看知识库；管理员：/kb 名称 切换本聊天的知识库"),
]
EXAMPLES = [
    "安阳市区营运出租车中有多少台纯电动车？",
    "运城建成了多少个嵌入式养老机构？",
    "How many taxis in Anyang are electric?",
]
REFUSAL = "抱歉，这个机器人只对受邀用户开放。"
EXPIRED = "这条回答已过期，请重新提问。"
RATE_LIMITED = "提问太快了，请稍等一分钟再问。"
NOT_TEXT = "请用文字提问，例如：" + EXAMPLES[0]
TOO_LONG = f"问题太长了（超过 {MAX_QUESTION_CHARS} 字），请精简后再问。"
EMPTY = "请在命令后写上问题，例如：/ask " + EXAMPLES[0]
THANKS = "谢谢反馈！"
NEW_CONVERSATION = "好的，开始新的对话：下一个问题不再联系上文。"
INDEX_UNAVAILABLE = (
    "索引暂时不可用，已通知管理员修复（运行 <code>wenda index</code>），请稍后再试。\n"
    "The index is unavailable right now; the owner has been told to repair it (<code>wenda index</code>). "
    "Please try again later."
)
COMMAND_LIST = "<b>命令</b>\n" + "\n".join(f"/{name} — {escape(text)}" for name, text in COMMANDS)
HELP = (
    "<b>使用说明</b>\n"
    "• 私聊：直接发送问题（中文、繁体或英文），图片或文件的说明文字也会当作问题。\n"
    "• 群组：@我 或回复我的消息，或用 /ask 问题。\n"
    "• 行内：在任意聊天输入 @我的用户名 加问题。\n"
    "回答下方：📄 查看整段原文，更多结果 翻页，👍/👎 反馈。\n"
    "追问（如「那襄阳呢？」「它投资多少？」）会联系上一个问题，回答开头写明我的理解；/new 重新开始。\n"
    "语料中没有答案时我会直说，并列出最接近的段落。\n\n" + COMMAND_LIST
)


@dataclass
class Session:
    """What the buttons under one answer need."""

    question: str
    response: Response

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.response.results) // PAGE_SIZE))

    def page(self, number: int) -> list:
        return self.response.results[number * PAGE_SIZE : (number + 1) * PAGE_SIZE]


class WendaBot:
    """State shared by the handlers."""

    def __init__(
        self,
        retriever: Retriever,
        settings: TelegramSettings,
        examples: list[str] | None = None,
        bases: dict[str, KnowledgeBase] | None = None,
        chats: dict[int, str] | None = None,
    ) -> None:
        self.retriever = retriever  # the first knowledge base's (or the only corpus's)
        self.settings = settings
        self.bases = dict(bases or {})
        self.first = next(iter(self.bases), None)
        self.bindings = KnowledgeBindings(settings.data_dir / "telegram-kbs.json", chats or {}, set(self.bases))
        self.retrievers = Retrievers(retriever, self.bases)  # a chat's Library keeps its retriever: no limit
        self._libraries: dict[str | None, Library] = {}
        self.examples = examples or EXAMPLES
        self.limiter = RateLimiter(settings.rate_limit)
        self.users = UserHasher(settings.data_dir)  # one salt for feedback, activity and conversation keys
        self.feedback = FeedbackStore(settings.data_dir, self.users, settings.log_questions)
        self.activity = ActivityLog(settings.data_dir, self.users, settings.log_questions)
        self.memory = ConversationStore(
            settings.data_dir / "conversations.sqlite",
            idle_seconds=settings.memory_minutes * 60,
            conversations=CONVERSATIONS_KEPT,
            answers=SESSIONS_KEPT,
        )
        # One worker: the C embedding engine already uses every core for one query.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wenda-retrieval")
        self.library = self.library_for(None)  # documents sent by admins, /remove, /docs

    def kb_of(self, chat_id: int | None) -> str | None:
        """The knowledge base a chat answers from: its binding (config or /kb), None for the first."""
        name = self.bindings.get(chat_id)
        return None if name is None or name == self.first else name

    def library_for(self, kb: str | None) -> Library:
        """A knowledge base's documents (uploads, /remove, /docs, /sources)."""
        if kb not in self._libraries:
            self._libraries[kb] = Library(self.retrievers.get(kb), self.settings.admins)
        return self._libraries[kb]

    async def ask(self, question: str, k: int, previous: str | None = None, kb: str | None = None) -> Response | None:
        """The answer from knowledge base `kb` (a follow-up of `previous` when given), from the worker thread;
        None when the index is unusable now (logged as one line, no question)."""

        def answer() -> tuple[Response, Retriever]:
            retriever = self.retrievers.get(kb)
            return retriever.ask(question, k, previous), retriever

        try:
            response, retriever = await asyncio.get_running_loop().run_in_executor(self.executor, answer)
        except WendaError as exc:
            log.error("index unavailable, users are told to try later: %s", exc)
            return None
        if problem := retriever.unreported_problem():
            log.warning("%s", problem)
        return response

    @property
    def remembers(self) -> bool:
        """False when WENDA_TELEGRAM_MEMORY_MINUTES=0: every question is answered on its own."""
        return self.settings.memory_minutes > 0

    def conversation(self, chat_id: int, user_id: int) -> str:
        """The key of one user's conversation in one chat (groups: one per user), hashed like feedback."""
        return self.users.user_hash(f"{chat_id}:{user_id}")

    def chat_key(self, chat_id: int) -> str:
        """A chat's key in the answer store: a private chat's id is its user's id, so it is hashed too."""
        return self.users.user_hash(f"chat:{chat_id}")

    def previous(self, message: Message, user_id: int, me: int) -> str | None:
        """What a question follows up: the answer it replies to, else the user's conversation in this chat."""
        if not self.remembers:
            return None
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == me:
            understood = self.memory.understood_at(self.chat_key(message.chat.id), replied.message_id)
            if understood is not None:
                return understood
        return self.memory.previous(self.conversation(message.chat.id, user_id))


def wenda(context: ContextTypes.DEFAULT_TYPE) -> WendaBot:
    return context.application.bot_data["wenda"]


def corpus_size(snapshot: Snapshot) -> tuple[int, int]:
    """(documents, paragraphs) in the index, for /start: `len(snapshot)` counts chunks, not paragraphs."""
    return snapshot.db.execute("SELECT (SELECT COUNT(*) FROM files), (SELECT COUNT(*) FROM paragraphs)").fetchone()


def keyboard(key: str, session: Session, page: int) -> InlineKeyboardMarkup:
    first = page * PAGE_SIZE + 1
    sources = [
        InlineKeyboardButton(f"📄 [{first + i}] 原文", callback_data=f"f|{key}|{page * PAGE_SIZE + i}")
        for i in range(len(session.page(page)))
    ]
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton("◀ 上一页", callback_data=f"m|{key}|{page - 1}"))
    if page + 1 < session.pages:
        nav.append(InlineKeyboardButton("更多结果 ▶", callback_data=f"m|{key}|{page + 1}"))
    votes = [
        InlineKeyboardButton("👍", callback_data=f"v|{key}|up"),
        InlineKeyboardButton("👎", callback_data=f"v|{key}|down"),
    ]
    return InlineKeyboardMarkup([row for row in (sources, nav + votes) if row])


def page_html(session: Session, page: int) -> str:
    footer = f"第 {page + 1}/{session.pages} 页" if session.pages > 1 else ""
    return answer_html(session.response, session.page(page), page * PAGE_SIZE + 1, footer)


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """First handler for every update: strangers get a polite refusal and nothing from the corpus."""
    user = update.effective_user
    chat = update.effective_chat
    if wenda(context).settings.allows(user.id if user else None, chat.id if chat else None):
        return
    log.info("refused update from a user or chat outside the allowlists")
    if update.callback_query:
        await retrying(lambda: update.callback_query.answer(REFUSAL, show_alert=True))
    elif update.inline_query:
        await retrying(lambda: update.inline_query.answer([], cache_time=0, is_personal=True))
    elif update.effective_message and chat and chat.type == ChatType.PRIVATE:
        await retrying(lambda: update.effective_message.reply_text(REFUSAL))
    raise ApplicationHandlerStop


async def respond(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str) -> None:
    """Answer a question with the first page of cited passages and the buttons."""
    bot = wenda(context)
    message = update.effective_message
    question = question.strip()
    if not question:
        await retrying(lambda: message.reply_text(EMPTY))
        return
    if len(question) > MAX_QUESTION_CHARS:
        await retrying(lambda: message.reply_text(TOO_LONG))
        return
    if not bot.limiter.allow(update.effective_user.id):
        await retrying(lambda: message.reply_text(RATE_LIMITED))
        return
    user = update.effective_user.id
    kb = bot.kb_of(message.chat.id)
    response = await bot.ask(question, MAX_RESULTS, bot.previous(message, user, context.bot.id), kb)
    if response is None:
        await retrying(lambda: message.reply_html(INDEX_UNAVAILABLE))
        return
    bot.activity.record(user, response)
    if response.error or not response.results:
        await retrying(lambda: message.reply_text(response.error or "索引是空的：请先运行 wenda index。"))
        return
    if bot.remembers:
        bot.memory.remember(bot.conversation(message.chat.id, user), response.understood)
    session = Session(question, response)
    key = bot.memory.save_answer(question, response)
    sent = await retrying(lambda: message.reply_html(page_html(session, 0), reply_markup=keyboard(key, session, 0)))
    bot.memory.shown(key, bot.chat_key(message.chat.id), sent.message_id)


async def on_private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text, or the caption of a photo or file (the media itself is not read), is the question."""
    message = update.effective_message
    await respond(update, context, message.text if message.text is not None else message.caption)


async def on_group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In groups, answer only when mentioned or replied to; a caption counts as text."""
    message = update.effective_message
    kinds = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    if message.text is not None:
        question, entities = message.text, message.parse_entities(kinds)
    else:
        question, entities = message.caption, message.parse_caption_entities(kinds)
    me = context.bot
    replied = (
        message.reply_to_message is not None
        and message.reply_to_message.from_user is not None
        and (message.reply_to_message.from_user.id == me.id)
    )
    mention = f"@{me.username}".lower()
    mentions = [
        text
        for entity, text in entities.items()
        if text.lower() == mention or (entity.user is not None and entity.user.id == me.id)
    ]
    if not (replied or mentions):
        return
    for text in mentions:
        question = question.replace(text, " ")
    await respond(update, context, question)


async def on_ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await respond(update, context, " ".join(context.args or []))


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await retrying(lambda: update.effective_message.reply_text(NOT_TEXT))


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List the commands for an unknown one meant for this bot: a bare `/foo` in a group may be another bot's."""
    message = update.effective_message
    command, _, target = message.text.split()[0].partition("@")
    addressed = target.lower() == context.bot.username.lower() if target else message.chat.type == ChatType.PRIVATE
    if not addressed:
        return
    text = f"没有 {escape(command[:64])} 这个命令。\n\n{COMMAND_LIST}"
    await retrying(lambda: message.reply_html(text))


async def on_new(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Forget this user's conversation in this chat: the next question stands on its own."""
    bot = wenda(context)
    bot.memory.forget(bot.conversation(update.effective_chat.id, update.effective_user.id))
    await retrying(lambda: update.effective_message.reply_text(NEW_CONVERSATION))


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    bot = wenda(context)
    documents, paragraphs = corpus_size(bot.library_for(bot.kb_of(update.effective_chat.id)).retriever.snapshot)
    examples = "\n".join(f"• {escape(q)}" for q in bot.examples)
    text = (
        f"你好！我是 <b>Wenda 问答</b>。我只根据语料库中的 {documents} 篇文档"
        f"（{paragraphs} 个段落）回答问题，每个回答都注明出处（文件:行）。\n\n"
        f"直接发给我一个问题，例如：\n{examples}\n\n/docs 查看文档列表，/help 查看说明。"
    )
    await retrying(lambda: update.effective_message.reply_html(text))


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The instructions; an admin also reads how to add and remove documents."""
    user = update.effective_user
    admin = wenda(context).library.is_admin(user.id if user else None)
    await retrying(lambda: update.effective_message.reply_html(HELP + (ADMIN_HELP if admin else "")))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Paging, full paragraph and feedback buttons; a stale button gets a polite answer."""
    query = update.callback_query
    bot = wenda(context)
    kind, key, value = ((query.data or "").split("|") + ["", "", ""])[:3]
    kept = bot.memory.answer(key) if kind and kind in "mfv" else None
    session = Session(*kept) if kept else None
    if session is None:
        await retrying(lambda: query.answer(EXPIRED, show_alert=True))
        return
    if kind == "m" and value.isdigit() and int(value) < session.pages:
        page = int(value)
        try:
            await retrying(
                lambda: query.edit_message_text(
                    page_html(session, page), parse_mode=ParseMode.HTML, reply_markup=keyboard(key, session, page)
                )
            )
        except BadRequest as exc:  # pressing the same page twice: "message is not modified"
            if "not modified" not in str(exc).lower():
                raise
        await retrying(lambda: query.answer())
    elif kind == "f" and value.isdigit() and int(value) < len(session.response.results):
        result = session.response.results[int(value)]
        await retrying(lambda: query.answer())
        await retrying(lambda: query.message.reply_html(paragraph_html(result)))
    elif kind == "v" and value in ("up", "down"):
        sources = [f"{r.record.source}:{r.record.line}" for r in session.response.results[:PAGE_SIZE]]
        bot.feedback.record(update.effective_user.id, session.question, sources, value)
        await retrying(lambda: query.answer(THANKS))
    else:
        await retrying(lambda: query.answer(EXPIRED, show_alert=True))


async def on_inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`@bot question` in any chat: the top passages as articles to send."""
    query = update.inline_query
    question = query.query.strip()
    bot = wenda(context)
    if not question or len(question) > MAX_QUESTION_CHARS or not bot.limiter.allow(update.effective_user.id):
        await retrying(lambda: query.answer([], cache_time=0, is_personal=True))
        return
    response = await bot.ask(question, 5)
    if response is None:
        await retrying(lambda: query.answer([], cache_time=0, is_personal=True))
        return
    articles = [
        InlineQueryResultArticle(
            id=str(result.rank),
            title=("" if response.answerable else "（语料中无确切答案）")
            + f"[{result.rank}] 《{result.record.title}》",
            description=trim(result.record.text, 90),
            input_message_content=InputTextMessageContent(
                answer_html(response, [result], result.rank), parse_mode=ParseMode.HTML
            ),
        )
        for result in response.results
    ]
    await retrying(lambda: query.answer(articles, cache_time=0, is_personal=True))


async def on_kb(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/kb`: the knowledge bases, this chat's marked; `/kb NAME` (admins): answer from NAME in this chat."""
    bot = wenda(context)
    message, chat = update.effective_message, update.effective_chat.id
    if not bot.bases:
        await retrying(lambda: message.reply_text("只有一个知识库（default）。在 wenda.toml 中可以配置多个。"))
        return
    wanted = " ".join(context.args or []).strip()
    if wanted:
        user = update.effective_user
        if not bot.library.is_admin(user.id if user else None):
            await retrying(lambda: message.reply_text("只有管理员可以切换知识库。"))
            return
        if wanted not in bot.bases:
            known = "、".join(bot.bases)
            await retrying(
                lambda: message.reply_html(f"没有知识库 <code>{escape(wanted[:64])}</code>。可用：{escape(known)}")
            )
            return
        bot.bindings.set(chat, wanted)
        await retrying(lambda: message.reply_html(f"本聊天此后从知识库 <b>{escape(wanted)}</b> 回答。"))
        return
    current = bot.kb_of(chat) or bot.first
    lines = [
        f"{'▶' if name == current else '•'} <b>{escape(name)}</b>" + (f" — {escape(base.title)}" if base.title else "")
        for name, base in bot.bases.items()
    ]
    await retrying(lambda: message.reply_html("<b>知识库</b>（▶ 本聊天使用）\n" + "\n".join(lines)))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log and keep running; the user gets a short apology when there is someone to tell."""
    log.error("error while handling an update: %s", context.error, exc_info=context.error)
    if isinstance(update, Update) and update.effective_message and not update.inline_query:
        try:
            await update.effective_message.reply_text("抱歉，处理这条消息时出错了，请稍后再试。")
        except Exception:  # noqa: BLE001 - the API itself may be what failed
            log.warning("could not tell the user about the error")


async def start_up(application: Application) -> None:
    """Before the first update: finish what a previous run left undone, and register the commands."""
    await application.replay_journal()
    await retrying(lambda: application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS]))


def build_application(bot: WendaBot) -> Application:
    """The PTB application with every handler registered (in this one place)."""
    api = {}
    if bot.settings.base_url:  # files come from beside the methods: …/bot<token>/getFile, …/file/bot<token>/path
        folder, _, prefix = bot.settings.base_url.rstrip("/").rpartition("/")
        api = {"base_url": bot.settings.base_url, "base_file_url": f"{folder}/file/{prefix}"}
    telegram_bot = JournalingBot(
        bot.settings.token,
        request=HTTPXRequest(connection_pool_size=256),  # what ApplicationBuilder would give its own bot
        get_updates_request=HTTPXRequest(),
        rate_limiter=AIORateLimiter(max_retries=3),
        journal=UpdateJournal(bot.settings.data_dir / "updates"),
        **api,
    )
    application = (
        ApplicationBuilder()
        .bot(telegram_bot)
        .application_class(JournaledApplication)
        .concurrent_updates(True)
        .post_init(start_up)
        .build()
    )
    application.bot_data["wenda"] = bot
    application.add_handler(TypeHandler(Update, gate), group=-1)
    application.add_handler(CommandHandler("start", on_start))
    application.add_handler(CommandHandler("help", on_help))
    application.add_handler(CommandHandler("docs", on_docs))
    application.add_handler(CommandHandler("sources", on_sources))
    application.add_handler(CommandHandler("remove", on_remove))
    application.add_handler(CommandHandler("ask", on_ask))
    application.add_handler(CommandHandler("new", on_new))
    application.add_handler(CommandHandler("kb", on_kb))
    if bot.settings.admins:  # uploads on: a file in a private chat is a document to add, not a question
        application.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.Document.ALL, on_document))
        admins = filters.User(user_id=bot.settings.admins)
        application.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.PHOTO & admins, on_photo))
    application.add_handler(MessageHandler(filters.COMMAND, on_unknown_command))
    text = (filters.TEXT | filters.CAPTION) & ~filters.COMMAND
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE & text, on_private_text))
    application.add_handler(MessageHandler(filters.ChatType.GROUPS & text, on_group_text))
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & ~filters.TEXT & ~filters.COMMAND & ~filters.StatusUpdate.ALL, on_non_text
        )
    )
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(InlineQueryHandler(on_inline))
    application.add_error_handler(on_error)
    return application
