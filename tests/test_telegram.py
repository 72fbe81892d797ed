"""End to end: the real `wenda telegram` process against a fake Bot API server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder
from wenda.index.store import CURRENT, open_snapshot

from tests.conftest import ROOT, build, copy_of
from tests.fake_telegram import BOT_USER, FakeTelegram

TOKEN = "123456:TEST-token-that-must-never-be-logged"
STRANGER = 666
RATE_LIMIT = 5
QUESTION = "安阳市区营运出租车中有多少台纯电动车？"
COMMAND_NAMES = ["start", "help", "docs", "sources", "ask", "new", "kb"]
PHOTO = [{"file_id": "p", "file_unique_id": "pu", "width": 90, "height": 90}]
DOCUMENT = {"file_id": "d", "file_unique_id": "du", "file_name": "问题.pdf"}


def bot_env(settings: Settings, data_dir: Path, **extra: str) -> dict:
    """Where a bot process finds its corpus, index and data folder."""
    return {
        "WENDA_CORPUS": str(settings.corpus),
        "WENDA_INDEX_DIR": str(settings.index_dir),
        "WENDA_DATA_DIR": str(data_dir),
        **extra,
    }


@pytest.fixture(scope="module")
def telegram(seed_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeTelegram]:
    data_dir = tmp_path_factory.mktemp("telegram-data")
    log_path = data_dir / "bot.log"
    with FakeTelegram(TOKEN) as fake, log_path.open("wb") as log:
        env = bot_env(
            seed_settings,
            data_dir,
            WENDA_TELEGRAM_ALLOWED_USERS=",".join(str(i) for i in range(1, 60)),
            WENDA_TELEGRAM_RATE_LIMIT=str(RATE_LIMIT),
        )
        with fake.running_bot(env=env, log=log) as process:
            fake.data_dir = data_dir  # type: ignore[attr-defined]
            fake.log_path = log_path  # type: ignore[attr-defined]
            fake.process = process  # type: ignore[attr-defined]
            yield fake


def replies(fake: FakeTelegram, chat: int, count: int = 1, timeout: float = 60) -> list[dict]:
    """Successful sendMessage calls to `chat`."""
    return fake.wait_for("sendMessage", lambda p: p.get("chat_id") == chat and "_failed" not in p, count, timeout)


def visible(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_commands_are_registered(telegram: FakeTelegram) -> None:
    commands = telegram.calls("setMyCommands")[0]["commands"]
    assert [c["command"] for c in commands] == COMMAND_NAMES


def command(text: str) -> list[dict]:
    """The bot_command entity Telegram sets on a message starting with `text`'s first word."""
    return [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]


def test_unknown_command_gets_the_list_of_commands(telegram: FakeTelegram) -> None:
    telegram.message(user=15, text="/foo", entities=command("/foo"))
    reply = replies(telegram, 15)[0]
    assert reply["parse_mode"] == "HTML" and "/foo" in reply["text"] and "命令" in reply["text"]
    assert all(f"/{name}" in reply["text"] for name in COMMAND_NAMES)
    telegram.message(user=15, text="/help", entities=command("/help"))
    assert all(f"/{name}" in replies(telegram, 15, count=2)[1]["text"] for name in COMMAND_NAMES)
    group = -1003
    telegram.message(user=15, chat=group, chat_type="supergroup", text="/foo", entities=command("/foo"))
    addressed = f"/foo@{BOT_USER['username']} 1"
    telegram.message(user=15, chat=group, chat_type="supergroup", text=addressed, entities=command(addressed))
    assert "/foo" in replies(telegram, group)[0]["text"]
    time.sleep(1)
    assert len(telegram.calls("sendMessage", lambda p: p.get("chat_id") == group)) == 1  # bare /foo: another bot's


