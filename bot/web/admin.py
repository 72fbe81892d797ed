"""The management page (`/admin`) and its API: every knowledge base with its files, passages, last build and
skipped files; create and delete a knowledge base, upload and delete documents, rebuild with progress.

It exists only when WENDA_ADMIN_KEY is set (16 characters or more, none of the API keys): otherwise every
path here is a 404. Every API call carries `Authorization: Bearer <admin key>`, a header that a page on another
site cannot make the browser send; every change carries the CSRF token of `GET /admin/api/session` in
`X-CSRF-Token` besides, and is refused when the browser names another origin. Uploads are the untrusted
documents `wenda add` takes: read isolated and refused with the reason unless they can be indexed, under a
sanitised name, never overwriting (index/intake.py). Builds run one at a time per knowledge base, on a thread
of their own at the build's low priority, with the server's model; questions keep being answered from the
previous generation until the new one is in place.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from wenda.index import knowledge
from wenda.index.builder import build_index
from wenda.index.errors import UsageError, WendaError
from wenda.index.intake import admit, digests
from wenda.index.knowledge import DEFAULT, KnowledgeBase
from wenda.index.loader import discover
from wenda.index.store import live_manifest

from .service import PAGE_POLICY, ApiError, Service, valid_key

log = logging.getLogger("wenda.admin")
STATIC = Path(__file__).parent / "static"
PREFIX = "/admin/api/"  # the uploads' larger body limit applies here (guards.BodyLimit)


@dataclass
class Build:
    """The last build of one knowledge base, as the page shows it."""

    state: str = "idle"  # idle, running, done, failed
    again: bool = False  # asked for while running (files changed meanwhile): one more build follows
    embedded: int = 0
    to_embed: int = 0
    message: str = ""
    warnings: list[str] = field(default_factory=list)


class Admin:
    """The management page's state: the CSRF secret of this server process and each knowledge base's build."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.secret = secrets.token_bytes(32)
        self.builds: dict[str, Build] = {}
        self.lock = threading.Lock()

    def csrf(self) -> str:
        return hmac.new(self.secret, hashlib.sha256(self.key.encode()).digest(), "sha256").hexdigest()


class CreateRequest(BaseModel):
    model_config = ConfigDict(strict=True)
    name: str = Field(max_length=64, description="letters, digits, '-', '_' or '.'")
    title: str = Field("", max_length=200)


