"""`wenda report` over real files the bot's ActivityLog and FeedbackStore wrote, run as the real command."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import pytest
from wenda.bot.activity import ActivityLog
from wenda.bot.feedback import FeedbackStore
from wenda.bot.privacy import UserHasher, log_questions
from wenda.index.errors import UsageError
from wenda.retrieval.results import Response

from tests.conftest import run_wenda

ALICE, BOB, CAROL = 918273645, 192837465, 564738291  # ids that must never appear in a file
MARS = "火星上有多少人？"
LOCAL_TIME = {"TZ": "CST-8"}  # the report's dates are local: pin them (a POSIX TZ string, no tzdata needed)


def report(data_dir: Path, *flags: str, env: dict | None = None) -> tuple[str, dict]:
    """The text and the --json form of the same report; both must succeed."""
    env = {**LOCAL_TIME, **(env or {})}
    text = run_wenda("report", "--data-dir", str(data_dir), *flags, env=env)
    as_json = run_wenda("report", "--data-dir", str(data_dir), *flags, "--json", env=env)
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    return text.stdout.decode(), json.loads(as_json.stdout)


def write_a_day(data_dir: Path, logging_on: bool) -> None:
    """Seven questions from three users (and one unknown), three votes."""
    users = UserHasher(data_dir)
    activity = ActivityLog(data_dir, users, logging_on)
    activity.record(ALICE, Response(query=MARS, answerable=False))
    activity.record(BOB, Response(query="火星上有多少人 ", answerable=False))  # same question: NFKC, no punctuation
    activity.record(CAROL, Response(query="它的首都呢？", answerable=False, resolved="月球的首都是哪里"))
    activity.record(ALICE, Response(query="安阳市区有多少台纯电动出租车？", answerable=True))
    activity.record(ALICE, Response(query="运城呢？", answerable=True, resolved="运城有多少台纯电动出租车"))
    activity.record(BOB, Response(query="?", error="the question is empty"))
    activity.record(None, Response(query=MARS, answerable=False))  # an inline query: no user
    feedback = FeedbackStore(data_dir, users, logging_on)
    feedback.record(ALICE, "安阳市区有多少台纯电动出租车？", ["a.txt:3"], "up")
    feedback.record(BOB, "安阳市区有多少台纯电动出租车？", ["a.txt:3"], "up")
    feedback.record(CAROL, MARS, ["b.txt:9"], "down")


def assert_no_user_id_in_clear(data_dir: Path) -> None:
    for path in data_dir.iterdir():
        content = path.read_text(encoding="utf-8")
        assert not any(str(user) in content for user in (ALICE, BOB, CAROL)), path


def test_counts_and_most_frequent_refused_questions(tmp_path: Path) -> None:
    write_a_day(tmp_path, logging_on=True)
    text, data = report(tmp_path)

    expected = {"questions": 7, "answered": 2, "refused": 4, "error": 1, "followups_resolved": 2, "users": 3}
    assert {key: data[key] for key in expected} == expected
    assert data["feedback"] == {"up": 2, "down": 1} and data["unreadable_lines"] == 0
    assert data["top_refused"] == [
        {"question": "火星上有多少人", "count": 3},
        {"question": "月球的首都是哪里", "count": 1},  # a follow-up is counted as it was completed
    ]
    assert data["first"] and data["last"] and data["since"] is None and data["before"] is None

    assert "all time" in text and "3 users" in text
    assert "questions                           7" in text
    assert "refused: not in the corpus        4  (57%)" in text
    assert "follow-ups resolved                 2" in text
    assert "      3  火星上有多少人\n      1  月球的首都是哪里" in text
    assert "unreadable" not in text

    _, top_one = report(tmp_path, "--top", "1")
    assert top_one["top_refused"] == [{"question": "火星上有多少人", "count": 3}]
    assert_no_user_id_in_clear(tmp_path)
    assert (tmp_path / "feedback.salt").stat().st_mode & 0o777 == 0o600


def test_question_text_is_kept_only_when_the_owner_opts_in(tmp_path: Path) -> None:
    write_a_day(tmp_path, logging_on=False)
    activity = (tmp_path / "activity.jsonl").read_text(encoding="utf-8")
    feedback = (tmp_path / "feedback.jsonl").read_text(encoding="utf-8")
    assert "火星" not in activity + feedback and "首都" not in activity + feedback
    assert all(set(json.loads(line)) == {"time", "user", "outcome", "followup"} for line in activity.splitlines())
    assert all(json.loads(line)["question"] is None for line in feedback.splitlines())

    text, data = report(tmp_path)
    assert data["refused"] == 4 and data["top_refused"] is None
    assert "question text is not logged (set WENDA_LOG_QUESTIONS=1 where the bot runs)" in text
    assert_no_user_id_in_clear(tmp_path)


def test_the_period_selects_what_is_counted(tmp_path: Path) -> None:
    write_a_day(tmp_path, logging_on=True)
    old = [
        {"time": "2025-01-15T23:30:00+08:00", "user": "0123456789abcdef", "outcome": "refused", "followup": False},
        {"time": "2025-01-16T00:10:00+08:00", "user": None, "outcome": "answered", "followup": True},
    ]
    old[0].update(question="旧的问题。", resolved=None)
    old[1].update(question="那后来呢", resolved="旧的问题后来怎样")
    with (tmp_path / "activity.jsonl").open("a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(entry) + "\n" for entry in old)
    with (tmp_path / "feedback.jsonl").open("a", encoding="utf-8") as handle:  # FeedbackStore's +0800 offsets
        handle.write(json.dumps({"time": "2025-01-15T09:00:00+0800", "user": None, "vote": "down"}) + "\n")

    _, everything = report(tmp_path)
    assert everything["questions"] == 9 and everything["feedback"] == {"up": 2, "down": 2}

    _, recent = report(tmp_path, "--since", "7d")
    assert recent["questions"] == 7 and recent["feedback"] == {"up": 2, "down": 1}
    _, last_hour = report(tmp_path, "--since", "60m")
    assert last_hour["questions"] == 7

    text, day = report(tmp_path, "--since", "2025-01-15", "--until", "2025-01-15")  # --until includes its day
    assert day["questions"] == 1 and day["refused"] == 1 and day["feedback"] == {"up": 0, "down": 1}
    assert day["top_refused"] == [{"question": "旧的问题", "count": 1}] and day["users"] == 1
    assert day["first"] == "2025-01-15T09:00:00+08:00" and day["last"] == "2025-01-15T23:30:00+08:00"
    assert "from 2025-01-15 00:00+08:00 to 2025-01-15" in text and "      1  旧的问题\n" in text

    text, next_day = report(tmp_path, "--since", "2025-01-16", "--until", "2025-01-16")
    assert next_day["answered"] == 1 and next_day["top_refused"] == [] and "none in this period" in text

    _, until = report(tmp_path, "--until", "2025-01-16")
    assert until["questions"] == 2 and until["followups_resolved"] == 1 and until["before"].startswith("2025-01-17")


def test_unreadable_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    write_a_day(tmp_path, logging_on=True)
    with (tmp_path / "activity.jsonl").open("ab") as handle:
        handle.write(b"\n")  # blank: ignored
        handle.write(b"not json at all\n")
        handle.write(b'{"time": "2026-01-01T00:00:00+00:00", "outcome": "refu\n')  # a torn write
        handle.write(b'["a", "list"]\n')
        handle.write(b'{"outcome": "answered", "followup": false}\n')  # no time
        handle.write(b'{"time": "yesterday", "outcome": "answered", "followup": false}\n')
        handle.write(b'{"time": "2026-01-01T00:00:00+00:00", "outcome": "maybe", "followup": false}\n')
        handle.write(b'{"time": "2026-01-01T00:00:00+00:00", "outcome": "refused", "followup": false, "q": "\xff"}\n')
    with (tmp_path / "feedback.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"time": "2026-01-01T00:00:00+00:00", "vote": "sideways"}\n')

    text, data = report(tmp_path)
    assert data["questions"] == 7 and data["feedback"] == {"up": 2, "down": 1}
    assert data["unreadable_lines"] == 8
    assert text.endswith("8 unreadable lines skipped\n")


def test_question_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    ActivityLog(tmp_path, UserHasher(tmp_path), log_questions=True).record(
        ALICE, Response(query="\x1b[2J\x1b]0;HACKED\x07\u202e问")
    )
    done = run_wenda("report", "--data-dir", str(tmp_path))
    assert done.returncode == 0 and b"\\x1b[2J" in done.stdout
    assert b"\x1b" not in done.stdout and b"\x07" not in done.stdout and "\u202e".encode() not in done.stdout


def test_a_missing_data_dir_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "never-ran"
    for done in (
        run_wenda("report", "--data-dir", str(missing)),
        run_wenda("report", env={"WENDA_DATA_DIR": str(missing)}),
    ):
        message = done.stderr.decode()
        assert done.returncode == 1 and done.stdout == b""
        assert str(missing) in message and "`wenda telegram` writes it" in message and "Traceback" not in message


@pytest.mark.parametrize(
    "flags",
    [("--since", "7x"), ("--since", "2026-13-01"), ("--since", "yesterday"), ("--until", "7d"), ("--top", "0")],
)
def test_a_bad_period_is_a_usage_error(tmp_path: Path, flags: tuple[str, str]) -> None:
    done = run_wenda("report", "--data-dir", str(tmp_path), *flags)
    assert done.returncode == 2 and f"argument {flags[0]}" in done.stderr.decode() and done.stdout == b""


def test_since_after_until_is_a_usage_error(tmp_path: Path) -> None:
    done = run_wenda("report", "--data-dir", str(tmp_path), "--since", "2026-02-01", "--until", "2026-01-01")
    assert done.returncode == 2 and "--since must be before --until" in done.stderr.decode()


@pytest.mark.parametrize(("value", "on"), [("1", True), ("yes", True), ("TRUE", True), ("0", False), ("", False)])
def test_question_logging_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, on: bool) -> None:
    monkeypatch.setenv("WENDA_LOG_QUESTIONS", value)
    assert log_questions() is on


def test_question_logging_rejects_other_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WENDA_LOG_QUESTIONS", raising=False)
    assert log_questions() is False
    monkeypatch.setenv("WENDA_LOG_QUESTIONS", "maybe")
    with pytest.raises(UsageError, match=r"WENDA_LOG_QUESTIONS must be one of 1, true, yes .* not 'maybe'"):
        log_questions()


def test_an_existing_salt_is_kept_and_shared(tmp_path: Path) -> None:
    (tmp_path / "feedback.salt").write_text("an-older-salt\n", encoding="utf-8")
    users = UserHasher(tmp_path)
    ActivityLog(tmp_path, users, log_questions=False).record(ALICE, Response(query="q", answerable=True))
    FeedbackStore(tmp_path, users, log_questions=False).record(ALICE, "q", [], "up")
    expected = hashlib.sha256(f"an-older-salt:{ALICE}".encode()).hexdigest()[:16]
    for name in ("activity.jsonl", "feedback.jsonl"):
        assert json.loads((tmp_path / name).read_text(encoding="utf-8"))["user"] == expected


def test_concurrent_records_stay_whole_lines(tmp_path: Path) -> None:
    activity = ActivityLog(tmp_path, UserHasher(tmp_path), log_questions=True)

    def ask(user: int) -> None:
        for _ in range(50):
            activity.record(user, Response(query="问" * 200, answerable=False))

    threads = [threading.Thread(target=ask, args=(user,)) for user in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (tmp_path / "activity.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400 and all(json.loads(line)["outcome"] == "refused" for line in lines)


def test_a_failed_write_loses_the_statistic_not_the_answer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    activity = ActivityLog(tmp_path, UserHasher(tmp_path), log_questions=False)
    (tmp_path / "activity.jsonl").mkdir()  # appending to it now fails with an OSError, even as root
    with caplog.at_level(logging.WARNING, logger="wenda.telegram"):
        activity.record(ALICE, Response(query="q", answerable=True))
        activity.record(ALICE, Response(query="q", answerable=True))
    assert [record.getMessage() for record in caplog.records if "activity is not recorded" in record.getMessage()]
    assert len(caplog.records) == 1
