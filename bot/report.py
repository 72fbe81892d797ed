"""`wenda report`: what the bot did over a period, from the files it writes in its data folder."""

from __future__ import annotations

import argparse
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from wenda.index.errors import WendaError

from .activity import ACTIVITY_FILE, OUTCOMES
from .feedback import FEEDBACK_FILE
from .privacy import LOG_QUESTIONS
from .render import terminal_safe

DEFAULT_TOP = 10
AGO = re.compile(r"(\d+)([dhm])")
UNITS = {"d": "days", "h": "hours", "m": "minutes"}
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _local_midnight(text: str) -> datetime:
    if not ISO_DATE.fullmatch(text):
        raise ValueError(text)
    return datetime.combine(date.fromisoformat(text), time()).astimezone()


def since_argument(text: str) -> datetime:
    """An argparse type: `7d`, `24h`, `30m` ago, or the start of an ISO date such as 2026-11-01 (local time)."""
    if match := AGO.fullmatch(text.strip()):
        return datetime.now().astimezone() - timedelta(**{UNITS[match[2]]: int(match[1])})
    try:
        return _local_midnight(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 7d, 24h, 30m or a date like 2026-11-01, not {text!r}") from None


def until_argument(text: str) -> datetime:
    """An argparse type: the end of an ISO date (the day itself is included), as an exclusive bound."""
    try:
        return _local_midnight(text.strip()) + timedelta(days=1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-30, not {text!r}") from None


@dataclass(frozen=True)
class Period:
    """From `since` (included) to `until` (excluded); None: unbounded."""

    since: datetime | None = None
    until: datetime | None = None

    def __contains__(self, moment: datetime) -> bool:
        return (self.since is None or moment >= self.since) and (self.until is None or moment < self.until)


@dataclass
class Summary:
    """The counts `wenda report` prints; `top_refused` is None when questions were asked but none logged."""

    data_dir: Path
    period: Period
    questions: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    followups: int = 0
    votes: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None
    top_refused: list[tuple[str, int]] | None = None
    unreadable: int = 0

    def seen(self, moment: datetime, user: object) -> None:
        """Widen the first/last times to `moment` and count `user` (a hash, or null when unknown)."""
        self.first = min(self.first or moment, moment)
        self.last = max(self.last or moment, moment)
        if isinstance(user, str):
            self.users.add(user)

    def to_dict(self) -> dict:
        """The `--json` form; `top_refused` is null when question text was not logged."""
        return {
            "data_dir": str(self.data_dir),
            "since": _iso(self.period.since),
            "before": _iso(self.period.until),  # exclusive: the day after --until
            "first": _iso(self.first),
            "last": _iso(self.last),
            "questions": self.questions,
            **{outcome: self.outcomes[outcome] for outcome in OUTCOMES},
            "followups_resolved": self.followups,
            "feedback": {"up": self.votes["up"], "down": self.votes["down"]},
            "users": len(self.users),
            "top_refused": None
            if self.top_refused is None
            else [{"question": text, "count": count} for text, count in self.top_refused],
            "unreadable_lines": self.unreadable,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def question_key(text: str) -> str:
    """The form refused questions are grouped by: NFKC, trimmed, trailing punctuation dropped."""
    text = unicodedata.normalize("NFKC", text).strip()
    while text and (unicodedata.category(text[-1]).startswith("P") or text[-1].isspace()):
        text = text[:-1]
    return text


def _entries(path: Path, valid: Callable[[dict], bool], summary: Summary) -> Iterator[tuple[datetime, dict]]:
    """(time, entry) for each well-formed line of `path` in the period; other lines are counted as unreadable."""
    if not path.exists():  # the bot has not answered (or voted) yet
        return
    try:
        with path.open("rb") as lines:
            for raw in lines:
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw.decode("utf-8"))
                    moment = datetime.fromisoformat(entry["time"]).astimezone()
                    if not valid(entry):
                        raise ValueError(entry)
                except (ValueError, TypeError, KeyError, IndexError):  # a torn write, a hand edit, an older format
                    summary.unreadable += 1
                    continue
                if moment in summary.period:
                    yield moment, entry
    except OSError as exc:
        raise WendaError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _activity(entry: dict) -> bool:
    return entry.get("outcome") in OUTCOMES and isinstance(entry.get("followup"), bool)


def _feedback(entry: dict) -> bool:
    return entry.get("vote") in ("up", "down")


def activity_summary(data_dir: Path, period: Period, top: int = DEFAULT_TOP) -> Summary:
    """Count the activity and feedback the bot wrote to `data_dir` within `period`."""
    if not data_dir.is_dir():
        raise WendaError(
            f"no bot data in {data_dir}: `wenda telegram` writes it there as it answers "
            "(point --data-dir or WENDA_DATA_DIR at the folder the bot uses)"
        )
    summary = Summary(data_dir, period)
    refused: Counter[str] = Counter()
    logged = False
    for moment, entry in _entries(data_dir / ACTIVITY_FILE, _activity, summary):
        summary.seen(moment, entry.get("user"))
        summary.questions += 1
        summary.outcomes[entry["outcome"]] += 1
        summary.followups += entry["followup"]
        logged |= "question" in entry
        question = entry.get("resolved") or entry.get("question")  # a follow-up counts as completed
        if entry["outcome"] == "refused" and isinstance(question, str) and (key := question_key(question)):
            refused[key] += 1
    for moment, entry in _entries(data_dir / FEEDBACK_FILE, _feedback, summary):
        summary.seen(moment, entry.get("user"))
        summary.votes[entry["vote"]] += 1
    summary.top_refused = refused.most_common(top) if logged or not summary.questions else None
    return summary


def _when(moment: datetime | None) -> str:
    return moment.isoformat(sep=" ", timespec="minutes") if moment else "—"


def _count(label: str, part: int, whole: int | None = None) -> str:
    share = f"  ({part / whole:.0%})" if whole else ""
    wide = sum(unicodedata.east_asian_width(char) in "WF" for char in label)  # 👍 takes two columns
    return f"{label:<{30 - wide}}{part:>7}{share}"


def render_summary(summary: Summary) -> str:
    """The report as text for the terminal (question text is untrusted: made safe)."""
    period, outcomes, total = summary.period, summary.outcomes, summary.questions
    if period.since is None and period.until is None:
        span = "all time"
    else:
        until = period.until and (period.until - timedelta(days=1)).date()
        span = f"from {_when(period.since) if period.since else 'the start'} to {until or 'now'}"
    lines = [
        f"Wenda bot activity in {summary.data_dir}, {span}",
        f"  first seen {_when(summary.first)}, last seen {_when(summary.last)}, {len(summary.users)} users",
        _count("questions", total),
        _count("  answered", outcomes["answered"], total),
        _count("  refused: not in the corpus", outcomes["refused"], total),
        _count("  errors", outcomes["error"], total),
        _count("follow-ups resolved", summary.followups, total),
        _count("feedback 👍", summary.votes["up"]),
        _count("feedback 👎", summary.votes["down"]),
    ]
    if summary.top_refused is None:
        lines.append(f"refused questions: question text is not logged (set {LOG_QUESTIONS}=1 where the bot runs)")
    elif summary.top_refused:
        lines.append("most frequent refused questions (what the corpus lacks):")
        lines += [f"{count:>7}  {text}" for text, count in summary.top_refused]
    else:
        lines.append("most frequent refused questions: none in this period")
    if summary.unreadable:
        lines.append(f"{summary.unreadable} unreadable line{'s' * (summary.unreadable != 1)} skipped")
    return terminal_safe("\n".join(lines))
