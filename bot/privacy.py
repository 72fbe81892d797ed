"""What the bot may keep about its users: user ids only as salted hashes, question text only when opted in."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from wenda.index.errors import UsageError, WendaError

SALT_FILE = "feedback.salt"  # named before the activity log shared it; kept so earlier data keeps its hashes
LOG_QUESTIONS = "WENDA_LOG_QUESTIONS"
ON = ("1", "true", "yes")
OFF = ("", "0", "false", "no")


DEFAULT_DATA_DIR = Path(".wenda-data")  # feedback, activity, conversations and the salt of every front end


class UserHasher:
    """Salted hashes of user ids, the salt in one file of the data folder readable by its owner only."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        salt_file = directory / SALT_FILE
        try:
            # O_EXCL: two processes starting at once cannot each write a different salt
            descriptor = os.open(salt_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(16))
        self._salt = salt_file.read_text(encoding="utf-8").strip()
        if not self._salt:
            raise WendaError(f"{salt_file} is empty; delete it and a new salt is made (earlier hashes then differ)")

    def user_hash(self, user_id: int | str) -> str:
        """The stable pseudonym of an id (or of a key built from ids): counts users without storing who they are."""
        return hashlib.sha256(f"{self._salt}:{user_id}".encode()).hexdigest()[:16]


def log_questions() -> bool:
    """Whether the owner opted in to logging question text (WENDA_LOG_QUESTIONS); off unless set."""
    raw = os.environ.get(LOG_QUESTIONS, "")
    value = raw.strip().lower()
    if value in ON:
        return True
    if value in OFF:
        return False
    raise UsageError(f"{LOG_QUESTIONS} must be one of {', '.join(ON)} (on) or {', '.join(OFF[1:])} (off), not {raw!r}")


def data_dir_from_env() -> Path:
    """Where the bot keeps feedback, activity and its update journal (WENDA_DATA_DIR); `wenda report` reads it."""
    return Path(os.environ.get("WENDA_DATA_DIR") or DEFAULT_DATA_DIR)
