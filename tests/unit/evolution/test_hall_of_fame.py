"""Hall-of-fame merging: dedupe by gene hash, out-of-sample records, ordering, cap, best_ever."""

from __future__ import annotations

import copy
from random import Random
from typing import Any

import pytest

from evoarena.evolution.genome import Genome
from evoarena.evolution.hall_of_fame import (
    merge_hall_of_fame,
    validate_entry,
    validate_hall_of_fame,
)

T = "2024-01-01T00:00:00.000000+00:00"


def _genome(gid: str) -> dict[str, Any]:
    g = Genome.random(Random(gid), 0)
    g.id = gid
    return g.to_dict()


def _entry(gid: str, fitness: float, generation: int = 0, **extra: Any) -> dict[str, Any]:
    entry = {
        "genome": _genome(gid),
        "fitness_roi_pct": fitness,
        "total_trades": 10,
        "settled_trades": 8,
        "win_rate": 0.5,
        "realized_pnl": fitness / 10,
        "generation": generation,
        "signal_type": "momentum",
        "params": {"signal_type": "momentum"},
    }
    entry.update(extra)
    return entry


def _ids(hof: dict[str, Any]) -> list[str]:
    return [e["genome"]["id"] for e in hof["entries"]]


def test_first_merge_sorts_by_fitness() -> None:
    """A fresh hall of fame holds the entries best first."""
    hof = merge_hall_of_fame(
        None,
        0,
        [_entry("0000000a", 1.0), _entry("0000000b", 5.0), _entry("0000000c", 3.0)],
        updated_at=T,
    )
    assert _ids(hof) == ["0000000b", "0000000c", "0000000a"]
    assert hof["latest_generation"] == 0
    assert hof["updated_at"] == T
    assert hof["best_ever"]["genome"]["id"] == "0000000b"


def test_equal_fitness_is_ordered_by_genome_id() -> None:
    """Ties are broken by genome id, whatever the input order."""
    entries = [_entry("000000ff", 2.0), _entry("00000001", 2.0), _entry("00000010", 2.0)]
    hof = merge_hall_of_fame(None, 0, entries, updated_at=T)
    rev = merge_hall_of_fame(None, 0, list(reversed(entries)), updated_at=T)
    assert _ids(hof) == ["00000001", "00000010", "000000ff"]
    assert hof == rev


def test_duplicate_genes_keep_the_window_that_chose_them() -> None:
    """A later entry with the same genes does not replace the first (in-sample) one."""
    first = merge_hall_of_fame(None, 1, [_entry("0000000a", 9.0, 1)], updated_at=T)
    second = merge_hall_of_fame(first, 2, [_entry("0000000a", 4.0, 2)], updated_at=T)
    assert len(second["entries"]) == 1
    assert second["entries"][0]["fitness_roi_pct"] == 9.0
    assert second["entries"][0]["generation"] == 1
    assert second["entries"][0]["in_sample"]["generation"] == 1
    assert second["latest_generation"] == 2


def test_duplicate_within_one_call_keeps_the_fitter() -> None:
    """Within one list, the fitter entry for some genes wins (the first on a tie)."""
    hof = merge_hall_of_fame(
        None, 0, [_entry("0000000a", 1.0), _entry("0000000a", 9.0)], updated_at=T
    )
    assert [e["fitness_roi_pct"] for e in hof["entries"]] == [9.0]
    tie = merge_hall_of_fame(
        None, 0, [_entry("0000000a", 1.0, fees_paid=1), _entry("0000000a", 1.0)], updated_at=T
    )
    assert [e.get("fees_paid") for e in tie["entries"]] == [1]


def test_same_genes_under_new_ids_fill_one_slot() -> None:
    """Elite clones (new id, same genes) are one entry: identity is the gene hash."""
    clone = _entry("0000000a", 5.0, 1)
    clone["genome"] = dict(clone["genome"], id="0000000c", parent_ids=["0000000a"], generation=1)
    hof = merge_hall_of_fame(None, 1, [_entry("0000000a", 5.0, 0), clone], updated_at=T)
    assert len(hof["entries"]) == 1
    assert hof["entries"][0]["genome"]["id"] == "0000000a"  # the first, with its lineage
    later = merge_hall_of_fame(hof, 2, [dict(clone, generation=2)], updated_at=T)
    assert len(later["entries"]) == 1
    assert len({e["gene_hash"] for e in later["entries"]}) == len(later["entries"])


