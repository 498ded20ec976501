"""The state directory: files, fields, validation, rebuilding latest.json, atomic writes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from random import Random
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from evoarena.errors import StateError, StateWriteError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.persistence import (
    HALL_OF_FAME_ENTRIES_FIELD,
    ensure_state_dir,
    iso_timestamp,
    list_generations,
    load_checkpoint,
    load_generation,
    load_hall_of_fame,
    load_latest_state,
    save_checkpoint,
    save_generation_state,
    save_hall_of_fame,
)

NOW = 1_704_067_245_123  # 2024-01-01T00:00:45.123Z
NOW_ISO = "2024-01-01T00:00:45.123000+00:00"


def _genomes(n: int = 4, generation: int = 0, seed: int = 0) -> list[Genome]:
    rng = Random(seed)
    return [Genome.random(rng, generation) for _ in range(n)]


def _save_gen(state: Path, generation: int, n: int = 4, now_ms: int = NOW) -> list[Genome]:
    genomes = _genomes(n, generation, seed=generation)
    fitness = [float(i) - 1.5 for i in range(n)]
    stats = {"best_roi": 1.5, "median_roi": 0.0, "mean_trades": 3.25}
    save_generation_state(generation, genomes, fitness, stats, state_dir=state, now_ms=now_ms)
    return genomes


def _read(path: Path) -> dict[str, Any]:
    data = orjson.loads(path.read_bytes())
    assert isinstance(data, dict)
    return data


def _write(path: Path, data: Any) -> None:
    path.write_bytes(orjson.dumps(data))


def _entry(genome: Genome, fitness: float, generation: int = 0) -> dict[str, Any]:
    return {
        "genome": genome.to_dict(),
        "fitness_roi_pct": fitness,
        "total_trades": 12,
        "settled_trades": 9,
        "win_rate": 0.75,
        "realized_pnl": 3.5,
        "generation": generation,
        "signal_type": "value",
        "params": genome.decode().to_dict(),
    }


def _checkpoint(genomes: list[Genome]) -> dict[str, Any]:
    return {
        "bots": [
            {
                "bot_id": f"bot-{i}",
                "genome_id": g.id,
                "genome": g.to_dict(),
                "account": {"cash": 100_000_000, "trades": 2, "pnl": -5_000, "roi_pct": -0.005},
            }
            for i, g in enumerate(genomes)
        ],
        "phase": "trading",
    }


def _files(state: Path) -> list[str]:
    return sorted(os.listdir(state))


# -- basics -------------------------------------------------------------------------------------


def test_iso_timestamp_is_utc_with_offset_and_exact() -> None:
    """Milliseconds become exact microseconds with a +00:00 offset."""
    assert iso_timestamp(NOW) == NOW_ISO
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000000+00:00"
    assert iso_timestamp(1_999) == "1970-01-01T00:00:01.999000+00:00"


def test_ensure_state_dir_creates_parents(tmp_path: Path) -> None:
    """Nested directories are created and the call is idempotent."""
    state = tmp_path / "a" / "b" / "state"
    assert ensure_state_dir(state) == state
    ensure_state_dir(state)
    assert state.is_dir()


def test_ensure_state_dir_over_a_file_is_a_state_error(tmp_path: Path) -> None:
    """A file where the directory should be is reported, not a traceback."""
    target = tmp_path / "state"
    target.write_text("x")
    with pytest.raises(StateError, match="cannot create the state directory"):
        ensure_state_dir(target)


def test_missing_files_load_as_none(tmp_path: Path) -> None:
    """Nothing saved (even no directory) is not an error."""
    state = tmp_path / "nothing"
    assert load_generation(0, state_dir=state) is None
    assert load_checkpoint(0, state_dir=state) is None
    assert load_hall_of_fame(state_dir=state) is None
    assert load_latest_state(state_dir=state) is None
    assert list_generations(state) == []


# -- generation files ---------------------------------------------------------------------------


def test_save_generation_writes_seed_files_and_fields(tmp_path: Path) -> None:
    """gen_NNNN.json holds the seed's fields plus schema_version; latest.json points at it."""
    genomes = _save_gen(tmp_path, 5)
    assert _files(tmp_path) == ["gen_0005.json", "latest.json"]
    doc = _read(tmp_path / "gen_0005.json")
    assert doc["schema_version"] == 1
    assert doc["generation"] == 5
    assert doc["timestamp"] == NOW_ISO
    assert doc["genomes"] == [g.to_dict() for g in genomes]
    assert doc["fitness_scores"] == [-1.5, -0.5, 0.5, 1.5]
    assert doc["stats"]["best_roi"] == 1.5
    latest = _read(tmp_path / "latest.json")
    assert latest == {
        "schema_version": 1,
        "generation": 5,
        "file": "gen_0005.json",
        "timestamp": NOW_ISO,
        "genomes": [g.to_dict() for g in genomes],
    }


