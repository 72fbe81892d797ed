"""The Telegram bot's memory, kept in SQLite in the data folder so a restart forgets nothing.

- conversations: per (chat, user) key, the last question as understood, which a follow-up completes; idle
  ones expire, and the number kept is bounded.
- answers: what the buttons under an answer need (the question and the whole response), and which chat
  message showed it, so a reply to that message continues that answer's conversation; the newest 2,000 of
  the last 7 days.
Keys are salted hashes: no user id is stored in the clear.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path

from wenda.index.store import ChunkRecord
from wenda.retrieval.answer import Answer
from wenda.retrieval.results import Response, Result

log = logging.getLogger("wenda.telegram")

# Buttons under an answer older than this say "expired": the store keeps questions and answers, and is not a log.
ANSWER_DAYS = 7

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (key TEXT PRIMARY KEY, understood TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, question TEXT NOT NULL, understood TEXT NOT NULL,
    response TEXT NOT NULL, created REAL NOT NULL, chat INTEGER, message INTEGER);
CREATE INDEX IF NOT EXISTS answers_message ON answers (chat, message);
"""


def encode(response: Response) -> str:
    """A response as JSON, everything included (`to_dict` is the public contract and leaves out what the
    buttons need, such as the full paragraph)."""
    return json.dumps(asdict(response), ensure_ascii=False)


def decode(text: str) -> Response:
    """The Response `encode` wrote."""
    data = json.loads(text)
    results = [Result(**{**r, "record": ChunkRecord(**r["record"])}) for r in data.pop("results")]
    answer = data.pop("answer")
    if answer is not None:
        span = tuple(answer["span"]) if answer["span"] is not None else None
        answer = Answer(ChunkRecord(**answer["record"]), answer["start"], answer["end"], span)
    return Response(**data, results=results, answer=answer)


class ConversationStore:
    """Thread-safe; a damaged file is set aside and replaced by an empty one (memory is not worth an outage)."""

    def __init__(self, path: Path, idle_seconds: float, conversations: int, answers: int) -> None:
        self.path = path
        self.idle_seconds = idle_seconds
        self.kept_conversations = conversations
        self.kept_answers = answers
        self._lock = threading.Lock()
        self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_suffix(".damaged")
            log.warning("conversation memory %s unreadable (%s): set aside as %s", self.path, exc, aside.name)
            self.path.replace(aside)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.executescript(SCHEMA)
        db.execute("PRAGMA journal_mode=WAL")
        # writes happen on the bot's event loop: no fsync per statement (WAL stays consistent after a crash;
        # a power cut may lose the last turns, which are only memory)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("SELECT COUNT(*) FROM conversations").fetchone()
        return db

    def previous(self, key: str) -> str | None:
        """The conversation's last understood question, or None when there is none or it went idle."""
        with self._lock:
            row = self.db.execute(
                "SELECT understood FROM conversations WHERE key = ? AND updated >= ?",
                (key, time.time() - self.idle_seconds),
            ).fetchone()
        return row[0] if row else None

    def remember(self, key: str, understood: str) -> None:
        """Record a turn; drop expired conversations and the oldest beyond the bound."""
        now = time.time()
        with self._lock:
            self.db.execute("REPLACE INTO conversations VALUES (?, ?, ?)", (key, understood, now))
            self.db.execute("DELETE FROM conversations WHERE updated < ?", (now - self.idle_seconds,))
            self.db.execute(
                "DELETE FROM conversations WHERE key IN "
                "(SELECT key FROM conversations ORDER BY updated DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (self.kept_conversations,),
            )

    def forget(self, key: str) -> None:
        """Start the conversation over (/new)."""
        with self._lock:
            self.db.execute("DELETE FROM conversations WHERE key = ?", (key,))

    def save_answer(self, question: str, response: Response) -> str:
        """Keep an answer for its buttons; returns the key the buttons carry. Only the newest are kept."""
        key = secrets.token_urlsafe(6)
        with self._lock:
            self.db.execute(
                "INSERT INTO answers (key, question, understood, response, created) VALUES (?, ?, ?, ?, ?)",
                (key, question, response.understood, encode(response), time.time()),
            )
            self.db.execute(
                "DELETE FROM answers WHERE key IN (SELECT key FROM answers ORDER BY rowid DESC LIMIT -1 OFFSET ?)",
                (self.kept_answers,),
            )
            self.db.execute("DELETE FROM answers WHERE created < ?", (time.time() - ANSWER_DAYS * 86400,))
        return key

    def shown(self, key: str, chat: int, message: int) -> None:
        """Record which message showed the answer, for replies to it."""
        with self._lock:
            self.db.execute("UPDATE answers SET chat = ?, message = ? WHERE key = ?", (chat, message, key))

    def answer(self, key: str) -> tuple[str, Response] | None:
        """(question, response) of a kept answer, or None when it is too old."""
        with self._lock:
            row = self.db.execute("SELECT question, response FROM answers WHERE key = ?", (key,)).fetchone()
        return (row[0], decode(row[1])) if row else None

    def understood_at(self, chat: int, message: int) -> str | None:
        """The understood question of the answer shown in that message, when it is still kept."""
        with self._lock:
            row = self.db.execute(
                "SELECT understood FROM answers WHERE chat = ? AND message = ?", (chat, message)
            ).fetchone()
        return row[0] if row else None
