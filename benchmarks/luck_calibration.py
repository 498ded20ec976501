"""Luck-test calibration: how often does it say "edge" where none exists, and where one does?

Synthesizes days with ``evoarena synth``'s model, calibrated (no edge after fees: the verdict
should be "no evidence of edge" in at least 90 % of generations) and with a planted
favourite-longshot bias (``--longshot-bias``, a real edge: the verdict should find it), replays
generations over each day with the default population and fitness, and prints one JSON object:
per condition the number of generations, the share with each in-sample verdict, p-value
quantiles and the per-generation p-values, and per day the walk-forward (out-of-sample) verdict
at the end of the run. Run::

    .venv/bin/python benchmarks/luck_calibration.py [--days 6] [--markets 300] [--hours 50]
        [--generation-hours 4] [--wait-hours 1] [--bias 0.2] [--fitness roi] [--seed-rule]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import structlog

from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.luck import EDGE
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import run_replay
from evoarena.settings import load_settings


def _planted_rule(bias: float) -> tuple[list[Genome], dict[str, Any]]:
    """The favourite band that exploits a planted bias, as a price_level genome.

    The band comes from benchmarks/evolution_quality.py's ``rule_band`` (derived from synth's
    documented model), built by ``evolution_quality.rule_genome``.
    """
    sys.path.insert(0, str(Path(__file__).parent))
    from evolution_quality import rule_band, rule_genome  # a sibling script

    low, high, info = rule_band(bias)
    genome, _expressed = rule_genome(low, high)
    p = genome.decode()
    return [genome], {
        "band": [round(p.price_threshold_low, 4), round(p.price_threshold_high, 4)],
        "price_bounds": [round(p.min_price, 4), round(p.max_price, 4)],
        **info,
    }


def _condition(
    args: argparse.Namespace, bias: float, work: Path, seeds: list[Genome] | None
) -> dict[str, Any]:
    p_values: list[float] = []
    best: list[float] = []
    oos_final: list[dict[str, Any]] = []
    elites_stake: list[float] = []
    t0 = time.perf_counter()
    for day in range(args.days):
        seed = args.first_seed + day
        rec = work / f"day-{bias}-{seed}.jsonl.gz"
        generate_day(
            rec,
            markets=args.markets,
            hours=args.hours,
            seed=seed,
            start_ms=DEFAULT_START_MS,
            longshot_bias=bias,
        )
        state = work / f"state-{bias}-{seed}"
        settings = load_settings(
            None,
            {
                "evolution": {"fitness": args.fitness, "seed": seed},
                "trading": {
                    "generation_duration_secs": int(args.generation_hours * 3600),
                    "settlement_wait_secs": int(args.wait_hours * 3600),
                    "market_close_window_secs": int(args.generation_hours * 3600),
                },
                "state": {"dir": str(state)},
            },
        )
        run_replay(rec, settings, seed_genomes=seeds)
        for gen in persistence.list_generations(state):
            doc = persistence.load_generation(gen, state_dir=state)
            if doc is None:
                continue
            stats = doc["stats"]
            p_values.append(float(stats["luck_p_value"]))
            best.append(float(stats["best_fitness"]))
            oos = stats["carried_elites_oos"]["mean_roi_stake_pct"]
            if oos is not None:
                elites_stake.append(float(oos))
            last = stats
        oos_final.append(
            {
                "seed": seed,
                "windows": last["luck_oos_windows"],
                "combined_p_value": last["luck_oos_combined_p_value"],
                "verdict": last["luck_oos_verdict"],
            }
        )
        rec.unlink()
    edges = sum(p < args.alpha for p in p_values)
    n = len(p_values)
    qs = statistics.quantiles(p_values, n=10) if n >= 2 else p_values
    return {
        "longshot_bias": bias,
        "generations": n,
        "edge": edges,
        "no_evidence_of_edge": n - edges,
        "share_no_evidence": round((n - edges) / n, 4) if n else None,
        "share_edge": round(edges / n, 4) if n else None,
        "p_value_deciles": [round(q, 4) for q in qs],
        "p_values": [round(p, 4) for p in p_values],
        "best_fitness": [round(b, 3) for b in best],
        "walk_forward_per_day": oos_final,
        "walk_forward_edge_days": sum(d["verdict"] == EDGE for d in oos_final),
        "carried_elites_mean_oos_roi_stake_pct": round(statistics.fmean(elites_stake), 3)
        if elites_stake
        else None,
        "wall_secs": round(time.perf_counter() - t0, 1),
    }


def main() -> int:
    """Run the calibration; prints JSON on stdout."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=6, help="synthetic days per condition")
    p.add_argument("--markets", type=int, default=300)
    p.add_argument("--hours", type=float, default=50.0)
    p.add_argument("--generation-hours", type=float, default=4.0)
    p.add_argument("--wait-hours", type=float, default=1.0)
    p.add_argument("--bias", type=float, default=0.2, help="the planted longshot bias")
    p.add_argument("--fitness", choices=("roi", "stake_lcb"), default="roi")
    p.add_argument("--first-seed", type=int, default=101)
    p.add_argument("--alpha", type=float, default=0.05, help="must match evolution.luck_alpha")
    p.add_argument(
        "--seed-rule",
        action="store_true",
        help="start each population from the planted-bias rule (benchmarks/evolution_quality.py)"
        " plus random genomes: does the test find an edge that is there to find?",
    )
    args = p.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    seeds, rule = _planted_rule(args.bias) if args.seed_rule else (None, None)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        calibrated = _condition(args, 0.0, work, seeds)
        biased = _condition(args, args.bias, work, seeds)
    out = {
        "benchmark": "luck_calibration",
        "settings": {
            "days": args.days,
            "markets": args.markets,
            "hours": args.hours,
            "generation_hours": args.generation_hours,
            "wait_hours": args.wait_hours,
            "fitness": args.fitness,
            "alpha": args.alpha,
            "first_seed": args.first_seed,
            "seeded_with_planted_rule": rule,
            "verdict_edge": EDGE,
        },
        "calibrated": calibrated,
        "biased": biased,
        "goal": "calibrated share_no_evidence >= 0.9; biased: edge found",
        "note": "share_* and p_values: the in-sample best-of-N test of each generation; "
        "walk_forward_*: the carried elites' out-of-sample test combined over each day's run",
    }
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