def test_load_generation_round_trips(tmp_path: Path) -> None:
    """What was saved is what load_generation returns."""
    genomes = _save_gen(tmp_path, 2)
    state = load_generation(2, state_dir=tmp_path)
    assert state is not None
    assert [Genome.from_dict(g) for g in state["genomes"]] == genomes
    assert state["fitness_scores"] == [-1.5, -0.5, 0.5, 1.5]
    assert load_generation(3, state_dir=tmp_path) is None


def test_latest_state_follows_the_newest_save(tmp_path: Path) -> None:
    """load_latest_state returns the last generation saved."""
    _save_gen(tmp_path, 0)
    assert load_latest_state(state_dir=tmp_path) == (0, _genomes(4, 0, seed=0))
    second = _save_gen(tmp_path, 1)
    assert load_latest_state(state_dir=tmp_path) == (1, second)


def test_generation_files_are_deterministic(tmp_path: Path) -> None:
    """Equal inputs give byte-identical files, keys sorted and indented by two."""
    _save_gen(tmp_path / "one", 3)
    _save_gen(tmp_path / "two", 3)
    for name in ("gen_0003.json", "latest.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    text = (tmp_path / "one" / "gen_0003.json").read_text()
    top_keys = [line.split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert top_keys == sorted(top_keys)
    assert top_keys[0] == "fitness_scores"
    assert text.endswith("}\n")


def test_save_generation_rejects_inconsistent_input(tmp_path: Path) -> None:
    """Length mismatches, non-finite fitness and empty populations are caller errors."""
    genomes = _genomes(2)
    with pytest.raises(ValueError, match="2 genomes but 1"):
        save_generation_state(0, genomes, [1.0], {}, state_dir=tmp_path, now_ms=NOW)
    with pytest.raises(ValueError, match="finite"):
        save_generation_state(0, genomes, [1.0, float("nan")], {}, state_dir=tmp_path, now_ms=NOW)
    with pytest.raises(ValueError, match="no genomes"):
        save_generation_state(0, [], [], {}, state_dir=tmp_path, now_ms=NOW)
    with pytest.raises(ValueError, match="non-negative"):
        save_generation_state(-1, genomes, [1.0, 2.0], {}, state_dir=tmp_path, now_ms=NOW)
    assert _files(tmp_path) == []


def test_unencodable_stats_are_a_value_error(tmp_path: Path) -> None:
    """A value orjson cannot write is reported with the file name; nothing is written."""
    with pytest.raises(ValueError, match=r"gen_0000\.json: cannot encode"):
        save_generation_state(
            0, _genomes(1), [1.0], {"bad": object()}, state_dir=tmp_path, now_ms=NOW
        )
    assert _files(tmp_path) == []


def test_five_digit_generations(tmp_path: Path) -> None:
    """Generation 10000 gets a wider name and is still found."""
    _save_gen(tmp_path, 10_000)
    assert (tmp_path / "gen_10000.json").exists()
    assert list_generations(tmp_path) == [10_000]
    (tmp_path / "latest.json").unlink()
    loaded = load_latest_state(state_dir=tmp_path)
    assert loaded is not None
    assert loaded[0] == 10_000


def _corruptions() -> list[tuple[str, Any, str]]:
    return [
        ("truncated", None, "not valid JSON"),
        ("empty", b"", "not valid JSON"),
        ("array", [], "expected a JSON object"),
        ("no schema", {"drop": "schema_version"}, "missing field 'schema_version'"),
        ("schema 2", {"set": ("schema_version", 2)}, "schema_version is 2"),
        ("schema str", {"set": ("schema_version", "1")}, "schema_version is '1'"),
        ("no genomes", {"drop": "genomes"}, "missing field 'genomes'"),
        ("no stats", {"drop": "stats"}, "missing field 'stats'"),
        ("no timestamp", {"drop": "timestamp"}, "missing field 'timestamp'"),
        ("naive timestamp", {"set": ("timestamp", "2024-01-01T00:00:00")}, "'timestamp'"),
        ("no fitness", {"drop": "fitness_scores"}, "missing field 'fitness_scores'"),
        ("short fitness", {"set": ("fitness_scores", [1.0])}, "1 fitness scores for 4 genomes"),
        ("null fitness", {"set": ("fitness_scores", [1.0, None, 1.0, 1.0])}, "finite numbers"),
        ("wrong generation", {"set": ("generation", 8)}, "'generation' is 8"),
        ("empty genomes", {"set": ("genomes", [])}, "non-empty list"),
        ("bad gene", {"gene": ("side_bias", 1.5)}, r"genomes\[1\]: .*side_bias"),
        ("missing gene", {"gene": ("side_bias", None)}, r"genomes\[1\]: .*'side_bias' is missing"),
        ("bad id", {"genome_id": "xyz"}, r"genomes\[1\]: genome id must be 8 hex"),
        ("genes list", {"genome_field": ("genes", [0.5])}, r"genomes\[1\]: .*'genes' must be"),
        ("parents int", {"genome_field": ("parent_ids", 3)}, r"genomes\[1\]: .*'parent_ids'"),
        ("genome str", {"set": ("genomes", ["x"])}, r"genomes\[0\]: genome must be an object"),
    ]


def _corrupt(path: Path, how: Any) -> None:
    if how is None:
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
        return
    if isinstance(how, bytes | list):
        path.write_bytes(how if isinstance(how, bytes) else orjson.dumps(how))
        return
    doc = _read(path)
    if "drop" in how:
        del doc[how["drop"]]
    if "set" in how:
        key, value = how["set"]
        doc[key] = value
    if "gene" in how:
        name, value = how["gene"]
        if value is None:
            del doc["genomes"][1]["genes"][name]
        else:
            doc["genomes"][1]["genes"][name] = value
    if "genome_id" in how:
        doc["genomes"][1]["id"] = how["genome_id"]
    if "genome_field" in how:
        key, value = how["genome_field"]
        doc["genomes"][1][key] = value
    _write(path, doc)


@pytest.mark.parametrize(
    ("label", "how", "message"), _corruptions(), ids=[c[0] for c in _corruptions()]
)
def test_corrupt_generation_file_is_a_state_error(
    tmp_path: Path, label: str, how: Any, message: str
) -> None:
    """Every kind of damage is reported with the file name and the problem."""
    _save_gen(tmp_path, 7)
    path = tmp_path / "gen_0007.json"
    _corrupt(path, how)
    with pytest.raises(StateError, match=message) as info:
        load_generation(7, state_dir=tmp_path)
    assert str(info.value).startswith(f"{path}: ")


def test_unreadable_generation_file_is_a_state_error(tmp_path: Path) -> None:
    """A directory where a file should be is reported with its name."""
    (tmp_path / "gen_0001.json").mkdir()
    with pytest.raises(StateError, match=r"gen_0001\.json: cannot read"):
        load_generation(1, state_dir=tmp_path)


# -- latest.json: validation and rebuilding -----------------------------------------------------


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (None, "not valid JSON"),
        ({"set": ("schema_version", 0)}, "schema_version is 0"),
        ({"drop": "file"}, "missing field 'file'"),
        ({"set": ("file", "gen_0009.json")}, "'file' is 'gen_0009.json'"),
        ({"gene": ("bankroll_fraction", -0.1)}, "bankroll_fraction"),
    ],
)
def test_corrupt_latest_is_rebuilt_from_newest_generation(
    tmp_path: Path, how: Any, message: str
) -> None:
    """A damaged latest.json is rewritten from the newest valid gen file, with a warning."""
    _save_gen(tmp_path, 0)
    newest = _save_gen(tmp_path, 1)
    good_latest = (tmp_path / "latest.json").read_bytes()
    _corrupt(tmp_path / "latest.json", how)
    with capture_logs() as logs:
        assert load_latest_state(state_dir=tmp_path) == (1, newest)
    corrupt = [e for e in logs if e["event"] == "latest_state_corrupt"]
    assert corrupt
    assert "latest.json" in corrupt[0]["error"]
    assert re.search(message, corrupt[0]["error"])
    assert any(e["event"] == "latest_state_rebuilt" for e in logs)
    assert (tmp_path / "latest.json").read_bytes() == good_latest


