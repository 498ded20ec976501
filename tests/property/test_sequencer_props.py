"""Sequencer properties: any hole is a gap; duplicates and older are stale; next is apply."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.feeds.kalshi.sequencer import Sequencer, Verdict


def _model(seqs: list[tuple[int, int]]) -> list[Verdict]:
    """The contract restated independently: per sid, compare with the highest seq seen."""
    highest: dict[int, int] = {}
    out: list[Verdict] = []
    for sid, seq in seqs:
        top = highest.get(sid)
        if top is None or seq == top + 1:
            out.append(Verdict.APPLY)
        elif seq <= top:
            out.append(Verdict.STALE)
        else:
            out.append(Verdict.GAP)
        highest[sid] = seq if top is None else max(top, seq)
    return out


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 12)), max_size=40))
def test_verdicts_follow_the_contract(seqs: list[tuple[int, int]]) -> None:
    """Every (sid, seq) stream classifies exactly as the contract says."""
    s = Sequencer()
    assert [s.check(sid, seq) for sid, seq in seqs] == _model(seqs)


@settings(max_examples=100, deadline=None)
@given(
    start=st.integers(1, 1_000),
    length=st.integers(2, 30),
    holes=st.sets(st.integers(1, 28), min_size=1, max_size=5),
)
def test_any_hole_is_a_gap(start: int, length: int, holes: set[int]) -> None:
    """Dropping any frames from a consecutive run yields a GAP exactly where the run resumes."""
    kept = [start + i for i in range(length) if i not in holes]
    s = Sequencer()
    verdicts = [s.check(7, n) for n in kept]
    expected = [Verdict.APPLY] + [
        Verdict.APPLY if b == a + 1 else Verdict.GAP for a, b in itertools.pairwise(kept)
    ]
    assert verdicts == expected
    last_kept = max(i for i in range(length) if i not in holes)
    assert (Verdict.GAP in verdicts) == any(h < last_kept for h in holes)


@settings(max_examples=100, deadline=None)
@given(start=st.integers(1, 1_000), length=st.integers(1, 30), dup_at=st.data())
def test_consecutive_apply_and_replays_are_stale(
    start: int, length: int, dup_at: st.DataObject
) -> None:
    """A consecutive run all applies; re-sending any already-seen seq is stale."""
    s = Sequencer()
    run = list(range(start, start + length))
    assert all(s.check(3, n) is Verdict.APPLY for n in run)
    again = dup_at.draw(st.sampled_from(run))
    assert s.check(3, again) is Verdict.STALE
    assert s.last(3) == run[-1]
