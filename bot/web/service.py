"""What the application and its routers share (FastAPI's "bigger applications" layout: the routers import from
here, the app imports the routers, nothing imports the app): the service behind every request, its errors and
JSON responses, and the dependency that checks a client's key and rate."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field
from wenda.index.errors import IndexMissingError, WendaError
from wenda.index.knowledge import DEFAULT, KnowledgeBase
from wenda.retrieval import filters
from wenda.retrieval.results import Response
from wenda.retrieval.retriever import Retriever
from wenda.retrieval.retrievers import Retrievers

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


# The pages load nothing from another host and run no inline script: the browser holds them to that.
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


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


Operator = Literal[
    "contains",
    "not contains",
    "start with",
    "end with",
    "is",
    "is not",
    "in",
    "not in",
    "empty",
    "not empty",
    "=",
    "≠",
    ">",
    "<",
    "≥",
    "≤",
    "before",
    "after",
]


class Condition(BaseModel):
    model_config = ConfigDict(strict=True)  # fields of the wrong type are refused, unknown ones ignored
    name: str | list[str] = Field(description="metadata field(s): source, title, section, place, date, page, …")
    comparison_operator: Operator
    value: str | int | float | list[str] | None = None


class MetadataCondition(BaseModel):
    """A metadata filter in Dify's `metadata_condition` shape, taken by every route (retrieval/filters.py)."""

    model_config = ConfigDict(strict=True)  # fields of the wrong type are refused, unknown ones ignored
    logical_operator: Literal["and", "or"] | None = "and"
    conditions: list[Condition] = Field(default_factory=list)

    def predicate(self) -> filters.Predicate | None:
        """The test of a passage's citation fields; None when there is no condition."""
        if not self.conditions:
            return None
        rules = [(rule.name, rule.comparison_operator, rule.value) for rule in self.conditions]
        return filters.predicate(self.logical_operator, rules)


# Knowledge bases kept loaded at once besides the first (each holds its index and vectors; the model is shared):
# the least recently asked one is let go past this, and opened again when it is asked (retrieval/retrievers.py).
MAX_LOADED = int(os.environ.get("WENDA_SERVE_MAX_LOADED_KBS", "4") or 4)


class Service:
    """What every endpoint shares: the retrievers (one per knowledge base, loaded when first asked, sharing the
    first one's model) and their thread pool, the limiter, feedback and metrics. Without configured knowledge
    bases (`bases` empty) the one retriever answers everything, as a single-corpus server always did."""

    def __init__(
        self, retriever: Retriever, settings: ServeSettings, bases: dict[str, KnowledgeBase] | None = None
    ) -> None:
        self.retriever, self.settings = retriever, settings
        self.bases = dict(bases or {})
        self.first = next(iter(self.bases), None)
        self.retrievers = Retrievers(retriever, self.bases, MAX_LOADED)
        self.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="wenda-serve")
        self.limiter = RateLimiter(settings.rate_limit)
        # failed key checks: per client address, and from all addresses together (a guesser with many addresses)
        self.guesses = RateLimiter(AUTH_FAILURES)
        self.all_guesses = RateLimiter(AUTH_FAILURES * 10)
        self.users = UserHasher(settings.data_dir)
        self.feedback = FeedbackStore(settings.data_dir, self.users, settings.log_questions)
        self.metrics = Metrics()

    def knowledge(self, name: str | None, field: str = "kb", request: Request | None = None) -> str | None:
        """The knowledge base a request names, checked: None for the first (or only) one; ApiError 404 naming
        an unknown one and listing the known ones. A key limited to some knowledge bases ([keys.NAME] in the
        configuration) sees only those: the others are unknown to it, and naming none picks its first."""
        visible = self.visible(request)
        if name is None:
            name = self.first if self.first is None or self.first in visible else visible[0]
        if name in visible:
            return None if name == self.first else name
        if not self.bases and name in (None, DEFAULT):
            return None
        known = ", ".join(visible) or DEFAULT
        raise ApiError(404, f"no knowledge base {name!r}; this server has: {known}", field, "not_found")

    def visible(self, request: Request | None) -> list[str]:
        """The knowledge bases the request's key may use, in the configuration's order."""
        scope = getattr(request.state, "kbs", None) if request is not None else None
        return [name for name in self.bases if scope is None or name in scope]

    def scope(self, request: Request, token: str) -> None:
        """Remember on the request which knowledge bases its (valid) key may use; None: all."""
        request.state.kbs = self.settings.key_scopes.get(hashlib.sha256(token.encode()).hexdigest())

    async def ask(
        self,
        question: str,
        k: int,
        history: list[str] | None,
        endpoint: str,
        kb: str | None = None,
        where: filters.Predicate | None = None,
    ) -> Response:
        """Answer a question (the next turn of `history`, oldest first) from knowledge base `kb` (checked by
        `knowledge`; None: the first), among the passages meeting `where`; ApiError for bad input or no index."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self.executor, self.answer, question, k, history, kb, where)
        except WendaError as exc:
            log.error("index unavailable: %s", exc)
            message = "the index is unavailable now; try again later"
            if kb is not None and isinstance(exc, IndexMissingError):
                message = f"the knowledge base {kb!r} has no index yet; run `wenda index --kb {kb}`"
            raise ApiError(503, message, kind="unavailable") from exc
        if response.error:
            raise ApiError(422, response.error, "question")
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.questions.labels(endpoint).inc()
        if not response.answerable:
            self.metrics.refusals.labels(endpoint).inc()
        return response

    def answer(
        self,
        question: str,
        k: int,
        history: list[str] | None,
        kb: str | None = None,
        where: filters.Predicate | None = None,
    ) -> Response:
        """On a worker thread: the question as the next turn of `history` (its newest turns)."""
        retriever = self.retrievers.get(kb)
        previous = retriever.understand(history[-MAX_HISTORY:]) if history else None
        return retriever.ask(question, k, previous, where)

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
            self.scope(request, token)
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