def test_missing_latest_is_rebuilt(tmp_path: Path) -> None:
    """Without latest.json the newest generation file is used and the pointer rewritten."""
    _save_gen(tmp_path, 0)
    newest = _save_gen(tmp_path, 1)
    good_latest = (tmp_path / "latest.json").read_bytes()
    (tmp_path / "latest.json").unlink()
    with capture_logs() as logs:
        assert load_latest_state(state_dir=tmp_path) == (1, newest)
    rebuilt = [e for e in logs if e["event"] == "latest_state_rebuilt"]
    assert rebuilt[0]["source"] == "gen_0001.json"
    assert "missing" in rebuilt[0]["reason"]
    assert (tmp_path / "latest.json").read_bytes() == good_latest


def test_rebuild_skips_corrupt_generation_files(tmp_path: Path) -> None:
    """Corrupt newer gen files are skipped (each named in a warning) in favour of older ones."""
    _save_gen(tmp_path, 0)
    older = _save_gen(tmp_path, 1)
    _save_gen(tmp_path, 2)
    _corrupt(tmp_path / "gen_0002.json", None)
    _corrupt(tmp_path / "latest.json", None)
    with capture_logs() as logs:
        assert load_latest_state(state_dir=tmp_path) == (1, older)
    skipped = [e for e in logs if e["event"] == "generation_file_corrupt_skipped"]
    assert len(skipped) == 1
    assert "gen_0002.json: not valid JSON" in skipped[0]["error"]
    assert _read(tmp_path / "latest.json")["generation"] == 1


