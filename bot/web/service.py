"""What the application and its routers share (FastAPI's "bigger applications" layout: the routers import from
here, the app imports the routers, nothing imports the app): the service behind every request, its errors and
JSON responses, and the dependency that checks a client's key and rate."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from wenda.index.errors import WendaError
from wenda.retrieval.results import Response
from wenda.retrieval.retriever import Retriever

from ..feedback import FeedbackStore
from ..privacy import UserHasher
from ..ratelimit import RateLimiter
from ..render import json_line
from .settings import WORKERS, ServeSettings

log = logging.getLogger("wenda.serve")

MAX_K = 50
MAX_HISTORY = 20  # turns of a conversation read (the newest), as in `wenda ask --json`
# Failed API keys a minute from one client address (ten times as many from all together), then 429 with
# Retry-After before any key is compared: a guesser gets 10 tries a minute, not ~900 a second.
AUTH_FAILURES = 10


class ApiError(Exception):
    """A request that cannot be served, with the HTTP status, the field at fault (if one) and a short type."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        kind: str = "invalid_request",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.kind = status, message, field, kind
        self.retry_after = retry_after  # seconds, sent as Retry-After (every 429 has it)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


class JsonResponse(JSONResponse):
    """JSON as every Wenda output writes it: the line and paragraph separators, C1 and bidi controls of corpus
    text escaped (`bot.render.json_line`), so no reader splits or reorders a line."""

    def render(self, content: object) -> bytes:
        return json_line(content).encode("utf-8")  # type: ignore[arg-type]


class Metrics:
    """Prometheus metrics of this server (its own registry, so tests can run several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.questions = Counter("wenda_questions", "Questions answered", ["endpoint"], registry=self.registry)
        self.refusals = Counter(
            "wenda_refusals", "Questions the corpus could not answer", ["endpoint"], registry=self.registry
        )
        self.errors = Counter("wenda_errors", "Requests that failed", ["status"], registry=self.registry)
        self.latency = Histogram(
            "wenda_question_seconds",
            "Time to answer a question",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


class Service:
    """What every endpoint shares: the retriever and its thread pool, the limiter, feedback and metrics."""

    def __init__(self, retriever: Retriever, settings: ServeSettings) -> None:
        self.retriever, self.settings = retriever, settings
        self.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="wenda-serve")
        self.limiter = RateLimiter(settings.rate_limit)
        # failed key checks: per client address, and from all addresses together (a guesser with many addresses)
        self.guesses = RateLimiter(AUTH_FAILURES)
        self.all_guesses = RateLimiter(AUTH_FAILURES * 10)
        self.users = UserHasher(settings.data_dir)
        self.feedback = FeedbackStore(settings.data_dir, self.users, settings.log_questions)
        self.metrics = Metrics()

    async def ask(self, question: str, k: int, history: list[str] | None, endpoint: str) -> Response:
        """Answer a question (the next turn of `history`, oldest first); ApiError for bad input or no index."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self.executor, self.answer, question, k, history)
        except WendaError as exc:
            log.error("index unavailable: %s", exc)
            raise ApiError(503, "the index is unavailable now; try again later", kind="unavailable") from exc
        if response.error:
            raise ApiError(422, response.error, "question")
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.questions.labels(endpoint).inc()
        if not response.answerable:
            self.metrics.refusals.labels(endpoint).inc()
        return response

    def answer(self, question: str, k: int, history: list[str] | None) -> Response:
        """On a worker thread: the question as the next turn of `history` (its newest turns)."""
        previous = self.retriever.understand(history[-MAX_HISTORY:]) if history else None
        return self.retriever.ask(question, k, previous)

    def client(self, request: Request) -> str:
        """Who is asking: the API key that matched (required when keys are set), else the client's address;
        ApiError 401 without a valid key, 429 over the rate limit."""
        keys = self.settings.api_keys
        address = request.client.host if request.client else "unknown"
        if keys:
            self.refuse_guessing(address)
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                self.failed_key(address)
                raise ApiError(401, "missing API key: send `Authorization: Bearer <key>`", "authorization", "auth")
            token = token.strip()
            if not valid_key(token, keys):
                self.failed_key(address)
                raise ApiError(401, "the API key is not valid", "authorization", "auth")
            who = "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        else:
            who = "addr:" + address
        if not self.limiter.allow(who):
            raise ApiError(
                429,
                f"over {self.settings.rate_limit} requests a minute; slow down",
                kind="rate_limit",
                retry_after=self.limiter.retry_after(who),
            )
        return who

    def refuse_guessing(self, address: str) -> None:
        """429 before any key is looked at, for an address (or everyone) past AUTH_FAILURES failed tries."""
        wait = max(self.guesses.retry_after(address), self.all_guesses.retry_after("all"))
        if wait:
            raise ApiError(
                429, "too many failed API keys; wait before trying again", kind="rate_limit", retry_after=wait
            )

    def failed_key(self, address: str) -> None:
        self.guesses.allow(address)
        self.all_guesses.allow("all")


def valid_key(token: str, keys: Sequence[str]) -> bool:
    """Whether `token` is one of `keys`, compared in constant time (every key is compared, by digest, so
    neither the matching key's place nor its length shows in the time taken)."""
    digest = hashlib.sha256(token.encode()).digest()
    matches = [hmac.compare_digest(digest, hashlib.sha256(key.encode()).digest()) for key in keys]
    return any(matches)


def service_of(request: Request) -> Service:
    return request.app.state.service


def authorized(request: Request) -> str:
    """Dependency of every API endpoint: the client, once its key and rate are checked."""
    return service_of(request).client(request)


Client = Annotated[str, Depends(authorized)]
