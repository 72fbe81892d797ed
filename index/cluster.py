"""Embedding a build's cache misses on a Ray cluster (`wenda index --ray`): Ray Data streams the texts to an
actor pool, one model per actor, and the vectors back into the embedding cache as each block completes. The
builder then writes the generation from the cache exactly as a local build does (docs/scale-out.md)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .cache import EmbeddingCache
from .config import Settings
from .embeddings import BUILTIN, create_embedder
from .errors import WendaError
from .network import loopback
from .scratch import PendingTexts

LOCAL = None  # no address: a Ray instance of this machine alone, on loopback, for the build's duration
CONNECT_TIMEOUT = 5.0  # seconds: a reachable head answers a TCP connect at once; fail fast on anything else
# Texts sent to the cluster at a time: the driver holds a window, not the corpus (~30 MB of text), while each
# window is hours of work for one actor and seconds for a cluster, so restarting the actor pool for each costs
# little next to the embedding (a model load per actor and window).
WINDOW = 50_000
BATCHES_PER_BLOCK = 4  # rows per block = 4 batches: a few seconds of work, the unit resumed after a kill

# Defaults, computed in `plan` from the cluster's resources:
# - CPU workers run the built-in engine with 2 threads each: on this 2-core machine one 2-thread actor and two
#   1-thread actors embedded 20,000 news paragraphs equally fast (1,389 s and 1,354 s, within this machine's noise;
#   docs/scale-out.md), and every actor holds its own model (~300 MB resident), so fewer, wider actors use less
#   memory for the same speed; wider still would leave cores idle on small nodes.
# - GPU workers (a sentence-transformers model, e.g. the one `wenda export-model` writes) get one GPU each and
#   batches of 256: a small encoder needs large batches to keep a GPU busy, and one process per GPU avoids
#   sharing its memory between models.
CPU_THREADS_PER_ACTOR = 2
CPU_BATCH = 32  # the passage engine runs each text alone: the batch only sets how often a block is checkpointed
GPU_BATCH = 256


@dataclass(frozen=True)
class RayOptions:
    """What the user asked for; None means: computed from the cluster (`plan`)."""

    address: str | None = LOCAL
    actors: int | None = None
    cpus_per_actor: float | None = None
    gpus_per_actor: float | None = None
    batch_size: int | None = None


@dataclass(frozen=True)
class Plan:
    """The actor pool a build runs: how many actors, what each holds, rows per batch."""

    actors: int
    cpus: float
    gpus: float
    batch_size: int

    def describe(self) -> str:
        per_actor = f"{self.cpus:g} CPU" + (f" + {self.gpus:g} GPU" if self.gpus else "")
        return f"{self.actors} actor{'s' if self.actors != 1 else ''} × {per_actor}, batches of {self.batch_size}"


def plan(nodes: list[dict[str, float]], options: RayOptions, builtin: bool) -> Plan:
    """The actor pool for nodes with these resources ({"CPU": …, "GPU": …} each): flags win, defaults fit the
    cluster (see the comment on CPU_THREADS_PER_ACTOR). An actor cannot span nodes, so counts are per node."""
    gpus_in_cluster = sum(node.get("GPU", 0.0) for node in nodes)
    on_gpu = options.gpus_per_actor is not None and options.gpus_per_actor > 0
    if options.gpus_per_actor is None and not builtin and gpus_in_cluster >= 1:
        on_gpu = True
    if on_gpu and builtin:
        raise WendaError(
            "the built-in engine runs on CPUs only: for GPU workers give a sentence-transformers model "
            "(`wenda export-model DIR`, then WENDA_EMBEDDING_MODEL=DIR), or leave out --ray-gpus"
        )
    if on_gpu:
        gpus = options.gpus_per_actor or 1.0
        cpus = options.cpus_per_actor or 1.0  # tokenizing and feeding the GPU
        fits = sum(min(math.floor(n.get("GPU", 0.0) / gpus), math.floor(n.get("CPU", 0.0) / cpus)) for n in nodes)
        batch = options.batch_size or GPU_BATCH
    else:
        gpus = 0.0
        largest = max((node.get("CPU", 0.0) for node in nodes), default=0.0)
        cpus = options.cpus_per_actor or max(1.0, min(float(CPU_THREADS_PER_ACTOR), largest))
        fits = sum(math.floor(node.get("CPU", 0.0) / cpus) for node in nodes)
        batch = options.batch_size or CPU_BATCH
    actors = options.actors or fits
    if fits < 1 or actors > fits:  # Ray would wait for the missing actors for ever
        need = f"{gpus:g} GPU and {cpus:g} CPU" if gpus else f"{cpus:g} CPU"
        raise WendaError(
            f"the Ray cluster has room for {fits} embedding actor{'s' if fits != 1 else ''} of {need} each, "
            f"not {actors or 1}; add workers, or lower --ray-actors, --ray-cpus or --ray-gpus"
        )
    return Plan(actors=actors, cpus=cpus, gpus=gpus, batch_size=batch)


def identity_key(identity: dict) -> str:
    """A short fingerprint of a model identity (as the embedding cache writes it), returned with every vector so
    the driver can check that the workers run its model."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def actor_class(settings: Settings, threads: int, device: str) -> type:
    """The Ray Data callable class for these settings. Settings travel inside the class (pickled by value), not
    as constructor arguments, which Ray would keep in the object store for restarts."""
    model, query_prefix, passage_prefix = settings.embedding_model, settings.query_prefix, settings.passage_prefix
    engine = settings.embedding_engine
    if Path(model).expanduser().exists():  # a model folder: workers look for it at the same absolute path
        model = str(Path(model).expanduser().resolve())

    class EmbeddingActor:
        """Loads the model once, then embeds batch after batch."""

        def __init__(self) -> None:
            self.embedder = create_embedder(model, query_prefix, passage_prefix, device, engine)
            self.embedder.use_threads(threads)
            self.identity = identity_key(self.embedder.signature())

        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            vectors = self.embedder.embed_passages([str(text) for text in batch["text"]])
            return {"i": batch["i"], "vector": vectors, "model": np.full(len(vectors), self.identity)}

    return EmbeddingActor


