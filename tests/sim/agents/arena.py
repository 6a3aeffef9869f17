"""The agents' test world (:class:`~tests.sim.agents.world.World`) for the agents whose behaviour
depends on the venue's rules (snipers, keepers, whales, manipulators): its setup and the tests'
own orders pay a fee that clears any base fee the mempool asks, so the rules, not the fee, decide.
"""

from __future__ import annotations

from typing import TypeVar

from strikechain.engine.events import Event
from strikechain.engine.liquidation import LiquidationParams, LiquidationPolicy
from strikechain.engine.txs import PlaceOrder, PostOnly, Side, TimeInForce
from strikechain.sim.run import SETUP_PRIORITY_FEE
from tests.sim.agents.world import PERP, SECOND, World

SCRIPTED_PRIORITY_FEE = 10**6
"""What the tests' own orders pay: above any base fee they meet."""


class Arena(World):
    """A :class:`World` whose listings and deposits pay the lab's setup fee, with the tests'
    own orders on the perpetual (0.5 USDC ticks)."""

    setup_priority_fee = SETUP_PRIORITY_FEE

    def rest(self, account: str, side: Side, price_usdc: float, lots: int) -> None:
        """A post-only limit order of ``account``."""
        self._submit(account, side, price_usdc, lots, post_only=PostOnly.REJECT)

    def take(self, account: str, side: Side, price_usdc: float, lots: int) -> None:
        """An immediate-or-cancel limit order of ``account``."""
        self._submit(account, side, price_usdc, lots, time_in_force=TimeInForce.IOC)

    def _submit(
        self,
        account: str,
        side: Side,
        price_usdc: float,
        lots: int,
        *,
        post_only: int = int(PostOnly.NONE),
        time_in_force: int = int(TimeInForce.GTC),
    ) -> None:
        order = PlaceOrder(
            account=account,
            instrument=PERP.name,
            side=side,
            price_ticks=round(price_usdc * 2),
            size_lots=lots,
            time_in_force=time_in_force,
            post_only=post_only,
            priority_fee=SCRIPTED_PRIORITY_FEE,
        )
        self.lab.gateway(account).submit(order)


KEEPER_AUCTIONS = LiquidationParams(
    policy=LiquidationPolicy.KEEPER_AUCTION, keeper_auction_ns=2 * SECOND
)
"""Keeper auctions of two seconds."""


T = TypeVar("T")


def of_type(events: list[tuple[int, Event]], kind: type[T]) -> list[T]:
    return [event for _, event in events if isinstance(event, kind)]
