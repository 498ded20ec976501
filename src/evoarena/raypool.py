"""Ray, the optional extra (``pip install 'evoarena[ray]'``): sessions, island actors, fan-out.

Nothing else imports Ray: :func:`import_ray` loads it on first use, with a clear error when the
extra is missing. :func:`ray_session` starts Ray in-process on this machine's cores, or joins a
cluster at ``address`` (``ray start --head`` / ``ray start --address``); when Ray is already
initialised in this process (a test's shared instance) it is used as it is and left running.

Work reaches workers as arguments (settings, genomes) and recordings *by path*: every node must
see them at the same path (shared storage). State directories are written by the workers, so
they too must be on storage the driver and every worker mount at the same path.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import structlog

from evoarena.errors import EvoarenaError, UserError
from evoarena.evolution.islands import BarrierReport, FinalReport, IslandHost, IslandsPlan

log = structlog.get_logger(__name__)

INSTALL_HINT = "pip install 'evoarena[ray]' (or: make install, which includes it)"


def import_ray() -> Any:
    """The ``ray`` module; :class:`UserError` when the extra is not installed."""
    try:
        return importlib.import_module("ray")
    except ImportError as e:
        msg = f"this needs Ray, an optional extra that is not installed: {INSTALL_HINT} ({e})"
        raise UserError(msg) from e


LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch between cluster mode (every service on the node's network address) and a
single-machine instance bound to the loopback interface (its default on macOS and Windows)."""


def local_only() -> None:
    """Make a Ray instance started by this process listen on 127.0.0.1 only.

    A local run needs no port reachable from the network. Ray reads the switch when it is
    imported, so this acts only before the first ``import ray`` (and an explicit setting wins).
    """
    os.environ.setdefault(LOCAL_ONLY_ENV, "0")


CONNECT_TIMEOUT_SECS = 10.0


def check_reachable(address: str) -> None:
    """:class:`UserError` naming ``--ray-address`` when nothing listens at ``host:port``.

    ``ray.init`` keeps retrying an address where no cluster runs (minutes, not a message).
    Other forms (``auto``, ``ray://`` client addresses) are left to Ray.
    """
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        msg = f"--ray-address {address}: expected HOST:PORT (of `ray start --head`), or auto"
        raise UserError(msg)
    try:
        socket.create_connection(
            (host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_SECS
        ).close()
    except OSError as e:
        msg = (
            f"--ray-address {address}: cannot reach a Ray cluster there ({e.strerror or e}); "
            "is `ray start --head` running on that node, and the port open to this one?"
        )
        raise UserError(msg) from e


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray, initialised for the block: in-process with ``num_cpus`` (default: this machine's
    cores) without ``address``, else joined to the cluster there. Yields the ``ray`` module."""
    if address is None:
        local_only()
    else:
        check_reachable(address)
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        if address is None:
            ray.init(
                address="local",
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        msg = f"cannot start or join {where}: {e}"
        raise UserError(msg) from e
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_cpus(ray: Any) -> int:
    """Whole CPUs the session offers (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def get(ray: Any, refs: Any, what: str) -> Any:
    """``ray.get(refs)``, with a worker's own error re-raised as itself (a :class:`UserError`
    keeps its message and exit code) and a lost worker reported in one line."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, EvoarenaError):
            raise cause from None
        msg = f"{what}: a worker failed: {type(cause).__name__}: {cause}"
        raise EvoarenaError(msg) from None
    except ray.exceptions.RayActorError as e:
        msg = (
            f"{what}: a worker process was lost ({type(e).__name__}); every state file written "
            "is complete: run the same command again to resume"
        )
        raise EvoarenaError(msg) from None


class RayIslandPool:
    """Islands on Ray actors: ``workers`` actors of one CPU each, island ``k`` on actor
    ``k mod workers`` (an actor computes one of its islands at a time)."""

    def __init__(self, ray: Any, plan: IslandsPlan, workers: int) -> None:
        self.ray = ray
        self.count = len(plan.islands)
        self.workers = max(1, min(workers, self.count))
        actor = ray.remote(num_cpus=1)(IslandHost)
        self.hosts = [actor.remote(plan) for _ in range(self.workers)]
        try:
            get(ray, [h.check_recordings.remote() for h in self.hosts], "checking the recordings")
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        starts = [
            h.start.remote(list(range(w, self.count, self.workers)))
            for w, h in enumerate(self.hosts)
        ]
        get(self.ray, starts, "starting the islands")

    def _all(self, refs: list[Any], what: str) -> list[Any]:
        out = [item for part in get(self.ray, refs, what) for item in part]
        return sorted(out, key=lambda r: int(r.index))

    def wait_barrier(self, generation: int) -> list[BarrierReport]:
        refs = [h.wait_barrier.remote(generation) for h in self.hosts]
        return self._all(refs, f"islands at the barrier before generation {generation}")

    def release(self, generation: int, incoming: dict[int, list[dict[str, Any]]]) -> None:
        refs = [h.release.remote(generation, incoming) for h in self.hosts]
        get(self.ray, refs, f"migrants for generation {generation}")

    def finish(self) -> list[FinalReport]:
        return self._all([h.finish.remote() for h in self.hosts], "islands finishing")

    def usage(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = get(self.ray, [h.usage.remote() for h in self.hosts], "usage")
        return out

    def close(self) -> None:
        """Release the actors (their CPUs; islands still replaying are stopped)."""
        for h in self.hosts:
            self.ray.kill(h)


def fan_out(
    ray: Any, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], what: str
) -> list[Any]:
    """``[fn(*args) for args in calls]`` as Ray tasks of one CPU each, results in order."""
    task = ray.remote(num_cpus=1)(fn)
    return list(get(ray, [task.remote(*args) for args in calls], what))
