"""``strikechain demo``: the venue running a seeded session, then the pricing behind it.

The venue part (:mod:`strikechain.cli.demo_venue`) runs a scripted engine session across BTC and
ETH perpetuals and a BTC option chain, with every invariant checked after every block, and
prints its trades, fees, funding, settlement, rejections and the conservation of money.

The pricing part shows the pricing library doing the venue's off-engine work on a seeded
synthetic BTC market: an arbitrage-free "true" surface (SSVI, which is raw SVI per expiry),
noisy option quotes on Deribit-style daily, weekly, monthly and quarterly expiries, implied vols
solved from those quotes, an SVI fit with arbitrage checks, the chain priced with Greeks from
the fitted surface, the round trip back to vols, the deterministic mode's agreement with the
fast mode, and the node surface an oracle reporter would publish.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from strikechain import pricing
from strikechain.pricing import deterministic
from strikechain.pricing._types import FloatArray
from strikechain.pricing.surface import NodeSurface, fit_svi_surface
from strikechain.pricing.svi import SliceFitReport, SliceQuotes, SviParams

SPOT = 100_000.0
RATE = 0.04
EXPIRIES = (("daily", 1), ("weekly", 7), ("monthly", 30), ("quarterly", 91))
STRIKE_STEPS = {1: 500.0, 7: 1_000.0, 30: 2_500.0, 91: 5_000.0}
NODES = np.array([-0.6, -0.4, -0.25, -0.15, -0.08, 0.0, 0.08, 0.15, 0.25, 0.4, 0.6])
QUOTE_NOISE_VOL_POINTS = 0.15
EPSILON = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Chain:
    """Every listed option of the synthetic market, flat: one entry per (expiry, strike)."""

    label: np.ndarray
    expiry: np.ndarray
    forward: np.ndarray
    strike: np.ndarray
    call: np.ndarray
    true_vol: np.ndarray


def true_surface(rng: np.random.Generator) -> list[SviParams]:
    """SSVI with a power-law curvature: raw SVI per expiry, free of static arbitrage."""
    rho = rng.uniform(-0.45, -0.15)
    eta = rng.uniform(0.6, 1.1)  # eta (1 + |rho|) <= 2 keeps SSVI butterfly-free
    atm_vols = np.sort(rng.uniform(0.42, 0.62, len(EXPIRIES)))[::-1]
    slices = []
    previous_theta = 0.0
    for (_, days), vol in zip(EXPIRIES, atm_vols, strict=True):
        theta = max(vol * vol * days / 365.0, previous_theta * 1.05)  # increasing in T
        previous_theta = theta
        phi = eta / np.sqrt(theta)
        slices.append(
            SviParams(
                a=theta * (1 - rho * rho) / 2,
                b=theta * phi / 2,
                rho=rho,
                m=-rho / phi,
                sigma=np.sqrt(1 - rho * rho) / phi,
            )
        )
    return slices


def build_chain(surface: list[SviParams]) -> Chain:
    labels, expiries, forwards, strikes, calls, vols = [], [], [], [], [], []
    for (label, days), params in zip(EXPIRIES, surface, strict=True):
        expiry = days / 365.0
        forward = SPOT * np.exp(RATE * expiry)
        sd = np.sqrt(float(params.total_variance(0.0)))
        step = STRIKE_STEPS[days]
        grid = np.arange(
            np.floor(forward * np.exp(-2.8 * sd) / step),
            np.ceil(forward * np.exp(2.8 * sd) / step) + 1,
        )
        k_strikes = grid * step
        k = np.log(k_strikes / forward)
        labels += [label] * k.size
        expiries.append(np.full(k.size, expiry))
        forwards.append(np.full(k.size, forward))
        strikes.append(k_strikes)
        calls.append(k_strikes >= forward)  # quote the out-of-the-money side
        vols.append(params.implied_vol(k, expiry))
    return Chain(
        np.array(labels),
        *(np.concatenate(part) for part in (expiries, forwards, strikes, calls, vols)),
    )


DEMO_PARTS = ("lab", "all", "venue", "crash", "pricing")
DEMO_BLOCKS = 300


def run_demo(
    seed: int,
    part: str = "lab",
    blocks: int = DEMO_BLOCKS,
    log: Path | None = None,
    duration_s: float | None = None,
) -> bool:
    """The lab (the default), or the venue session, the scripted crash and the pricing demo
    (``all``, or one of them: ``part``). The session's block log goes to ``log`` (kept), or to
    a temporary file. False if a check of the log failed, or dynamic margin did not lower the
    crash's bad debt."""
    # A log or a pipe gets the width the tables need; a terminal keeps its own.
    console = Console(width=None if sys.stdout.isatty() else 120)
    passed = True
    if part in ("lab", "all"):
        from strikechain.cli.demo_lab import run_lab_demo

        passed = run_lab_demo(console, seed, duration_s) and passed
    if part in ("all", "venue"):
        from strikechain.cli.demo_venue import run_venue_demo

        if log is not None:
            _, passed = run_venue_demo(console, seed, blocks, log)
        else:
            with tempfile.TemporaryDirectory() as directory:
                _, passed = run_venue_demo(console, seed, blocks, Path(directory) / "demo.sqlite")
    if part in ("all", "crash"):
        from strikechain.cli.demo_crash import run_crash_demo

        passed = run_crash_demo(console) and passed
    if part in ("all", "pricing"):
        run_pricing_demo(console, seed)
    return passed


