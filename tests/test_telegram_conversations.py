"""End to end: follow-up conversations in the real `wenda telegram` process against the fake Bot API server.

One bot process serves the private, group and privacy tests; the restart and memory settings need their own.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wenda.index.config import Settings

from tests.fake_telegram import BOT_USER, FakeTelegram
from tests.test_telegram import TOKEN, bot_env, command, replies, visible

UNDERSTOOD = "按上文理解为："
XUCHANG = "许昌开办企业要多久？"
XIANGYANG = "那襄阳呢？"
XIANGYANG_UNDERSTOOD = UNDERSTOOD + "襄阳 开办企业要多久"
CHENFENG = "晨峰小区是哪年建的？"
RESIDENTS = "这个小区住了多少人？"
NEW_CONVERSATION = "好的，开始新的对话"
EXPIRED = "这条回答已过期，请重新提问。"

# Distinctive ids, so that finding one of them in the raw bytes of conversations.sqlite means it was stored in clear.
PRIVATE_USER = 987654321
USER_A = 876543219
USER_B = 765432198
GROUP = -1004681357913
PRIVACY_USER = 918273645
PRIVACY_GROUP = -1007283619452
RESTART_USER = 951357852
QUIET_USER = 963852741


@pytest.fixture(scope="module")
def telegram(seed_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeTelegram]:
    """One bot process with the default memory (30 minutes), shared by the tests that need no restart."""
    data_dir = tmp_path_factory.mktemp("conversations-data")
    with FakeTelegram(TOKEN) as fake, (data_dir / "bot.log").open("wb") as log:
        with fake.running_bot(env=bot_env(seed_settings, data_dir), log=log) as process:
            fake.data_dir = data_dir  # type: ignore[attr-defined]
            fake.process = process  # type: ignore[attr-defined]
            yield fake


def answer(fake: FakeTelegram, chat: int, send: Callable[[], object]) -> dict:
    """Send one message (`send`) and return the bot's next successful sendMessage to `chat`."""
    before = len(fake.calls("sendMessage", lambda p: p.get("chat_id") == chat and "_failed" not in p))
    send()
    return replies(fake, chat, count=before + 1)[before]


def ask_private(fake: FakeTelegram, user: int, text: str) -> dict:
    return answer(fake, user, lambda: fake.message(user=user, text=text))


def ask_group(fake: FakeTelegram, user: int, group: int, text: str) -> dict:
    """A question in a group, addressed to the bot by @mention."""
    mention = "@" + BOT_USER["username"]
    entities = [{"type": "mention", "offset": 0, "length": len(mention)}]
    return answer(
        fake,
        group,
        lambda: fake.message(
            user=user, chat=group, chat_type="supergroup", text=f"{mention} {text}", entities=entities
        ),
    )


def reply_in_group(fake: FakeTelegram, user: int, group: int, to: dict, text: str) -> dict:
    """A plain reply (no mention) to the bot's message `to` (a recorded sendMessage)."""
    return answer(
        fake,
        group,
        lambda: fake.message(user=user, chat=group, chat_type="supergroup", text=text, reply_to=to["_result"]),
    )


def head(sent: dict) -> str:
    """The first line of a reply as the user sees it."""
    return visible(sent["text"]).split("\n")[0]


def first_passage(sent: dict) -> str:
    """The text of passage [1] of an answer."""
    html = sent["text"]
    assert "[1] " in html and "<blockquote expandable>" in html, html
    return visible(html.split("<blockquote expandable>", 1)[1].split("</blockquote>", 1)[0])


def assert_first_question(sent: dict) -> None:
    assert sent["parse_mode"] == "HTML"
    assert UNDERSTOOD not in visible(sent["text"]), sent["text"]
    assert "[1] " in sent["text"]


def assert_xiangyang_followup(sent: dict) -> None:
    assert sent["text"].startswith("<i>"), sent["text"]  # the italic line comes first
    assert head(sent) == XIANGYANG_UNDERSTOOD
    assert "秒批" in first_passage(sent)  # Xiangyang's passage, not Xuchang's


def buttons(sent: dict) -> dict[str, str]:
    return {b["text"]: b["callback_data"] for row in sent["reply_markup"]["inline_keyboard"] for b in row}


