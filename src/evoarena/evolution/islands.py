"""Island-model evolution: K populations over the same recordings, with migration in a ring.

Each island is an ordinary replay (:func:`~evoarena.replayer.run_replay`) of the recordings,
start to end, into its own state directory ``DIR/island_NN`` (the seeds' format), seeded with
:func:`island_seed` of the run's seed and its index, optionally with its own settings. Every
``migrate_every`` generations the islands meet at a **barrier** before breeding generation
``b`` (the runner's ``on_breed`` hook pauses each replay there):

1. once every island has saved generation ``b - 1`` (or ended: its recordings ran out), the
   driver takes the ``migrants`` best genomes of each island's generation ``b - 1`` (by fitness,
   population order breaking ties, one per gene hash) for the next island in the ring
   (``k → k+1``, the last to the first);
2. the islands go on: each writes its migrants into its ``immigrants.json`` (its own replay
   is the only writer of its directory), then replaces the last genomes bred for generation
   ``b`` (the random immigrants, then the last offspring; never the elites) with clones of
   them, ids drawn from ``random.Random("evoarena:<island seed>:migrants:<b>")``.

The migrants of a barrier are a function of the generation files before it, so the result does
not depend on how many workers ran the islands, nor on where a run was killed: rerunning the same
command resumes every island as replay resumes, repeats the barriers already passed from the
files (an island finds its migrants in ``immigrants.json`` and does not wait) and continues.
Without migration (one island, or ``migrants == 0``) an island's files are exactly a replay's.
``DIR/islands.json`` records the run's parameters, the migration log and the generations each
island ends with; ``DIR/hall_of_fame.json`` is the islands' halls of fame merged
(:func:`~evoarena.evolution.hof_merge.merge_halls`, each entry's ``origin_run`` the island's
directory name).

:class:`IslandHost` runs islands in whichever process holds it: the driver itself
(``--workers 0``) or a Ray actor (:mod:`evoarena.raypool`), which is why it takes and returns
plain data.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import structlog

from evoarena.errors import StateError, StateLockedError, UserError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome, new_genome_id
from evoarena.evolution.hof_merge import merge_halls
from evoarena.evolution.operators import rank_indices
from evoarena.evolution.persistence import SCHEMA_VERSION
from evoarena.replayer import run_replay
from evoarena.settings import Settings
from evoarena.statedir import state_dir_lock

log = structlog.get_logger(__name__)

ISLANDS_FILE = "islands.json"
IMMIGRANTS_FILE = "immigrants.json"
ISLANDS_FORMAT = 1
LOCK_WAIT_SECS = 20.0
_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def island_seed(seed: int, index: int) -> int:
    """Island ``index``'s evolution seed: 31 bits of SHA-256 of ``evoarena:<seed>:island:<k>``."""
    digest = hashlib.sha256(f"evoarena:{seed}:island:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def island_name(index: int) -> str:
    """The island's directory name under the run's directory: ``island_00``, ``island_01``…"""
    return f"island_{index:02d}"


@dataclass(frozen=True, slots=True)
class IslandSpec:
    """One island: its index and complete settings (its seed and state directory set)."""

    index: int
    settings: Settings
    config: str | None = None
    """The settings file it was given (recorded in ``islands.json``), or ``None``."""


@dataclass(frozen=True, slots=True)
class IslandsPlan:
    """What an islands run is: the same plan into the same directory gives the same files."""

    recordings: tuple[Path, ...]
    islands: tuple[IslandSpec, ...]
    root: Path
    seed: int
    migrate_every: int
    migrants: int
    generations: int | None = None
    skip_bad: bool = False
    checkpoint_every_ticks: int | None = None
    hall_of_fame_size: int = 20

    def identity(self) -> dict[str, Any]:
        """The parameters a rerun must repeat (``generations`` may change)."""
        return {
            "islands_format": ISLANDS_FORMAT,
            "islands": len(self.islands),
            "seed": self.seed,
            "migrate_every": self.migrate_every,
            "migrants": self.migrants,
            "island_seeds": [s.settings.evolution.seed for s in self.islands],
            "island_configs": [s.config for s in self.islands],
            "recordings": [p.name for p in self.recordings],
        }


def check_plan(plan: IslandsPlan) -> None:
    """:class:`UserError` naming the flag or setting when the plan cannot run."""
    if not plan.islands:
        raise UserError("--islands must be at least 1")
    if plan.migrate_every < 1:
        raise UserError("--migrate-every must be at least 1")
    if plan.migrants < 0:
        raise UserError("--migrants must be 0 or more")
    if plan.generations is not None and plan.generations < 1:
        raise UserError("--generations must be at least 1")
    for spec in plan.islands:
        ev = spec.settings.evolution
        room = ev.population_size - ev.elite_count
        if plan.migrants > room:
            msg = (
                f"--migrants {plan.migrants}: island {spec.index} has room for {room} "
                f"(its [evolution] population_size {ev.population_size} minus elite_count "
                f"{ev.elite_count}; migrants never replace elites)"
            )
            raise UserError(msg)


# -- migration ------------------------------------------------------------------------------------


def top_genomes(state_dir: Path, generation: int, count: int) -> list[dict[str, Any]]:
    """The ``count`` best genomes of a saved generation, one per gene hash, best first, as
    ``{"genome", "fitness"}`` (fitness ties keep population order)."""
    doc = persistence.load_generation(generation, state_dir=state_dir)
    if doc is None:
        msg = f"{state_dir / persistence.generation_file_name(generation)}: missing"
        raise StateError(msg)
    genomes = [Genome.from_dict(g) for g in doc["genomes"]]
    fitness = [float(f) for f in doc["fitness_scores"]]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in rank_indices(fitness):
        if len(out) >= count:
            break
        if genomes[i].gene_hash in seen:
            continue
        seen.add(genomes[i].gene_hash)
        out.append({"genome": genomes[i].to_dict(), "fitness": fitness[i]})
    return out


def inject_migrants(
    bred: list[Genome], migrants: Sequence[Genome], generation: int, seed: int
) -> list[Genome]:
    """``bred`` with its last ``len(migrants)`` genomes replaced by clones of ``migrants``.

    The clones keep the migrants' genes, take ``generation`` and ``parent_ids = [migrant id]``,
    and get ids from ``random.Random("evoarena:<seed>:migrants:<generation>")`` that no kept
    genome uses. (Bred order is elites, offspring, immigrants: the random immigrants go first.)
    """
    if not migrants:
        return bred
    keep = bred[: max(0, len(bred) - len(migrants))]
    rng = random.Random(f"evoarena:{seed}:migrants:{generation}")
    taken = {g.id for g in keep}
    clones = []
    for m in migrants:
        clone = m.clone(rng, generation)
        while clone.id in taken:
            clone.id = new_genome_id(rng)
        taken.add(clone.id)
        clones.append(clone)
    return [*keep, *clones]


def where() -> str:
    """``host:pid`` of this process (for messages)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_readable(recordings: Sequence[Path]) -> None:
    """:class:`UserError` naming the first recording this process cannot read, and where."""
    for path in recordings:
        try:
            with Path(path).open("rb") as fh:
                fh.read(1)
        except OSError as e:
            msg = (
                f"{path}: cannot read this recording on worker {where()}: "
                f"{e.strerror or e}. Recordings reach workers by path: put them on storage "
                "every node mounts at the same path, and pass that path"
            )
            raise UserError(msg) from e


# -- one island ------------------------------------------------------------------------------------


@dataclass(slots=True)
class BarrierReport:
    """An island at a barrier (plain data: it crosses processes)."""

    index: int
    top: list[dict[str, Any]] | None
    """Its best genomes of the generation before the barrier; ``None`` when it ended before
    finishing that generation (its recordings ended)."""
    hall_of_fame: dict[str, Any] | None


@dataclass(slots=True)
class FinalReport:
    """An island at the end of the run."""

    index: int
    generations: int
    """Generations its state directory holds."""
    hall_of_fame: dict[str, Any] | None


class IslandAbortedError(Exception):
    """Raised inside an island's replay when the run is abandoned (another island failed)."""


class _Island:
    """One island's replay in a thread of its host, pausing at each barrier."""

    def __init__(self, host: IslandHost, spec: IslandSpec) -> None:
        self.host = host
        self.spec = spec
        self.state_dir = Path(spec.settings.state.dir)
        self.finished = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._main, name=f"evoarena-{island_name(spec.index)}", daemon=True
        )

    def _main(self) -> None:
        host = self.host
        try:
            self._wait_for_lock()
            with host.baton:
                run_replay(
                    host.recordings,
                    self.spec.settings,
                    skip_bad=host.skip_bad,
                    max_generations=host.generations,
                    checkpoint_every_ticks=host.checkpoint_every_ticks,
                    on_breed=self._breed,
                )
        except BaseException as e:  # handed to the driver, which re-raises it
            self.error = e
        finally:
            with host.changed:
                self.finished = True
                host.changed.notify_all()

    def _wait_for_lock(self) -> None:
        """A rerun right after a killed driver can find the island still locked by the old
        run's worker, which Ray is stopping: wait for it a little, then let the replay say."""
        deadline = time.monotonic() + LOCK_WAIT_SECS
        while True:
            try:
                with state_dir_lock(self.state_dir):
                    return
            except StateLockedError:
                if time.monotonic() >= deadline:
                    return
                log.info("island_locked_waiting", island=island_name(self.spec.index))
                time.sleep(0.25)

    def _breed(self, generation: int, bred: list[Genome]) -> list[Genome]:
        """The runner's ``on_breed``: at a barrier, wait (baton released) for the driver."""
        host = self.host
        if host.is_barrier(generation):
            with host.changed:
                host.changed.notify_all()  # the generation before the barrier is saved
        # A rerun finds the migrants of barriers already passed in the file: no need to wait.
        if host.is_barrier(generation) and generation not in load_immigrants(self.state_dir):
            host.baton.release()
            try:
                with host.changed:
                    while generation not in host.released and not host.aborted:
                        host.changed.wait()
            finally:
                host.baton.acquire()
            if host.aborted:
                raise IslandAbortedError(island_name(self.spec.index))
            # Written here, by the island's own replay (which holds its directory and clears
            # stray temp files there at start), before they join the population.
            arrived = host.released[generation].get(self.spec.index, [])
            record_immigrants(self.state_dir, generation, arrived)
        arriving = load_immigrants(self.state_dir).get(generation, [])
        return inject_migrants(bred, arriving, generation, self.spec.settings.evolution.seed)

    def has_generation(self, generation: int) -> bool:
        return (self.state_dir / persistence.generation_file_name(generation)).exists()


