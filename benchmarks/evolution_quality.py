"""Does evolution find a planted edge, and does the hall of fame predict out-of-sample results?

Trains on a synthetic recording with a favourite–longshot bias (``evoarena synth
--longshot-bias B``), then tests on recordings made with other seeds (and a later start, so
``evaluate`` can tell they are out-of-sample). Everything goes through the real CLI
(``synth``, ``replay``, ``evaluate``) in subprocesses, two at a time. Reports, as one JSON object:

* the **planted-bias rule**, derived from synth's documented model, not from data: quotes are
  ``q = σ((1 − 2B)·logit p)``, so the true probability of a side quoted ``q`` is
  ``p = σ(logit q / (1 − 2B))``. Buying that side at its ask (about ``q`` + half the typical
  spread) and paying Kalshi's taker fee ``0.07·a·(1 − a)`` per contract returns
  ``(p − a − fee) / a`` per dollar staked. The rule buys every side whose ask lies in the band
  where that expected return is at least half its maximum, sized at the genome's maximum, and
  is written as a genome (each gene found by bisection on the real ``Genome.decode``), so it is
  traded by exactly the same bots;
* the out-of-sample ROI (per window, on the bankroll, mean over the test windows) of the rule,
  of the hall of fame's best and of its top 5 (mean), each also as a share of the rule's, and
  the ROI on stake;
* Spearman's rank correlation of in-sample fitness (what the hall of fame recorded) with
  out-of-sample fitness (mean per-window fitness on the test days) over the hall of fame;
* the same on calibrated recordings (``B = 0``), where the right answer is "no edge";
* each of the above for ``[evolution] fitness = "roi"`` and ``"stake_lcb"`` when this evoarena
  has that setting.

Goals (issue 8): within 30 generations the hall of fame's best reaches ≥ 80 % of the rule's
out-of-sample ROI; Spearman > 0.3; on calibrated days no edge (the best's 95 % interval reaches
0 or below). The benchmark reports what it measured; it is not tuned to pass.

    .venv/bin/python benchmarks/evolution_quality.py [--work DIR] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from evoarena.evolution.genome import GENE_NAMES, Genome
from evoarena.feeds.synth import DEFAULT_START_MS, longshot_price

DAY_MS = 86_400_000
FEE_RATE = 0.07
HALF_SPREAD = 0.0103  # synth: spreads of 1-4 ticks, weights .35/.35/.2/.1 -> mean 2.05 cents


@dataclass(frozen=True)
class Plan:
    """The sizes of one benchmark run."""

    markets: int
    train_hours: float
    test_hours: float
    test_seeds: tuple[int, ...]
    train_seed: int
    bias: float
    window_secs: int
    wait_secs: int
    population: int
    generations: int
    top: int
    min_settled_trades: int


FULL = Plan(
    markets=600,
    train_hours=92.0,
    test_hours=24.0,
    test_seeds=(201, 202),
    train_seed=101,
    bias=0.2,
    window_secs=7200,
    wait_secs=3600,
    population=50,
    generations=30,
    top=20,
    min_settled_trades=3,
)
QUICK = Plan(
    markets=120,
    train_hours=20.0,
    test_hours=12.0,
    test_seeds=(201,),
    train_seed=101,
    bias=0.2,
    window_secs=7200,
    wait_secs=3600,
    population=20,
    generations=6,
    top=10,
    min_settled_trades=3,
)


# -- the rule, from synth's model ------------------------------------------------------------------


def true_probability(q: float, bias: float) -> float:
    """Invert synth's quote distortion: the true probability of a side quoted ``q``."""
    x = math.log(q / (1.0 - q)) / (1.0 - 2.0 * bias)
    return 1.0 / (1.0 + math.exp(-x))


def expected_return(q: float, bias: float) -> float:
    """Expected return per dollar staked buying a side quoted ``q`` at its ask (after fees)."""
    a = min(q + HALF_SPREAD, 0.99)
    p = true_probability(q, bias)
    return (p - a - FEE_RATE * a * (1.0 - a)) / a


def rule_band(bias: float) -> tuple[float, float, dict[str, float]]:
    """The ask band where the expected return is at least half its maximum (favourites)."""
    grid = [round(0.50 + 0.005 * i, 3) for i in range(97)]  # 0.50 .. 0.98
    rets = {q: expected_return(q, bias) for q in grid}
    best = max(rets.values())
    inside = [q for q in grid if rets[q] >= 0.5 * best and rets[q] > 0]
    lo, hi = min(inside), max(inside)
    check = longshot_price(true_probability(0.8, bias), bias)  # round trip through synth
    if abs(check - 0.8) > 1e-9:
        msg = f"true_probability does not invert synth's longshot_price ({check})"
        raise RuntimeError(msg)
    info = {"max_expected_return_on_stake": round(best, 4)}
    info.update({f"expected_return_at_{q:.2f}": round(rets[q], 4) for q in (0.6, 0.7, 0.8, 0.9)})
    return lo + HALF_SPREAD, min(hi + HALF_SPREAD, 0.99), info