def is_loopback(address: str) -> bool:
    return loopback(host_port(address)[0])


def host_port(address: str) -> tuple[str, int]:
    """(host, port) of "host:port", "[v6]:port" or "ray://host:port"; WendaError when it is neither."""
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise WendaError(
            f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379), 'auto', or empty for a local cluster"
        )
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """Fail in seconds, naming the address, when nothing listens there (Ray itself retries for a minute)."""
    host, port = host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {CONNECT_TIMEOUT:g} s"
        raise WendaError(
            f"cannot reach the Ray cluster at {address} ({reason}); start its head with `ray start --head` "
            "and give the address it prints (--ray ADDRESS or WENDA_RAY_ADDRESS), or leave the address out "
            "for a local cluster"
        ) from exc


def import_ray(address: str | None):  # noqa: ANN201 - the ray module, imported only for Ray builds
    """Ray, set up for `address`; the clusters it starts send no usage statistics. A cluster on loopback needs
    Ray to keep 127.0.0.1 as this node's address, which it does only where multi-node clusters are off
    (otherwise it swaps in the machine's interface address, where a loopback-only cluster does not listen);
    that switch is read when Ray is imported."""
    if address is None or (address != "auto" and is_loopback(address)):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Wenda works offline: no reports to Ray's servers
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise WendaError("building on Ray needs the Ray extra: pip install 'wenda[ray]'") from exc
    return ray


