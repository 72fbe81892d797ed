"""Which knowledge base each Telegram chat answers from: bound in the configuration (`[telegram] chats`), or
switched by an admin with `/kb NAME`; the switches are kept in a small JSON file in the data folder, so a
restart keeps them. A chat bound to nothing answers from the first knowledge base."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("wenda.telegram")


class KnowledgeBindings:
    """Chat id → knowledge base name: the configuration's, overridden by admins' switches."""

    def __init__(self, path: Path, configured: dict[int, str], known: set[str]) -> None:
        self.path, self.configured = path, configured
        self._lock = threading.Lock()
        self._switched: dict[int, str] = {}
        try:
            switched = json.loads(path.read_text(encoding="utf-8"))
            self._switched = {int(chat): name for chat, name in switched.items() if name in known}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:  # a damaged file costs the switches, not the bot
            log.warning("ignoring %s (%s): chats answer from their configured knowledge bases", path, exc)

    def get(self, chat_id: int | None) -> str | None:
        if chat_id is None:
            return None
        return self._switched.get(chat_id) or self.configured.get(chat_id)

    def set(self, chat_id: int, name: str) -> None:
        """Bind a chat (an admin's /kb NAME), written at once: a restart keeps it."""
        with self._lock:
            self._switched[chat_id] = name
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({str(k): v for k, v in self._switched.items()}), encoding="utf-8")
            os.replace(tmp, self.path)