def run_pricing_demo(console: Console, seed: int) -> None:
    rng = np.random.default_rng(seed)
    chain = build_chain(true_surface(rng))
    noise = rng.normal(0.0, QUOTE_NOISE_VOL_POINTS * 0.01, chain.strike.size)
    quotes = pricing.black76(
        chain.forward, chain.strike, chain.expiry, chain.true_vol + noise, RATE, call=chain.call
    )
    console.rule(
        f"[bold]strikechain demo[/] - synthetic BTC options, spot {SPOT:,.0f}, "
        f"rate {RATE:.0%}, seed {seed}"
    )

    started = time.perf_counter()
    solved = pricing.black76_implied_vol(
        quotes, chain.forward, chain.strike, chain.expiry, RATE, call=chain.call
    )
    solve_ms = (time.perf_counter() - started) * 1e3
    slice_quotes = [
        SliceQuotes.from_prices(
            float(chain.expiry[m][0]),
            float(chain.forward[m][0]),
            chain.strike[m],
            quotes[m],
            call=chain.call[m],
            rate=RATE,
        )
        for m in (chain.label == label for label, _ in EXPIRIES)
    ]
    fit = fit_svi_surface(slice_quotes, policy="repair")
    fitted_vol = fit.surface.implied_vol(chain.expiry, np.log(chain.strike / chain.forward))

    started = time.perf_counter()
    greeks = pricing.black76_greeks(
        chain.forward, chain.strike, chain.expiry, fitted_vol, RATE, call=chain.call
    )
    price_ms = (time.perf_counter() - started) * 1e3
    back = pricing.black76_implied_vol(
        greeks.price, chain.forward, chain.strike, chain.expiry, RATE, call=chain.call
    )
    conditioned = np.abs(back.vol - fitted_vol) / (
        EPSILON * (fitted_vol + greeks.price / greeks.vega)
    )
    det_prices = deterministic.black76(
        chain.forward, chain.strike, chain.expiry, fitted_vol, RATE, call=chain.call
    )
    ulps = np.abs(det_prices - greeks.price) / np.spacing(np.abs(greeks.price))

    _chain_table(console, chain, quotes, solved.vol, fitted_vol, greeks)
    _fit_table(console, fit.reports)
    _node_table(console, fit.surface.sample_nodes(NODES))
    summary = Table(title="Checks", show_header=False)
    summary.add_row("options in the chain", f"{chain.strike.size}")
    summary.add_row(
        "implied vols solved from quotes",
        f"{int(solved.ok.sum())} of {solved.ok.size} in {solve_ms:.2f} ms",
    )
    summary.add_row("priced with all Greeks", f"{chain.strike.size} in {price_ms:.2f} ms")
    summary.add_row(
        "round trip price -> vol, max error",
        f"{conditioned.max():.2f} eps x (vol + price/vega) (limit 8)",
    )
    summary.add_row("deterministic vs fast mode, max", f"{ulps.max():.1f} ulp of the price")
    summary.add_row(
        "surface butterfly / calendar checks",
        "passed"
        if all(r.butterfly_passed and r.calendar_passed for r in fit.reports)
        else "FAILED",
    )
    console.print(summary)


