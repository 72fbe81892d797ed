"""Telegram bot settings, all from the environment (the token never goes in a file of this project)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wenda.index.errors import WendaError

from ..privacy import DEFAULT_DATA_DIR, data_dir_from_env, log_questions

DEFAULT_RATE_LIMIT = 20  # questions per user per minute: a fast human reader, not a script
PAGE_SIZE = 3  # passages per message: enough evidence, still short on a phone
MAX_RESULTS = 12  # "More results" pages through this many passages
MAX_QUESTION_CHARS = 1000
DEFAULT_MEMORY_MINUTES = 30.0  # a conversation idle this long is forgotten: the next question starts afresh
CONVERSATIONS_KEPT = 10_000  # per (chat, user); the least recently active beyond this are forgotten


def _ids(name: str) -> frozenset[int] | None:
    """A comma-separated id allowlist; None when unset (everyone allowed)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return frozenset(int(part) for part in raw.replace(" ", "").split(",") if part)
    except ValueError as exc:
        raise WendaError(f"{name} must be comma-separated numeric Telegram ids, got {raw!r}") from exc


def _admins() -> frozenset[int]:
    """WENDA_TELEGRAM_ADMINS: the user ids that may add and remove documents; empty when unset (uploads off)."""
    admins = _ids("WENDA_TELEGRAM_ADMINS") or frozenset()
    if any(user <= 0 for user in admins):  # a group's id (negative) where a person's was meant
        raise WendaError(
            "WENDA_TELEGRAM_ADMINS must be comma-separated numeric Telegram user ids (positive numbers; "
            f"a group's id is negative), got {os.environ['WENDA_TELEGRAM_ADMINS'].strip()!r}"
        )
    return admins


@dataclass(frozen=True)
class TelegramSettings:
    token: str
    base_url: str | None = None
    allowed_users: frozenset[int] | None = None
    allowed_chats: frozenset[int] | None = None
    rate_limit: int = DEFAULT_RATE_LIMIT
    data_dir: Path = DEFAULT_DATA_DIR
    log_questions: bool = False  # WENDA_LOG_QUESTIONS: keep question text in the data folder (opt-in)
    memory_minutes: float = DEFAULT_MEMORY_MINUTES  # 0: every question is answered on its own
    admins: frozenset[int] = frozenset()  # WENDA_TELEGRAM_ADMINS: may send documents and /remove them

    @classmethod
    def from_env(cls) -> TelegramSettings:
        token = os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
        if not token:
            raise WendaError("set TELEGRAM_BOT_TOKEN to the token BotFather gave you")
        rate = os.environ.get("WENDA_TELEGRAM_RATE_LIMIT", str(DEFAULT_RATE_LIMIT))
        if not rate.isdigit() or int(rate) < 1:
            raise WendaError(f"WENDA_TELEGRAM_RATE_LIMIT must be a positive number of questions a minute, got {rate!r}")
        memory = os.environ.get("WENDA_TELEGRAM_MEMORY_MINUTES", str(DEFAULT_MEMORY_MINUTES)).strip()
        try:
            memory_minutes = float(memory)
        except ValueError:
            memory_minutes = -1.0
        if not 0 <= memory_minutes < float("inf"):
            raise WendaError(
                f"WENDA_TELEGRAM_MEMORY_MINUTES must be minutes a conversation is remembered (0 turns memory off), "
                f"got {memory!r}"
            )
        return cls(
            token=token,
            base_url=os.environ.get("TELEGRAM_API_BASE_URL") or None,
            allowed_users=_ids("WENDA_TELEGRAM_ALLOWED_USERS"),
            allowed_chats=_ids("WENDA_TELEGRAM_ALLOWED_CHATS"),
            rate_limit=int(rate),
            data_dir=data_dir_from_env(),
            log_questions=log_questions(),
            memory_minutes=memory_minutes,
            admins=_admins(),
        )

    def allows(self, user_id: int | None, chat_id: int | None) -> bool:
        """Both allowlists, where set, must admit the user and the chat. An admin is an allowed user, and
        their private chat (whose id is theirs) an allowed chat."""
        if user_id is not None and user_id in self.admins and chat_id in (user_id, None):
            return True
        if self.allowed_users is not None and user_id not in self.allowed_users and user_id not in self.admins:
            return False
        return self.allowed_chats is None or chat_id is None or chat_id in self.allowed_chats