def test_caption_of_a_photo_or_file_is_the_question(telegram: FakeTelegram) -> None:
    telegram.message(user=16, text=None, photo=PHOTO, caption=QUESTION)
    telegram.message(user=16, text=None, document=DOCUMENT, caption="运城建成了多少个嵌入式养老机构？")
    telegram.message(user=16, text=None, photo=PHOTO)
    texts = [visible(s["text"]) for s in replies(telegram, 16, count=3)]
    assert any("856" in t.split("\n")[0] for t in texts)
    assert any("52个" in t.split("\n")[0] for t in texts)
    assert any(t.startswith("请用文字提问") for t in texts)
    group = -1004
    mention = "@" + BOT_USER["username"]
    caption = f"{mention} {QUESTION}"
    entities = [{"type": "mention", "offset": 0, "length": len(mention)}]
    telegram.message(user=16, chat=group, chat_type="supergroup", text=None, photo=PHOTO, caption=QUESTION)
    telegram.message(
        user=16, chat=group, chat_type="supergroup", text=None, photo=PHOTO, caption=caption, caption_entities=entities
    )
    assert "856" in replies(telegram, group)[0]["text"]
    time.sleep(1)
    assert len(telegram.calls("sendMessage", lambda p: p.get("chat_id") == group)) == 1  # not mentioned: silent


def test_start_counts_paragraphs_and_documents_not_chunks(telegram: FakeTelegram, seed_settings: Settings) -> None:
    snapshot = open_snapshot(seed_settings.index_dir)
    try:
        documents, paragraphs = (
            snapshot.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("files", "paragraphs")
        )
        assert paragraphs != len(snapshot)  # chunks: the number /start used to give
    finally:
        snapshot.close()
    telegram.message(user=17, text="/start", entities=command("/start"))
    text = replies(telegram, 17)[0]["text"]
    assert f"{documents} 篇文档（{paragraphs} 个段落）" in text


def test_private_question_gets_cited_html_answer_with_buttons(telegram: FakeTelegram) -> None:
    telegram.message(user=1, text=QUESTION)
    reply = replies(telegram, 1)[0]
    assert reply["parse_mode"] == "HTML"
    html = reply["text"]
    assert html.startswith("<b>") and "856" in html.split("\n")[0]
    assert "[1] 《6.以人为核心的新型城镇化战略》 · 绿色交通改变生活 · 000_e771e9061456cf36.txt:55" in html
    assert "<blockquote expandable>" in html and "<u><b>" in html
    assert len(html) <= 4096
    buttons = [b["callback_data"] for row in reply["reply_markup"]["inline_keyboard"] for b in row]
    assert all(len(data.encode()) <= 64 for data in buttons)
    assert any(d.startswith("m|") for d in buttons) and any(d.endswith("|up") for d in buttons)


def test_buttons_page_show_paragraph_and_store_feedback(telegram: FakeTelegram) -> None:
    telegram.message(user=2, text="清丰县机关负责人出庭率是多少？")
    sent = replies(telegram, 2)[0]
    message = sent["_result"]
    buttons = {b["text"]: b["callback_data"] for row in sent["reply_markup"]["inline_keyboard"] for b in row}

    telegram.press(2, message, buttons["更多结果 ▶"])
    edit = telegram.wait_for("editMessageText", lambda p: p.get("chat_id") == 2)[0]
    assert "[4] " in edit["text"] and "[1] " not in edit["text"] and "第 2/" in edit["text"]

    telegram.press(2, message, buttons["📄 [1] 原文"])
    full = replies(telegram, 2, count=2)[1]
    assert full["text"].startswith("《003_71e5a5211310dfa3》")  # the raw article opens with body text: its name

    telegram.press(2, message, buttons["👍"])
    telegram.wait_for("answerCallbackQuery", lambda p: p.get("text") == "谢谢反馈！")
    feedback = (telegram.data_dir / "feedback.jsonl").read_text(encoding="utf-8")
    assert '"vote": "up"' in feedback and '"user": "' in feedback
    assert '"question": null' in feedback and "出庭率" not in feedback  # question text is opt-in (WENDA_LOG_QUESTIONS)
    assert '"2"' not in feedback and ": 2," not in feedback  # no raw user id

    telegram.press(2, message, "m|no-such-session|1")
    telegram.wait_for("answerCallbackQuery", lambda p: p.get("text") == "这条回答已过期，请重新提问。")


def test_unanswerable_question_says_so_and_lists_nearest(telegram: FakeTelegram) -> None:
    telegram.message(user=3, text="2024年巴黎奥运会中国队获得了多少枚金牌？")
    html = replies(telegram, 3)[0]["text"]
    assert html.startswith("语料中没有找到这个问题的答案") and "[1] " in html


