"""End to end: documents sent to the real `wenda telegram` process (fake Bot API, real model, real index of two
seed files): admins add them and the bot answers from them without a restart; everyone else is refused unread."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from wenda.bot.telegram import documents as telegram_documents
from wenda.bot.telegram.documents import Library, docs_html, index_removal, index_thread, index_upload
from wenda.bot.telegram.format import TELEGRAM_LIMIT, telegram_length
from wenda.bot.telegram.settings import TelegramSettings
from wenda.index.errors import IndexLockedError, WendaError
from wenda.index.intake import Admitted
from wenda.index.store import LOCK

from tests.fake_telegram import FakeTelegram
from tests.test_telegram import TOKEN, command, replies, visible

DOCUMENTS = Path(__file__).resolve().parent / "fixtures" / "documents"
ADMIN = 4242
OTHER = 5151
GROUP = -1009876543
REPORT_QUESTION = "清河市去年建成了多少套保障性租赁住房？"  # report.pdf, page 1: 新建保障性租赁住房12860套
REPORT_TITLE = "清河市二〇二四年政府工作报告"
SEED_QUESTION = "运城建成了多少个嵌入式养老机构？"  # 004_253b461cd30454f2.txt: 52个
ADMITTED = Admitted("new.txt", "新文件", 1)


@pytest.fixture(scope="module")
def telegram(small_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeTelegram]:
    """One bot process over a writable copy of the two-file index, with ADMIN as its only admin."""
    root = tmp_path_factory.mktemp("documents-bot")
    shutil.copytree(small_index, root / "copy")
    corpus, index_dir = root / "copy" / "corpus", root / "copy" / "index"
    env = {
        "WENDA_CORPUS": str(corpus),
        "WENDA_INDEX_DIR": str(index_dir),
        "WENDA_DATA_DIR": str(root / "data"),
        "WENDA_TELEGRAM_ADMINS": str(ADMIN),
    }
    with FakeTelegram(TOKEN) as fake, (root / "bot.log").open("wb") as log:
        with fake.running_bot(env=env, log=log):
            fake.corpus = corpus  # type: ignore[attr-defined]
            fake.index_dir = index_dir  # type: ignore[attr-defined]
            yield fake


def corpus_files(fake: FakeTelegram) -> list[str]:
    return sorted(path.name for path in fake.corpus.iterdir())  # type: ignore[attr-defined]


def next_reply(fake: FakeTelegram, chat: int, send) -> dict:
    """Do `send()` and return the bot's next successful sendMessage to `chat`."""
    before = len(fake.calls("sendMessage", lambda p: p.get("chat_id") == chat and "_failed" not in p))
    send()
    return replies(fake, chat, count=before + 1)[before]


def send_file(fake: FakeTelegram, user: int, file_id: str, fixture: str, **extra: object) -> int:
    """`fixture` (a file of tests/fixtures/documents) sent by `user` as a document."""
    name = extra.pop("name", fixture)
    size = extra.pop("size", None)
    document = fake.document(file_id, (DOCUMENTS / fixture).read_bytes(), name, size)  # type: ignore[arg-type]
    return fake.message(user=user, text=None, document=document, **extra)


def upload(fake: FakeTelegram, user: int, file_id: str, fixture: str, **extra: object) -> dict:
    """Send a document; the status message the bot replied with."""
    return next_reply(fake, user, lambda: send_file(fake, user, file_id, fixture, **extra))


def edits(fake: FakeTelegram, status: dict) -> list[str]:
    message_id = status["_result"]["message_id"]
    return [p["text"] for p in fake.calls("editMessageText", lambda p: p.get("message_id") == message_id)]


def final(fake: FakeTelegram, status: dict, timeout: float = 60) -> str:
    """The status message's last edit: done (✅) or why not (❌)."""
    message_id = status["_result"]["message_id"]
    found = fake.wait_for(
        "editMessageText",
        lambda p: p.get("message_id") == message_id and p.get("text", "").startswith(("✅", "❌")),
        timeout=timeout,
    )
    return found[0]["text"]


def say(fake: FakeTelegram, user: int, text: str) -> int:
    """A private message; a command gets its bot_command entity, as Telegram sets it."""
    return fake.message(user=user, text=text, entities=command(text) if text.startswith("/") else None)


def ask(fake: FakeTelegram, user: int, text: str) -> str:
    return next_reply(fake, user, lambda: say(fake, user, text))["text"]


