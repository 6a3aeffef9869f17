"""A driver for money tests: a venue with margin on, BTC and ETH configured, signed reporters.

Prices in the oracle are USDC minor units per unit of the underlying; the perpetuals here have a
tick of 0.5 USDC and a lot of 0.001, so ``price_ticks = price_usdc * 2`` and one tick of one lot
is 500 minor units (a lot at 100,000 USDC is worth 100 USDC).
"""

from __future__ import annotations

from decimal import Decimal

from strikechain.engine.accounts import SubLedger
from strikechain.engine.auction_triggers import AuctionParams
from strikechain.engine.calendar import expiry_ns
from strikechain.engine.dynamic import DynamicParams
from strikechain.engine.engine import Engine
from strikechain.engine.events import BlockResult, Event, Rejected
from strikechain.engine.instruments import Instrument, OptionType, make_option, make_perpetual
from strikechain.engine.limits import Limits
from strikechain.engine.liquidation import DEFAULT_LIQUIDATION_PARAMS, LiquidationParams
from strikechain.engine.oracle import OracleParams, OracleReport, VolSlice, sign_report
from strikechain.engine.params import (
    FeeParams,
    FundingParams,
    MarginParams,
    MarkParams,
    PositionLimits,
    UnderlyingParams,
    VenueConfig,
)
from strikechain.engine.portfolio import PortfolioParams
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import Block, Deposit, ListInstrument, PlaceOrder, Side, Transaction

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
USDC = 1_000_000
START = expiry_ns(2026, 11, 25, hour=0)
"""Midnight UTC: an hour and a multiple of the funding interval."""
OPERATOR = "operator"
KEYS = tuple(keccak256(f"reporter-{i}".encode()) for i in range(3))
REPORTERS = tuple(address_of(key) for key in KEYS)
BTC_PERP = "BTC_USDC-PERPETUAL"
ETH_PERP = "ETH_USDC-PERPETUAL"
BTC_PRICE = 100_000 * USDC
ETH_PRICE = 4_000 * USDC
GRID = (-400_000, -200_000, -100_000, 0, 100_000, 200_000, 400_000)


def params(
    *,
    fees: FeeParams | None = None,
    margin: MarginParams | None = None,
    funding: FundingParams | None = None,
    mark: MarkParams | None = None,
    limits: PositionLimits | None = None,
    dynamic: DynamicParams | None = None,
    portfolio: PortfolioParams | None = None,
    liquidation: LiquidationParams | None = DEFAULT_LIQUIDATION_PARAMS,
    auctions: AuctionParams | None = None,
    **oracle: object,
) -> UnderlyingParams:
    return UnderlyingParams(
        oracle=OracleParams(reporters=REPORTERS, quorum=2, **oracle),  # type: ignore[arg-type]
        fees=fees or FeeParams(),
        margin=margin or MarginParams(),
        funding=funding or FundingParams(),
        mark=mark or MarkParams(),
        limits=limits or PositionLimits(),
        dynamic=dynamic,
        portfolio=portfolio or PortfolioParams(),
        liquidation=liquidation,
        auctions=auctions,
    )


def config(**overrides: object) -> VenueConfig:
    return VenueConfig(underlyings={"BTC": params(**overrides), "ETH": params(**overrides)})  # type: ignore[arg-type]


def btc_perp() -> Instrument:
    return make_perpetual("BTC", "0.5", "0.001")


def eth_perp() -> Instrument:
    return make_perpetual("ETH", "0.05", "0.01")


def btc_option(strike: int, option_type: OptionType, expiry: int) -> Instrument:
    return make_option("BTC", expiry, strike, option_type, "5", "0.01")


class Venue:
    """An engine with margin on; each block carries fresh signed reports at ``prices``."""

    def __init__(
        self,
        venue: VenueConfig | None = None,
        *,
        limits: Limits | None = None,
        instruments: tuple[Instrument, ...] | None = None,
        report: bool = True,
    ) -> None:
        self.engine = Engine(limits or Limits(), venue=venue or config())
        self.now = START
        self.prices = {"BTC": BTC_PRICE, "ETH": ETH_PRICE}
        self.confidence = {"BTC": 10 * USDC, "ETH": USDC}
        self.vols: dict[str, tuple[VolSlice, ...]] = {"BTC": (), "ETH": ()}
        self.reporting = {"BTC": KEYS, "ETH": KEYS}
        self.deposit_id = 0
        listings = instruments if instruments is not None else (btc_perp(), eth_perp())
        self.events(
            *(ListInstrument(account=OPERATOR, instrument=i) for i in listings), report=report
        )

    def reports(self) -> list[Transaction]:
        out: list[Transaction] = []
        for underlying, keys in self.reporting.items():
            for key in keys:
                report = OracleReport(
                    account=address_of(key),
                    underlying=underlying,
                    timestamp_ns=self.now,
                    price=self.prices[underlying],
                    confidence=self.confidence[underlying],
                    vols=self.vols[underlying],
                )
                out.append(sign_report(report, key))
        return out

    def apply(
        self, *transactions: Transaction, dt: int = SECOND, report: bool = True
    ) -> BlockResult:
        self.now += dt
        txs = [*(self.reports() if report else []), *transactions]
        result = self.engine.apply(
            Block(height=self.engine.height + 1, timestamp_ns=self.now, transactions=txs)
        )
        assert not result.rejected, result.reason
        self.engine.check()
        return result

    def events(
        self, *transactions: Transaction, dt: int = SECOND, report: bool = True
    ) -> list[Event]:
        return self.apply(*transactions, dt=dt, report=report).events

    def deposit_tx(self, account: str, amount: int, underlying: str = "BTC") -> Deposit:
        self.deposit_id += 1
        return Deposit(
            account=OPERATOR,
            deposit_id=self.deposit_id,
            beneficiary=account,
            underlying=underlying,
            amount=amount,
        )

    def deposit(self, account: str, amount: int, underlying: str = "BTC") -> list[Event]:
        return self.events(self.deposit_tx(account, amount, underlying))

    def order(
        self,
        account: str,
        side: int,
        price: int,
        size: int,
        instrument: str = BTC_PERP,
        **fields: object,
    ) -> PlaceOrder:
        return PlaceOrder(
            account=account,
            instrument=instrument,
            side=Side(side),
            price_ticks=price,
            size_lots=size,
            **fields,  # type: ignore[arg-type]
        )

    def place(
        self, account: str, side: int, price: int, size: int, **fields: object
    ) -> list[Event]:
        return self.events(self.order(account, side, price, size, **fields))

    def ledger(self, account: str, underlying: str = "BTC") -> SubLedger:
        ledger = self.engine.get_ledger(account, underlying)
        assert ledger is not None
        return ledger


def rejections(events: list[Event]) -> list[str]:
    return [e.code for e in events if isinstance(e, Rejected)]


def of_type(events: list[Event], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


TICKS_AT_100K = 200_000
"""The BTC perp's price in ticks at 100,000 USDC."""
LOT_VALUE_AT_100K = 100 * USDC

__all__ = ["Decimal", "OptionType"]
