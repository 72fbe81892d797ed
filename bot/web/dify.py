"""Dify's external knowledge API: `POST /retrieval`, so a Dify app can use Wenda's index as a knowledge base.

The contract is Dify's (docs.dify.ai, "External Knowledge API"): the request is {knowledge_id, query,
retrieval_setting: {top_k, score_threshold}, metadata_condition?}; the reply {"records": [{content, score,
title, metadata}]}, best first; an error is {"error_code", "error_msg"}: 1001 for an Authorization header
that is not `Bearer <key>` and 1002 for a key that is not one of WENDA_API_KEYS (both 403, which Dify reads as
"authorization failed" when the API is registered), 2001 for a knowledge id this server does not serve (404).
Every other failure keeps that shape with the HTTP status as its code: 422 for a malformed request (the
message starts with the field at fault), 429 over the rate limit, 503 without a usable index. Without
WENDA_API_KEYS no key is asked for, as on the rest of the API (the server then listens on loopback only).

Knowledge ids: with knowledge bases configured (WENDA_CONFIG), each one's name, answering from it alone.
Without, the comma-separated WENDA_DIFY_KNOWLEDGE_IDS, "wenda" by default, every id answering from the one
index.

`score`, from 0 to 1, is the calibrated probability that a passage answers the question: for the top passage
the confidence that `wenda ask` reports (answerable from WENDA_MIN_CONFIDENCE, 0.6 by default, up); for each
passage below it that probability times exp(ranker score − top ranker score), the odds the learned ranker
gives the passage against the top one, never rising down the ranking. `score_threshold` keeps the records
whose score is at least the threshold, so 0.6 keeps only passages that could answer; Dify sends 0.0 when its
threshold is off. The dense cosine is not used: with the built-in model every passage scores 0.8–0.93 against
any question, unrelated ones included, so a threshold on it would filter nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response as HttpResponse
from wenda.retrieval.results import Response

from .service import MAX_K, ApiError, JsonResponse, MetadataCondition, service_of, valid_key

DEFAULT_KNOWLEDGE_IDS = ("wenda",)
BAD_HEADER = 1001
BAD_KEY = 1002
NO_KNOWLEDGE = 2001
HEADER_MESSAGE = "Invalid Authorization header format. Expected 'Bearer <api-key>' format."
KEY_MESSAGE = "Authorization failed"


def knowledge_ids(env: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The knowledge ids served: WENDA_DIFY_KNOWLEDGE_IDS (comma-separated), else "wenda"."""
    ids = frozenset(part.strip() for part in env.get("WENDA_DIFY_KNOWLEDGE_IDS", "").split(",") if part.strip())
    return ids or frozenset(DEFAULT_KNOWLEDGE_IDS)


class DifyError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RetrievalSetting(BaseModel):
    model_config = ConfigDict(strict=True)  # fields of the wrong type are refused, unknown ones ignored
    top_k: int = Field(ge=1, le=MAX_K, description="records to return at most")
    score_threshold: float | None = Field(ge=0, le=1, description="the least score a record may have (0: all)")


class RetrievalRequest(BaseModel):
    model_config = ConfigDict(strict=True)  # fields of the wrong type are refused, unknown ones ignored
    knowledge_id: str = Field(description="the External Knowledge ID entered in Dify (WENDA_DIFY_KNOWLEDGE_IDS)")
    query: str = Field(description="the question")
    retrieval_setting: RetrievalSetting
    metadata_condition: MetadataCondition | None = None


def dify_error(status: int, code: int, message: str) -> JSONResponse:
    return JsonResponse({"error_code": code, "error_msg": message}, status_code=status)