class IslandHost:
    """Runs islands in this process: the driver (``--workers 0``) or a Ray actor.

    Each island replays once, start to end, in a thread; the runner's ``on_breed`` hook pauses
    it at every barrier until the driver has written its migrants (:meth:`release`). One island
    computes at a time (a baton), so a host is one CPU's worth of work: a Ray actor of one CPU,
    or the driver running the islands one after another. It is given the whole plan (plain data:
    it crosses processes); :meth:`start` picks this host's islands. Recordings are read by path
    where the host runs.
    """

    def __init__(self, plan: IslandsPlan) -> None:
        self.specs = {s.index: s for s in plan.islands}
        self.recordings = [Path(p) for p in plan.recordings]
        self.migrate_every = plan.migrate_every
        self.migrants = plan.migrants
        self.generations = plan.generations
        self.skip_bad = plan.skip_bad
        self.checkpoint_every_ticks = plan.checkpoint_every_ticks
        self.baton = threading.Lock()
        self.changed = threading.Condition()
        self.released: dict[int, dict[int, list[dict[str, Any]]]] = {}
        self.aborted = False
        self.islands: list[_Island] = []
        self.started_cpu = time.process_time()

    def is_barrier(self, generation: int) -> bool:
        """Whether migrants arrive before ``generation`` is bred."""
        return migrates(len(self.specs), self.migrants) and generation % self.migrate_every == 0

    def where(self) -> str:
        """``host:pid`` of this process (for messages)."""
        return where()

    def check_recordings(self) -> None:
        """:func:`check_readable` of the recordings, here."""
        check_readable(self.recordings)

    def start(self, indices: Sequence[int]) -> None:
        """Start islands ``indices`` (each replays in its own thread, one at a time)."""
        for k in indices:
            island = _Island(self, self.specs[k])
            self.islands.append(island)
            island.thread.start()

    def _raise_errors(self) -> None:
        for island in self.islands:
            if island.error is not None and not isinstance(island.error, IslandAbortedError):
                raise island.error

    def wait_barrier(self, generation: int) -> list[BarrierReport]:
        """Once each island here has saved generation ``generation - 1`` (or ended): its best
        genomes of that generation and its hall of fame."""
        with self.changed:
            while not all(i.finished or i.has_generation(generation - 1) for i in self.islands):
                self.changed.wait(timeout=5.0)  # the files are the truth; notifications are hints
        self._raise_errors()
        out = []
        for island in self.islands:
            top = None
            if island.has_generation(generation - 1):
                top = top_genomes(island.state_dir, generation - 1, self.migrants)
            hof = persistence.load_hall_of_fame(state_dir=island.state_dir)
            out.append(BarrierReport(island.spec.index, top, hof))
        return out

    def release(self, generation: int, incoming: dict[int, list[dict[str, Any]]]) -> None:
        """Hand each island its migrants for ``generation`` (possibly none): an island waiting
        there writes them into its ``immigrants.json`` and goes on."""
        with self.changed:
            self.released[generation] = incoming
            self.changed.notify_all()

    def finish(self) -> list[FinalReport]:
        """Wait for every island here to end; their generations and halls of fame."""
        for island in self.islands:
            island.thread.join()
        self._raise_errors()
        out = []
        for island in self.islands:
            saved = persistence.list_generations(island.state_dir)
            hof = persistence.load_hall_of_fame(state_dir=island.state_dir)
            out.append(FinalReport(island.spec.index, saved[-1] + 1 if saved else 0, hof))
        return out

    def abort(self) -> None:
        """Make every island waiting at (or reaching) a barrier stop; returns at once."""
        with self.changed:
            self.aborted = True
            self.changed.notify_all()

    def usage(self) -> dict[str, Any]:
        """This process: peak resident memory (KiB) and CPU seconds since the host started."""
        return {
            "host": self.where(),
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "cpu_secs": round(time.process_time() - self.started_cpu, 3),
        }