def test_private_followup_and_new(telegram: FakeTelegram) -> None:
    first = ask_private(telegram, PRIVATE_USER, XUCHANG)
    assert_first_question(first)
    assert "许昌" in first_passage(first)

    assert_xiangyang_followup(ask_private(telegram, PRIVATE_USER, XIANGYANG))

    telegram.message(user=PRIVATE_USER, text="/new", entities=command("/new"))
    reset = replies(telegram, PRIVATE_USER, count=3)[2]
    assert reset["text"].startswith(NEW_CONVERSATION)

    again = ask_private(telegram, PRIVATE_USER, XIANGYANG)
    assert UNDERSTOOD not in visible(again["text"])
    assert "[1] " in again["text"] and "秒批" not in first_passage(again)  # on its own: not the business passage


def test_group_conversations_are_per_user_and_replies_continue_the_answer(telegram: FakeTelegram) -> None:
    a_first = ask_group(telegram, USER_A, GROUP, XUCHANG)
    assert_first_question(a_first)
    b_first = ask_group(telegram, USER_B, GROUP, CHENFENG)
    assert_first_question(b_first)
    assert "晨峰" in first_passage(b_first)

    # each user's follow-up is completed from their own question, not from the last one asked in the group
    assert_xiangyang_followup(ask_group(telegram, USER_A, GROUP, XIANGYANG))
    b_followup = ask_group(telegram, USER_B, GROUP, RESIDENTS)
    assert head(b_followup).startswith(UNDERSTOOD + "晨峰"), b_followup["text"]
    assert "5500" in first_passage(b_followup)
    assert "开办企业" not in head(b_followup)

    # B replies to A's first answer: that answer's conversation, although B's own is about the residential area
    replied = reply_in_group(telegram, USER_B, GROUP, a_first, XIANGYANG)
    assert_xiangyang_followup(replied)

    # A replies to B's residential-area answer with a follow-up of it, although A's own is about business
    crossed = reply_in_group(telegram, USER_A, GROUP, b_first, RESIDENTS)
    assert head(crossed).startswith(UNDERSTOOD + "晨峰"), crossed["text"]
    assert "5500" in first_passage(crossed)

    # /new in the group forgets only the user's own conversation
    telegram.message(user=USER_A, chat=GROUP, chat_type="supergroup", text="/new", entities=command("/new"))
    telegram.wait_for(
        "sendMessage", lambda p: p.get("chat_id") == GROUP and str(p.get("text")).startswith(NEW_CONVERSATION)
    )
    alone = ask_group(telegram, USER_A, GROUP, XIANGYANG)
    assert UNDERSTOOD not in visible(alone["text"])
    b_still = ask_group(telegram, USER_B, GROUP, XIANGYANG)  # B's conversation continues (from A's answer, replied to)
    assert_xiangyang_followup(b_still)


def sqlite_bytes(data_dir: Path) -> bytes:
    """The raw bytes of the conversation store: the file and its write-ahead log (where recent rows live)."""
    files = sorted(data_dir.glob("conversations.sqlite*"))
    assert data_dir / "conversations.sqlite" in files
    return b"".join(path.read_bytes() for path in files)


