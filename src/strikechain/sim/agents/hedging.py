"""Delta hedging on the external venue (:class:`~strikechain.sim.hedge_venue.HedgeVenue`), shared
by market makers and arbitrageurs.

:class:`DeltaHedger` keeps an agent's net delta per underlying (its venue delta, which the agent
tracks from its own fills, plus what it holds at the hedging venue) within ``threshold_units``:
when the net delta goes beyond it, one market order brings it back to zero (at most
``max_order_units`` at once). One order per underlying is in flight at a time: the next
rebalance waits for its confirmation, which comes back after the venue's latency both ways, so a
hedger is exactly as late as its venue. The position counts an order from its confirmation; the
agent never learns of a fill earlier than the venue tells it.

Units: units of the underlying (BTC), signed, long positive.
"""

from __future__ import annotations

from strikechain.engine.txs import Side
from strikechain.sim.hedge_venue import HedgeFill, HedgeVenue


class DeltaHedger:
    __slots__ = (
        "_confirm",
        "agent",
        "fees_usdc",
        "in_flight",
        "max_order_units",
        "orders",
        "positions",
        "threshold_units",
        "venue",
    )

    def __init__(
        self, venue: HedgeVenue, agent: str, threshold_units: float, max_order_units: float
    ) -> None:
        self.venue = venue
        self.agent = agent
        self.threshold_units = threshold_units
        self.max_order_units = max_order_units
        self.positions: dict[str, float] = {}
        """Confirmed position at the hedging venue per underlying."""
        self.in_flight: dict[str, float] = {}
        """Signed quantity of the unconfirmed order per underlying (0: none)."""
        self.orders = 0
        self.fees_usdc = 0.0
        self._confirm = self._confirmed

    def position(self, underlying: str) -> float:
        """Held at the hedging venue, including the order in flight (what the agent counts on)."""
        return self.positions.get(underlying, 0.0) + self.in_flight.get(underlying, 0.0)

    def rebalance(self, underlying: str, venue_delta_units: float) -> bool:
        """Send an order if ``venue_delta_units`` plus the hedge is beyond the threshold and no
        order is in flight; returns whether one was sent."""
        if self.in_flight.get(underlying, 0.0):
            return False
        net = venue_delta_units + self.positions.get(underlying, 0.0)
        if abs(net) <= self.threshold_units:
            return False
        quantity = min(abs(net), self.max_order_units)
        side = Side.SELL if net > 0 else Side.BUY
        self.in_flight[underlying] = float(side) * quantity
        self.venue.submit(self.agent, underlying, side, quantity, self._confirm)
        self.orders += 1
        return True

    def _confirmed(self, fill: HedgeFill) -> None:
        underlying = fill.underlying
        self.in_flight[underlying] = 0.0
        signed = float(fill.side) * fill.quantity
        self.positions[underlying] = self.positions.get(underlying, 0.0) + signed
        self.fees_usdc += fill.fee_usdc
