"""Conversations in the CLI: the real `wenda chat` under a pseudo-terminal, and `ask --json` history lines."""

from __future__ import annotations

import codecs
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from wenda.index.config import Settings

from tests.conftest import ROOT, run_wenda
from tests.test_cli import index_env

PROMPT = "问> "
UNDERSTOOD = "按上文理解为：襄阳 开办企业要多久"


class Terminal:
    """`wenda chat` on a pseudo-terminal, as a person would run it (readline, prompts, line editing)."""

    def __init__(self, env: dict) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wenda.bot.cli", "chat", "-k", "2"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            close_fds=True,
        )
        os.close(slave)
        self.seen = ""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a read may end inside a character

    def read_until(self, marker: str, timeout: float = 120) -> str:
        """Everything printed from now until `marker` has appeared."""
        start, deadline = len(self.seen), time.monotonic() + timeout
        while marker not in self.seen[start:]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{marker!r} not printed; the terminal shows:\n{self.seen[start:]}")
            ready, _, _ = select.select([self.master], [], [], 1)
            if ready:
                try:
                    self.seen += self.decoder.decode(os.read(self.master, 65536))
                except OSError:  # the child closed the terminal
                    break
        return self.seen[start:]

    def ask(self, line: str) -> str:
        """Type a line and return what is printed before the next prompt."""
        os.write(self.master, (line + "\n").encode())
        return self.read_until(PROMPT)

    def close(self) -> int:
        os.write(self.master, b"\x04")  # Ctrl-D
        code = self.process.wait(timeout=60)
        os.close(self.master)
        return code


def test_chat_holds_a_conversation_and_starts_over(seed_settings: Settings, tmp_path: Path) -> None:
    terminal = Terminal({**index_env(seed_settings), "WENDA_HISTORY": str(tmp_path / "history")})
    try:
        banner = terminal.read_until(PROMPT)
        assert ":new" in banner
        first = terminal.ask("许昌开办企业要多久？")
        assert "按上文理解为" not in first and "001_70904a6dfc86bffb.txt" in first
        second = terminal.ask("那襄阳呢？")
        assert UNDERSTOOD in second and "秒批" in second  # Xiangyang's passage, not its byline
        assert "新对话" in terminal.ask(":new")
        fresh = terminal.ask("那襄阳呢？")
        assert "按上文理解为" not in fresh
    finally:
        code = terminal.close()
    assert code == 0


def test_chat_without_memory_answers_each_question_alone(seed_settings: Settings, tmp_path: Path) -> None:
    lines = "许昌开办企业要多久？\n那襄阳呢？\n".encode()
    done = run_wenda(
        "chat", "--no-memory", stdin=lines, env={**index_env(seed_settings), "WENDA_HISTORY": str(tmp_path / "h")}
    )
    assert done.returncode == 0 and "按上文理解为" not in done.stdout.decode()


def test_batch_lines_may_carry_their_conversation(seed_settings: Settings) -> None:
    lines = [
        json.dumps({"question": "那襄阳呢？", "history": ["许昌开办企业要多久？"]}, ensure_ascii=False),
        "那襄阳呢？",
        json.dumps({"question": "这个小区住了多少人？", "history": []}, ensure_ascii=False),
        json.dumps({"question": "那襄阳呢？", "history": "许昌开办企业要多久？"}, ensure_ascii=False),
        json.dumps({"history": ["许昌开办企业要多久？"]}),
        '{"question": "那襄阳呢？", "history": [',
    ]
    done = run_wenda("ask", "--json", stdin="\n".join(lines).encode(), env=index_env(seed_settings))
    answers = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(answers) == len(lines) and done.returncode == 1  # one answer per line; some lines were bad
    assert answers[0]["resolved"] == "襄阳 开办企业要多久" and "秒批" in answers[0]["results"][0]["text"]
    assert answers[1]["resolved"] is None and answers[2]["resolved"] is None  # no history, no completion
    assert '"history" must be a list' in answers[3]["error"]
    assert '"question" must be a string' in answers[4]["error"]
    assert "not valid JSON" in answers[5]["error"]