def check_key(request: Request) -> None:
    """Dify's auth errors: 1001 for a header that is not `Bearer <key>`, 1002 for a key not configured."""
    service = service_of(request)
    keys = service.settings.api_keys
    if not keys:
        return
    address = request.client.host if request.client else "unknown"
    service.refuse_guessing(address)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        service.failed_key(address)
        raise DifyError(403, BAD_HEADER, HEADER_MESSAGE)
    if not valid_key(token.strip(), keys):
        service.failed_key(address)
        raise DifyError(403, BAD_KEY, KEY_MESSAGE)
    service.scope(request, token.strip())


class DifyRoute(APIRoute):
    """A route answering every failure in Dify's error shape, with the key checked before the body is read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, HttpResponse]]:
        handler = super().get_route_handler()

        async def dify_handler(request: Request) -> HttpResponse:
            service = service_of(request)
            try:
                check_key(request)
                service.client(request)  # the rate limit, per key as on the rest of the API
                return await handler(request)
            except DifyError as exc:
                error = dify_error(exc.status, exc.code, exc.message)
            except ApiError as exc:
                named = exc.field is None or exc.message.startswith(f"{exc.field}:")
                error = dify_error(exc.status, exc.status, exc.message if named else f"{exc.field}: {exc.message}")
                error.headers.update(exc.headers())
            except RequestValidationError as exc:
                error = dify_error(422, 422, invalid(exc))
            service.metrics.errors.labels(str(error.status_code)).inc()
            return error

        return dify_handler


def invalid(exc: RequestValidationError) -> str:
    """ "field: what is wrong" for the first error of a request that does not match the model."""
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return "body: the body is not valid JSON"
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    return f"{field}: {first.get('msg', 'invalid request')}"


def scores(response: Response) -> list[float]:
    """Each result's score from 0 to 1 (see the module's docstring): the calibrated confidence for the top
    passage, scaled by the ranker's odds against the top one for the others, never rising down the ranking."""
    if not response.results:
        return []
    top, ceiling, values = response.results[0].score, response.confidence, []
    for result in response.results:
        ceiling = min(ceiling, response.confidence * math.exp(min(0.0, result.score - top)))
        values.append(ceiling)
    return values


def records(response: Response, setting: RetrievalSetting) -> list[dict]:
    """Dify's records, best first: the passage, its score, its document's title and its citation as metadata."""
    threshold = setting.score_threshold or 0.0
    found = []
    for result, score in zip(response.results, scores(response), strict=True):
        if score < threshold:
            break  # scores never rise down the ranking
        citation = result.to_dict()["citation"]
        metadata = {"rank": result.rank, **{key: value for key, value in citation.items() if value is not None}}
        found.append(
            {
                "content": result.record.text,
                "score": round(score, 4),
                "title": result.record.title,
                "metadata": metadata,
            }
        )
        if len(found) == setting.top_k:
            break
    return found


def router(ids: frozenset[str] | None = None) -> APIRouter:
    """The router for `create_app`, serving the knowledge ids given (WENDA_DIFY_KNOWLEDGE_IDS by default)."""
    served = ids if ids is not None else knowledge_ids()
    routes = APIRouter(tags=["Dify external knowledge"], route_class=DifyRoute)

    @routes.post("/retrieval", summary="Dify's external knowledge API: passages with scores and citations")
    async def retrieval(body: RetrievalRequest, request: Request) -> dict:
        service = service_of(request)
        # with knowledge bases configured, the knowledge id is a knowledge base's name
        if body.knowledge_id not in (service.visible(request) if service.bases else served):
            raise DifyError(404, NO_KNOWLEDGE, f"The knowledge does not exist: {body.knowledge_id!r}")
        kb = service.knowledge(body.knowledge_id, request=request) if service.bases else None
        where = body.metadata_condition.predicate() if body.metadata_condition else None
        try:
            response = await service.ask(body.query, body.retrieval_setting.top_k, None, "dify", kb, where)
        except ApiError as exc:
            field = "query" if exc.field == "question" else exc.field
            raise ApiError(exc.status, exc.message, field, exc.kind) from exc
        return {"records": records(response, body.retrieval_setting)}

    return routes