def test_no_user_or_chat_id_in_clear_in_the_conversation_store(telegram: FakeTelegram) -> None:
    ask_private(telegram, PRIVACY_USER, XUCHANG)
    assert_xiangyang_followup(ask_private(telegram, PRIVACY_USER, XIANGYANG))
    group_answer = ask_group(telegram, PRIVACY_USER, PRIVACY_GROUP, CHENFENG)
    reply_in_group(telegram, PRIVACY_USER, PRIVACY_GROUP, group_answer, RESIDENTS)

    raw = sqlite_bytes(telegram.data_dir)
    assert "开办企业".encode() in raw and "晨峰".encode() in raw  # what was read really holds the conversations
    ids = [PRIVACY_USER, PRIVACY_GROUP, PRIVATE_USER, USER_A, USER_B, GROUP]
    for number in ids:
        assert str(number).encode() not in raw, number
        assert str(abs(number)).encode() not in raw, number

    db = sqlite3.connect(f"file:{telegram.data_dir / 'conversations.sqlite'}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] >= 2
        shown = db.execute("SELECT chat, message FROM answers WHERE message IS NOT NULL").fetchall()
        assert shown  # answers do record where they were shown, so a reply can find them
        values = {
            value
            for table in ("conversations", "answers")
            for row in db.execute(f"SELECT * FROM {table}")
            for value in row
        }
    finally:
        db.close()
    for number in ids:
        assert number not in values and str(number) not in values
    assert telegram.process.poll() is None


def test_conversations_and_buttons_survive_a_restart(seed_settings: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = bot_env(seed_settings, data_dir)
    with FakeTelegram(TOKEN) as fake:
        with fake.running_bot(env=env):
            before = ask_private(fake, RESTART_USER, XUCHANG)
            assert_first_question(before)
        with fake.running_bot(env=env) as process:  # a new process on the same data folder
            assert_xiangyang_followup(ask_private(fake, RESTART_USER, XIANGYANG))

            # the buttons of the answer sent by the previous process still work
            keys = buttons(before)
            message = before["_result"]
            fake.press(RESTART_USER, message, keys["👍"])
            fake.wait_for("answerCallbackQuery", lambda p: p.get("text") == "谢谢反馈！")
            shown = answer(fake, RESTART_USER, lambda: fake.press(RESTART_USER, message, keys["📄 [1] 原文"]))
            assert shown["text"].startswith("《") and "许昌" in visible(shown["text"])
            fake.press(RESTART_USER, message, keys["更多结果 ▶"])
            page = fake.wait_for("editMessageText", lambda p: p.get("chat_id") == RESTART_USER)[0]
            assert "[4] " in page["text"] and "第 2/" in page["text"]
            assert not fake.calls("answerCallbackQuery", lambda p: p.get("text") == EXPIRED)
            assert process.poll() is None


def test_idle_conversation_is_forgotten(seed_settings: Settings, tmp_path: Path) -> None:
    idle = 3.0  # seconds: WENDA_TELEGRAM_MEMORY_MINUTES=0.05
    env = bot_env(seed_settings, tmp_path / "data", WENDA_TELEGRAM_MEMORY_MINUTES=str(idle / 60))
    with FakeTelegram(TOKEN) as fake:
        with fake.running_bot(env=env):
            ask_private(fake, QUIET_USER, XUCHANG)
            assert_xiangyang_followup(ask_private(fake, QUIET_USER, XIANGYANG))  # within the idle time
            time.sleep(idle + 1)  # idle past the expiry
            late = ask_private(fake, QUIET_USER, XIANGYANG)
            assert UNDERSTOOD not in visible(late["text"]) and "秒批" not in first_passage(late)


def test_memory_off_answers_every_question_alone(seed_settings: Settings, tmp_path: Path) -> None:
    env = bot_env(seed_settings, tmp_path / "data", WENDA_TELEGRAM_MEMORY_MINUTES="0")
    with FakeTelegram(TOKEN) as fake:
        with fake.running_bot(env=env) as process:
            first = ask_private(fake, QUIET_USER, XUCHANG)
            assert_first_question(first)
            alone = ask_private(fake, QUIET_USER, XIANGYANG)
            assert UNDERSTOOD not in visible(alone["text"]) and "秒批" not in first_passage(alone)
            # a reply to the first answer is not continued either
            replied = answer(
                fake,
                QUIET_USER,
                lambda: fake.message(user=QUIET_USER, text=XIANGYANG, reply_to=first["_result"]),
            )
            assert UNDERSTOOD not in visible(replied["text"]) and "秒批" not in first_passage(replied)
            assert process.poll() is None


@pytest.mark.parametrize("value", ["abc", "-5"])
def test_bad_memory_minutes_stop_the_bot_with_a_clear_message(
    seed_settings: Settings, tmp_path: Path, value: str
) -> None:
    env = bot_env(seed_settings, tmp_path / "data", WENDA_TELEGRAM_MEMORY_MINUTES=value)
    with FakeTelegram(TOKEN) as fake:
        process = fake.start_bot(env=env, log=subprocess.PIPE)
        try:
            output = process.communicate(timeout=120)[0].decode("utf-8", "replace")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        assert process.returncode not in (0, None)
        assert "WENDA_TELEGRAM_MEMORY_MINUTES" in output and repr(value) in output, output
        assert "Traceback" not in output and TOKEN not in output
        assert fake.calls("getUpdates") == [] and fake.calls("sendMessage") == []
