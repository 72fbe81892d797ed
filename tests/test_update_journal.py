"""bot.telegram.update_journal: what a restarted bot replays, skips and sets aside."""

import json
from pathlib import Path

from wenda.bot.telegram.update_journal import MAX_ATTEMPTS, UpdateJournal


def update(update_id: int) -> dict:
    return {"update_id": update_id, "message": {"message_id": 1, "date": 0, "chat": {"id": 7, "type": "private"}}}


def test_unfinished_updates_are_replayed_in_order_and_finished_ones_are_not(tmp_path: Path) -> None:
    journal = UpdateJournal(tmp_path)
    for update_id in (12, 10, 11):
        journal.received(update(update_id))
    assert journal.claim(10)
    journal.finished(10)
    assert not journal.claim(10)  # Telegram delivering it again after a crash: skipped
    restarted = UpdateJournal(tmp_path)
    assert [u["update_id"] for u in restarted.replay()] == [11, 12]
    assert restarted.claim(11) and not restarted.claim(11)  # in hand: a second copy is skipped


def test_confirmed_offsets_drop_done_marks(tmp_path: Path) -> None:
    journal = UpdateJournal(tmp_path)
    for update_id in (1, 2):
        journal.received(update(update_id))
        journal.claim(update_id)
        journal.finished(update_id)
    journal.confirmed(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.done"]


def test_released_update_is_replayed_and_poison_is_set_aside(tmp_path: Path) -> None:
    journal = UpdateJournal(tmp_path)
    journal.received(update(5))
    journal.claim(5)
    journal.release(5)  # its handling failed: not done
    for _ in range(MAX_ATTEMPTS):
        assert [u["update_id"] for u in UpdateJournal(tmp_path).replay()] == [5]
    assert UpdateJournal(tmp_path).replay() == []  # crashed the bot every time: set aside, kept for a look
    assert json.loads((tmp_path / "5.bad").read_text())["update"]["update_id"] == 5


def test_unreadable_entry_is_set_aside_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "9.json").write_text("{not json", encoding="utf-8")
    journal = UpdateJournal(tmp_path)
    journal.received(update(10))
    assert [u["update_id"] for u in journal.replay()] == [10]
    assert (tmp_path / "9.bad").read_text() == "{not json"


def test_webhook_updates_leave_no_marks(tmp_path: Path) -> None:
    journal = UpdateJournal(tmp_path)
    assert journal.claim(3)
    journal.finished(3)
    assert list(tmp_path.iterdir()) == []
