"""An external hedging venue: a centralized exchange stand-in that fills agents' market orders
at the reference price, after its own latency.

Market makers and arbitrageurs on the simulated venue lay off risk here. It is deliberately
simple and deep (no book, no size impact): it answers "what does hedging cost and how late is
it", the two things that turn the venue's latency into a market maker's losses.

An order's life, in virtual time (:class:`~strikechain.sim.kernel.Kernel`)
- ``submit`` at ``now``: the order travels ``latency_ns`` plus a jitter drawn uniformly from
  ``[0, latency_jitter_ns]`` (both legs drawn now, from the venue's own stream ``rng(name)``).
- At arrival it fills in full at the reference price then,
  ``reference x (1 + side x spread_bps / 20,000)`` (half the spread against the taker), and pays
  ``fee_bps`` of the notional; the venue's books (position, cash, fees) change here.
- The confirmation travels back (``latency_ns`` plus its jitter) and calls
  ``callback(fill)``: the agent knows of the fill only then.
- Each agent's link is FIFO, like a TCP session: an order never arrives, nor is confirmed,
  before an earlier order of the same agent (ties run in submission order).

Units: quantity in units of the underlying (BTC), prices in USDC per unit, cash, notional and
fees in USDC; floats, since this is the world outside the venue, not its state. Cash is signed:
a buy spends ``notional + fee``, a sell receives ``notional - fee``.

Limits: an order's quantity is finite, positive and at most ``max_quantity``; an agent has at
most ``max_in_flight`` unconfirmed orders. An order over a limit is refused at once with a
:class:`HedgeOrderError` (the agent's mistake, not the venue's bug).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

import msgspec

from strikechain.engine.txs import Side
from strikechain.sim.kernel import Kernel
from strikechain.sim.processes import PricePaths

BPS: Final = 10_000.0
MAX_BPS: Final = 1_000.0
"""10%: a spread or fee beyond it is a typo, not a venue."""
MAX_LATENCY_NS: Final = 60_000_000_000


class HedgeRejectCode(enum.StrEnum):
    UNKNOWN_UNDERLYING = "UNKNOWN_UNDERLYING"
    BAD_QUANTITY = "BAD_QUANTITY"
    TOO_MANY_IN_FLIGHT = "TOO_MANY_IN_FLIGHT"
    INVALID_PARAMETER = "INVALID_PARAMETER"


class HedgeOrderError(ValueError):
    """A refused order or parameter, with a stable :class:`HedgeRejectCode`."""

    def __init__(self, code: HedgeRejectCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HedgeVenueParams(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's costs and delays (plain data, loadable from a scenario)."""

    spread_bps: float = 2.0
    """Full bid-ask spread around the reference price; a taker pays half of it."""
    fee_bps: float = 2.5
    """Taker fee, of the notional."""
    latency_ns: int = 20_000_000
    """One way, each way (agent to venue, venue to agent)."""
    latency_jitter_ns: int = 0
    """Extra one-way delay, uniform in ``[0, latency_jitter_ns]``, drawn per leg."""
    max_quantity: float = 1e6
    max_in_flight: int = 1_000

    def __post_init__(self) -> None:
        for field, value in (("spread_bps", self.spread_bps), ("fee_bps", self.fee_bps)):
            if not (math.isfinite(value) and 0.0 <= value <= MAX_BPS):
                _refuse_parameter(field, f"must be between 0 and {MAX_BPS}", value)
        for field, delay in (
            ("latency_ns", self.latency_ns),
            ("latency_jitter_ns", self.latency_jitter_ns),
        ):
            if not 0 <= delay <= MAX_LATENCY_NS:
                _refuse_parameter(field, f"must be between 0 and {MAX_LATENCY_NS}", delay)
        if not (math.isfinite(self.max_quantity) and self.max_quantity > 0.0):
            _refuse_parameter("max_quantity", "must be positive and finite", self.max_quantity)
        if self.max_in_flight < 1:
            _refuse_parameter("max_in_flight", "must be at least 1", self.max_in_flight)


def _refuse_parameter(field: str, requirement: str, value: object) -> None:
    message = f"HedgeVenueParams.{field} {requirement}, got {value!r}"
    raise HedgeOrderError(HedgeRejectCode.INVALID_PARAMETER, message)


class HedgeFill(msgspec.Struct, frozen=True, kw_only=True):
    """One filled order, as confirmed to its agent."""

    order_id: int
    agent: str
    underlying: str
    side: Side
    quantity: float
    reference_price: float
    """The reference price at arrival."""
    price: float
    """What the agent paid or received per unit: the reference plus or minus half the spread."""
    notional_usdc: float
    fee_usdc: float
    submitted_ns: int
    filled_ns: int
    confirmed_ns: int


class HedgeAccount:
    """One agent's standing at the hedging venue (changed at fill time, not confirmation)."""

    __slots__ = ("cash_usdc", "fees_paid_usdc", "fills", "positions", "traded_notional_usdc")

    def __init__(self) -> None:
        self.positions: dict[str, float] = {}
        """Units of each underlying, long positive."""
        self.cash_usdc = 0.0
        self.fees_paid_usdc = 0.0
        self.traded_notional_usdc = 0.0
        self.fills = 0

    def equity_usdc(self, paths: PricePaths, t_ns: int) -> float:
        """Cash plus positions at the reference price at ``t_ns`` (no exit spread or fee)."""
        held = sum(size * paths.price(name, t_ns) for name, size in self.positions.items())
        return self.cash_usdc + held