def migrates(islands: int, migrants: int) -> bool:
    """Whether anything moves between islands at all."""
    return islands > 1 and migrants > 0


def load_immigrants(state_dir: Path) -> dict[int, list[Genome]]:
    """``immigrants.json`` of an island: the migrants each barrier generation received."""
    doc = persistence.read_json_object(state_dir / IMMIGRANTS_FILE)
    if doc is None:
        return {}
    try:
        return {
            int(gen): [Genome.from_dict(m["genome"]) for m in entry["migrants"]]
            for gen, entry in doc["generations"].items()
        }
    except (KeyError, TypeError, ValueError) as e:
        msg = f"{state_dir / IMMIGRANTS_FILE}: not an immigrants file: {e}"
        raise StateError(msg) from e


def record_immigrants(state_dir: Path, generation: int, migrants: list[dict[str, Any]]) -> None:
    """Add (or rewrite, identically on a rerun) generation ``generation``'s migrants."""
    path = state_dir / IMMIGRANTS_FILE
    doc = persistence.read_json_object(path) or {"generations": {}}
    doc["generations"][str(generation)] = {"migrants": migrants}
    data = orjson.dumps(doc, option=_JSON)
    if not path.exists() or path.read_bytes() != data:
        persistence.atomic_write(path, data)


