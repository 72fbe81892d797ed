"""`wenda serve` settings: flags first, then WENDA_SERVE_* variables and WENDA_API_KEYS; every default here."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from wenda.index.errors import UsageError
from wenda.index.knowledge import key_scopes
from wenda.index.network import loopback

from ..privacy import data_dir_from_env, log_questions

DEFAULT_HOST = "127.0.0.1"  # loopback: nothing outside the machine can reach it unless asked to
DEFAULT_PORT = 8000
# Per API key (or per client address without keys): a busy script, not a person, goes past this.
DEFAULT_RATE_LIMIT = 120
# A question is at most 1,000 characters and a conversation 20 turns: 64 KB is ample, and it bounds what a
# client can make the server hold.
DEFAULT_MAX_BODY_KB = 64
# Documents uploaded on the management page: a long scanned PDF, not a disk's worth.
DEFAULT_MAX_UPLOAD_MB = 50
MIN_ADMIN_KEY = 16  # the management page can delete knowledge bases: no short, guessable key
WORKERS = 2  # questions answered at once: one per core of a small box (each uses the cores free at the time)


def _number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class ServeSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_keys: frozenset[str] = frozenset()  # WENDA_API_KEYS: empty means no key is asked for (loopback only)
    cors_origins: tuple[str, ...] = ()  # WENDA_SERVE_CORS_ORIGINS: none means no cross-origin browser access
    rate_limit: int = DEFAULT_RATE_LIMIT  # requests per key (or client address) per minute
    max_body_bytes: int = DEFAULT_MAX_BODY_KB * 1024
    data_dir: Path = Path(".wenda-data")  # feedback from the web page goes where the bot's goes
    log_questions: bool = False
    # WENDA_SERVE_ALLOWED_HOSTS: names besides localhost, 127.0.0.1 and [::1] that a keyless server answers to
    allowed_hosts: tuple[str, ...] = ()
    # WENDA_SERVE_TRUSTED_PROXIES: addresses whose X-Forwarded-For is believed; none: the peer's own address
    trusted_proxies: tuple[str, ...] = ()
    # keys limited to knowledge bases ([keys.NAME] in WENDA_CONFIG), by the key's SHA-256: what each may use
    key_scopes: dict[str, frozenset[str]] = field(default_factory=dict)
    # WENDA_ADMIN_KEY: the management page (/admin) and its API; none means they do not exist
    admin_key: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024  # WENDA_ADMIN_MAX_UPLOAD_MB

    @classmethod
    def from_env(cls, host: str | None = None, port: int | None = None) -> ServeSettings:
        env = os.environ
        scoped = key_scopes(env)
        keys = frozenset(key.strip() for key in env.get("WENDA_API_KEYS", "").split(",") if key.strip()) | set(scoped)
        origins = _list(env.get("WENDA_SERVE_CORS_ORIGINS", ""))
        settings = cls(
            host=host or env.get("WENDA_SERVE_HOST", "").strip() or DEFAULT_HOST,
            port=port if port is not None else _number("WENDA_SERVE_PORT", DEFAULT_PORT),
            api_keys=keys,
            cors_origins=origins,
            rate_limit=_number("WENDA_SERVE_RATE_LIMIT", DEFAULT_RATE_LIMIT),
            max_body_bytes=_number("WENDA_SERVE_MAX_BODY_KB", DEFAULT_MAX_BODY_KB) * 1024,
            data_dir=data_dir_from_env(),
            log_questions=log_questions(),
            allowed_hosts=_list(env.get("WENDA_SERVE_ALLOWED_HOSTS", "")),
            trusted_proxies=_list(env.get("WENDA_SERVE_TRUSTED_PROXIES", "")),
            key_scopes={hashlib.sha256(key.encode()).hexdigest(): kbs for key, kbs in scoped.items()},
            admin_key=env.get("WENDA_ADMIN_KEY", "").strip() or None,
            max_upload_bytes=_number("WENDA_ADMIN_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB) * 1024 * 1024,
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse to serve beyond this machine without API keys."""
        if not self.api_keys and not loopback(self.host):
            raise UsageError(
                f"refusing to listen on {self.host} without API keys: anyone who can reach it could use it. "
                "Set WENDA_API_KEYS=key1,key2 (clients send `Authorization: Bearer key1`), or listen on 127.0.0.1 "
                "behind a reverse proxy that checks access"
            )
        if self.admin_key is not None and len(self.admin_key) < MIN_ADMIN_KEY:
            raise UsageError(f"WENDA_ADMIN_KEY must be at least {MIN_ADMIN_KEY} characters: it can delete documents")
        if self.admin_key is not None and self.admin_key in self.api_keys:
            raise UsageError("WENDA_ADMIN_KEY must differ from every API key: clients must not manage the corpus")
        if not 0 <= self.port < 65536:
            raise UsageError(f"--port must be 0–65535 (0: any free port), got {self.port}")