def test_newer_generation_file_beats_a_stale_latest(tmp_path: Path) -> None:
    """A crash between the gen file and latest.json writes loses nothing."""
    _save_gen(tmp_path, 0)
    stale = (tmp_path / "latest.json").read_bytes()
    newest = _save_gen(tmp_path, 1)
    (tmp_path / "latest.json").write_bytes(stale)
    with capture_logs() as logs:
        assert load_latest_state(state_dir=tmp_path) == (1, newest)
    assert any("newer" in e.get("reason", "") for e in logs)
    assert _read(tmp_path / "latest.json")["generation"] == 1


def test_valid_latest_is_kept_when_newer_files_are_corrupt(tmp_path: Path) -> None:
    """A corrupt newer gen file does not override a valid latest.json."""
    first = _save_gen(tmp_path, 0)
    (tmp_path / "gen_0001.json").write_text("{")
    assert load_latest_state(state_dir=tmp_path) == (0, first)


def test_no_usable_state_is_an_error(tmp_path: Path) -> None:
    """State files that are all corrupt stop the load instead of starting afresh over them."""
    _save_gen(tmp_path, 0)
    _corrupt(tmp_path / "gen_0000.json", None)
    _corrupt(tmp_path / "latest.json", None)
    with pytest.raises(StateError, match="no usable saved state") as info:
        load_latest_state(state_dir=tmp_path)
    assert "gen_0000.json: not valid JSON" in str(info.value)
    assert "latest.json: not valid JSON" in str(info.value)


def test_corrupt_latest_without_generation_files_is_an_error(tmp_path: Path) -> None:
    """A damaged pointer with nothing to rebuild from is reported."""
    (tmp_path / "latest.json").write_text("[]")
    with pytest.raises(StateError, match=r"latest\.json: expected a JSON object"):
        load_latest_state(state_dir=tmp_path)


def test_latest_works_from_its_own_content(tmp_path: Path) -> None:
    """latest.json alone is enough: the genomes come from it."""
    genomes = _save_gen(tmp_path, 4)
    (tmp_path / "gen_0004.json").unlink()
    assert load_latest_state(state_dir=tmp_path) == (4, genomes)