# -- the run --------------------------------------------------------------------------------------


class IslandPool(Protocol):
    """Where the islands run: every method covers every island, results in island order."""

    def start(self) -> None: ...

    def wait_barrier(self, generation: int) -> list[BarrierReport]: ...

    def release(self, generation: int, incoming: dict[int, list[dict[str, Any]]]) -> None: ...

    def finish(self) -> list[FinalReport]: ...

    def usage(self) -> list[dict[str, Any]]: ...


class SequentialPool:
    """``--workers 0``: every island in this process, one computing at a time (no Ray)."""

    def __init__(self, plan: IslandsPlan) -> None:
        self.host = IslandHost(plan)
        self.host.check_recordings()
        self.count = len(plan.islands)

    def start(self) -> None:
        self.host.start(range(self.count))

    def wait_barrier(self, generation: int) -> list[BarrierReport]:
        return self.host.wait_barrier(generation)

    def release(self, generation: int, incoming: dict[int, list[dict[str, Any]]]) -> None:
        self.host.release(generation, incoming)

    def finish(self) -> list[FinalReport]:
        return self.host.finish()

    def usage(self) -> list[dict[str, Any]]:
        return [self.host.usage()]

    def close(self) -> None:
        """Stop islands still waiting at a barrier (after an error)."""
        self.host.abort()


