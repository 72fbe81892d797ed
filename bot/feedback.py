"""👍/👎 feedback on answers, appended to a JSON Lines file; user ids are stored only as salted hashes."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from pathlib import Path


class FeedbackStore:
    """One JSON object a line: time, hashed user, question, shown sources, vote."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "feedback.jsonl"
        salt_file = directory / "feedback.salt"
        if not salt_file.exists():
            salt_file.write_text(secrets.token_hex(16), encoding="utf-8")
            salt_file.chmod(0o600)
        self._salt = salt_file.read_text(encoding="utf-8").strip()
        self._lock = threading.Lock()

    def user_hash(self, user_id: int) -> str:
        return hashlib.sha256(f"{self._salt}:{user_id}".encode()).hexdigest()[:16]

    def record(self, user_id: int, question: str, sources: list[str], vote: str) -> None:
        line = json.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "user": self.user_hash(user_id),
                "question": question,
                "sources": sources,
                "vote": vote,
            },
            ensure_ascii=False,
        )
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