def router(service: Service) -> APIRouter:
    """The page and its API, for a server whose settings carry an admin key."""
    key = service.settings.admin_key
    assert key is not None
    admin = Admin(key)
    routes = APIRouter(include_in_schema=False)

    def authorized(request: Request, change: bool = False) -> None:
        """401 without the admin key (429 after too many wrong ones, as for API keys); for a change, 403
        without this server's CSRF token or from another origin."""
        address = request.client.host if request.client else "unknown"
        service.refuse_guessing(address)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not valid_key(given.strip(), [key]):
            service.failed_key(address)
            raise ApiError(401, "the management API needs `Authorization: Bearer <WENDA_ADMIN_KEY>`", "key", "auth")
        if not change:
            return
        if not hmac.compare_digest(request.headers.get("x-csrf-token", "").encode(), admin.csrf().encode()):
            raise ApiError(403, "a change needs the X-CSRF-Token of GET /admin/api/session", "csrf", "forbidden")
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
            raise ApiError(403, f"a change from another origin ({origin}) is refused", "origin", "forbidden")

    def bases() -> dict[str, KnowledgeBase]:
        """The server's knowledge bases; a single-corpus server's one is `default`."""
        if service.bases:
            return service.bases
        settings = service.retriever.settings
        return {DEFAULT: KnowledgeBase(DEFAULT, settings.corpus, settings.index_dir)}

    def base_of(name: str) -> KnowledgeBase:
        found = bases().get(name)
        if found is None:
            raise ApiError(404, f"no knowledge base {name!r}; this server has: {', '.join(bases())}", "kb", "not_found")
        return found

    def retriever_name(base: KnowledgeBase) -> str | None:
        """How `Retrievers` names a knowledge base: None for the one the server opened first."""
        return None if base.name == (service.first or DEFAULT) else base.name

    def describe(base: KnowledgeBase) -> dict:
        row = knowledge.status(base)
        files: list[dict] = []
        indexed: set[str] = set()
        if row["status"] == "ready":
            try:
                snapshot = service.retrievers.get(
                    None if base.name == (service.first or DEFAULT) else base.name
                ).snapshot
                files = snapshot.account()
                indexed = {entry["source"] for entry in files}
            except WendaError as exc:
                row["status"] = f"unavailable: {exc}"
        if base.corpus.is_dir():  # uploaded or dropped in since the last build
            for path in discover(base.corpus):
                source = path.relative_to(base.corpus).as_posix()
                if source not in indexed:
                    files.append({"source": source, "status": "new", "passages": 0})
        with admin.lock:
            build = asdict(admin.builds.get(base.name, Build()))
        return {**row, "managed": base.managed, "documents": files, "build": build}

    def builds(base: KnowledgeBase, build: Build) -> None:
        """Build, and build again while changes arrived during the last build (the page asks after each upload
        and deletion); the page sees "running" until the last one is over."""
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # a background job, as `wenda index` is
        while True:
            failed = not run_build(base, build)
            with admin.lock:
                if failed or not build.again:
                    build.state = "failed" if failed else "done"
                    return
                build.again, build.embedded, build.to_embed = False, 0, 0

    def run_build(base: KnowledgeBase, build: Build) -> bool:
        """One build of `base`, its outcome in `build.message`; False when it failed."""
        settings = replace(
            service.retriever.settings, corpus=base.corpus, index_dir=base.index_dir, metadata_rules=base.metadata
        )

        def progress(done: int, total: int) -> None:
            build.embedded, build.to_embed = done, total

        try:
            report = build_index(
                settings, service.retriever.embedder, progress=False, warn=build.warnings.append, on_progress=progress
            )
            service.retrievers.get(retriever_name(base)).refresh()  # calibrated and live before the page says done
        except (WendaError, OSError) as exc:
            build.message = str(exc)
            log.error("build of %s failed: %s", base.name, exc)
            return False
        build.message = (
            f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed; "
            f"{report.embedded_chunks} passages embedded, {report.total_chunks} in all"
        )
        return True

    @routes.get("/admin")
    async def page() -> FileResponse:
        headers = {"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff"}
        return FileResponse(STATIC / "admin.html", headers=headers)

    @routes.get(PREFIX + "session")
    async def session(request: Request) -> dict:
        authorized(request)
        return {"csrf": admin.csrf()}

    @routes.get(PREFIX + "kbs")
    async def list_bases(request: Request) -> dict:
        authorized(request)
        loop = asyncio.get_running_loop()
        rows = [await loop.run_in_executor(service.executor, describe, base) for base in list(bases().values())]
        return {"kbs": rows}

    @routes.post(PREFIX + "kbs", status_code=201)
    async def create(body: CreateRequest, request: Request) -> dict:
        authorized(request, change=True)
        try:
            base = await asyncio.to_thread(knowledge.create, body.name, body.title)
        except UsageError as exc:
            raise ApiError(409 if "exists" in str(exc) else 422, str(exc), "name") from exc
        if not service.bases:  # a single-corpus server now serves two: its own is `default`
            service.bases[DEFAULT] = bases()[DEFAULT]
            service.first = DEFAULT
        service.bases[base.name] = base
        return {"created": base.name}

    @routes.delete(PREFIX + "kbs/{name}")
    async def remove_base(name: str, request: Request) -> dict:
        authorized(request, change=True)
        base = base_of(name)
        if (admin.builds.get(name) or Build()).state == "running":
            raise ApiError(409, f"{name!r} is being built; delete it when the build is over", "kb", "busy")
        try:
            await asyncio.to_thread(knowledge.delete, name)
        except UsageError as exc:
            raise ApiError(409, str(exc), "kb", "forbidden") from exc
        service.bases.pop(base.name, None)
        service.retrievers.forget(base.name)
        return {"deleted": name}

    @routes.put(PREFIX + "kbs/{name}/files/{filename:path}")  # a path is cut to its last part, as `wenda add` does
    async def upload(name: str, filename: str, request: Request) -> dict:
        authorized(request, change=True)
        base = base_of(name)
        data = await request.body()
        if not data:
            raise ApiError(422, "an empty upload: send the document's bytes as the request body", "body")

        def save() -> dict:
            base.corpus.mkdir(parents=True, exist_ok=True)
            try:
                indexed = live_manifest(base.index_dir).get("files", {}) if base.index_dir.is_dir() else {}
            except WendaError:
                indexed = {}
            admitted = admit(base.corpus, data, filename, digests(base.corpus, indexed))
            return {"source": admitted.source, "title": admitted.title}

        try:
            return await asyncio.get_running_loop().run_in_executor(service.executor, save)
        except WendaError as exc:
            raise ApiError(422, str(exc), "file", "refused") from exc

    @routes.delete(PREFIX + "kbs/{name}/files/{source:path}")
    async def remove_file(name: str, source: str, request: Request) -> dict:
        authorized(request, change=True)
        base = base_of(name)
        corpus = base.corpus.resolve()
        path = (base.corpus / source).resolve()
        if corpus not in path.parents or path.is_symlink() or not path.is_file():
            raise ApiError(404, f"no document {source!r} in {name!r}", "source", "not_found")
        path.unlink()
        return {"deleted": source}

    @routes.post(PREFIX + "kbs/{name}/build", status_code=202)
    async def start_build(name: str, request: Request) -> dict:
        authorized(request, change=True)
        base = base_of(name)
        with admin.lock:
            running = admin.builds.get(name)
            if running is not None and running.state == "running":
                running.again = True  # what changed since it started is built right after it
                return asdict(running)
            build = admin.builds[name] = Build(state="running")
        threading.Thread(target=builds, args=(base, build), name=f"build-{name}", daemon=True).start()
        return asdict(build)

    @routes.get(PREFIX + "kbs/{name}/build")
    async def build_state(name: str, request: Request) -> dict:
        authorized(request)
        base_of(name)
        return asdict(admin.builds.get(name) or Build())

    return routes