@dataclass(slots=True)
class IslandsReport:
    """The outcome of :func:`run_islands`."""

    generations: list[int]
    """Generations each island's state directory holds."""
    barriers: int
    """Migrations done (or repeated, on a rerun)."""
    recordings_ended: bool
    """The recordings ended before ``--generations`` (or, without it, as always)."""
    wall_secs: float
    usage: list[dict[str, Any]] = field(default_factory=list)


def _incoming(reports: list[BarrierReport]) -> dict[int, list[dict[str, Any]]]:
    """Ring migration: island k receives island k−1's best (nothing from an island that ended)."""
    n = len(reports)
    return {k: reports[(k - 1) % n].top or [] for k in range(n)}


def _open_manifest(plan: IslandsPlan) -> dict[str, Any]:
    path = plan.root / ISLANDS_FILE
    identity = plan.identity()
    doc = persistence.read_json_object(path)
    if doc is None:
        if any(plan.root.glob("island_*")):
            msg = (
                f"{plan.root}: holds island directories but no {ISLANDS_FILE}; "
                "use a new --state-dir"
            )
            raise StateError(msg)
        held = sorted(
            p.name
            for p in plan.root.iterdir()
            if p.name in (persistence.HALL_OF_FAME_FILE, persistence.LATEST_FILE)
            or p.name.startswith(("gen_", "checkpoint_gen"))
        )
        if held:
            msg = (
                f"{plan.root}: holds the state of a replay or the service ({', '.join(held)}), "
                "whose hall of fame the merged one would replace; give islands its own "
                "--state-dir"
            )
            raise StateError(msg)
        return {**identity, "migrations": []}
    saved = {k: doc.get(k) for k in identity}
    if _same_files(saved["island_configs"], identity["island_configs"]):
        saved["island_configs"] = identity["island_configs"]  # the file written keeps its form
    if saved != identity:
        diff = ", ".join(
            f"{k}: was {saved[k]!r}, now {identity[k]!r}"
            for k in identity
            if saved[k] != identity[k]
        )
        msg = (
            f"{path}: this directory holds another islands run ({diff}); rerun with the same "
            "flags to resume it, or use a new --state-dir"
        )
        raise UserError(msg)
    return doc


def _same_files(saved: object, now: list[str | None]) -> bool:
    """Whether the settings files recorded and given now are the same files (one path may be
    relative, the other absolute; relative ones are taken from the current directory)."""
    if not isinstance(saved, list) or len(saved) != len(now):
        return False
    return all(
        a == b or (a is not None and b is not None and Path(a).resolve() == Path(b).resolve())
        for a, b in zip(saved, now, strict=True)
    )


def _write_manifest(plan: IslandsPlan, doc: dict[str, Any]) -> None:
    path = plan.root / ISLANDS_FILE
    data = orjson.dumps(doc, option=_JSON)
    if not path.exists() or path.read_bytes() != data:
        persistence.atomic_write(path, data)