class RayEmbedding:
    """Fills an embedding cache on a Ray cluster; passed to `build_index` as its `remote`."""

    def __init__(self, settings: Settings, options: RayOptions) -> None:
        self.settings = settings
        self.options = options
        if options.address not in (LOCAL, "auto"):
            check_reachable(options.address)  # before the corpus is read, which can take a while
        self.where = {LOCAL: "a local Ray cluster", "auto": "this machine's Ray cluster"}.get(
            options.address, f"the Ray cluster at {options.address}"
        )
        self.description = self.where  # and, once a build ran, the actor pool it used

    def fill(self, pending: PendingTexts, cache: EmbeddingCache, progress: bool) -> int:
        """Embed the pending texts without an intact vector in `cache` on the cluster, storing each block's vectors
        as it arrives; return how many were embedded. The texts go to the cluster a window at a time, so the driver
        holds one window, whatever the corpus. Nothing is started when every text is cached."""
        windows = ((texts, cache.missing(texts)) for _, texts in pending.batches(WINDOW))  # looked up when sent
        cached = 0
        for texts, missing in windows:
            if missing:
                first = (texts, missing)
                break
            cached += len(texts)
        else:
            return 0
        ray = self._connect()
        embedded = 0
        try:
            nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
            chosen = plan(nodes, self.options, self.settings.embedding_model == BUILTIN)
            self.description = f"{self.where} ({chosen.describe()})"
            expected = identity_key(json.loads(cache.model))
            bar = tqdm(total=len(pending), initial=cached, desc="embedding on Ray", unit="chunk", disable=not progress)
            with bar:
                for texts, missing in chain([first], windows):
                    for batch in self._vectors(ray, texts, missing, chosen):
                        if set(batch["model"]) != {expected}:
                            raise WendaError(
                                "the Ray workers load a different embedding model (or version) than this machine: "
                                f"install the same Wenda and model on every node ({self.settings.embedding_model})"
                            )
                        cache.put([texts[i] for i in batch["i"]], batch["vector"])
                        bar.update(len(batch["i"]))
                    embedded += len(missing)
                    bar.update(len(texts) - len(missing))
        finally:
            ray.shutdown()
        return embedded

    def _connect(self):  # noqa: ANN202 - the ray module, connected
        address = self.options.address
        ray = import_ray(address)
        quiet = {"logging_level": logging.ERROR, "log_to_driver": True}  # not Ray's notes on each build
        try:
            if address is LOCAL:
                ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, **quiet)
            else:
                ray.init(address=address, **quiet)
        except ConnectionError as exc:  # "auto" with no cluster on this machine, or a token refused
            if address == "auto":
                raise WendaError(
                    f"no Ray cluster runs on this machine ({exc}); start one with `ray start --head`, or give "
                    "the head's address"
                ) from exc
            raise WendaError(
                f"cannot join the Ray cluster at {address} ({exc}); a cluster that `ray start --head` started asks "
                "for its token: copy it from the head (`ray get-auth-token`) to ~/.ray/auth_token here and set "
                "RAY_AUTH_MODE=token"
            ) from exc
        except RuntimeError as exc:  # e.g. another Ray version on the cluster
            raise WendaError(f"cannot join {self.where}: {exc}") from exc
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # Wenda shows one bar for the whole build
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        return ray

    def _vectors(self, ray, texts: list[str], missing: list[int], chosen: Plan) -> Iterator[dict]:  # noqa: ANN001
        """Blocks of {"i", "vector", "model"} as the actors finish them, in any order."""
        import pyarrow as pa

        rows = chosen.batch_size * BATCHES_PER_BLOCK
        blocks = [
            pa.table({"i": missing[begin : begin + rows], "text": [texts[i] for i in missing[begin : begin + rows]]})
            for begin in range(0, len(missing), rows)
        ]
        device = "cuda" if chosen.gpus else "cpu"
        threads = max(1, math.floor(chosen.cpus))
        dataset = ray.data.from_arrow(blocks).map_batches(
            actor_class(self.settings, threads, device),
            batch_size=chosen.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=chosen.actors),
            num_cpus=chosen.cpus,
            num_gpus=chosen.gpus or None,
        )  # Ray Data restarts an actor that dies and retries its blocks (max_restarts/max_task_retries -1)
        try:
            yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
        except ray.exceptions.RayError as exc:
            raise WendaError(f"embedding on {self.where} failed: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    """The innermost cause's message, not Ray's whole remote traceback."""
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(cause).__name__