def test_admin_upload_is_answered_listed_and_removed_without_restart(telegram: FakeTelegram) -> None:
    assert REPORT_TITLE not in ask(telegram, ADMIN, "/docs")
    # another `wenda index` holds the index when the upload arrives: the bot waits for it, then indexes
    with (telegram.index_dir / LOCK).open("a+") as lock:  # type: ignore[attr-defined]
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = upload(telegram, ADMIN, "report-1", "report.pdf")
        assert status["text"].startswith("📥 已收到 <code>report.pdf</code>")
        message_id = status["_result"]["message_id"]
        telegram.wait_for("editMessageText", lambda p: p.get("message_id") == message_id and "wenda index" in p["text"])
        fcntl.flock(lock, fcntl.LOCK_UN)
    done = final(telegram, status)
    assert done.startswith("✅ 已加入语料：《" + REPORT_TITLE + "》") and "<code>report.pdf</code>" in done
    assert int(done.split("已索引 ")[1].split(" 个片段")[0]) > 0
    steps = edits(telegram, status)  # reading → indexing → waiting for the other process → done
    assert steps[0].startswith("📖 正在读取") and steps[1].startswith("⏳ 已保存为 <code>report.pdf</code>")
    assert "wenda index" in steps[2] and steps[3:] == [done]
    assert "report.pdf" in corpus_files(telegram) and telegram.downloaded("report-1") == 1

    answer = visible(ask(telegram, OTHER, REPORT_QUESTION))  # no restart: the next question uses the new index
    head, first = answer.split("\n")[0], answer.split("[1] ")[1].split("\n")[0]
    assert "12860" in head
    assert f"《{REPORT_TITLE}》" in first and "第1页" in first and "report.pdf:p1" in first

    duplicate = final(telegram, upload(telegram, ADMIN, "report-2", "report.pdf", name="copy.pdf"))
    assert duplicate.startswith("❌ 未添加 <code>copy.pdf</code>") and "重复 <code>report.pdf</code>" in duplicate
    assert "copy.pdf" not in corpus_files(telegram)

    listing = ask(telegram, OTHER, "/docs")  # anyone may list
    assert "（共 3 篇）" in listing and f"《{REPORT_TITLE}》 <code>report.pdf</code> · " in listing
    assert "004_253b461cd30454f2.txt" in listing and "个片段" in listing

    refused = ask(telegram, OTHER, "/remove report.pdf")
    assert refused.startswith("抱歉，只有管理员") and "report.pdf" in corpus_files(telegram)

    removing = next_reply(telegram, ADMIN, lambda: say(telegram, ADMIN, "/remove report.pdf"))
    assert removing["text"].startswith("🗑 正在删除 <code>report.pdf</code>")
    assert final(telegram, removing).startswith(f"✅ 已删除《{REPORT_TITLE}》（<code>report.pdf</code>）")
    assert "report.pdf" not in corpus_files(telegram)
    assert "report.pdf" not in ask(telegram, OTHER, "/docs")
    assert "report.pdf" not in visible(ask(telegram, OTHER, REPORT_QUESTION))
    missing = next_reply(telegram, ADMIN, lambda: say(telegram, ADMIN, "/remove report.pdf"))
    assert "语料中没有这个文档" in final(telegram, missing)


def test_a_non_admins_file_is_refused_unread(telegram: FakeTelegram) -> None:
    before = corpus_files(telegram)
    reply = upload(telegram, OTHER, "other-1", "report.pdf", caption=SEED_QUESTION)
    assert reply["text"].startswith("抱歉，只有管理员可以向语料库添加文档")
    assert "没有被下载或保存" in reply["text"]
    time.sleep(0.5)
    assert telegram.calls("getFile", lambda p: p.get("file_id") == "other-1") == []
    assert telegram.downloaded("other-1") == 0 and corpus_files(telegram) == before