def _migration_log(reports: list[BarrierReport], generation: int) -> dict[str, Any]:
    n = len(reports)
    return {
        "generation": generation,
        "moves": [
            {
                "from": island_name(r.index),
                "to": island_name((r.index + 1) % n),
                "genomes": [
                    {
                        "id": m["genome"]["id"],
                        "gene_hash": Genome.from_dict(m["genome"]).gene_hash,
                        "fitness": m["fitness"],
                    }
                    for m in r.top or []
                ],
            }
            for r in reports
        ],
    }


def _write_merged_hall(
    plan: IslandsPlan, halls: Sequence[tuple[int, dict[str, Any] | None]]
) -> None:
    named = [(island_name(k), hof) for k, hof in halls if hof is not None]
    if not named:
        return
    merged = merge_halls(named, max_entries=plan.hall_of_fame_size)
    path = plan.root / persistence.HALL_OF_FAME_FILE
    if persistence.read_json_object(path) != {**merged, "schema_version": SCHEMA_VERSION}:
        persistence.write_hall_of_fame(merged, state_dir=plan.root)


def run_islands(plan: IslandsPlan, pool: IslandPool) -> IslandsReport:
    """Run (or resume) ``plan`` on ``pool`` (which this starts); see the module docstring.

    At each barrier generation ``b`` (a multiple of ``migrate_every`` below ``generations``):
    wait until every island has saved generation ``b − 1`` (or ended), hand each island its
    migrants (it records them in its ``immigrants.json``), log them in ``islands.json`` and
    merge the halls of fame. A rerun with the same parameters repeats the barriers already
    passed (same files) and continues; a larger ``generations`` extends a finished run. Holds the
    lock of ``plan.root`` throughout (each island's replay holds its own directory's).
    """
    check_plan(plan)
    started = time.perf_counter()
    barriers = 0
    with state_dir_lock(plan.root):
        persistence.clean_state_dir(plan.root, completed_through=None)  # a killed write's temp
        manifest = _open_manifest(plan)
        _write_manifest(plan, manifest)
        pool.start()
        log_so_far: list[dict[str, Any]] = []
        if migrates(len(plan.islands), plan.migrants):
            b = plan.migrate_every
            while plan.generations is None or b < plan.generations:
                reports = pool.wait_barrier(b)
                if all(r.top is None for r in reports):
                    break  # every island's recordings ended before this barrier
                pool.release(b, _incoming(reports))
                log_so_far.append(_migration_log(reports, b))
                manifest["migrations"] = [
                    *log_so_far,
                    *[m for m in manifest["migrations"] if m["generation"] > b],
                ]
                _write_manifest(plan, manifest)
                _write_merged_hall(plan, [(r.index, r.hall_of_fame) for r in reports])
                log.info("islands_migrated", generation=b)
                barriers += 1
                b += plan.migrate_every
        finals = pool.finish()
        held = [f.generations for f in finals]
        # manifest["migrations"] is this run's barriers, then any later ones an earlier run
        # (with more --generations) logged: its islands still hold those generations.
        manifest["generations"] = held
        _write_manifest(plan, manifest)
        _write_merged_hall(plan, [(f.index, f.hall_of_fame) for f in finals])
    ended = plan.generations is None or min(held) < plan.generations
    return IslandsReport(
        generations=held,
        barriers=barriers,
        recordings_ended=ended,
        wall_secs=time.perf_counter() - started,
        usage=pool.usage(),
    )


def island_specs(
    seed: int, root: Path, per_island: Sequence[tuple[Settings, str | None]]
) -> tuple[IslandSpec, ...]:
    """Each island's :class:`IslandSpec` from ``(its settings, the file they came from)``: seed
    :func:`island_seed` and state directory ``root/island_NN`` set."""
    out = []
    for k, (settings, config) in enumerate(per_island):
        ev = settings.evolution.model_copy(update={"seed": island_seed(seed, k)})
        st = settings.state.model_copy(update={"dir": root / island_name(k)})
        out.append(
            IslandSpec(k, settings.model_copy(update={"evolution": ev, "state": st}), config)
        )
    return tuple(out)
