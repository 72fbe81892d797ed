"""One line per answered message in `activity.jsonl`, for `wenda report`; losing a line never loses an answer."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from pathlib import Path

from wenda.retrieval.results import Response

from .privacy import UserHasher

ACTIVITY_FILE = "activity.jsonl"
OUTCOMES = ("answered", "refused", "error")

log = logging.getLogger("wenda.telegram")


def outcome(response: Response) -> str:
    """answered, refused (not in the corpus) or error: how one question ended."""
    if response.error is not None:
        return "error"
    return "answered" if response.answerable else "refused"


class ActivityLog:
    """Appends time, hashed user, outcome and follow-up flag; the question text too when the owner opted in."""

    def __init__(self, directory: Path, users: UserHasher, log_questions: bool) -> None:
        self.path = directory / ACTIVITY_FILE
        self.users = users
        self.log_questions = log_questions
        self._lock = threading.Lock()
        self._warned = False

    def record(self, user_id: int | None, response: Response) -> None:
        """Append one line; a write that fails is logged (once) and dropped, never raised."""
        entry: dict = {
            "time": datetime.now().astimezone().isoformat(timespec="seconds"),
            "user": None if user_id is None else self.users.user_hash(user_id),
            "outcome": outcome(response),
            "followup": response.resolved is not None,
        }
        if self.log_questions:
            entry.update(question=response.query, resolved=response.resolved)
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(line)
            except OSError as exc:
                if not self._warned:
                    log.warning("cannot write %s (%s): activity is not recorded until this is fixed", self.path, exc)
                    self._warned = True