def test_bad_files_are_refused_with_the_reason_and_questions_still_answered(telegram: FakeTelegram) -> None:
    before = corpus_files(telegram)
    bomb = final(telegram, upload(telegram, ADMIN, "bomb-1", "bomb.docx"))
    assert bomb.startswith("❌ 未添加 <code>bomb.docx</code>：疑似压缩炸弹") and "decompression bomb" in bomb
    cut = final(telegram, upload(telegram, ADMIN, "cut-1", "truncated.pdf"))
    assert cut.startswith("❌ 未添加 <code>truncated.pdf</code>：文件已损坏")
    locked = final(telegram, upload(telegram, ADMIN, "pw-1", "encrypted.pdf", name="R&D <plan>.pdf"))  # a hostile name
    assert locked.startswith("❌ 未添加 <code>R&amp;D _plan_.pdf</code>：PDF 有密码保护")
    assert corpus_files(telegram) == before
    answer = visible(ask(telegram, ADMIN, SEED_QUESTION))  # the index still serves: the right passage first
    assert "004_253b461cd30454f2.txt" in answer.split("[1] ")[1].split("\n")[0] and "养老机构52个" in answer


def test_a_file_over_20_mb_is_refused_before_downloading(telegram: FakeTelegram) -> None:
    reply = upload(telegram, ADMIN, "big-1", "guide.md", size=21 * 2**20)
    assert reply["text"].startswith("❌ 未添加 <code>guide.md</code>：文件有 21.0 MB")
    assert "Telegram" in reply["text"] and "20 MB" in reply["text"]
    assert telegram.calls("getFile", lambda p: p.get("file_id") == "big-1") == []
    assert telegram.downloaded("big-1") == 0


def test_files_in_groups_are_ignored(telegram: FakeTelegram) -> None:
    send_file(telegram, ADMIN, "group-1", "guide.md", chat=GROUP, chat_type="supergroup")
    final(telegram, upload(telegram, ADMIN, "group-2", "encrypted.pdf"))  # a private one sent after it is handled
    time.sleep(1)
    assert telegram.calls("getFile", lambda p: p.get("file_id") == "group-1") == []
    assert telegram.calls("sendMessage", lambda p: p.get("chat_id") == GROUP) == []


def test_help_tells_admins_how_to_add_and_remove_documents(telegram: FakeTelegram) -> None:
    assert "/remove" in ask(telegram, ADMIN, "/help") and "/remove" not in ask(telegram, OTHER, "/help")
    assert ask(telegram, ADMIN, "/remove").startswith("用法：/remove 文件名")


# --- without the bot process --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["12,abc", "-1001234", "1;2"])
def test_invalid_admins_setting_is_a_clear_startup_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("WENDA_TELEGRAM_ADMINS", value)
    with pytest.raises(WendaError, match="WENDA_TELEGRAM_ADMINS must be comma-separated numeric Telegram"):
        TelegramSettings.from_env()


def test_admins_setting_and_the_allowlists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("WENDA_TELEGRAM_ADMINS", " 7, 8 ")
    monkeypatch.setenv("WENDA_TELEGRAM_ALLOWED_USERS", "1")
    monkeypatch.setenv("WENDA_TELEGRAM_ALLOWED_CHATS", "-100")
    settings = TelegramSettings.from_env()
    assert settings.admins == {7, 8}
    assert settings.allows(7, 7) and settings.allows(7, -100) and not settings.allows(7, -200)
    assert not settings.allows(2, 2) and settings.allows(1, -100)
    monkeypatch.delenv("WENDA_TELEGRAM_ADMINS")
    assert TelegramSettings.from_env().admins == frozenset()


