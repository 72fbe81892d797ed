"""Knowledge bases in Telegram (the real `wenda telegram` process, fake Bot API): a chat bound in WENDA_CONFIG
answers from its knowledge base, an unbound one from the first; `/kb` lists them, an admin switches a chat,
anyone else cannot; the switch survives a restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import two_knowledge_bases

from tests.fake_telegram import FakeTelegram
from tests.test_telegram import TOKEN, visible
from tests.test_telegram_documents import ADMIN, OTHER
from tests.test_telegram_documents import ask as ask_html


def ask(fake: FakeTelegram, user: int, text: str) -> str:
    return visible(ask_html(fake, user, text))


QINGFENG = "003_71e5a5211310dfa3.txt"
QUESTION = "清河市去年建成了多少套保障性租赁住房？"  # report.pdf (city); the reform article has none


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("telegram-kb")
    binding = f'[telegram]\nchats = {{ "{OTHER}" = "city" }}\n'
    return {"root": root, "env": two_knowledge_bases(root, binding, WENDA_TELEGRAM_ADMINS=str(ADMIN))}


@pytest.fixture
def telegram(deployment: dict) -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as fake, (deployment["root"] / "bot.log").open("ab") as log:
        with fake.running_bot(env=deployment["env"], log=log):
            yield fake


def test_chats_answer_from_their_knowledge_base_and_admins_switch_them(telegram: FakeTelegram) -> None:
    assert "report.pdf" in ask(telegram, OTHER, QUESTION)  # bound to city in the configuration
    assert QINGFENG in ask(telegram, ADMIN, QUESTION) and "report.pdf" not in ask(telegram, ADMIN, QUESTION)
    listed = ask(telegram, ADMIN, "/kb")
    assert "▶ reform — 改革报告" in listed and "• city" in listed
    assert ask(telegram, OTHER, "/kb reform") == "只有管理员可以切换知识库。"
    assert "没有知识库 nope" in ask(telegram, ADMIN, "/kb nope")
    assert "知识库 city" in ask(telegram, ADMIN, "/kb city")
    assert "report.pdf" in ask(telegram, ADMIN, QUESTION)


def test_a_switch_survives_a_restart(telegram: FakeTelegram) -> None:
    """The previous test switched the admin's chat to city, then that bot process ended."""
    assert "▶ city" in ask(telegram, ADMIN, "/kb")
    assert "report.pdf" in ask(telegram, ADMIN, QUESTION)
