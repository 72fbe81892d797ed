"""No Telegram update lost across a crash, none answered twice.

Telegram forgets an update once a later getUpdates call confirms it, and PTB makes that call as soon as it
has queued the update, before any handler ran. So each update fetched is first written to disk (one file,
written atomically), and marked done only after its handlers finished; a restarted bot replays what is not
done, and skips what Telegram delivers again but was already answered. The one window left: a crash after
the reply was sent but before the done mark was written (milliseconds) answers that question twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from telegram import Update
from telegram.ext import Application, ExtBot

log = logging.getLogger("wenda.telegram")

MAX_ATTEMPTS = 3  # an update that crashed the bot this often is set aside, not replayed for ever


class UpdateJournal:
    """Updates fetched but not yet handled (`<id>.json`) and handled but not yet confirmed (`<id>.done`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob("*.tmp"):  # a write cut short by a crash; its update was never confirmed
            stale.unlink(missing_ok=True)
        self.active: set[int] = set()  # being handled by this process

    def _path(self, update_id: int, suffix: str) -> Path:
        return self.folder / f"{update_id}{suffix}"

    def _write(self, path: Path, data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def received(self, update: dict) -> None:
        """Keep an update on disk before Telegram is told it arrived."""
        update_id = update["update_id"]
        if not self._path(update_id, ".json").exists() and not self._path(update_id, ".done").exists():
            self._write(self._path(update_id, ".json"), {"attempts": 0, "update": update})

    def confirmed(self, offset: int) -> None:
        """Telegram will not send updates below `offset` again: their done marks can go."""
        for path in self.folder.glob("*.done"):
            if path.stem.isdigit() and int(path.stem) < offset:
                path.unlink(missing_ok=True)

    def claim(self, update_id: int) -> bool:
        """True if this process should handle the update now (not done, not already in hand)."""
        if update_id in self.active or self._path(update_id, ".done").exists():
            return False
        self.active.add(update_id)
        return True

    def release(self, update_id: int) -> None:
        self.active.discard(update_id)

    def finished(self, update_id: int) -> None:
        self.active.discard(update_id)
        pending = self._path(update_id, ".json")
        if pending.exists():  # webhook updates are never journaled, so they leave no mark
            self._path(update_id, ".done").touch()
            pending.unlink()

    def replay(self) -> list[dict]:
        """Updates a previous run fetched but did not finish, oldest first; counts the attempt."""
        updates = []
        for path in sorted(self.folder.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                attempts, update = int(entry["attempts"]) + 1, entry["update"]
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("unreadable journal entry %s set aside as %s", path.name, path.with_suffix(".bad").name)
                os.replace(path, path.with_suffix(".bad"))
                continue
            if attempts > MAX_ATTEMPTS:
                log.warning("update %s failed %d times; set aside as %s", path.stem, MAX_ATTEMPTS, path.stem + ".bad")
                os.replace(path, path.with_suffix(".bad"))
                continue
            self._write(path, {"attempts": attempts, "update": update})
            updates.append(update)
        return updates


class JournalingBot(ExtBot):
    """An ExtBot that journals every update it fetches, and prunes what Telegram has confirmed."""

    def __init__(self, *args, journal: UpdateJournal, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._journal = journal

    @property
    def journal(self) -> UpdateJournal:
        return self._journal

    async def get_updates(self, offset: int | None = None, *args, **kwargs) -> tuple[Update, ...]:
        if offset:
            self._journal.confirmed(offset)
        updates = await super().get_updates(offset, *args, **kwargs)
        if updates:  # fsync off the event loop: other users' answers keep flowing meanwhile
            await asyncio.to_thread(lambda: [self._journal.received(update.to_dict()) for update in updates])
        return updates


class JournaledApplication(Application):
    """Handles each update once, and marks it done only after its handlers returned."""

    async def process_update(self, update: object) -> None:
        journal: UpdateJournal = self.bot.journal  # type: ignore[attr-defined] - built with a JournalingBot
        if not isinstance(update, Update):
            await super().process_update(update)
            return
        if not journal.claim(update.update_id):
            return
        try:
            await super().process_update(update)
        except BaseException:  # not done: a later run replays it
            journal.release(update.update_id)
            raise
        journal.finished(update.update_id)

    async def replay_journal(self) -> None:
        """Queue what a previous run left unfinished; call before polling starts."""
        journal: UpdateJournal = self.bot.journal  # type: ignore[attr-defined]
        updates = journal.replay()
        if updates:
            log.info("replaying %d update(s) left unanswered by the previous run", len(updates))
        for data in updates:
            await self.update_queue.put(Update.de_json(data, self.bot))
