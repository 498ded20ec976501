"""replay_position.json: entries keyed by the exact bytes of their state file."""

from __future__ import annotations

from pathlib import Path

import orjson

from evoarena.replay_position import KEEP_PER_CHECKPOINT, POSITION_FILE, PositionLog


def _write(log: PositionLog, path: Path, data: bytes, items: int) -> None:
    log.record(path, data, {"items": items})
    path.write_bytes(data)


def test_a_file_is_found_by_its_bytes_and_prev_by_its_checkpoint_name(tmp_path: Path) -> None:
    log = PositionLog(tmp_path)
    cp = tmp_path / "checkpoint_gen0001.json"
    _write(log, cp, b"first", 1)
    cp.rename(tmp_path / "checkpoint_gen0001.prev.json")
    _write(log, cp, b"second", 2)
    again = PositionLog(tmp_path)  # read back from the file
    assert again.position_of(cp) == {"items": 2}
    assert again.position_of(tmp_path / "checkpoint_gen0001.prev.json") == {"items": 1}
    cp.write_bytes(b"other bytes")  # e.g. the entry of a write a kill prevented
    assert again.position_of(cp) is None


def test_pruning_keeps_the_checkpoints_that_can_exist(tmp_path: Path) -> None:
    log = PositionLog(tmp_path)
    gen0 = tmp_path / "gen_0000.json"
    _write(log, gen0, b"g0", 5)
    for i in range(5):
        _write(log, tmp_path / "checkpoint_gen0001.json", f"c1-{i}".encode(), 10 + i)
    names = [e["file"] for e in log.entries]
    assert names.count("checkpoint_gen0001.json") == KEEP_PER_CHECKPOINT
    _write(log, tmp_path / "checkpoint_gen0002.json", b"c2-0", 30)
    assert [e["file"] for e in log.entries] == [
        "gen_0000.json",
        "checkpoint_gen0002.json",
    ]
    assert log.position_of(gen0) == {"items": 5}


def test_a_damaged_file_is_no_position_and_no_crash(tmp_path: Path) -> None:
    for junk in (b"{not json", b"[]", orjson.dumps({"schema_version": 1, "entries": [1]})):
        (tmp_path / POSITION_FILE).write_bytes(junk)
        log = PositionLog(tmp_path)
        assert log.entries == []
        assert log.position_of(tmp_path / "gen_0000.json") is None