def _result(fitness: float, roi_stake: float, trades: int = 3) -> dict[str, Any]:
    return {
        "fitness": fitness,
        "roi_bankroll_pct": fitness,
        "roi_stake_pct": roi_stake,
        "trades": trades,
        "pnl_usd": fitness,
    }


def test_out_of_sample_record_collects_later_windows() -> None:
    """Windows after the choosing one are recorded once each, with their means."""
    entry = _entry("0000000a", 9.0, 1)
    h = Genome.from_dict(entry["genome"]).gene_hash
    hof = merge_hall_of_fame(None, 1, [entry], updated_at=T, window_results={h: _result(9.0, 30)})
    assert hof["entries"][0]["out_of_sample"]["n_windows"] == 0  # the choosing window is in-sample
    assert hof["entries"][0]["in_sample"] == {
        "generation": 1,
        "genome_id": "0000000a",
        "fitness": 9.0,
        "roi_bankroll_pct": None,
        "roi_stake_pct": None,
    }
    hof = merge_hall_of_fame(hof, 2, [], updated_at=T, window_results={h: _result(-2.0, -10)})
    hof = merge_hall_of_fame(hof, 2, [], updated_at=T, window_results={h: _result(-2.0, -10)})
    hof = merge_hall_of_fame(hof, 3, [], updated_at=T, window_results={"other": _result(5, 5)})
    hof = merge_hall_of_fame(hof, 4, [], updated_at=T, window_results={h: _result(1.0, 4)})
    oos = hof["entries"][0]["out_of_sample"]
    assert [w["generation"] for w in oos["windows"]] == [2, 4]
    assert (oos["n_windows"], oos["mean_fitness"], oos["mean_roi_stake_pct"]) == (2, -0.5, -3.0)
    assert hof["best_ever"]["out_of_sample"]["n_windows"] == 2
    validate_hall_of_fame(hof)


def test_cap_keeps_the_best_twenty() -> None:
    """Twenty-five entries become the best twenty."""
    entries = [_entry(f"{i:08x}", float(i)) for i in range(25)]
    hof = merge_hall_of_fame(None, 0, entries, updated_at=T)
    assert len(hof["entries"]) == 20
    assert [e["fitness_roi_pct"] for e in hof["entries"]] == [float(i) for i in range(24, 4, -1)]


def test_cap_applies_across_calls_and_is_configurable() -> None:
    """Weak newcomers do not displace stronger old entries beyond the cap."""
    old = merge_hall_of_fame(
        None, 0, [_entry("0000000a", 5.0), _entry("0000000b", 6.0)], updated_at=T, max_entries=2
    )
    new = merge_hall_of_fame(old, 1, [_entry("0000000c", 1.0)], updated_at=T, max_entries=2)
    assert _ids(new) == ["0000000b", "0000000a"]
    better = merge_hall_of_fame(new, 2, [_entry("0000000d", 5.5)], updated_at=T, max_entries=2)
    assert _ids(better) == ["0000000b", "0000000d"]


def test_best_ever_survives_newer_weaker_data() -> None:
    """best_ever keeps the older, higher result when the same genes do worse later."""
    first = merge_hall_of_fame(None, 1, [_entry("0000000a", 30.0, 1)], updated_at=T)
    second = merge_hall_of_fame(first, 2, [_entry("0000000a", 10.0, 2)], updated_at=T)
    assert second["best_ever"]["fitness_roi_pct"] == 30.0
    assert second["best_ever"]["generation"] == 1
    assert second["entries"][0]["fitness_roi_pct"] == 30.0


def test_best_ever_survives_falling_out_of_the_list() -> None:
    """best_ever is kept even when its entry no longer makes the (capped) top list."""
    first = merge_hall_of_fame(None, 0, [_entry("0000000b", 50.0)], updated_at=T, max_entries=1)
    second = merge_hall_of_fame(first, 1, [_entry("0000000a", 50.0)], updated_at=T, max_entries=1)
    assert _ids(second) == ["0000000a"]  # equal fitness: the lower id takes the only slot
    assert second["best_ever"]["genome"]["id"] == "0000000b"
    assert second["best_ever"]["fitness_roi_pct"] == 50.0