def _chain_table(
    console: Console,
    chain: Chain,
    quotes: np.ndarray,
    solved: np.ndarray,
    fitted: np.ndarray,
    g: pricing.Greeks[FloatArray],
) -> None:
    shown = _rows_to_show(chain)
    table = Table(
        title=(
            "The chain: quotes, implied vols, and prices and Greeks from the fitted SVI surface"
            f" ({shown.size} of {chain.strike.size} options shown)"
        ),
        box=box.SIMPLE_HEAD,
    )
    for column in (
        "expiry",
        "strike",
        "quote",
        "quote vol",
        "fit vol",
        "model",
        "delta",
        "gamma",
        "vega/pt",
        "theta/day",
    ):
        table.add_column(column, justify="right")
    previous = None
    for i in shown:
        if previous is not None and chain.label[i] != previous:
            table.add_section()
        previous = chain.label[i]
        table.add_row(
            f"{chain.expiry[i] * 365:.0f}d",
            f"{chain.strike[i]:,.0f} {'C' if chain.call[i] else 'P'}",
            f"{quotes[i]:,.2f}",
            f"{solved[i]:.2%}",
            f"{fitted[i]:.2%}",
            f"{g.price[i]:,.2f}",
            f"{g.delta[i]:+.4f}",
            f"{g.gamma[i]:.2e}",
            f"{g.vega[i] / 100:,.2f}",
            f"{g.theta[i] / 365:,.2f}",
        )
    console.print(table)


def _rows_to_show(chain: Chain, per_expiry: int = 9) -> np.ndarray:
    """About ``per_expiry`` strikes per expiry, evenly spread across its listed range."""
    rows = []
    for label, _ in EXPIRIES:
        idx = np.flatnonzero(chain.label == label)
        rows.append(idx[np.unique(np.linspace(0, idx.size - 1, per_expiry).round().astype(int))])
    return np.concatenate(rows)


def _fit_table(console: Console, reports: Sequence[SliceFitReport]) -> None:
    table = Table(title="SVI fit per expiry (errors in vol points)")
    for column in (
        "expiry",
        "quotes",
        "RMSE",
        "max error",
        "butterfly",
        "calendar",
        "repaired",
        "a",
        "b",
        "rho",
        "m",
        "sigma",
    ):
        table.add_column(column, justify="right")
    for r in reports:
        p = r.params
        table.add_row(
            f"{r.expiry * 365:.0f}d",
            f"{r.quote_count}",
            f"{r.rmse_vol_points:.3f}",
            f"{r.max_abs_error_vol_points:.3f}",
            "ok" if r.butterfly_passed else "FAIL",
            "ok" if r.calendar_passed else "FAIL",
            ", ".join(r.repairs) or "no",
            f"{p.a:.5f}",
            f"{p.b:.5f}",
            f"{p.rho:+.3f}",
            f"{p.m:+.4f}",
            f"{p.sigma:.4f}",
        )
    console.print(table)


def _node_table(console: Console, nodes: NodeSurface) -> None:
    table = Table(title="Node surface an oracle reporter publishes: vol (%) at fixed log-moneyness")
    table.add_column("expiry", justify="right")
    for k in nodes.log_moneyness:
        table.add_column(f"{k:+.2f}", justify="right")
    for expiry, row in zip(nodes.expiries, nodes.node_vols(), strict=True):
        table.add_row(f"{expiry * 365:.0f}d", *(f"{100 * v:.1f}" for v in row))
    console.print(table)
