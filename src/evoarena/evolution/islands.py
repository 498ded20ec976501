"""Island-model evolution: K populations over the same recordings, with migration in a ring.

Each island is an ordinary replay (:func:`~evoarena.replayer.run_replay`) into its own state
directory ``DIR/island_NN`` (the seeds' format), seeded with :func:`island_seed` of the run's
seed and its index, optionally with its own settings. The run advances in **epochs** of
``migrate_every`` generations, all islands in lockstep:

1. every island replays until its state directory holds ``(e + 1) * migrate_every``
   generations (``--generations`` caps the last epoch); replay's exact resume carries it from
   one epoch to the next, so an island's files equal an uninterrupted replay's when nothing
   migrates;
2. at the barrier, the ``migrants`` best genomes of each island's last generation (by fitness,
   population order breaking ties, one per gene hash) go to the next island in the ring
   (``k → k+1``, the last to the first);
3. they are written into the receiving island's ``immigrants.json`` *before* it breeds the next
   generation, and replace the last genomes bred for it (the random immigrants, then the last
   offspring; never the elites) as clones with ids drawn from
   ``random.Random("evoarena:<island seed>:migrants:<generation>")``.

Everything an epoch does is a function of the files written before it, so the result does not
depend on how many workers ran the islands, nor on where a run was killed: rerunning the same
command repeats the epochs (an island already at an epoch's target does nothing) and continues.
``DIR/islands.json`` records the run's parameters and the migration log; ``DIR/hall_of_fame.json``
is the islands' halls of fame merged (:func:`~evoarena.evolution.hof_merge.merge_halls`, each
entry's ``origin_run`` the island's directory name).

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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import structlog

from evoarena.errors import StateError, UserError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome, new_genome_id
from evoarena.evolution.hof_merge import merge_halls
from evoarena.evolution.operators import rank_indices
from evoarena.replayer import run_replay
from evoarena.settings import Settings
from evoarena.statedir import state_dir_lock

log = structlog.get_logger(__name__)

ISLANDS_FILE = "islands.json"
IMMIGRANTS_FILE = "immigrants.json"
ISLANDS_FORMAT = 1
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
class EpochResult:
    """What an island reports at a barrier (plain data: it crosses processes)."""

    index: int
    generations: int
    """Generations its state directory holds."""
    top: list[dict[str, Any]]
    """Its best genomes of generation ``target - 1`` (empty when it did not reach the target)."""
    hall_of_fame: dict[str, Any] | None
    host: str


class IslandHost:
    """Runs islands' epochs in this process: the driver (``--workers 0``) or a Ray actor.

    ``specs`` are every island of the run (a host runs those it is asked for);
    ``recordings`` are read by path where the host runs.
    """

    def __init__(
        self,
        specs: Sequence[IslandSpec],
        recordings: Sequence[Path],
        *,
        root: Path,
        migrants: int,
        skip_bad: bool = False,
        checkpoint_every_ticks: int | None = None,
    ) -> None:
        self.specs = {s.index: s for s in specs}
        self.recordings = [Path(p) for p in recordings]
        self.root = Path(root)
        self.migrants = migrants
        self.skip_bad = skip_bad
        self.checkpoint_every_ticks = checkpoint_every_ticks
        self.started_cpu = time.process_time()

    def where(self) -> str:
        """``host:pid`` of this process (for messages)."""
        return where()

    def check_recordings(self) -> None:
        """:func:`check_readable` of the recordings, here."""
        check_readable(self.recordings)

    def usage(self) -> dict[str, Any]:
        """This process: peak resident memory (KiB) and CPU seconds since the host started."""
        return {
            "host": self.where(),
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "cpu_secs": round(time.process_time() - self.started_cpu, 3),
        }

    def epoch(
        self, index: int, target: int | None, incoming: dict[str, Any] | None = None
    ) -> EpochResult:
        """Island ``index``: take ``incoming`` (``{"generation", "migrants"}``) into its
        ``immigrants.json``, replay until it holds ``target`` generations (``None``: until the
        recordings end), and report its best genomes of generation ``target - 1``."""
        spec = self.specs[index]
        state_dir = Path(spec.settings.state.dir)
        if incoming is not None:
            record_immigrants(state_dir, int(incoming["generation"]), incoming["migrants"])
        seed = spec.settings.evolution.seed

        def breed(generation: int, bred: list[Genome]) -> list[Genome]:
            arriving = load_immigrants(state_dir).get(generation, [])
            return inject_migrants(bred, arriving, generation, seed)

        run_replay(
            self.recordings,
            spec.settings,
            skip_bad=self.skip_bad,
            max_generations=target,
            checkpoint_every_ticks=self.checkpoint_every_ticks,
            on_breed=breed,
        )
        saved = persistence.list_generations(state_dir)
        held = saved[-1] + 1 if saved else 0
        top: list[dict[str, Any]] = []
        if target is not None and held >= target and self.migrants:
            top = top_genomes(state_dir, target - 1, self.migrants)
        return EpochResult(
            index, held, top, persistence.load_hall_of_fame(state_dir=state_dir), self.where()
        )


def load_immigrants(state_dir: Path) -> dict[int, list[Genome]]:
    """``immigrants.json`` of an island: the migrants each generation receives."""
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
    persistence.ensure_state_dir(state_dir)
    data = orjson.dumps(doc, option=_JSON)
    if not path.exists() or path.read_bytes() != data:
        persistence.atomic_write(path, data)


# -- the run --------------------------------------------------------------------------------------


class IslandPool(Protocol):
    """Runs one epoch of every island; results in island order."""

    def epoch(
        self, target: int | None, incoming: Sequence[dict[str, Any] | None]
    ) -> list[EpochResult]: ...

    def usage(self) -> list[dict[str, Any]]: ...


class SequentialPool:
    """``--workers 0``: every island in this process, one after the other (no Ray)."""

    def __init__(self, plan: IslandsPlan) -> None:
        self.host = IslandHost(
            plan.islands,
            plan.recordings,
            root=plan.root,
            migrants=plan.migrants,
            skip_bad=plan.skip_bad,
            checkpoint_every_ticks=plan.checkpoint_every_ticks,
        )
        self.host.check_recordings()
        self.count = len(plan.islands)

    def epoch(
        self, target: int | None, incoming: Sequence[dict[str, Any] | None]
    ) -> list[EpochResult]:
        return [self.host.epoch(k, target, incoming[k]) for k in range(self.count)]

    def usage(self) -> list[dict[str, Any]]:
        return [self.host.usage()]


@dataclass(slots=True)
class IslandsReport:
    """The outcome of :func:`run_islands`."""

    generations: list[int]
    """Generations each island's state directory holds."""
    epochs: int
    recordings_ended: bool
    """The recordings ended before the requested generations (the last epoch is short)."""
    wall_secs: float
    usage: list[dict[str, Any]] = field(default_factory=list)