class _Order:
    __slots__ = (
        "agent",
        "callback",
        "confirm_ns",
        "order_id",
        "quantity",
        "side",
        "submitted_ns",
        "underlying",
    )

    def __init__(
        self,
        order_id: int,
        agent: str,
        underlying: str,
        side: Side,
        quantity: float,
        callback: Callable[[HedgeFill], None],
        submitted_ns: int,
    ) -> None:
        self.order_id = order_id
        self.agent = agent
        self.underlying = underlying
        self.side = side
        self.quantity = quantity
        self.callback = callback
        self.submitted_ns = submitted_ns
        self.confirm_ns = 0


class HedgeVenue:
    """The hedging venue of one lab run (see the module)."""

    def __init__(
        self,
        kernel: Kernel,
        paths: PricePaths,
        params: HedgeVenueParams,
        *,
        name: str = "hedge_venue",
    ) -> None:
        self.params = params
        self._kernel = kernel
        self.paths = paths
        self._underlyings = frozenset(paths.underlyings)
        self._rng = kernel.rng(name)
        self._accounts: dict[str, HedgeAccount] = {}
        self._in_flight: dict[str, int] = {}
        self._last_arrival_ns: dict[str, int] = {}
        self._last_confirm_ns: dict[str, int] = {}
        self._next_order_id = 1

    @property
    def accounts(self) -> Mapping[str, HedgeAccount]:
        """Every agent that has filled here, in order of first fill (a read-only view)."""
        return MappingProxyType(self._accounts)

    def get_account(self, agent: str) -> HedgeAccount | None:
        return self._accounts.get(agent)

    def submit(
        self,
        agent: str,
        underlying: str,
        side: Side,
        quantity: float,
        callback: Callable[[HedgeFill], None],
    ) -> int:
        """Send a market order now; returns its id. It fills on arrival and ``callback(fill)``
        runs when the confirmation is back (see the module for the timing)."""
        self._check_order(agent, underlying, quantity)
        now = self._kernel.now
        order = _Order(self._next_order_id, agent, underlying, side, quantity, callback, now)
        self._next_order_id += 1
        self._in_flight[agent] = self._in_flight.get(agent, 0) + 1
        arrival_ns = max(now + self._one_way_ns(), self._last_arrival_ns.get(agent, 0))
        back_ns = self._one_way_ns()
        order.confirm_ns = max(arrival_ns + back_ns, self._last_confirm_ns.get(agent, 0))
        self._last_arrival_ns[agent] = arrival_ns
        self._last_confirm_ns[agent] = order.confirm_ns
        self._kernel.schedule(arrival_ns, self._fill, order)
        return order.order_id

    def _check_order(self, agent: str, underlying: str, quantity: float) -> None:
        if underlying not in self._underlyings:
            message = f"{underlying!r} is not traded here ({', '.join(sorted(self._underlyings))})"
            raise HedgeOrderError(HedgeRejectCode.UNKNOWN_UNDERLYING, message)
        if not (math.isfinite(quantity) and 0.0 < quantity <= self.params.max_quantity):
            message = (
                f"quantity {quantity!r} must be positive and at most {self.params.max_quantity}"
            )
            raise HedgeOrderError(HedgeRejectCode.BAD_QUANTITY, message)
        if self._in_flight.get(agent, 0) >= self.params.max_in_flight:
            message = f"{agent} already has {self.params.max_in_flight} unconfirmed orders"
            raise HedgeOrderError(HedgeRejectCode.TOO_MANY_IN_FLIGHT, message)

    def _one_way_ns(self) -> int:
        jitter = self.params.latency_jitter_ns
        extra = int(self._rng.integers(0, jitter + 1)) if jitter else 0
        return self.params.latency_ns + extra

    def _fill(self, order: _Order) -> None:
        now = self._kernel.now
        reference = self.paths.price(order.underlying, now)
        price = fill_price(reference, order.side, self.params.spread_bps)
        notional = price * order.quantity
        fee = notional * self.params.fee_bps / BPS
        account = self._accounts.get(order.agent)
        if account is None:
            account = self._accounts[order.agent] = HedgeAccount()
        signed = float(order.side) * order.quantity
        account.positions[order.underlying] = account.positions.get(order.underlying, 0.0) + signed
        account.cash_usdc -= float(order.side) * notional + fee
        account.fees_paid_usdc += fee
        account.traded_notional_usdc += notional
        account.fills += 1
        fill = HedgeFill(
            order_id=order.order_id,
            agent=order.agent,
            underlying=order.underlying,
            side=order.side,
            quantity=order.quantity,
            reference_price=reference,
            price=price,
            notional_usdc=notional,
            fee_usdc=fee,
            submitted_ns=order.submitted_ns,
            filled_ns=now,
            confirmed_ns=order.confirm_ns,
        )
        self._kernel.schedule(order.confirm_ns, self._confirm, (order, fill))

    def _confirm(self, sent: tuple[_Order, HedgeFill]) -> None:
        order, fill = sent
        self._in_flight[order.agent] -= 1
        order.callback(fill)


def fill_price(reference: float, side: Side, spread_bps: float) -> float:
    """The taker's price: half the spread above the reference for a buy, below for a sell."""
    return reference * (1.0 + float(side) * spread_bps / (2.0 * BPS))
