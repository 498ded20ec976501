"""Pydantic models of the state files, their validation and their published JSON Schema.

One model per file (see :mod:`~evoarena.evolution.persistence` for what each holds):
:class:`GenerationFile` (``gen_NNNN.json``), :class:`LatestFile` (``latest.json``),
:class:`CheckpointFile` (``checkpoint_genNNNN.json``) and :class:`HallOfFameFile`
(``hall_of_fame.json``). They validate the fields this version knows and **allow extra fields**
(other parts add per-bot results, out-of-sample records, ...): loaders return the document as
read, so every field survives a load/save. Genomes and hall-of-fame entries are checked by
:func:`~evoarena.evolution.hall_of_fame.parse_genome` and
:func:`~evoarena.evolution.hall_of_fame.validate_entry`, the same rules the writers use.

:func:`validate` turns the first problem into one line naming the key (``genomes[3]: ...``,
``missing field 'bots'``, ``'tick_count' must be a non-negative integer``), which the loaders
prefix with the file name. ``python -m evoarena.evolution.state_models DIR`` writes the JSON
Schemas (``docs/schemas`` is kept current by a test).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from evoarena.evolution.hall_of_fame import parse_genome, validate_entry

_M = TypeVar("_M", bound=BaseModel)

SCHEMA_VERSION = 1


def _count(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        msg = f"must be a non-negative integer, was {_short(v)}"
        raise ValueError(msg)
    return v


def _finite(v: object) -> float | int:
    if isinstance(v, bool) or not isinstance(v, int | float):
        msg = f"must be a finite number, was {_short(v)}"
        raise ValueError(msg)
    try:
        ok = math.isfinite(v)
    except OverflowError:
        ok = False
    if not ok:
        msg = f"must be a finite number, was {_short(v)}"
        raise ValueError(msg)
    return v


def _timestamp(v: object) -> str:
    from datetime import datetime

    try:
        ok = isinstance(v, str) and datetime.fromisoformat(v).tzinfo is not None
    except ValueError:
        ok = False
    if not ok:
        msg = f"must be an ISO-8601 time with a UTC offset, was {_short(v)}"
        raise ValueError(msg)
    return str(v)


def _genome(v: object) -> dict[str, Any]:
    parse_genome(v)  # raises ValueError naming the problem
    assert isinstance(v, dict)  # noqa: S101 — parse_genome checked it
    return v


def _entry(v: object) -> dict[str, Any]:
    validate_entry(v)
    assert isinstance(v, dict)  # noqa: S101 — validate_entry checked it
    return v


def _genomes(v: object) -> list[Any]:
    if not isinstance(v, list) or not v:
        msg = "must be a non-empty list"
        raise ValueError(msg)
    return v


def _scores(v: object) -> list[float | int]:
    if not isinstance(v, list):
        msg = "must be a list of finite numbers"
        raise ValueError(msg)
    for x in v:
        try:
            _finite(x)
        except ValueError:
            msg = "must be a list of finite numbers"
            raise ValueError(msg) from None
    return v


def _short(v: object) -> str:
    text = repr(v) if not isinstance(v, dict | list) else type(v).__name__
    return text if len(text) <= 60 else text[:57] + "..."


_GENOME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Genome.to_dict(): id (8 hex), generation, parent_ids, genes (each in [0, 1])",
    "required": ["id", "generation", "genes"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{8}$"},
        "generation": {"type": "integer", "minimum": 0},
        "parent_ids": {"type": "array", "items": {"type": "string"}},
        "genes": {
            "type": "object",
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        },
    },
}
_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A hall-of-fame entry (extra fields allowed)",
    "required": [
        "genome",
        "fitness_roi_pct",
        "total_trades",
        "settled_trades",
        "win_rate",
        "realized_pnl",
        "generation",
        "signal_type",
        "params",
    ],
    "properties": {
        "genome": _GENOME_SCHEMA,
        "fitness_roi_pct": {"type": "number"},
        "total_trades": {"type": "integer", "minimum": 0},
        "settled_trades": {"type": "integer", "minimum": 0},
        "win_rate": {"type": "number"},
        "realized_pnl": {"type": "number"},
        "generation": {"type": "integer", "minimum": 0},
        "signal_type": {"type": "string"},
        "params": {"type": "object"},
    },
    "additionalProperties": True,
}

Count = Annotated[int, BeforeValidator(_count), Field(ge=0)]
Finite = Annotated[float, BeforeValidator(_finite)]
Timestamp = Annotated[
    str,
    BeforeValidator(_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
GenomeDoc = Annotated[dict[str, Any], BeforeValidator(_genome), WithJsonSchema(_GENOME_SCHEMA)]
EntryDoc = Annotated[dict[str, Any], BeforeValidator(_entry), WithJsonSchema(_ENTRY_SCHEMA)]
Genomes = Annotated[list[GenomeDoc], BeforeValidator(_genomes)]
Scores = Annotated[list[Finite], BeforeValidator(_scores)]

_OPEN = ConfigDict(extra="allow")


class RecordingPosition(BaseModel):
    """Where in its input the runner was when a file was written (replay: exact resume)."""

    model_config = _OPEN

    t_ms: int
    generation_start_ms: int
    first_tick: Count
    ticks: Count
    recording: str | None = None
    file: Count | None = None
    line: Count | None = None
    items: Count | None = None
    item_t_ms: int | None = None
    fire_ms: int | None = None
    pending_results: list[str] = Field(default_factory=list)


class GenerationFile(BaseModel):
    """``gen_NNNN.json``: one finished generation."""

    model_config = _OPEN

    schema_version: Literal[1]
    generation: Count
    timestamp: Timestamp
    genomes: Genomes
    fitness_scores: Scores
    stats: dict[str, Any]
    hall_of_fame_entries: list[EntryDoc] | None = None
    recording_position: RecordingPosition | None = None

    @model_validator(mode="after")
    def _one_score_per_genome(self) -> GenerationFile:
        if len(self.fitness_scores) != len(self.genomes):
            msg = f"{len(self.fitness_scores)} fitness scores for {len(self.genomes)} genomes"
            raise ValueError(msg)
        return self


class LatestFile(BaseModel):
    """``latest.json``: the pointer to the newest generation, with its genomes."""

    model_config = _OPEN

    schema_version: Literal[1]
    generation: Count
    file: str
    timestamp: Timestamp
    genomes: Genomes

    @model_validator(mode="after")
    def _names_its_generation(self) -> LatestFile:
        expected = f"gen_{self.generation:04d}.json"
        if self.file != expected:
            msg = f"'file' is {self.file!r}, expected {expected!r}"
            raise ValueError(msg)
        return self


class CheckpointBot(BaseModel):
    """One bot of a checkpoint."""

    model_config = _OPEN

    genome_id: str
    genome: GenomeDoc | None = None
    bot_id: str | None = None
    rng_state: list[Any] | None = None
    account: dict[str, Any] | None = None


class CheckpointFile(BaseModel):
    """``checkpoint_genNNNN.json`` (and ``.prev.json``): a running generation, resumable."""

    model_config = _OPEN

    schema_version: Literal[1]
    generation: Count
    tick_count: Count
    timestamp: Timestamp
    bots: list[CheckpointBot]
    phase: Literal["trading", "settling", "done"] | None = None
    start_ms: int | None = None
    next_poll_ms: int | None = None
    categories: list[str] | None = None
    exchange: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    recording_position: RecordingPosition | None = None


class HallOfFameFile(BaseModel):
    """``hall_of_fame.json``: the best genomes over all generations."""

    model_config = _OPEN

    schema_version: Literal[1]
    updated_at: str
    latest_generation: Count
    best_ever: EntryDoc | None
    entries: list[EntryDoc]

    @model_validator(mode="after")
    def _best_if_any(self) -> HallOfFameFile:
        if self.best_ever is None and self.entries:
            msg = "'best_ever' is null but there are entries"
            raise ValueError(msg)
        return self


MODELS: dict[str, type[BaseModel]] = {
    "generation": GenerationFile,
    "latest": LatestFile,
    "checkpoint": CheckpointFile,
    "hall_of_fame": HallOfFameFile,
}


def validate(model: type[_M], doc: object) -> _M:
    """``model`` validated from ``doc``; raises ``ValueError`` with one line naming the key."""
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise ValueError(describe(e)) from None
    except RecursionError:
        msg = "nested too deeply"
        raise ValueError(msg) from None


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def describe(error: ValidationError) -> str:
    """The first problem of ``error`` as one line naming the key."""
    first = error.errors(include_url=False)[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    if kind == "missing":
        where = _loc(loc[:-1])
        field = f"missing field '{loc[-1]}'" if loc else "missing field"
        return f"{where}: {field}" if where else field
    msg = str(first["msg"]).removeprefix("Value error, ")
    where = _loc(loc)
    if not where:
        return msg
    if msg.startswith("must "):
        return f"'{where}' {msg}"
    if kind == "literal_error" or kind.endswith(("_type", "_parsing")):
        return f"'{where}': {msg}, was {_short(first.get('input'))}"
    return f"{where}: {msg}"


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every state file, by file kind."""
    return {name: model.model_json_schema() for name, model in MODELS.items()}


def write_schemas(directory: Path) -> list[Path]:
    """Write ``<kind>.schema.json`` for every state file into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, schema in json_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        print(written)  # noqa: T201 — a maintenance command's output