def test_inline_query_returns_articles(telegram: FakeTelegram) -> None:
    telegram.inline(user=4, query=QUESTION)
    answer = telegram.wait_for("answerInlineQuery", lambda p: p.get("results"))[0]
    first = answer["results"][0]
    assert first["type"] == "article" and "856" in first["input_message_content"]["message_text"]


def test_group_answers_only_when_mentioned_or_asked(telegram: FakeTelegram) -> None:
    group = -1001
    telegram.message(user=5, chat=group, chat_type="supergroup", text="大家好，" + QUESTION)
    mention = "@" + BOT_USER["username"]
    text = f"{mention} 运城建成了多少个嵌入式养老机构？"
    telegram.message(
        user=5,
        chat=group,
        chat_type="supergroup",
        text=text,
        entities=[{"type": "mention", "offset": 0, "length": len(mention)}],
    )
    first = replies(telegram, group)[0]
    assert "52个" in visible(first["text"])
    telegram.message(
        user=6,
        chat=group,
        chat_type="supergroup",
        text="/ask " + QUESTION,
        entities=[{"type": "bot_command", "offset": 0, "length": 4}],
    )
    both = replies(telegram, group, count=2)
    assert "856" in visible(both[1]["text"])
    time.sleep(1)
    assert len(telegram.calls("sendMessage", lambda p: p.get("chat_id") == group)) == 2  # no reply to small talk


def test_strangers_are_refused_everywhere(telegram: FakeTelegram) -> None:
    telegram.message(user=STRANGER, text=QUESTION)
    assert replies(telegram, STRANGER)[0]["text"].startswith("抱歉，这个机器人只对受邀用户开放")
    telegram.inline(user=STRANGER, query=QUESTION)
    telegram.wait_for("answerInlineQuery", lambda p: p.get("results") == [])
    telegram.press(STRANGER, {"message_id": 1, "date": 0, "chat": {"id": STRANGER, "type": "private"}}, "v|x|up")
    telegram.wait_for("answerCallbackQuery", lambda p: "受邀" in str(p.get("text")))
    time.sleep(1)
    sent = telegram.calls("sendMessage", lambda p: p.get("chat_id") == STRANGER)
    assert len(sent) == 1 and "856" not in sent[0]["text"]


def test_burst_over_rate_limit_gets_friendly_message(telegram: FakeTelegram) -> None:
    for _ in range(RATE_LIMIT + 2):
        telegram.message(user=7, text=QUESTION)
    sent = replies(telegram, 7, count=RATE_LIMIT + 2)
    limited = [s for s in sent if s["text"].startswith("提问太快了")]
    assert len(limited) == 2


def test_non_text_and_overlong_messages_get_short_replies(telegram: FakeTelegram) -> None:
    telegram.message(
        user=8,
        text=None,
        sticker={
            "file_id": "x",
            "file_unique_id": "y",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        },
    )
    telegram.message(user=8, text="问" * 1001)
    texts = sorted(s["text"] for s in replies(telegram, 8, count=2))
    assert texts[0].startswith("请用文字提问") and texts[1].startswith("问题太长了")


def test_survives_429_and_500_from_the_api(telegram: FakeTelegram) -> None:
    telegram.fail("sendMessage", 429, retry_after=1)
    telegram.message(user=9, text=QUESTION)
    assert "856" in replies(telegram, 9)[0]["text"]
    telegram.fail("sendMessage", 500)
    telegram.message(user=10, text=QUESTION)
    assert "856" in replies(telegram, 10)[0]["text"]
    failed = telegram.calls("sendMessage", lambda p: p.get("_failed") in (429, 500))
    assert len(failed) >= 2
    telegram.fail("getUpdates", 500, times=2)
    telegram.message(user=11, text=QUESTION)
    assert "856" in replies(telegram, 11)[0]["text"]
    assert telegram.process.poll() is None