def test_rebuild_in_a_read_only_state_dir_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If latest.json cannot be rewritten, the state is still returned, with a warning."""
    genomes = _save_gen(tmp_path, 0)
    (tmp_path / "latest.json").unlink()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with capture_logs() as logs:
        assert load_latest_state(state_dir=tmp_path) == (0, genomes)
    assert any(e["event"] == "latest_state_rebuild_failed" for e in logs)


# -- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trips(tmp_path: Path) -> None:
    """The caller's dict comes back with generation, tick count, time and schema added."""
    genomes = _genomes(3, 2)
    cp = _checkpoint(genomes)
    path = save_checkpoint(2, cp, 120, state_dir=tmp_path, now_ms=NOW)
    assert path.name == "checkpoint_gen0002.json"
    loaded = load_checkpoint(2, state_dir=tmp_path)
    assert loaded == {
        **cp,
        "schema_version": 1,
        "generation": 2,
        "tick_count": 120,
        "timestamp": NOW_ISO,
    }


def test_checkpoint_is_overwritten_and_deterministic(tmp_path: Path) -> None:
    """A later checkpoint replaces the earlier one; equal inputs give equal bytes."""
    cp = _checkpoint(_genomes(2))
    save_checkpoint(0, cp, 10, state_dir=tmp_path / "a", now_ms=NOW)
    save_checkpoint(0, cp, 20, state_dir=tmp_path / "a", now_ms=NOW + 1)
    save_checkpoint(0, cp, 20, state_dir=tmp_path / "b", now_ms=NOW + 1)
    a = tmp_path / "a" / "checkpoint_gen0000.json"
    assert a.read_bytes() == (tmp_path / "b" / "checkpoint_gen0000.json").read_bytes()
    assert _read(a)["tick_count"] == 20
    # The one before is kept (the last two checkpoints of the running generation).
    assert _files(tmp_path / "a") == ["checkpoint_gen0000.json", "checkpoint_gen0000.prev.json"]
    assert _read(tmp_path / "a" / "checkpoint_gen0000.prev.json")["tick_count"] == 10


@pytest.mark.parametrize(
    ("checkpoint", "message"),
    [
        ({"phase": "trading"}, "has no 'bots'"),
        ({"bots": {}}, "'bots' must be a list"),
        ({"bots": [1]}, r"bots\[0\]: expected an object"),
        ({"bots": [{"bot_id": "x"}]}, r"bots\[0\]: missing string field 'genome_id'"),
        ({"bots": [], "generation": 3}, "reserved keys"),
        ({"bots": [], "timestamp": "now"}, "reserved keys"),
    ],
)
def test_save_checkpoint_rejects_bad_input(
    tmp_path: Path, checkpoint: dict[str, Any], message: str
) -> None:
    """Malformed checkpoints are caller errors and write nothing."""
    with pytest.raises(ValueError, match=message):
        save_checkpoint(0, checkpoint, 1, state_dir=tmp_path, now_ms=NOW)
    assert not tmp_path.exists() or _files(tmp_path) == []


def test_save_checkpoint_rejects_negative_ticks(tmp_path: Path) -> None:
    """tick_count must be a non-negative integer."""
    with pytest.raises(ValueError, match="tick_count"):
        save_checkpoint(0, {"bots": []}, -1, state_dir=tmp_path, now_ms=NOW)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (None, "not valid JSON"),
        ({"set": ("schema_version", 9)}, "schema_version is 9"),
        ({"drop": "tick_count"}, "missing field 'tick_count'"),
        ({"set": ("tick_count", -4)}, "'tick_count' must be a non-negative integer"),
        ({"set": ("generation", 0)}, "'generation' is 0 but the file is for generation 1"),
        ({"drop": "bots"}, "missing field 'bots'"),
        ({"bot_gene": 2.0}, r"bots\[0\]\.genome: .*must be a number in \[0, 1\]"),
    ],
)
def test_corrupt_checkpoint_is_a_state_error(tmp_path: Path, how: Any, message: str) -> None:
    """A damaged checkpoint is reported with its name and problem."""
    save_checkpoint(1, _checkpoint(_genomes(2)), 5, state_dir=tmp_path, now_ms=NOW)
    path = tmp_path / "checkpoint_gen0001.json"
    if isinstance(how, dict) and "bot_gene" in how:
        doc = _read(path)
        doc["bots"][0]["genome"]["genes"]["min_price"] = how["bot_gene"]
        _write(path, doc)
    else:
        _corrupt(path, how)
    with pytest.raises(StateError, match=message) as info:
        load_checkpoint(1, state_dir=tmp_path)
    assert str(info.value).startswith(f"{path}: ")


