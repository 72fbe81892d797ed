"""The bot's conversation memory (bot/conversations.py) on real SQLite files and real responses."""

from __future__ import annotations

import time
from pathlib import Path

from wenda.bot.telegram.conversations import ConversationStore, decode, encode
from wenda.retrieval.retriever import Retriever


def test_a_saved_answer_comes_back_whole(retriever: Retriever, tmp_path: Path) -> None:
    response = retriever.ask("那襄阳呢？", 12, previous="许昌开办企业要多久")
    assert decode(encode(response)) == response  # results, records, answer span, resolved
    store = ConversationStore(tmp_path / "c.sqlite", idle_seconds=60, conversations=10, answers=10)
    key = store.save_answer("那襄阳呢？", response)
    store.shown(key, chat=7, message=42)
    reopened = ConversationStore(tmp_path / "c.sqlite", idle_seconds=60, conversations=10, answers=10)
    assert reopened.answer(key) == ("那襄阳呢？", response)
    assert reopened.understood_at(7, 42) == "襄阳 开办企业要多久" and reopened.understood_at(7, 43) is None


def test_conversations_expire_and_are_bounded(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite", idle_seconds=0.5, conversations=2, answers=10)
    for key in ("a", "b", "c"):
        store.remember(key, f"问题 {key}")
    assert store.previous("a") is None and store.previous("c") == "问题 c"  # the oldest beyond two went
    store.forget("c")
    assert store.previous("c") is None and store.previous("b") == "问题 b"
    time.sleep(0.6)
    assert store.previous("b") is None  # idle past the expiry


def test_only_the_newest_answers_are_kept(retriever: Retriever, tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite", idle_seconds=60, conversations=10, answers=2)
    response = retriever.ask("许昌开办企业要多久？", 3)
    keys = [store.save_answer(f"q{i}", response) for i in range(3)]
    assert store.answer(keys[0]) is None and store.answer(keys[2]) is not None


def test_a_damaged_file_is_set_aside_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"not a database" * 100)
    store = ConversationStore(path, idle_seconds=60, conversations=10, answers=10)
    store.remember("k", "安阳")
    assert store.previous("k") == "安阳"
    assert (tmp_path / "c.damaged").read_bytes().startswith(b"not a database")