def _target(epoch: int, plan: IslandsPlan) -> int:
    end = (epoch + 1) * plan.migrate_every
    return end if plan.generations is None else min(end, plan.generations)


def _incoming(results: list[EpochResult], generation: int) -> list[dict[str, Any] | None]:
    """Ring migration: island k receives island k−1's best (one island: nothing moves)."""
    n = len(results)
    if n < 2:
        return [None] * n
    return [
        {"generation": generation, "migrants": results[(k - 1) % n].top}
        if results[(k - 1) % n].top
        else None
        for k in range(n)
    ]


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
        return {**identity, "epochs": []}
    saved = {k: doc.get(k) for k in identity}
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


def _write_manifest(plan: IslandsPlan, doc: dict[str, Any]) -> None:
    path = plan.root / ISLANDS_FILE
    data = orjson.dumps(doc, option=_JSON)
    if not path.exists() or path.read_bytes() != data:
        persistence.atomic_write(path, data)


def _migration_log(results: list[EpochResult], generation: int) -> list[dict[str, Any]]:
    n = len(results)
    if n < 2:
        return []
    return [
        {
            "from": island_name(r.index),
            "to": island_name((r.index + 1) % n),
            "generation": generation,
            "genomes": [
                {
                    "id": m["genome"]["id"],
                    "gene_hash": Genome.from_dict(m["genome"]).gene_hash,
                    "fitness": m["fitness"],
                }
                for m in r.top
            ],
        }
        for r in results
        if r.top
    ]


def _write_merged_hall(plan: IslandsPlan, results: list[EpochResult]) -> None:
    halls = [(island_name(r.index), r.hall_of_fame) for r in results if r.hall_of_fame]
    if not halls:
        return
    merged = merge_halls(halls, max_entries=plan.hall_of_fame_size)
    path = plan.root / persistence.HALL_OF_FAME_FILE
    current = persistence.read_json_object(path)
    if current != {**merged, "schema_version": persistence.SCHEMA_VERSION}:
        persistence.write_hall_of_fame(merged, state_dir=plan.root)


def run_islands(plan: IslandsPlan, pool: IslandPool) -> IslandsReport:
    """Run (or resume) ``plan`` on ``pool``; see the module docstring.

    A rerun with the same parameters repeats the saved epochs (nothing to do for an island at
    the target) and continues; a larger ``generations`` extends a finished run. Holds the lock of
    ``plan.root`` throughout (each island's replay holds its own directory's).
    """
    check_plan(plan)
    started = time.perf_counter()
    with state_dir_lock(plan.root):
        manifest = _open_manifest(plan)
        _write_manifest(plan, manifest)
        epoch = 0
        incoming: list[dict[str, Any] | None] = [None] * len(plan.islands)
        while True:
            target = _target(epoch, plan)
            results = pool.epoch(target, incoming)
            held = [r.generations for r in results]
            ended = min(held) < target
            entry = {
                "epoch": epoch,
                "target": target,
                # a rerun finds islands past the epochs it repeats: log what the epoch reached
                "generations": [min(h, target) for h in held],
                "migrations": []
                if ended or target == plan.generations
                else _migration_log(results, target),
            }
            epochs = [e for e in manifest["epochs"] if e["epoch"] < epoch]
            manifest["epochs"] = [*epochs, entry, *manifest["epochs"][len(epochs) + 1 :]]
            _write_manifest(plan, manifest)
            _write_merged_hall(plan, results)
            log.info("islands_epoch_done", epoch=epoch, target=target, generations=held)
            if ended or target == plan.generations:
                break
            incoming = _incoming(results, target)
            epoch += 1
    return IslandsReport(
        generations=held,
        epochs=epoch + 1,
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