# -- hall of fame -------------------------------------------------------------------------------


def test_hall_of_fame_round_trips_and_merges(tmp_path: Path) -> None:
    """Saved entries merge across calls and load back in the seed's structure."""
    g = _genomes(3)
    written = save_hall_of_fame(
        0, [_entry(g[0], 5.0), _entry(g[1], 2.0)], state_dir=tmp_path, now_ms=NOW
    )
    assert _files(tmp_path) == ["hall_of_fame.json"]
    save_hall_of_fame(
        1, [_entry(g[2], 9.0, 1), _entry(g[1], 1.0, 1)], state_dir=tmp_path, now_ms=NOW + 1000
    )
    hof = load_hall_of_fame(state_dir=tmp_path)
    assert hof is not None
    assert written["schema_version"] == 1
    assert set(hof) == {"schema_version", "updated_at", "latest_generation", "best_ever", "entries"}
    assert hof["updated_at"] == iso_timestamp(NOW + 1000)
    assert hof["latest_generation"] == 1
    assert [(e["genome"]["id"], e["fitness_roi_pct"]) for e in hof["entries"]] == [
        (g[2].id, 9.0),
        (g[0].id, 5.0),
        (g[1].id, 2.0),  # the same genes again: the window that chose them first is kept
    ]
    assert hof["best_ever"]["genome"]["id"] == g[2].id


def test_hall_of_fame_respects_max_entries(tmp_path: Path) -> None:
    """The cap passed in is applied to the file."""
    genomes = _genomes(30)
    entries = [_entry(gn, float(i)) for i, gn in enumerate(genomes)]
    save_hall_of_fame(0, entries, state_dir=tmp_path, now_ms=NOW)
    hof = load_hall_of_fame(state_dir=tmp_path)
    assert hof is not None
    assert len(hof["entries"]) == 20
    save_hall_of_fame(1, [], state_dir=tmp_path, now_ms=NOW, max_entries=5)
    hof = load_hall_of_fame(state_dir=tmp_path)
    assert hof is not None
    assert [e["fitness_roi_pct"] for e in hof["entries"]] == [29.0, 28.0, 27.0, 26.0, 25.0]


def test_hall_of_fame_is_deterministic(tmp_path: Path) -> None:
    """Equal calls give byte-identical files."""
    entries = [_entry(g, float(i)) for i, g in enumerate(_genomes(5))]
    for d in ("a", "b"):
        save_hall_of_fame(3, entries, state_dir=tmp_path / d, now_ms=NOW)
    assert (tmp_path / "a" / "hall_of_fame.json").read_bytes() == (
        tmp_path / "b" / "hall_of_fame.json"
    ).read_bytes()


def test_invalid_hall_of_fame_entry_writes_nothing(tmp_path: Path) -> None:
    """A bad entry is a ValueError naming it; the existing file is untouched."""
    g = _genomes(2)
    save_hall_of_fame(0, [_entry(g[0], 1.0)], state_dir=tmp_path, now_ms=NOW)
    before = (tmp_path / "hall_of_fame.json").read_bytes()
    bad = _entry(g[1], 2.0)
    del bad["settled_trades"]
    with pytest.raises(ValueError, match=r"top_entries\[0\]: .*'settled_trades'"):
        save_hall_of_fame(1, [bad], state_dir=tmp_path, now_ms=NOW)
    assert (tmp_path / "hall_of_fame.json").read_bytes() == before


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (None, "not valid JSON"),
        ({"set": ("schema_version", 2)}, "schema_version is 2"),
        ({"drop": "best_ever"}, "missing field 'best_ever'"),
        ({"set": ("entries", [{"genome": {}}])}, r"entries\[0\]: genome is missing field"),
    ],
)
def test_corrupt_hall_of_fame_is_a_state_error(tmp_path: Path, how: Any, message: str) -> None:
    """load_hall_of_fame names the file and the problem."""
    save_hall_of_fame(0, [_entry(_genomes(1)[0], 1.0)], state_dir=tmp_path, now_ms=NOW)
    path = tmp_path / "hall_of_fame.json"
    _corrupt(path, how)
    with pytest.raises(StateError, match=message) as info:
        load_hall_of_fame(state_dir=tmp_path)
    assert str(info.value).startswith(f"{path}: ")


