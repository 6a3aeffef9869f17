"""The agents' test world (:class:`~tests.sim.agents.world.World`) with the venue's rules as
parameters: the engine's ordering policy and the liquidation path (the lane or keeper
auctions), for the agents whose behaviour depends on them (snipers, keepers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from strikechain.engine.events import Event
from strikechain.engine.instruments import Instrument
from strikechain.engine.liquidation import LiquidationParams, LiquidationPolicy
from strikechain.engine.oracle import OracleParams
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.params import UnderlyingParams, VenueConfig
from strikechain.engine.txs import Deposit, ListInstrument, PlaceOrder, PostOnly, Side
from strikechain.sim.agents import reporter_address
from strikechain.sim.consensus import MempoolParams, SequencerParams
from strikechain.sim.lab import Lab, LabParams, build_lab
from strikechain.sim.network import ConstantLatency, LinkParams, NetworkParams
from strikechain.sim.processes import PricesSpec
from strikechain.sim.run import SETUP_PRIORITY_FEE
from tests.sim.agents.world import MS, PERP, SECOND, SEED, START_NS, USDC, World

SCRIPTED_PRIORITY_FEE = 10**6
"""What the tests' own orders pay: above any base fee they meet."""


class Arena(World):
    """A :class:`World` with ``ordering``, ``liquidation`` and the mempool's base fee floor
    chosen (the defaults: the engine's lanes and liquidation lane, no base fee)."""

    def __init__(  # the World's setup, with two more rules
        self,
        prices: PricesSpec,
        *,
        ordering: OrderingPolicy = OrderingPolicy.LANES,
        liquidation: LiquidationParams | None = None,
        reporters: Sequence[str] = ("reporter-0", "reporter-1", "reporter-2"),
        quorum: int = 2,
        instruments: Sequence[Instrument] = (PERP,),
        deposits_usdc: dict[str, int] | None = None,
        block_interval_ns: int = 100 * MS,
        base_fee_floor: int = 0,
    ) -> None:
        self.reporter_addresses = {name: reporter_address(SEED, name) for name in reporters}
        oracle = OracleParams(reporters=tuple(self.reporter_addresses.values()), quorum=quorum)
        underlying = (
            UnderlyingParams(oracle=oracle)
            if liquidation is None
            else UnderlyingParams(oracle=oracle, liquidation=liquidation)
        )
        self.venue = VenueConfig(underlyings={"BTC": underlying})
        link = LinkParams(latency=ConstantLatency(one_way_ns=2 * MS))
        self.lab: Lab = build_lab(
            LabParams(
                seed=SEED,
                start_ns=START_NS,
                venue=self.venue,
                margin="standard",
                ordering=ordering,
                network=NetworkParams(agent_validator=link),
                sequencer=SequencerParams(block_interval_ns=block_interval_ns),
                mempool=MempoolParams(base_fee_floor=base_fee_floor),
                prices=prices,
            )
        )
        self.instruments = {instrument.name: instrument for instrument in instruments}
        runtime, now = self.lab.runtime, self.lab.kernel.now
        for instrument in instruments:
            listing = ListInstrument(
                account="operator", instrument=instrument, priority_fee=SETUP_PRIORITY_FEE
            )
            runtime.submit(listing, now)
        deposits = dict(deposits_usdc or {})
        deposits.setdefault(self.venue.insurance_fund, 100_000)
        deposits.setdefault(self.venue.backstop, 10_000_000)
        for number, (account, usdc) in enumerate(deposits.items(), start=1):
            deposit = Deposit(
                account="operator",
                deposit_id=number,
                beneficiary=account,
                underlying="BTC",
                amount=usdc * USDC,
                priority_fee=SETUP_PRIORITY_FEE,
            )
            runtime.submit(deposit, now)
        self.lab.run(now + block_interval_ns)

    def rest(self, account: str, side: Side, price_usdc: float, lots: int) -> None:
        """A post-only limit order of ``account`` on the perpetual (0.5 USDC ticks), with a fee
        that clears any base fee."""
        order = PlaceOrder(
            account=account,
            instrument=PERP.name,
            side=side,
            price_ticks=round(price_usdc * 2),
            size_lots=lots,
            post_only=PostOnly.REJECT,
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
