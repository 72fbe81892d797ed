"""👍/👎 feedback on answers, appended to a JSON Lines file; user ids are stored only as salted hashes."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from .privacy import UserHasher

FEEDBACK_FILE = "feedback.jsonl"


class FeedbackStore:
    """One JSON object a line: time, hashed user, question (null unless logging is on), shown sources, vote."""

    def __init__(self, directory: Path, users: UserHasher, log_questions: bool) -> None:
        self.path = directory / FEEDBACK_FILE
        self.users = users
        self.log_questions = log_questions
        self._lock = threading.Lock()

    def record(self, user_id: int, question: str, sources: list[str], vote: str) -> None:
        line = json.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "user": self.users.user_hash(user_id),
                "question": question if self.log_questions else None,
                "sources": sources,
                "vote": vote,
            },
            ensure_ascii=False,
        )
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())  # a vote acknowledged is on disk, whatever happens to the process next