def test_saving_over_a_corrupt_hall_of_fame_moves_it_aside(tmp_path: Path) -> None:
    """The corrupt file is kept as hall_of_fame.json.corrupt-1 (a second corruption as -2) and
    the hall of fame is rebuilt from the generation files' recorded entries: nothing is lost."""
    earlier = _genomes(1, 0, seed=5)[0]
    save_generation_state(
        3,
        [earlier],
        [7.0],
        {},
        state_dir=tmp_path,
        now_ms=NOW,
        extra={HALL_OF_FAME_ENTRIES_FIELD: [_entry(earlier, 7.0, 3)]},
    )
    g = _genomes(1)[0]
    for n in (1, 2):
        (tmp_path / "hall_of_fame.json").write_text('{"entries": [')
        with capture_logs() as logs:
            save_hall_of_fame(4, [_entry(g, 3.0, 4)], state_dir=tmp_path, now_ms=NOW)
        assert (tmp_path / f"hall_of_fame.json.corrupt-{n}").read_text() == '{"entries": ['
    hof = load_hall_of_fame(state_dir=tmp_path)
    assert hof is not None
    assert [e["genome"]["id"] for e in hof["entries"]] == [earlier.id, g.id]
    warned = [e for e in logs if e["event"] == "hall_of_fame_corrupt"]
    assert "hall_of_fame.json: not valid JSON" in warned[0]["error"]


# -- atomic writes ------------------------------------------------------------------------------


def test_no_temp_files_are_left_behind(tmp_path: Path) -> None:
    """After many writes only the state files remain."""
    for gen in range(3):
        genomes = _save_gen(tmp_path, gen)
        save_checkpoint(gen, _checkpoint(genomes), 1, state_dir=tmp_path, now_ms=NOW)
        save_hall_of_fame(gen, [_entry(genomes[0], 1.0, gen)], state_dir=tmp_path, now_ms=NOW)
    assert _files(tmp_path) == [
        "checkpoint_gen0000.json",
        "checkpoint_gen0001.json",
        "checkpoint_gen0002.json",
        "gen_0000.json",
        "gen_0001.json",
        "gen_0002.json",
        "hall_of_fame.json",
        "latest.json",
    ]


def test_failed_replace_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted write keeps the previous file and removes its temp file."""
    _save_gen(tmp_path, 0)
    before = {n: (tmp_path / n).read_bytes() for n in _files(tmp_path)}

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    genomes = _genomes(4, 0, seed=99)
    with pytest.raises(StateWriteError, match=r"gen_0000\.json: cannot write: No space left"):
        save_generation_state(0, genomes, [9.0] * 4, {}, state_dir=tmp_path, now_ms=NOW + 5)
    monkeypatch.undo()
    assert {n: (tmp_path / n).read_bytes() for n in _files(tmp_path)} == before
    assert load_latest_state(state_dir=tmp_path) == (0, _genomes(4, 0, seed=0))


def test_failed_fsync_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while writing the temp file also leaves nothing behind."""
    g = _genomes(1)[0]
    save_hall_of_fame(0, [_entry(g, 1.0)], state_dir=tmp_path, now_ms=NOW)
    before = (tmp_path / "hall_of_fame.json").read_bytes()

    def crash(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(persistence.os, "fsync", crash)
    with pytest.raises(StateWriteError, match=r"hall_of_fame\.json: cannot write"):
        save_hall_of_fame(1, [_entry(g, 50.0, 1)], state_dir=tmp_path, now_ms=NOW)
    monkeypatch.undo()
    assert _files(tmp_path) == ["hall_of_fame.json"]
    assert (tmp_path / "hall_of_fame.json").read_bytes() == before


def test_interrupt_during_write_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a KeyboardInterrupt mid-write removes the temp file and propagates."""

    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(0, {"bots": []}, 0, state_dir=tmp_path, now_ms=NOW)
    monkeypatch.undo()
    assert _files(tmp_path) == []
