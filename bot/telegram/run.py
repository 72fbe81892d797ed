"""`wenda telegram`: load the index once, then serve the bot by long polling or as a webhook."""

from __future__ import annotations

import argparse
import logging
import os

from wenda.index.errors import WendaError
from wenda.index.knowledge import KnowledgeBase, telegram_chats
from wenda.retrieval.retriever import Retriever

from .bot import WendaBot, build_application
from .settings import TelegramSettings


class RedactToken(logging.Filter):
    """Replace the bot token wherever it would appear in a log line (URLs of API calls carry it)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), None
        if record.exc_info and record.exc_info[1] is not None and self.token in str(record.exc_info[1]):
            record.exc_info = None
            record.msg = f"{record.msg} (details withheld: they contained the token)"
        return True


def setup_logging(token: str) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request URL, token included
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactToken(token))


def run_telegram(args: argparse.Namespace, retriever: Retriever, bases: dict[str, KnowledgeBase] | None = None) -> int:
    settings = TelegramSettings.from_env()
    setup_logging(settings.token)
    retriever.warm_up()
    examples = [q.strip() for q in os.environ.get("WENDA_TELEGRAM_EXAMPLES", "").split("|") if q.strip()]
    bot = WendaBot(retriever, settings, examples or None, bases, telegram_chats() if bases else None)
    application = build_application(bot)
    if args.webhook_url:
        secret = os.environ.get("WENDA_TELEGRAM_WEBHOOK_SECRET", "")
        if not secret:
            raise WendaError("webhook mode needs WENDA_TELEGRAM_WEBHOOK_SECRET (letters, digits, _ and -)")
        application.run_webhook(
            listen=args.listen,
            port=args.port,
            url_path=args.url_path,
            webhook_url=args.webhook_url,
            secret_token=secret,
        )
    else:
        application.run_polling()
    return 0
