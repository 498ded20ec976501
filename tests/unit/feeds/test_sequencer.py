"""Sequencer: per-sid apply / stale / gap classification."""

from __future__ import annotations

from evoarena.feeds.kalshi.sequencer import Sequencer, Verdict


def test_first_seq_is_the_start_then_consecutive_apply() -> None:
    """The first seq on a sid is accepted; each next one applies."""
    s = Sequencer()
    assert [s.check(1, n) for n in (5, 6, 7)] == [Verdict.APPLY] * 3
    assert s.last(1) == 7


def test_duplicate_and_older_are_stale_and_do_not_move_the_position() -> None:
    """A repeated or older seq is stale; the position stays at the newest."""
    s = Sequencer()
    s.check(1, 1)
    s.check(1, 2)
    assert s.check(1, 2) is Verdict.STALE
    assert s.check(1, 1) is Verdict.STALE
    assert s.check(1, -4) is Verdict.STALE
    assert s.last(1) == 2
    assert s.check(1, 3) is Verdict.APPLY


def test_gap_is_reported_and_counting_continues_from_the_new_seq() -> None:
    """Skipping a seq is a gap; ``last_gap`` says what was expected; the count resumes there."""
    s = Sequencer()
    s.check(4, 1)
    assert s.check(4, 3) is Verdict.GAP
    assert s.last_gap == (4, 2, 3)
    assert s.check(4, 4) is Verdict.APPLY
    assert s.check(4, 2) is Verdict.STALE


def test_sids_are_independent() -> None:
    """Each sid has its own counter."""
    s = Sequencer()
    assert s.check(1, 1) is Verdict.APPLY
    assert s.check(2, 1) is Verdict.APPLY
    assert s.check(2, 2) is Verdict.APPLY
    assert s.check(1, 3) is Verdict.GAP
    assert s.last(2) == 2


def test_forget_and_clear_start_afresh() -> None:
    """A forgotten sid (or all, after ``clear``) accepts any seq as its new start."""
    s = Sequencer()
    s.check(1, 10)
    s.check(2, 10)
    s.forget(1)
    assert s.last(1) is None
    assert s.check(1, 1) is Verdict.APPLY
    assert s.check(2, 1) is Verdict.STALE
    s.clear()
    assert s.check(2, 1) is Verdict.APPLY
    s.forget(99)  # unknown sid: no error
