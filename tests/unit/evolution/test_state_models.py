"""The state files' pydantic models: published JSON Schema kept current, extra fields kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evoarena.evolution import state_models

SCHEMAS = Path(__file__).parents[3] / "docs" / "schemas"


def test_published_json_schemas_are_current() -> None:
    """docs/schemas matches the models (regenerate: python -m evoarena.evolution.state_models)."""
    for name, schema in state_models.json_schemas().items():
        path = SCHEMAS / f"{name}.schema.json"
        assert json.loads(path.read_text()) == schema, f"{path} is stale"


def test_extra_fields_are_allowed_and_known_ones_checked() -> None:
    """Other parts add fields (per-bot results, out-of-sample records): they pass through."""
    doc = {
        "schema_version": 1,
        "updated_at": "2024-01-01T00:00:00+00:00",
        "latest_generation": 0,
        "best_ever": None,
        "entries": [],
        "added_by_someone_else": {"x": 1},
    }
    model = state_models.validate(state_models.HallOfFameFile, doc)
    assert model.model_extra == {"added_by_someone_else": {"x": 1}}
    with pytest.raises(ValueError, match="'latest_generation' must be a non-negative integer"):
        state_models.validate(state_models.HallOfFameFile, {**doc, "latest_generation": -1})


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"exchange": None}, None),
        ({"exchange": []}, r"'exchange': Input should be a valid dictionary, was list"),
        ({"bots": [{}]}, r"bots\[0\]: missing field 'genome_id'"),
        ({"tick_count": "3"}, r"'tick_count' must be a non-negative integer, was '3'"),
        ({"phase": "later"}, r"'phase': Input should be 'trading', 'settling' or 'done'"),
        ({"schema_version": 2}, r"'schema_version': Input should be 1, was 2"),
    ],
)
def test_checkpoint_errors_name_the_key(doc: dict[str, object], message: str | None) -> None:
    """One line naming the key for each kind of damage (``exchange: null`` is allowed by the
    file model; the resume check rejects it and the checkpoint is set aside)."""
    base = {
        "schema_version": 1,
        "generation": 0,
        "tick_count": 3,
        "timestamp": "2024-01-01T00:00:00+00:00",
        "bots": [],
    }
    if message is None:
        state_models.validate(state_models.CheckpointFile, {**base, **doc})
        return
    with pytest.raises(ValueError, match=message):
        state_models.validate(state_models.CheckpointFile, {**base, **doc})