def test_token_never_logged(telegram: FakeTelegram) -> None:
    telegram.message(user=12, text=QUESTION)
    replies(telegram, 12)
    log = telegram.log_path.read_bytes().decode("utf-8", "replace")
    assert "Application started" in log or "wenda" in log.lower()
    assert TOKEN not in log and TOKEN.split(":")[1] not in log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_update(url: str, update: dict, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(url, json.dumps(update).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:
        return 0  # not listening yet


def test_webhook_checks_the_secret_token(seed_settings: Settings, tmp_path: Path) -> None:
    port, secret = free_port(), "s3cret-Token_1"
    with FakeTelegram(TOKEN) as fake:
        env = bot_env(seed_settings, tmp_path, WENDA_TELEGRAM_WEBHOOK_SECRET=secret)
        process = fake.start_bot("--webhook-url", "https://bot.example/telegram", "--port", str(port), env=env)
        try:
            hook = fake.wait_for("setWebhook", timeout=120)[0]
            assert hook["url"] == "https://bot.example/telegram" and hook["secret_token"] == secret
            url = f"http://127.0.0.1:{port}/telegram"
            update = {
                "update_id": 1,
                "message": {
                    "message_id": 5,
                    "date": 0,
                    "chat": {"id": 21, "type": "private"},
                    "from": {"id": 21, "is_bot": False, "first_name": "a"},
                    "text": QUESTION,
                },
            }
            deadline = time.monotonic() + 60
            while (status := post_update(url, update, "wrong")) not in (403, 200) and time.monotonic() < deadline:
                time.sleep(0.5)  # the webhook server is still starting
            assert status == 403
            assert post_update(url, update, None) == 403
            assert fake.calls("sendMessage") == []
            assert post_update(url, update, secret) == 200
            assert "856" in replies(fake, 21)[0]["text"]
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_survives_dropped_connections_garbage_and_slow_answers(telegram: FakeTelegram) -> None:
    telegram.fail("getUpdates", "drop")
    telegram.fail("getUpdates", "garbage")
    first = telegram.message(user=13, text=QUESTION)
    telegram.fail("sendMessage", "drop")
    assert "856" in replies(telegram, 13)[0]["text"]
    telegram.fail("sendMessage", "slow")
    telegram.message(user=14, text=QUESTION)
    assert "856" in replies(telegram, 14)[0]["text"]
    time.sleep(2)
    # each update answered exactly once, and the poller moved past it
    assert len(telegram.calls("sendMessage", lambda p: p.get("chat_id") == 13 and "_failed" not in p)) == 1
    assert len(telegram.calls("sendMessage", lambda p: p.get("chat_id") == 14)) == 1
    assert any(int(p.get("offset") or 0) > first for p in telegram.calls("getUpdates"))
    assert telegram.process.poll() is None


def test_bot_switches_to_an_updated_index_without_restart(seed_settings: Settings, tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(seed_settings.corpus, corpus)
    shutil.copytree(seed_settings.index_dir, index_dir)
    settings = Settings(corpus=corpus, index_dir=index_dir)
    with FakeTelegram(TOKEN) as fake:
        env = bot_env(settings, tmp_path / "data")
        process = fake.start_bot(env=env)
        try:
            fake.wait_for("setMyCommands", timeout=120)
            (corpus / "new.txt").write_text("图书馆\n运城市新建的盐湖图书馆藏书120万册。\n", encoding="utf-8")
            command = ["index", "-q", "--corpus", str(corpus), "--index-dir", str(index_dir)]
            updater = subprocess.Popen(
                [sys.executable, "-m", "wenda.bot.cli", *command], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
            )
            fake.message(user=31, text=QUESTION)  # answered from the old generation while the update runs
            assert "856" in replies(fake, 31)[0]["text"]
            assert updater.wait(timeout=120) == 0
            fake.message(user=32, text="盐湖图书馆藏书多少册？")
            assert "120万册" in replies(fake, 32)[0]["text"]
            assert process.poll() is None
        finally:
            process.terminate()
            process.wait(timeout=30)


def answered(fake: FakeTelegram, chat: int) -> int:
    return len(fake.calls("sendMessage", lambda p: p.get("chat_id") == chat and "_failed" not in p))


def test_no_update_lost_or_answered_twice_when_the_bot_is_killed(seed_settings: Settings, tmp_path: Path) -> None:
    with FakeTelegram(TOKEN) as fake:
        env = bot_env(seed_settings, tmp_path / "data")
        process = fake.start_bot(env=env)
        try:
            fake.wait_for("setMyCommands", timeout=120)
            # 1. answered and marked done, then killed before Telegram was told: never answered again. (Killed
            # between the reply and its done mark, it would be answered twice: the one window left, see
            # bot/update_journal.py.)
            first = fake.message(user=41, text=QUESTION)
            replies(fake, 41)
            done = tmp_path / "data" / "updates" / f"{first}.done"
            deadline = time.monotonic() + 10
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            process.kill()
            process.wait(timeout=30)
            # 2. fetched and confirmed to Telegram, but the reply cannot go out yet; the bot dies meanwhile
            fake.fail("sendMessage", 500, times=1000)
            process = fake.start_bot(env=env)
            lost = fake.message(user=42, text=QUESTION)
            fake.wait_for("sendMessage", lambda p: p.get("chat_id") == 42 and p.get("_failed") == 500)
            fake.wait_for("getUpdates", lambda p: int(p.get("offset") or 0) > lost)  # Telegram forgets it
            process.kill()
            process.wait(timeout=30)
            # 3. the API recovers, the bot restarts: the lost question is answered once; the first is not repeated
            fake.recover("sendMessage")
            process = fake.start_bot(env=env)
            assert "856" in replies(fake, 42)[0]["text"]
            fake.message(user=43, text=QUESTION)
            replies(fake, 43)
            time.sleep(1)
            assert (answered(fake, 41), answered(fake, 42), answered(fake, 43)) == (1, 1, 1)
            assert not list((tmp_path / "data" / "updates").glob("*.json"))  # nothing left to replay
        finally:
            process.kill()
            process.wait(timeout=30)


def test_unavailable_index_gets_a_notice_and_one_log_line_per_question(
    small_corpus: Path, tmp_path: Path, embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, embedder)
    log_path = tmp_path / "bot.log"
    question = "这个问题的文字不应出现在日志里吗？"
    with FakeTelegram(TOKEN) as fake, log_path.open("wb") as log:
        process = fake.start_bot(
            env=bot_env(Settings(corpus=small_corpus, index_dir=index_dir), tmp_path / "data"), log=log
        )
        try:
            fake.wait_for("setMyCommands", timeout=120)
            fake.message(user=51, text=question)
            assert "[1] " in replies(fake, 51)[0]["text"]  # answering from the index
            shutil.rmtree(index_dir / (index_dir / CURRENT).read_text(encoding="utf-8").strip())
            (index_dir / CURRENT).write_text("gen-999999\n", encoding="utf-8")
            fake.message(user=52, text=question)
            reply = replies(fake, 52)[0]
            assert reply["parse_mode"] == "HTML" and "<code>wenda index</code>" in reply["text"]
            assert "索引暂时不可用" in reply["text"] and "The index is unavailable" in reply["text"]
            fake.inline(user=53, query=question)
            fake.wait_for("answerInlineQuery", lambda p: p.get("results") == [])
            assert process.poll() is None
        finally:
            process.terminate()
            process.wait(timeout=30)
    lines = log_path.read_text(encoding="utf-8").splitlines()
    errors = [line for line in lines if " ERROR " in line]
    assert len(errors) == 2 and all("index unavailable" in e and str(index_dir) in e for e in errors)
    assert not any("Traceback" in line for line in lines) and not any(question in line for line in lines)


def test_bot_with_watch_picks_up_a_changed_corpus_by_itself(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    with FakeTelegram(TOKEN) as fake:
        process = fake.start_bot("--watch", env=bot_env(Settings(corpus=corpus, index_dir=index_dir), tmp_path / "d"))
        try:
            fake.wait_for("setMyCommands", timeout=120)
            watchers = psutil.Process(process.pid).children()
            assert any("--watch" in " ".join(child.cmdline()) for child in watchers)
            time.sleep(5)  # the watcher's first update and its observer start
            (corpus / "new.txt").write_text("图书馆\n清丰县新建的启明图书馆藏书十二万册。\n", encoding="utf-8")
            deadline = time.monotonic() + 60
            for user in range(41, 100):  # ask until the new generation is live (no `wenda index` by hand)
                fake.message(user=user, text="启明图书馆藏书多少册？")
                if "十二万册" in replies(fake, user)[0]["text"]:
                    break
                assert time.monotonic() < deadline, "the bot did not pick up the new file within 60 s"
                time.sleep(1)
        finally:
            process.terminate()
            process.wait(timeout=30)
        psutil.wait_procs(watchers, timeout=30)
        assert not any(child.is_running() for child in watchers)  # the watcher stops with the bot