def _solve_gene(genes: dict[str, float], name: str, field: str, target: float) -> float:
    """The gene value whose decoded ``field`` is closest to ``target`` (decode is monotonic)."""

    def at(x: float) -> float:
        g = Genome("00000000", 0, [], {**genes, name: x})
        return float(getattr(g.decode(), field))

    lo, hi = 0.0, 1.0
    increasing = at(1.0) >= at(0.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        if (at(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda x: abs(at(x) - target))


def rule_genome(low: float, high: float) -> tuple[Genome, dict[str, Any]]:
    """The rule as a genome: price_level on [low, high], no other filter, maximum sizing."""
    genes = dict.fromkeys(GENE_NAMES, 0.5)
    genes.update(
        min_volume_24h=0.0,
        min_open_interest=0.0,
        min_time_to_expiry_hrs=0.0,
        max_time_to_expiry_hrs=1.0,
        category_mask=0.0,
        signal_type=0.0,  # price_level
        side_bias=0.5,  # follow the signal
        side_flip_prob=0.0,
        bankroll_fraction=1.0,
        max_concurrent_positions=1.0,
        max_single_market_pct=1.0,
        daily_loss_limit_pct=1.0,
        max_trades_per_day=1.0,
        price_threshold_low=0.0,
        min_price=0.0,
        price_threshold_high=1.0,
        max_price=1.0,
    )
    # Bounds decode as ordered pairs, so start them wide apart and solve in two passes.
    for _ in range(2):
        for name, target in (
            ("price_threshold_low", low),
            ("price_threshold_high", high),
            ("min_price", low),
            ("max_price", high),
        ):
            genes[name] = _solve_gene(genes, name, name, target)
    genome = Genome("0000a1e5", 0, [], genes)
    p = genome.decode()
    expressed = {
        "signal_type": p.signal_type,
        "band": [round(p.price_threshold_low, 4), round(p.price_threshold_high, 4)],
        "price_bounds": [round(p.min_price, 4), round(p.max_price, 4)],
        "bankroll_fraction": round(p.bankroll_fraction, 4),
        "max_concurrent_positions": p.max_concurrent_positions,
        "max_trades_per_day": p.max_trades_per_day,
    }
    exact = all(
        abs(a - b) < 0.005
        for a, b in zip(expressed["band"] + expressed["price_bounds"], [low, high] * 2, strict=True)
    )
    expressed["expressible"] = exact
    return genome, expressed


# -- running the CLI -------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOARENA_")}
    env["EVOARENA_LOG__LEVEL"] = "warning"
    env["EVOARENA_LOG__FORMAT"] = "json"
    proc = subprocess.run(
        [sys.executable, "-m", "evoarena", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"evoarena {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    return proc


def _synth(path: Path, markets: int, hours: float, seed: int, bias: float, start_ms: int) -> None:
    if path.exists():
        return
    tmp = path.with_name("partial-" + path.name)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ms / 1000))
    _cli("synth", "--out", str(tmp), "--markets", str(markets), "--hours", str(hours),
         "--seed", str(seed), "--longshot-bias", str(bias), "--start", start)  # fmt: skip
    tmp.rename(path)


def _config(path: Path, plan: Plan, fitness: str | None) -> Path:
    lines = [
        "[evolution]",
        f"population_size = {plan.population}",
        f"elite_count = {max(2, plan.population // 20)}",
        f"immigrant_count = {max(2, plan.population // 20)}",
        "tournament_size = 5",
        f"min_settled_trades = {plan.min_settled_trades}",
        "seed = 7",
    ]
    if fitness is not None:
        lines.append(f'fitness = "{fitness}"')
    lines += [
        "",
        "[trading]",
        f"generation_duration_secs = {plan.window_secs}",
        f"settlement_wait_secs = {plan.wait_secs}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _has_fitness_setting(work: Path, plan: Plan) -> bool:
    probe = _config(work / "probe.toml", plan, "stake_lcb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOARENA_")}
    proc = subprocess.run(
        [sys.executable, "-m", "evoarena", "hof", "--config", str(probe), "--state-dir",
         str(work / "no-such-state")],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.returncode != 2


# -- statistics ------------------------------------------------------------------------------------


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rho (average ranks for ties); ``None`` when undefined."""
    if len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    if len(set(rx)) < 2 or len(set(ry)) < 2:
        return None
    return statistics.correlation(rx, ry)


def _ci95(xs: list[float]) -> list[float] | None:
    if len(xs) < 2:
        return None
    from evoarena.evolution.evaluate import t975

    half = t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    m = statistics.fmean(xs)
    return [round(m - half, 3), round(m + half, 3)]


# -- one experiment --------------------------------------------------------------------------------


def _pooled(evals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per genome id, the per-window figures of every test day put together."""
    out: dict[str, dict[str, Any]] = {}
    for ev in evals:
        for g in ev["genomes"]:
            row = out.setdefault(
                g["genome_id"],
                {"roi": [], "fit": [], "pnl": 0.0, "stake": 0.0, "trades": 0,
                 "in_sample": g["in_sample_fitness"]},
            )  # fmt: skip
            row["roi"] += g["roi_bankroll_pct"]["per_window"]
            n = len(g["roi_bankroll_pct"]["per_window"])
            if g["fitness_mean"] is not None:
                row["fit"] += [g["fitness_mean"]] * n
            row["pnl"] += g["pnl_usd"]
            row["stake"] += g["stake_usd"]
            row["trades"] += g["trades"]
    return out


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    roi = row["roi"]
    return {
        "oos_roi_bankroll_pct_per_window": round(statistics.fmean(roi), 3) if roi else None,
        "ci95": _ci95(roi),
        "oos_roi_stake_pct": round(100 * row["pnl"] / row["stake"], 3) if row["stake"] else None,
        "windows": len(roi),
        "trades": row["trades"],
    }


def _share(x: float | None, ref: float | None) -> float | None:
    if x is None or ref is None or ref <= 0:
        return None
    return round(x / ref, 3)


def experiment(
    name: str, work: Path, plan: Plan, train: Path, tests: list[Path], rule: Genome,
    fitness: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Train on ``train``, evaluate the hall of fame and the rule on ``tests``."""
    cfg = _config(work / f"{name}.toml", plan, fitness)
    state = work / f"state-{name}"
    t0 = time.perf_counter()
    if not (state / "hall_of_fame.json").exists():
        _cli("replay", str(train), "--config", str(cfg), "--state-dir", str(state),
             "--generations", str(plan.generations), "--no-progress")  # fmt: skip
    train_secs = time.perf_counter() - t0
    gens = sorted(state.glob("gen_*.json"))
    hof = orjson.loads((state / "hall_of_fame.json").read_bytes())
    entries = []
    seen = {rule.gene_hash}
    for e in hof["entries"]:
        g = Genome.from_dict(e["genome"])
        if g.gene_hash not in seen and len(entries) < plan.top:
            seen.add(g.gene_hash)
            entries.append(e)
    source = work / f"genomes-{name}.json"
    source.write_bytes(orjson.dumps([{"genome": rule.to_dict()}, *entries]))
    t1 = time.perf_counter()
    runs = [
        _cli("evaluate", str(rec), "--genomes", str(source), "--config", str(cfg), "--json")
        for rec in tests
    ]
    eval_secs = time.perf_counter() - t1
    evals = [orjson.loads(r.stdout) for r in runs]
    labels = sorted({ev["sample"]["label"] for ev in evals})
    pooled = _pooled(evals)
    rule_fig = _figures(pooled[rule.id])
    hof_ids = [Genome.from_dict(e["genome"]).id for e in entries]
    hof_figs = [_figures(pooled[i]) for i in hof_ids]
    best = hof_figs[0] if hof_figs else None
    top5 = [f["oos_roi_bankroll_pct_per_window"] for f in hof_figs[:5]]
    top5_mean = round(statistics.fmean(top5), 3) if top5 else None
    in_sample = [float(e["fitness_roi_pct"]) for e in entries]
    oos_fit = [statistics.fmean(pooled[i]["fit"]) if pooled[i]["fit"] else 0.0 for i in hof_ids]
    rule_roi = rule_fig["oos_roi_bankroll_pct_per_window"]
    all_stats = [orjson.loads(g.read_bytes())["stats"] for g in gens]
    last_stats = all_stats[-1] if all_stats else {}
    return {
        "fitness": fitness or "roi (default)",
        "generations_trained": len(gens),
        "train_wall_secs": round(train_secs, 1),
        "evaluate_wall_secs": round(eval_secs, 1),
        "test_sample_labels": labels,
        "rule": rule_fig,
        "hof_best": {
            "genome_id": hof_ids[0] if hof_ids else None,
            "in_sample_fitness": in_sample[0] if in_sample else None,
            "signal_type": entries[0]["signal_type"] if entries else None,
            **(best or {}),
            "share_of_rule_roi": _share(
                best["oos_roi_bankroll_pct_per_window"] if best else None, rule_roi
            ),
            "share_of_rule_roi_on_stake": _share(
                best["oos_roi_stake_pct"] if best else None, rule_fig["oos_roi_stake_pct"]
            ),
            "params": entries[0]["params"] if entries else None,
        },
        "hof_top5_mean_oos_roi_bankroll_pct": top5_mean,
        "hof_top5_share_of_rule_roi": _share(top5_mean, rule_roi),
        "hof_entries_evaluated": len(entries),
        "spearman_in_vs_out_of_sample_fitness": _round(spearman(in_sample, oos_fit)),
        "in_sample_fitness": [round(x, 3) for x in in_sample],
        "out_of_sample_fitness": [round(x, 3) for x in oos_fit],
        "hof_oos_roi_bankroll_pct": [f["oos_roi_bankroll_pct_per_window"] for f in hof_figs],
        "luck_test": _luck_summary(all_stats),
        "last_generation_stats": {k: v for k, v in last_stats.items() if not isinstance(v, list)},
    }


def _luck_summary(all_stats: list[dict[str, Any]]) -> dict[str, Any]:
    """How often each luck-test verdict the generation files carry said what (if any)."""
    out: dict[str, Any] = {}
    for stats in all_stats:
        for key, value in stats.items():
            if key.startswith("luck") and key.endswith("verdict") and isinstance(value, str):
                counts = out.setdefault(key, {})
                counts[value] = counts.get(value, 0) + 1
    if all_stats:
        last = all_stats[-1]
        out["last_generation"] = {
            k: v for k, v in last.items() if k.startswith("luck") and not isinstance(v, list)
        }
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def main() -> int:
    """Run the benchmark; prints JSON on stdout."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench-evolution-quality"),
                    help="working directory (recordings are reused when present)")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="a small smoke run (minutes less)")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    low, high, model = rule_band(plan.bias)
    rule, expressed = rule_genome(low, high)

    later = DEFAULT_START_MS + 60 * DAY_MS
    jobs = []
    for bias, tag in ((plan.bias, "biased"), (0.0, "calibrated")):
        jobs.append((work / f"train-{tag}.jsonl.gz", plan.train_hours, plan.train_seed, bias,
                     DEFAULT_START_MS))  # fmt: skip
        for i, seed in enumerate(plan.test_seeds):
            jobs.append((work / f"test-{tag}-{seed}.jsonl.gz", plan.test_hours, seed, bias,
                         later + i * 10 * DAY_MS))  # fmt: skip
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda j: _synth(j[0], plan.markets, j[1], j[2], j[3], j[4]), jobs))
    synth_secs = time.perf_counter() - t0

    fitnesses: list[str | None] = [None]
    if _has_fitness_setting(work, plan):
        fitnesses = ["roi", "stake_lcb"]
    tests_b = [work / f"test-biased-{s}.jsonl.gz" for s in plan.test_seeds]
    tests_c = [work / f"test-calibrated-{s}.jsonl.gz" for s in plan.test_seeds]
    specs = []
    for fit in fitnesses:
        tag = fit or "roi"
        specs.append((f"biased/{tag}", f"biased-{tag}", "train-biased.jsonl.gz", tests_b, fit))
        specs.append(
            (f"calibrated/{tag}", f"calibrated-{tag}", "train-calibrated.jsonl.gz", tests_c, fit)
        )
    with ThreadPoolExecutor(max_workers=2) as pool:  # two trainings at a time (2 cores)
        done = pool.map(
            lambda sp: experiment(sp[1], work, plan, work / sp[2], sp[3], rule, sp[4]), specs
        )
        results: dict[str, Any] = {sp[0]: r for sp, r in zip(specs, done, strict=True)}

    goals = {}
    for key, r in results.items():
        best = r["hof_best"]
        if key.startswith("biased"):
            goals[key] = {
                "hof_best_at_least_80pct_of_rule": (best.get("share_of_rule_roi") or 0) >= 0.8,
                "spearman_above_0.3": (r["spearman_in_vs_out_of_sample_fitness"] or -1) > 0.3,
            }
        else:
            ci = best.get("ci95")
            goals[key] = {"no_positive_edge_hof_best_ci_low_at_most_0": ci is None or ci[0] <= 0.0}
    out = {
        "benchmark": "evolution_quality",
        "plan": plan.__dict__,
        "rule": {
            "derived_band": [round(low, 4), round(high, 4)],
            "model": model,
            "as_genome": expressed,
        },
        "synth_wall_secs": round(synth_secs, 1),
        "results": results,
        "goals": goals,
        "wall_secs": round(time.perf_counter() - started, 1),
        "python": sys.version.split()[0],
    }
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