class Status:
    """A status message that records its edits."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def edit_text(self, text: str, parse_mode: str | None = None) -> None:
        self.texts.append(text)


class FailingLibrary(Library):
    """A library whose builds fail the way `failure` says."""

    def __init__(self, corpus: Path, failure: Exception) -> None:  # no retriever, no threads
        self.settings = type("S", (), {"corpus": corpus})()
        self.failure = failure

    async def reindex(self, tell) -> None:
        raise self.failure


def test_a_failed_build_takes_the_upload_out_again_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "new.txt").write_text("新文件\n", encoding="utf-8")
    status = Status()
    failure = WendaError("no space left on the device holding /srv/index: …")
    asyncio.run(
        index_upload(FailingLibrary(tmp_path, failure), status, Admitted("new.txt", "新文件", 1), "<code>n</code>")
    )
    assert not (tmp_path / "new.txt").exists()
    assert (
        status.texts[-1].startswith("❌ 未添加 <code>n</code>：建立索引失败")
        and "文件已从语料中移除" in status.texts[-1]
    )
    assert "no space left" in status.texts[-1]


def test_a_failed_build_puts_a_removed_file_back_without_internals(tmp_path: Path) -> None:
    status = Status()
    failure = RuntimeError("Traceback (most recent call last): internal error in faiss")
    library = FailingLibrary(tmp_path, failure)
    asyncio.run(index_removal(library, status, "old.txt", "旧文件", tmp_path / "old.txt", "旧文件\n".encode()))
    assert (tmp_path / "old.txt").read_text(encoding="utf-8") == "旧文件\n"
    text = status.texts[-1]
    assert text.startswith("❌ 没有删除 <code>old.txt</code>") and "文件已放回语料" in text
    assert "Traceback" not in text and "internal error" not in text and "faiss" not in text


def test_the_document_list_fits_one_message_and_escapes_what_senders_named() -> None:
    rows = [(f"<i>{n:04d}</i>&.txt", f"<b>标题</b> & {'很长' * 50}", n) for n in range(400)]
    html = docs_html(rows)
    assert telegram_length(html) <= TELEGRAM_LIMIT and html.startswith("<b>语料中的文档</b>（共 400 篇）")
    shown = html.count("\n") - 1
    assert html.endswith(f"\n…（另有 {400 - shown} 篇未列出）") and 0 < shown < 400
    assert (
        "<i>" not in html and "&lt;i&gt;0000&lt;/i&gt;&amp;.txt" in html and "《&lt;b&gt;标题&lt;/b&gt; &amp; " in html
    )


def test_a_build_waits_for_another_writer_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram_documents, "LOCK_WAITS", (0, 0))
    retriever = SimpleNamespace(settings=SimpleNamespace(index_priority="normal"), refresh=lambda: None)
    library = Library(retriever, frozenset())  # type: ignore[arg-type]
    tries: list[int] = []

    def locked() -> None:
        tries.append(1)
        raise IndexLockedError("another `wenda index` is writing the index")

    library._build = locked  # type: ignore[method-assign]
    told: list[str] = []

    async def tell(text: str) -> None:
        told.append(text)

    with pytest.raises(IndexLockedError):
        asyncio.run(library.reindex(tell))
    assert len(tries) == 3 and len(told) == 2 and "（第 2/2 次）" in told[1]
    status = Status()
    asyncio.run(index_upload(FailingLibrary(Path("/nonexistent"), IndexLockedError("x")), status, ADMITTED, "n"))
    assert "另一个索引进程" in status.texts[-1]


def test_builds_run_at_the_lowest_priority_on_their_own_thread() -> None:
    priority: list[int] = []
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def probe() -> None:
        index_thread("low")
        priority.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert priority == [19] and os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_an_admins_photo_is_read_by_ocr_and_sources_gives_the_account(telegram: FakeTelegram) -> None:
    """A compressed photo (a real picture from unstructured's test suite) sent by an admin is added through OCR;
    another user's photo with a caption is still a question, never downloaded; /sources lists every file."""
    picture = (
        Path(__file__).resolve().parents[2] / "shared" / "realdocs" / "unstructured-chi_sim_image.jpeg"
    ).read_bytes()
    sizes = [
        {**telegram.document(file_id, picture, None), "width": 449, "height": 110} for file_id in ("thumb", "photo")
    ]
    status = next_reply(telegram, ADMIN, lambda: telegram.message(user=ADMIN, text=None, photo=sizes))
    assert status["text"].startswith("📥 已收到 <code>photo-")
    assert final(telegram, status).startswith("✅ 已加入语料") and telegram.downloaded("photo") == 1
    assert telegram.downloaded("thumb") == 0  # the largest size only
    assert "适合任何肌肤" in visible(ask(telegram, OTHER, "这款护肤产品适合什么人群？"))

    others = [{**telegram.document("other-photo", picture, None), "width": 449, "height": 110}]
    answer = next_reply(
        telegram, OTHER, lambda: telegram.message(user=OTHER, text=None, photo=others, caption=SEED_QUESTION)
    )
    assert "52" in visible(answer["text"]).split("\n")[0] and telegram.downloaded("other-photo") == 0

    (telegram.corpus / "later.txt").write_text("后来放进语料的文件。\n", encoding="utf-8")  # type: ignore[attr-defined]
    account = ask(telegram, OTHER, "/sources")
    (telegram.corpus / "later.txt").unlink()  # type: ignore[attr-defined]
    assert account.startswith("<b>语料文件</b>：已索引 3，跳过 0，待索引 1")
    assert account.index("<code>later.txt</code>") < account.index("<code>004_253b461cd30454f2.txt</code>")
    assert "（OCR 识别）" in account.split("<code>photo-")[1].split("\n")[0]
