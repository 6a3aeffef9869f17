"""``strikechain price``: one option's price and Greeks, or its implied volatility."""

from __future__ import annotations

from typing import NamedTuple

from rich.console import Console
from rich.table import Table

from strikechain.pricing import Pricer, PricingError
from strikechain.pricing.backend import DETERMINISTIC, FAST


class PriceRequest(NamedTuple):
    spot: float
    strike: float
    expiry_years: float
    vol: float | None
    price: float | None
    rate: float
    carry: float | None
    call: bool


UNITS = {
    "price": "per unit of underlying",
    "delta": "dV/dS",
    "gamma": "d2V/dS2",
    "vega": "per 1.00 of vol",
    "theta": "per year, dV/dt",
    "rho": "per 1.00 of rate",
    "vanna": "d2V/dS dvol",
    "volga": "d2V/dvol2",
}


def run_price(request: PriceRequest, *, deterministic: bool) -> dict[str, float]:
    """Price and Greeks at the given vol, or at the vol implied by the given price.

    Raises :class:`~strikechain.pricing.PricingError` for bad input or an unattainable price.
    """
    pricer = Pricer(DETERMINISTIC if deterministic else FAST)
    args = (request.spot, request.strike, request.expiry_years)
    iv: float | None = None
    vol = request.vol
    if request.price is not None:
        iv = pricer.bsm_implied_vol(
            request.price, *args, request.rate, request.carry, call=request.call
        )
        vol = iv
    if vol is None:
        raise PricingError("USAGE", "give a volatility to price, or a price to solve")
    greeks = pricer.bsm_greeks(*args, vol, request.rate, request.carry, call=request.call)
    result = dict(greeks.as_dict())
    if iv is not None:
        result["iv"] = iv
    return result


def render_table(request: PriceRequest, result: dict[str, float], *, deterministic: bool) -> None:
    """A readable table, with the per-point and per-day conversions traders use."""
    kind = "call" if request.call else "put"
    carry = request.rate if request.carry is None else request.carry
    title = (
        f"European {kind}: S={request.spot:g} K={request.strike:g} T={request.expiry_years:g}y "
        f"r={request.rate:g} b={carry:g} ({'deterministic' if deterministic else 'fast'} mode)"
    )
    table = Table(title=title)
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_column("units")
    if "iv" in result:
        table.add_row("implied vol", f"{result['iv']:.12g}", f"from price {request.price:g}")
    for name, units in UNITS.items():
        table.add_row(name, f"{result[name]:.10g}", units)
    table.add_row("vega / vol point", f"{result['vega'] / 100:.10g}", "per 0.01 of vol")
    table.add_row("theta / day", f"{result['theta'] / 365:.10g}", "per calendar day (365)")
    table.add_row("rho / point", f"{result['rho'] / 100:.10g}", "per 0.01 of rate")
    Console().print(table)
