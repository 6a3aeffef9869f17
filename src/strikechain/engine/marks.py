"""Marks: the prices positions are valued and margined at, from the oracle and the book.

- **When**: the engine marks an underlying when its index or vol nodes change, and otherwise
  once per mark interval (``MarkParams.interval_ns``) of block time.
- **Perpetuals**: ``mark = index + basis``, where the basis is an exponential average of the
  book's mid over the index, clamped to a fraction of the index. Each marking moves the average
  towards that moment's sample (mid minus index; zero when the book is one-sided, so an empty
  book lets the mark fall back to the index) with weight ``dt / (dt + tau)``: exact integer
  arithmetic, rounded ``FLOOR``, so every replica computes the same mark. The clamp bounds what a
  thin book can do to the mark; the index bounds what a trader can do to it.
- **Options**: the oracle's median vol nodes interpolated in total variance and priced by the
  pricing library's deterministic mode (:func:`strikechain.engine.oracle.option_marks`), per unit
  of the underlying, ``FLOOR`` to minor units. With no vol nodes, or at expiry, the intrinsic
  value (the venue never invents a vol).
- Per-lot values are ``FLOOR`` of the per-unit value times the lot's units of the underlying.

The premium of a perp's mark over the index is accumulated, weighted by time, for funding.
"""

from __future__ import annotations

from collections.abc import Sequence

from strikechain.engine.accounts import Market
from strikechain.engine.book import Book
from strikechain.engine.oracle import option_marks
from strikechain.engine.params import PPB, PPM, MarkParams


def update_perp_mark(
    market: Market, book: Book, index: int, now_ns: int, params: MarkParams
) -> bool:
    """Advance the basis average to ``now_ns``, set the mark, and accumulate the premium.
    Returns whether the per-lot mark or index changed (what margin depends on)."""
    dt = now_ns - market.basis_updated_ns
    if dt > 0:
        bid, ask = book.best_bid(), book.best_ask()
        sample = 0
        if bid is not None and ask is not None:
            sample = (bid + ask) * market.tick_minor // 2 - index
        ema = market.basis_ema_minor
        ema += (sample - ema) * dt // (dt + params.basis_tau_ns)
        bound = index * params.basis_clamp_ppm // PPM
        market.basis_ema_minor = min(max(ema, -bound), bound)
        # The premium sample (the basis over the index, ppb) stands for the elapsed time.
        market.premium_weighted += market.basis_ema_minor * PPB // index * dt
        market.premium_ns += dt
        market.basis_updated_ns = now_ns
    return set_mark(market, index, index + market.basis_ema_minor)


def update_option_marks(
    options: Sequence[Market],
    index: int,
    vol_nodes: dict[int, tuple[int, ...]],
    log_moneyness_ppm: tuple[int, ...],
    now_ns: int,
) -> bool:
    """Mark every option of one underlying in one vectorized, deterministic call; returns
    whether any per-lot mark or index changed."""
    if not options:
        return False
    marks = option_marks(
        index,
        vol_nodes,
        log_moneyness_ppm,
        now_ns,
        [market.strike_minor for market in options],
        [market.expiry_ns for market in options],
        [market.is_call for market in options],
    )
    changed = False
    for market, mark in zip(options, marks, strict=True):
        changed |= set_mark(market, index, int(mark))
    return changed


def set_mark(market: Market, index: int, mark_minor: int) -> bool:
    """Set a market's marks; returns whether the per-lot values changed."""
    market.mark_minor = mark_minor
    mark_per_lot = market.per_lot(mark_minor)
    index_per_lot = market.per_lot(index)
    if mark_per_lot == market.mark_per_lot and index_per_lot == market.index_per_lot:
        return False
    market.mark_per_lot = mark_per_lot
    market.index_per_lot = index_per_lot
    return True
