"""The HTTP application: the native JSON API, health and metrics, on one retriever shared by every request.

Questions run on a small thread pool (the embedding engine already uses the free cores for one question), so
the event loop keeps accepting requests; the retriever picks up a new index generation by itself on the next
question. Every error is a JSON object naming what was wrong ({"error": {"message", "field", "type"}}), never
a traceback: bad input is a 4xx, an unusable index a 503.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from wenda.index.config import DEFAULT_TOP_K
from wenda.index.context import show
from wenda.index.errors import WendaError
from wenda.index.knowledge import KnowledgeBase
from wenda.retrieval.retriever import Retriever

from . import admin, dify, openai_api
from .guards import BodyLimit, HostCheck, Slashes, error_body
from .service import MAX_K, PAGE_POLICY, ApiError, Client, JsonResponse, MetadataCondition, Service, service_of
from .settings import ServeSettings

log = logging.getLogger("wenda.serve")

STATIC = Path(__file__).parent / "static"  # the web chat page: plain HTML, one script, one style sheet
# The API documentation (Swagger UI, from the swagger-ui-bundle package) sets inline styles on its elements.
DOCS_POLICY = PAGE_POLICY.replace("img-src", "style-src 'self' 'unsafe-inline'; img-src")


class AskRequest(BaseModel):
    model_config = ConfigDict(strict=True)  # "k": "5" or true is a client's mistake to hear about, not to guess
    question: str = Field(description="the question, in Chinese or English (at most 1,000 characters)")
    k: int = Field(DEFAULT_TOP_K, ge=1, le=MAX_K, description="passages to return")
    history: list[str] | None = Field(None, description="earlier questions of the conversation, oldest first")
    kb: str | None = Field(None, description="the knowledge base to answer from (WENDA_CONFIG); default: the first")
    filter: MetadataCondition | None = Field(None, description="only passages whose citation meets this (Dify's shape)")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(strict=True)
    question: str = Field(max_length=1000)
    sources: list[str] = Field(default_factory=list, max_length=MAX_K)
    vote: str = Field(pattern="^(up|down)$", description='"up" (👍) or "down" (👎)')


def create_app(retriever: Retriever, settings: ServeSettings, bases: dict[str, KnowledgeBase] | None = None) -> FastAPI:
    """The application; `wenda serve` runs it with uvicorn. `retriever` answers for the first of `bases` (the
    knowledge bases of WENDA_CONFIG), or for everything when there are none."""
    app = FastAPI(
        default_response_class=JsonResponse,
        title="Wenda",
        summary="Answers from a corpus of Chinese documents, with verifiable citations",
        version="0.1.0",
        docs_url=None,  # FastAPI's pages load scripts and fonts from CDNs: /docs is served from here instead
        redoc_url=None,
        redirect_slashes=False,  # guards.Slashes mends the path instead of an empty redirect
    )
    app.state.service = Service(retriever, settings, bases)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    uploads = (admin.PREFIX, settings.max_upload_bytes, "WENDA_ADMIN_MAX_UPLOAD_MB") if settings.admin_key else None
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, uploads=uploads)
    if not settings.api_keys:  # with keys, a request must carry one whatever name it was sent to
        app.add_middleware(HostCheck, allowed=settings.allowed_hosts)
    app.add_middleware(Slashes)  # outermost: the path is mended before anything looks at it
    install_error_handlers(app)

    @app.post("/v1/ask", summary="Answer a question: exactly the object `wenda ask --json` prints")
    async def ask(body: AskRequest, request: Request, client: Client) -> dict:
        service = service_of(request)
        where = body.filter.predicate() if body.filter else None
        kb = service.knowledge(body.kb, request=request)
        response = await service.ask(body.question, body.k, body.history, "ask", kb, where)
        return response.to_dict()

    @app.get("/v1/sources", summary="The indexed documents with their metadata, and the build account of every file")
    async def sources(
        request: Request,
        client: Client,
        kb: Annotated[str | None, Query(description="the knowledge base (WENDA_CONFIG); default: the first")] = None,
    ) -> dict:
        service = service_of(request)
        retriever = await knowledge_retriever(service, kb, request)
        snapshot = retriever.snapshot
        # `files`: every corpus file the last build saw, indexed (passages, pages, OCR) or skipped with the reason
        return {"sources": snapshot.catalogue(), "files": snapshot.account()}

    @app.get("/v1/passages/{source:path}", summary="A cited passage with the lines around it, from its file")
    async def passage(
        source: str,
        request: Request,
        client: Client,
        line: Annotated[int, Query(ge=1, description="the citation's line")],
        page: Annotated[int | None, Query(ge=1, description="the citation's page (PDF)")] = None,
        chapter: Annotated[int | None, Query(ge=1, description="the citation's chapter (EPUB)")] = None,
        around: Annotated[int, Query(ge=0, le=50, description="lines of context on each side")] = 3,
        kb: Annotated[str | None, Query(description="the knowledge base (WENDA_CONFIG); default: the first")] = None,
    ) -> dict:
        service = service_of(request)
        retriever = await knowledge_retriever(service, kb, request)
        unit = f"p{page}:" if page else f"c{chapter}:" if chapter else ""
        try:
            context = await asyncio.get_running_loop().run_in_executor(
                service.executor,
                show,
                retriever.snapshot,
                retriever.settings,
                f"{source}:{unit}{line}",
                around,
            )
        except WendaError as exc:
            status = 404 if "not in the index" in str(exc) else 422
            raise ApiError(status, str(exc), "source" if status == 404 else "line") from exc
        return {
            "source": context.source,
            "title": context.title,
            "page": context.unit if context.unit_name == "page" else None,
            "chapter": context.unit if context.unit_name == "chapter" else None,
            "changed": context.changed,
            "lines": [{"line": n, "text": text, "cited": cited} for n, text, cited in context.lines],
        }

    @app.post("/v1/feedback", summary="👍/👎 on an answer, into the same store the Telegram bot uses")
    async def feedback(body: FeedbackRequest, request: Request, client: Client) -> dict:
        store = service_of(request).feedback
        await asyncio.to_thread(store.record, client, body.question, body.sources, body.vote)
        return {"recorded": True}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        headers = {"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff"}
        return FileResponse(STATIC / "index.html", headers=headers)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        headers = {"Content-Security-Policy": DOCS_POLICY, "X-Content-Type-Options": "nosniff"}
        return FileResponse(STATIC / "docs.html", headers=headers)

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui()), name="docs-assets")

    @app.get("/healthz", summary="Index generation, model and chunk count; 503 with the reason without an index")
    async def healthz(request: Request) -> object:
        retriever = service_of(request).retriever
        try:
            await asyncio.to_thread(retriever.refresh)
        except WendaError as exc:  # the index folder went (or broke) under the server: back when it is rebuilt
            log.error("index unavailable: %s", exc)
            return JsonResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        snapshot = retriever.snapshot
        return {
            "status": "ok" if snapshot.problem is None else "degraded",
            "generation": snapshot.path.name,
            "model": snapshot.manifest["model"].get("name"),
            "chunks": len(snapshot),
            "problem": retriever.problem,
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        registry = service_of(request).metrics.registry
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(openai_api.router)  # POST /v1/chat/completions, GET /v1/models
    app.include_router(dify.router())  # POST /retrieval, Dify's external knowledge API
    if settings.admin_key:  # the management page and its API exist only with an admin key
        app.include_router(admin.router(app.state.service))
    return app


async def knowledge_retriever(service: Service, kb: str | None, request: Request) -> Retriever:
    """The retriever of the knowledge base a request names (checked, loaded on the pool if need be); 503 when
    its index is not built."""
    name = service.knowledge(kb, request=request)
    try:
        return await asyncio.get_running_loop().run_in_executor(service.executor, service.retrievers.get, name)
    except WendaError as exc:
        raise ApiError(503, f"the knowledge base {kb!r} has no usable index: {exc}", "kb", "unavailable") from exc


def swagger_ui() -> Path:
    """The folder of Swagger UI's files in the swagger-ui-bundle package (a dependency)."""
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def install_error_handlers(app: FastAPI) -> None:
    """Every failure as a JSON error naming what was wrong; unexpected ones logged, reported without details."""

    def reply(request: Request, status: int, body: dict) -> JSONResponse:
        service_of(request).metrics.errors.labels(str(status)).inc()
        return JsonResponse(body, status_code=status)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = reply(request, exc.status, error_body(exc.message, exc.field, exc.kind))
        response.headers.update(exc.headers())
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
        field = ".".join(where) or "body"
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            field, message = "body", "the body is not valid JSON"
        return reply(request, 422, error_body(f"{field}: {message}", field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return reply(request, exc.status_code, error_body(str(exc.detail), kind="http"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed: %s %s", request.method, request.url.path, exc_info=exc)
        return reply(request, 500, error_body("the server could not answer this request; it was logged", kind="server"))