def test_best_ever_replaced_only_by_strictly_better() -> None:
    """An equal result does not displace best_ever; a better one does."""
    first = merge_hall_of_fame(None, 0, [_entry("0000000b", 7.0)], updated_at=T)
    tie = merge_hall_of_fame(first, 1, [_entry("0000000a", 7.0)], updated_at=T)
    assert tie["best_ever"]["genome"]["id"] == "0000000b"
    better = merge_hall_of_fame(tie, 2, [_entry("0000000c", 7.5)], updated_at=T)
    assert better["best_ever"]["genome"]["id"] == "0000000c"


def test_empty_merge_has_no_best_ever() -> None:
    """Nothing seen yet means best_ever is null."""
    hof = merge_hall_of_fame(None, 0, [], updated_at=T)
    assert hof["best_ever"] is None
    assert hof["entries"] == []
    validate_hall_of_fame(hof)


def test_extra_entry_fields_are_kept() -> None:
    """Fields beyond the seed's (e.g. fees_paid) pass through untouched."""
    hof = merge_hall_of_fame(None, 0, [_entry("0000000a", 1.0, fees_paid=0.25)], updated_at=T)
    assert hof["entries"][0]["fees_paid"] == 0.25


def test_merge_is_pure() -> None:
    """Neither the existing hall of fame nor the new entries are modified or shared."""
    existing = merge_hall_of_fame(None, 0, [_entry("0000000a", 1.0)], updated_at=T)
    new = [_entry("0000000b", 2.0)]
    existing_before = copy.deepcopy(existing)
    new_before = copy.deepcopy(new)
    out = merge_hall_of_fame(existing, 1, new, updated_at=T)
    out["entries"][0]["params"]["signal_type"] = "changed"
    assert existing == existing_before
    assert new == new_before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fitness_roi_pct": None}, "'fitness_roi_pct' must be a finite number"),
        ({"fitness_roi_pct": float("nan")}, "'fitness_roi_pct' must be a finite number"),
        ({"total_trades": -1}, "'total_trades' must be a non-negative integer"),
        ({"generation": True}, "'generation' must be a non-negative integer"),
        ({"signal_type": 3}, "'signal_type' must be a string"),
        ({"params": []}, "'params' must be an object"),
    ],
)
def test_invalid_entry_field_is_named(change: dict[str, Any], message: str) -> None:
    """A bad field is rejected with its name."""
    entry = _entry("0000000a", 1.0)
    entry.update(change)
    with pytest.raises(ValueError, match=message):
        validate_entry(entry)


def test_missing_entry_field_is_named() -> None:
    """A missing field is rejected with its name and the genome id."""
    entry = _entry("0000000a", 1.0)
    del entry["win_rate"]
    with pytest.raises(ValueError, match="0000000a is missing field 'win_rate'"):
        validate_entry(entry)


def test_invalid_genome_in_entry_is_rejected() -> None:
    """An entry's genome must pass Genome.from_dict."""
    entry = _entry("0000000a", 1.0)
    entry["genome"]["genes"]["side_bias"] = 1.5
    with pytest.raises(ValueError, match="side_bias"):
        validate_entry(entry)


def test_merge_names_the_bad_entry() -> None:
    """merge_hall_of_fame reports which of the new entries is invalid."""
    bad = _entry("0000000b", 1.0)
    del bad["params"]
    with pytest.raises(ValueError, match=r"top_entries\[1\]"):
        merge_hall_of_fame(None, 0, [_entry("0000000a", 1.0), bad], updated_at=T)


def test_merge_rejects_a_zero_cap() -> None:
    """max_entries must be at least 1."""
    with pytest.raises(ValueError, match="max_entries"):
        merge_hall_of_fame(None, 0, [], updated_at=T, max_entries=0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h.pop("entries"), "missing field 'entries'"),
        (lambda h: h.update(latest_generation=-1), "'latest_generation'"),
        (lambda h: h.update(updated_at=5), "'updated_at'"),
        (lambda h: h.update(entries={}), "'entries' must be a list"),
        (lambda h: h.update(best_ever=None), "'best_ever' is null"),
        (lambda h: h["entries"][0].pop("genome"), r"entries\[0\]: entry is missing field 'genome'"),
        (lambda h: h["best_ever"].pop("signal_type"), "best_ever: .*signal_type"),
    ],
)
def test_validate_hall_of_fame_names_problems(mutate: Any, message: str) -> None:
    """Structural problems are reported with the field at fault."""
    hof = merge_hall_of_fame(None, 0, [_entry("0000000a", 1.0)], updated_at=T)
    validate_hall_of_fame(hof)
    mutate(hof)
    with pytest.raises(ValueError, match=message):
        validate_hall_of_fame(hof)
