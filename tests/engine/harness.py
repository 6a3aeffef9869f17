"""A small driver for engine tests: blocks by height with a clock that only moves forward."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from strikechain.engine.calendar import expiry_ns
from strikechain.engine.engine import Engine
from strikechain.engine.events import BlockResult, Event, Fill, OrderCancelled, Rejected
from strikechain.engine.instruments import Instrument, InstrumentKind, MatchingMode
from strikechain.engine.limits import Limits
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.signing import SigningDomain
from strikechain.engine.txs import Block, ListInstrument, PlaceOrder, Side, Transaction

PERP = "BTC_USDC-PERPETUAL"
AUCTION = "ETH_USDC-PERPETUAL"
SECOND = 1_000_000_000
START = expiry_ns(2026, 11, 25, hour=0)
"""Midnight UTC, 25 November 2026: block times are realistic so options can list."""


def perpetual(
    underlying: str = "BTC", matching: MatchingMode = MatchingMode.CONTINUOUS
) -> Instrument:
    return Instrument(
        name=f"{underlying}_USDC-PERPETUAL",
        kind=InstrumentKind.PERPETUAL,
        underlying=underlying,
        tick_size=Decimal("0.5"),
        lot_size=Decimal("0.001"),
        matching=matching,
    )


class Harness:
    """An engine with BTC (continuous) and ETH (batch auction) perpetuals listed."""

    def __init__(
        self, policy: OrderingPolicy = OrderingPolicy.LANES, limits: Limits | None = None
    ) -> None:
        self.engine = Engine(limits or Limits(), policy, margin=None)
        self.now = START
        self.apply(
            ListInstrument(account="operator", instrument=perpetual()),
            ListInstrument(account="operator", instrument=perpetual("ETH", MatchingMode.BATCH)),
        )

    def apply(self, *transactions: Transaction, dt: int = SECOND) -> BlockResult:
        self.now += dt
        block = Block(
            height=self.engine.height + 1, timestamp_ns=self.now, transactions=list(transactions)
        )
        result = self.engine.apply(block)
        self.engine.check()
        return result

    def events(self, *transactions: Transaction, dt: int = SECOND) -> list[Event]:
        result = self.apply(*transactions, dt=dt)
        assert not result.rejected, result.reason
        return result.events

    def place(
        self,
        account: str,
        side: int,
        price: int,
        size: int,
        instrument: str = PERP,
        **fields: object,
    ) -> list[Event]:
        return self.events(
            PlaceOrder(
                account=account,
                instrument=instrument,
                side=Side(side),
                price_ticks=price,
                size_lots=size,
                **fields,  # type: ignore[arg-type]
            )
        )

    def depth(self, instrument: str = PERP) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        book = self.engine.books[instrument]
        return book.depth(1, 100), book.depth(-1, 100)


def fills(events: list[Event]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def rejections(events: list[Event]) -> list[Rejected]:
    return [e for e in events if isinstance(e, Rejected)]


def cancels(events: list[Event]) -> list[OrderCancelled]:
    return [e for e in events if isinstance(e, OrderCancelled)]


def eip712_message(
    primary: str,
    types: dict[str, list[dict[str, str]]],
    domain: SigningDomain,
    message: dict[str, Any],
) -> dict[str, Any]:
    """A full EIP-712 typed-data message for eth-account, written from the standard directly
    (not from the engine's encoder): the ``EIP712Domain`` type and the venue's domain around
    ``types`` and ``message``."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **types,
        },
        "primaryType": primary,
        "domain": {
            "name": "strikechain",
            "version": "1",
            "chainId": domain.chain_id,
            "verifyingContract": domain.verifying_contract,
        },
        "message": message,
    }
