"""A seeded, scripted venue session: the blocks of two hours of a BTC and ETH venue.

:class:`ScriptedSession` turns :class:`SessionParams` (a seed and sizes) into a stream of
:class:`~strikechain.engine.txs.Block` values for ``Engine.apply``: BTC and ETH perpetuals and
a BTC option chain (calls and puts at five strikes around spot) expiring at 08:00 UTC, traded
from 06:00 UTC to 08:05, so the stream crosses the hourly funding times and the expiry, whose
settlement averages the index over the last 30 minutes.

The script is open loop: every transaction is a function of the seed and the block, never of
the engine's answers. The stream is the same with or without an engine behind it (a replay
test compares digests, not inputs), and an agent learns nothing from the venue: a cancel can
name an order that has filled, a reduce-only order can meet the wrong position, a withdrawal
can exceed what is free. Those rejections are part of the session.

Timeline (:mod:`strikechain.sim.world`)
- Blocks come about a second apart in bursts, with quiet stretches between bursts so that any
  number of blocks spans 06:00:01 to 08:05 (time is data: the engine judges funding, expiry and
  staleness by block time, not by block count; the index moves across a quiet stretch as a GBM
  does). Episodes fall at fixed fractions of the blocks.
- Block 1 lists the instruments and credits every trader's deposits; trading starts at block 2.

Agents (names are account ids; ``operator`` relays deposits and lists instruments)
- Oracle reporters, per underlying: each publishes the index path with its own noise, a
  confidence of 1 to 3 bp and, on BTC, implied vols at the surface nodes (a skewed smile whose
  level rises after the sell-off), signed with a key derived from the seed, most blocks and at
  least every 4 s. Episodes: one BTC reporter posts a price 6% off for a while (dropped as an
  outlier), one ETH reporter goes silent, and on each underlying a window where fewer than
  ``quorum`` report (the breaker opens when the others go stale and closes when they return).
  The sell-off is fast: reports a block or two apart disagree, and the breaker may open for a
  too-wide confidence band until they agree again.
- Market makers quote both sides of every market around the index (perps: plus a slowly moving
  basis, so funding has a sign; options: Black-76 on the reporters' surface), post-only (every
  other maker rejects rather than reprices a crossing quote), one or two levels a side, in one
  of three styles: cancel-all and replace (good till cancelled), good-till-time quotes that
  expire on their own, and cancel by client order id and replace.
- Takers send immediate-or-cancel limits through the touch, market orders, some fill-or-kill,
  a few resting good-till-time limits, and sometimes reduce-only orders.
- Leveraged traders open 12x to 16x positions: longs before the sell-off (they fall below
  maintenance and enter the liquidation queue), shorts after it (the recovery hurts them); after
  the sell-off the longs try to add and to withdraw (refused while queued), then reduce.
- Money: takers transfer between their BTC and ETH sub-ledgers, withdraw (some far beyond what
  is free) and deposit more; the operator now and then relays an already credited deposit. At
  genesis the operator also seeds the insurance fund and funds the backstop pool, which the
  liquidation lane uses when the book cannot absorb a leveraged trader's position.
- Invalid transactions, each kind in turn: an out-of-range price or size, an unknown instrument
  (an expired option once the chain has expired), an already expired good-till-time order, an
  unknown underlying, a cancel of an unknown order, a listing by a trader; and every
  :data:`INVALID_REPORT_EVERY` blocks a report from an unregistered key, with a bad signature,
  from the future, or sent again.

Determinism: every random draw comes from a ``numpy.random.Generator`` derived from
``(seed, component name)`` (:func:`~strikechain.sim.world.component_rng`), so adding a
component never changes another component's stream; nothing reads a clock or the environment.
Iterating :meth:`ScriptedSession.blocks` twice gives the same blocks.

Limits (asserted by :class:`SessionParams`): 200 to 12,000 blocks, 20 to 5,000 transactions a
block, 12 to 2,000 traders, 3 to 16 reporters per underlying with ``2 <= quorum < reporters``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from strikechain import pricing
from strikechain.engine.instruments import Instrument, OptionType, make_option, make_perpetual
from strikechain.engine.invariant import invariant
from strikechain.engine.limits import DEFAULT_LIMITS
from strikechain.engine.oracle import (
    NANOS_PER_YEAR,
    OracleParams,
    OracleReport,
    VolSlice,
)
from strikechain.engine.params import UnderlyingParams, VenueConfig
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import (
    Block,
    Cancel,
    CancelAll,
    Deposit,
    ListInstrument,
    OrderType,
    PlaceOrder,
    PostOnly,
    TimeInForce,
    Transaction,
    Transfer,
    Withdraw,
)
from strikechain.engine.units import NANOS_PER_MILLISECOND, QUOTE_SCALE
from strikechain.sim.signer import ReportSigner
from strikechain.sim.world import (
    OPTION_EXPIRY_NS,
    OPTION_LOT,
    OPTION_QUOTE_LOTS,
    OPTION_TAKER_LOTS,
    OPTION_TICK,
    OPTION_UNDERLYING,
    OUTLIER_FACTOR,
    SECOND,
    STRIKE_OFFSETS,
    STRIKE_STEP_USDC,
    UNDERLYINGS,
    Episodes,
    atm_vol_path,
    basis_path,
    component_rng,
    price_path,
    reporter_keys,
    smile,
    timeline,
)

OPERATOR: Final = DEFAULT_LIMITS.operator
INVALID_KINDS: Final = 8
INVALID_REPORT_EVERY: Final = 25
"""Blocks between two invalid reports (each kind in turn)."""
REPORT_LATENCY_NS_MAX: Final = 250 * NANOS_PER_MILLISECOND
"""A report is stamped up to this long before the block that carries it."""
REPORT_EVERY_NS_MAX: Final = 4 * SECOND
"""A reporter that has not reported for this long reports in the next block (staleness is 10 s)."""
# Plain ints: a transaction built with enum members converts each one (about 1 us a field).
_GTC, _IOC, _FOK, _GTT = (
    int(t) for t in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTT)
)
_MARKET = int(OrderType.MARKET)
_REPRICE, _REJECT = int(PostOnly.REPRICE), int(PostOnly.REJECT)


MM_DEPOSIT_USDC: Final = {"BTC": 50_000_000, "ETH": 20_000_000}
TAKER_DEPOSIT_USDC: Final = {"BTC": (100_000, 400_000), "ETH": (50_000, 200_000)}
LEVERAGED_DEPOSIT_USDC: Final = (3_000, 10_000)
LEVERAGED_OTHER_USDC: Final = 1_000
INSURANCE_FUND_USDC: Final = 20_000
"""Seeds the venue's insurance fund at genesis."""
BACKSTOP_DEPOSIT_USDC: Final = {"BTC": 2_000_000, "ETH": 500_000}
"""The backstop pool's collateral per sub-ledger: it takes what the book cannot absorb."""
LEVERAGE: Final = (12.0, 16.0)
LEVERAGED_THROUGH: Final = 5e-3
"""How far through the index a leveraged trader's IOC may fill."""


@dataclass(frozen=True)
class SessionParams:
    """What a session is made of; the defaults make about 100k transactions."""

    seed: int = 20_261_125
    blocks: int = 1_000
    transactions_per_block: int = 100
    """About this many per block after the first (reports included)."""
    traders: int = 60
    """Market makers, takers and leveraged traders together."""
    reporters: int = 5
    """Per underlying."""
    quorum: int = 3

    def __post_init__(self) -> None:
        invariant(self.seed >= 0, "the seed is a non-negative integer")
        invariant(200 <= self.blocks <= 12_000, "200 to 12,000 blocks")
        invariant(20 <= self.transactions_per_block <= 5_000, "20 to 5,000 transactions a block")
        invariant(12 <= self.traders <= 2_000, "12 to 2,000 traders")
        invariant(3 <= self.reporters <= 16, "3 to 16 reporters per underlying")
        invariant(2 <= self.quorum < self.reporters, "2 <= quorum < reporters")


@dataclass(frozen=True)
class Agents:
    """The session's accounts by role."""

    market_makers: tuple[str, ...]
    takers: tuple[str, ...]
    leveraged: tuple[str, ...]

    @classmethod
    def for_traders(cls, traders: int) -> Agents:
        makers = max(3, traders // 12)
        leveraged = max(3, traders // 8)
        takers = traders - makers - leveraged
        return cls(
            market_makers=tuple(f"mm-{i}" for i in range(makers)),
            takers=tuple(f"taker-{i:03d}" for i in range(takers)),
            leveraged=tuple(f"lev-{i:02d}" for i in range(leveraged)),
        )


def _grid(instrument: Instrument) -> float:
    """The tick in USDC, as a float for quoting (prices sent are whole ticks)."""
    return float(instrument.tick_size)


def value_per_tick_lot(instrument: Instrument) -> int:
    """USDC minor units of one tick of one lot (exact; the engine's ``value_per_tick_lot``)."""
    value = instrument.tick_size * instrument.lot_size * instrument.contract_size * QUOTE_SCALE
    invariant(value == value.to_integral_value(), f"{instrument.name}: whole minor units")
    return int(value)


class ScriptedSession:
    """The session's fixed world (venue, instruments, accounts, paths) and its block stream."""

    def __init__(self, params: SessionParams | None = None) -> None:
        self.params = params = params if params is not None else SessionParams()
        self.episodes = Episodes.for_blocks(params.blocks)
        self.agents = Agents.for_traders(params.traders)
        self.times = timeline(params.seed, params.blocks)
        self.specs = {spec.name: spec for spec in UNDERLYINGS}
        self.keys = {
            spec.name: reporter_keys(params.seed, spec.name, params.reporters)
            for spec in UNDERLYINGS
        }
        self.oracle = {
            name: OracleParams(
                reporters=tuple(address_of(key) for key in keys), quorum=params.quorum
            )
            for name, keys in self.keys.items()
        }
        self.venue = VenueConfig(
            underlyings={name: UnderlyingParams(oracle=o) for name, o in self.oracle.items()}
        )
        self.signers = {
            name: tuple(ReportSigner(key, self.venue.signing) for key in keys)
            for name, keys in self.keys.items()
        }
        self.rogue = ReportSigner(
            keccak256(f"strikechain-sim/{params.seed}/rogue".encode()), self.venue.signing
        )
        """A key no underlying registered."""
        self.perps = {
            spec.name: make_perpetual(spec.name, spec.perp_tick, spec.perp_lot)
            for spec in UNDERLYINGS
        }
        spot = self.specs[OPTION_UNDERLYING].spot_usdc
        center = round(spot / STRIKE_STEP_USDC) * STRIKE_STEP_USDC
        self.options = tuple(
            make_option(
                OPTION_UNDERLYING,
                OPTION_EXPIRY_NS,
                center + offset * STRIKE_STEP_USDC,
                option_type,
                OPTION_TICK,
                OPTION_LOT,
            )
            for offset in STRIKE_OFFSETS
            for option_type in (OptionType.CALL, OptionType.PUT)
        )
        self.instruments: tuple[Instrument, ...] = (*self.perps.values(), *self.options)
        self.option_number = {option.name: number for number, option in enumerate(self.options)}
        self.index = {
            spec.name: price_path(params.seed, spec, self.times, self.episodes)
            for spec in UNDERLYINGS
        }
        self.basis = {
            spec.name: basis_path(params.seed, spec.name, params.blocks) for spec in UNDERLYINGS
        }
        self.atm_vol = atm_vol_path(self.specs[OPTION_UNDERLYING], self.episodes, params.blocks)

    def __iter__(self) -> Iterator[Block]:
        return self.blocks()

    def blocks(self) -> Iterator[Block]:
        """The blocks, heights 1 to ``params.blocks``; each iteration starts afresh."""
        script = _Script(self)
        for index, timestamp_ns in enumerate(self.times):
            yield Block(
                height=index + 1, timestamp_ns=timestamp_ns, transactions=script.block(index)
            )


_MM_STYLES: Final = ("replace", "good_till", "cancel_by_id")


class _Script:
    """The mutable part of one pass over the session: streams, counters, remembered ids."""

    def __init__(self, session: ScriptedSession) -> None:
        self.session = session
        params = session.params
        seed = params.seed

        def rng(name: str) -> np.random.Generator:
            return component_rng(seed, name)

        self.report_rng = {name: rng(f"reporters/{name}") for name in session.keys}
        self.mm_rng = rng("market-makers")
        self.taker_rng = rng("takers")
        self.leveraged_rng = rng("leveraged")
        self.money_rng = rng("money")
        self.invalid_rng = rng("invalid")
        self.deposit_id = 0
        self.last_deposit: Deposit | None = None
        self.client_ids = 0
        self.invalid_count = 0
        self.quotes: dict[tuple[str, str], list[str]] = {}
        """(market maker, instrument) -> client ids of its last quotes there."""
        self.last_report: dict[str, int] = {}
        """Reporter address -> block time of its last report."""
        self.last_signed: OracleReport | None = None
        """The latest report signed, to be replayed (``REPORT_NOT_NEWER``)."""
        self.collateral: dict[str, int] = {}
        """Leveraged trader -> the deposit (minor units) its positions are sized on."""
        self.deposits = self._initial_deposits()
        self.rotation = self._rotation(with_options=True)
        self.rotation_after_expiry = self._rotation(with_options=False)
        self.rotation_at = 0
        self.plans = self._leveraged_plans()
        self.fairs: tuple[int, list[float]] = (-1, [])

    # -- the block -----------------------------------------------------------------------------

    def block(self, index: int) -> list[Transaction]:
        session = self.session
        now = session.times[index]
        txs: list[Transaction] = []
        if index == 0:
            txs.extend(ListInstrument(account=OPERATOR, instrument=i) for i in session.instruments)
            txs.extend(self.deposits)
        self._invalid_reports(index, now, txs)
        for underlying in session.keys:
            self._reports(underlying, index, now, txs)
        if index == 0:
            return txs
        budget = max(session.params.transactions_per_block - len(txs), 10)
        self._leveraged(index, now, txs)
        self._market_makers(index, now, round(0.55 * budget), txs)
        self._takers(index, now, int(self.taker_rng.poisson(0.38 * budget)), txs)
        self._money(index, int(self.money_rng.poisson(0.045 * budget)), txs)
        self._invalid(now, int(self.invalid_rng.poisson(0.012 * budget)), txs)
        return txs

    def _price(self, underlying: str, index: int) -> float:
        return float(self.session.index[underlying][index])

    def _client_id(self, account: str) -> str:
        self.client_ids += 1
        return f"{account}-{self.client_ids}"

    # -- money in --------------------------------------------------------------------------------

    def _deposit(self, account: str, underlying: str, usdc: int) -> Deposit:
        self.deposit_id += 1
        deposit = Deposit(
            account=OPERATOR,
            deposit_id=self.deposit_id,
            beneficiary=account,
            underlying=underlying,
            amount=usdc * QUOTE_SCALE,
        )
        self.last_deposit = deposit
        return deposit

    def _initial_deposits(self) -> list[Deposit]:
        agents = self.session.agents
        rng = self.money_rng
        deposits = [
            self._deposit(account, underlying, usdc)
            for account in agents.market_makers
            for underlying, usdc in MM_DEPOSIT_USDC.items()
        ]
        for account in agents.takers:
            for underlying, (low, high) in TAKER_DEPOSIT_USDC.items():
                deposits.append(self._deposit(account, underlying, int(rng.integers(low, high))))
        for number, account in enumerate(agents.leveraged):
            trades = _leveraged_underlying(number)
            for underlying in MM_DEPOSIT_USDC:
                if underlying == trades:
                    usdc = int(rng.integers(*LEVERAGED_DEPOSIT_USDC))
                    self.collateral[account] = usdc * QUOTE_SCALE
                else:
                    usdc = LEVERAGED_OTHER_USDC
                deposits.append(self._deposit(account, underlying, usdc))
        venue = self.session.venue
        deposits.append(self._deposit(venue.insurance_fund, "BTC", INSURANCE_FUND_USDC))
        for underlying, usdc in BACKSTOP_DEPOSIT_USDC.items():
            deposits.append(self._deposit(venue.backstop, underlying, usdc))
        return deposits

    # -- oracle reporters ----------------------------------------------------------------------

    def _reports(self, underlying: str, index: int, now: int, txs: list[Transaction]) -> None:
        session = self.session
        params = session.params
        episodes = session.episodes
        rng = self.report_rng[underlying]
        keys = session.keys[underlying]
        signers = session.signers[underlying]
        price = self._price(underlying, index)
        draws = rng.random((len(keys), 5))
        vols = self._vol_slices(index, now, draws[:, 4]) if underlying == OPTION_UNDERLYING else []
        losing = index in episodes.quorum_loss[underlying]
        outlier = underlying == OPTION_UNDERLYING and index in episodes.outlier
        for number in range(len(keys)):
            if losing and number >= params.quorum - 1:
                continue
            if underlying == "ETH" and number == 1 and index in episodes.silent:
                continue
            address = session.oracle[underlying].reporters[number]
            due = now - self.last_report.get(address, 0) >= REPORT_EVERY_NS_MAX
            if not (due or draws[number, 0] < 0.7):
                continue
            reported = price * (1.0 + (draws[number, 1] - 0.5) * 2e-4)
            if outlier and number == len(keys) - 1:
                reported = price * OUTLIER_FACTOR
            price_minor = round(reported * QUOTE_SCALE)
            report = OracleReport(
                account=address,
                underlying=underlying,
                timestamp_ns=now - int(draws[number, 2] * REPORT_LATENCY_NS_MAX),
                price=price_minor,
                confidence=price_minor * (100 + int(draws[number, 3] * 200)) // 1_000_000,
                vols=vols[number] if vols else (),
            )
            signed = signers[number].sign(report)
            self.last_report[address] = now
            self.last_signed = signed
            txs.append(signed)

    def _vol_slices(
        self, index: int, now: int, noise: npt.NDArray[np.float64]
    ) -> list[tuple[VolSlice, ...]]:
        """Each reporter's slice of the option expiry (none once it is not after ``now``)."""
        if now >= OPTION_EXPIRY_NS:
            return []
        grid = np.asarray(self.session.oracle[OPTION_UNDERLYING].log_moneyness_ppm) / 1e6
        base = smile(self.session.atm_vol[index], grid)
        out: list[tuple[VolSlice, ...]] = []
        for draw in noise.tolist():
            vols = np.rint((base + (draw - 0.5) * 0.006) * 1e6).astype(np.int64)
            out.append((VolSlice(OPTION_EXPIRY_NS, tuple(int(v) for v in vols.tolist())),))
        return out

    def _invalid_reports(self, index: int, now: int, txs: list[Transaction]) -> None:
        """Once in a while: a report from an unregistered key, one whose price was changed
        after signing, one stamped in the future, or an earlier report sent again (placed
        before the block's own reports)."""
        if index % INVALID_REPORT_EVERY != INVALID_REPORT_EVERY // 2:
            return
        session = self.session
        kind = index // INVALID_REPORT_EVERY % 4
        if kind == 3:
            if self.last_signed is not None:
                txs.append(self.last_signed)
            return
        price = round(self._price("ETH", index) * QUOTE_SCALE)
        signer = session.rogue if kind == 0 else session.signers["ETH"][0]
        timestamp = now + (5 * SECOND if kind == 2 else 0)
        report = OracleReport(
            account=signer.address,
            underlying="ETH",
            timestamp_ns=timestamp,
            price=price,
            confidence=price // 10_000,
        )
        signed = signer.sign(report)
        if kind == 1:
            signed = OracleReport(
                account=signed.account,
                underlying="ETH",
                timestamp_ns=timestamp,
                price=price * 2,
                confidence=signed.confidence,
                signature=signed.signature,
            )
        txs.append(signed)

    # -- market makers -------------------------------------------------------------------------

    def _rotation(self, *, with_options: bool) -> list[tuple[int, Instrument]]:
        """(market maker, instrument) pairs in a seeded order; perps three times as often."""
        session = self.session
        pairs = [
            (maker, perp)
            for maker in range(len(session.agents.market_makers))
            for perp in session.perps.values()
            for _ in range(3)
        ]
        if with_options:
            pairs += [
                (maker, option)
                for maker in range(len(session.agents.market_makers))
                for option in session.options
            ]
        order = component_rng(session.params.seed, "market-makers/rotation").permutation(len(pairs))
        return [pairs[i] for i in order.tolist()]

    def _market_makers(self, index: int, now: int, budget: int, txs: list[Transaction]) -> None:
        rotation = self.rotation if now < OPTION_EXPIRY_NS else self.rotation_after_expiry
        start = len(txs)
        while len(txs) - start < budget:
            maker, instrument = rotation[self.rotation_at % len(rotation)]
            self.rotation_at += 1
            self._quote(maker, instrument, index, now, txs)

    def _quote(
        self, maker: int, instrument: Instrument, index: int, now: int, txs: list[Transaction]
    ) -> None:
        account = self.session.agents.market_makers[maker]
        style = _MM_STYLES[maker % len(_MM_STYLES)]
        post_only = _REJECT if maker % 2 == 0 else _REPRICE
        rng = self.mm_rng
        name = instrument.name
        draws = rng.random(6)
        tick = _grid(instrument)
        if instrument.is_option:
            fair = self._option_fairs(index)[self.session.option_number[name]]
            half = max(tick, fair * (0.03 + 0.04 * draws[0]))
            low, high = OPTION_QUOTE_LOTS
            levels = [(fair - half, fair + half)]
        else:
            underlying = instrument.underlying
            fair = self._price(underlying, index) * (1.0 + self.session.basis[underlying][index])
            half = fair * (1.5e-4 + 2.5e-4 * draws[0])
            step = fair * 1.5e-4
            low, high = self.session.specs[underlying].quote_lots
            levels = [(fair - half, fair + half), (fair - half - step, fair + half + step)]
        if style == "replace":
            txs.append(CancelAll(account=account, instrument=name))
        elif style == "cancel_by_id":
            txs.extend(
                Cancel(account=account, client_order_id=client_id)
                for client_id in self.quotes.pop((account, name), [])
            )
        good_till = style == "good_till"
        expire_at = now + (3 + int(draws[1] * 4)) * SECOND if good_till else 0
        ids = []
        for number, (bid, ask) in enumerate(levels):
            for side, price in ((1, math.floor(bid / tick)), (-1, math.ceil(ask / tick))):
                if price < 1:
                    continue
                client_id = self._client_id(account) if style == "cancel_by_id" else ""
                ids.append(client_id)
                txs.append(
                    PlaceOrder(
                        account=account,
                        instrument=name,
                        side=side,
                        price_ticks=price,
                        size_lots=low + int(draws[2 + number + (side < 0)] * (high - low)),
                        time_in_force=_GTT if good_till else _GTC,
                        post_only=post_only,
                        client_order_id=client_id,
                        expire_at_ns=expire_at,
                    )
                )
        if style == "cancel_by_id":
            self.quotes[(account, name)] = ids

    def _option_fairs(self, index: int) -> list[float]:
        """Black-76 values (USDC per unit) of the chain at the reporters' surface."""
        if self.fairs[0] == index:
            return self.fairs[1]
        session = self.session
        now = session.times[index]
        spot = self._price(OPTION_UNDERLYING, index)
        strikes = np.asarray([float(o.strike_ticks) * _grid(o) for o in session.options])
        calls = np.asarray([o.option_type == OptionType.CALL for o in session.options])
        years = max(OPTION_EXPIRY_NS - now, 1) / NANOS_PER_YEAR
        vols = smile(session.atm_vol[index], np.log(strikes / spot))
        fairs: list[float] = pricing.black76(spot, strikes, years, vols, call=calls).tolist()
        self.fairs = (index, fairs)
        return fairs

    # -- takers --------------------------------------------------------------------------------

    def _takers(self, index: int, now: int, count: int, txs: list[Transaction]) -> None:
        session = self.session
        rng = self.taker_rng
        takers = session.agents.takers
        options_open = now < OPTION_EXPIRY_NS
        draws = rng.random((count, 7))
        for row in draws.tolist():
            account = takers[int(row[0] * len(takers))]
            side = 1 if row[1] < 0.5 else -1
            pick = row[2]
            if options_open and pick < 0.3:
                number = int(pick / 0.3 * len(session.options))
                instrument = session.options[number]
                fair = self._option_fairs(index)[number]
                low, high = OPTION_TAKER_LOTS
                through = 0.25
            else:
                instrument = session.perps["BTC" if pick < 0.65 else "ETH"]
                fair = self._price(instrument.underlying, index)
                fair *= 1.0 + session.basis[instrument.underlying][index]
                low, high = session.specs[instrument.underlying].taker_lots
                through = 5e-4 + 2.5e-3 * row[3]
            size = low + int(row[4] * (high - low))
            txs.append(self._taker_order(account, instrument, side, size, fair, through, now, row))

    def _taker_order(
        self,
        account: str,
        instrument: Instrument,
        side: int,
        size: int,
        fair: float,
        through: float,
        now: int,
        row: list[float],
    ) -> PlaceOrder:
        tick = _grid(instrument)
        kind, reduce_only = row[5], row[6] < 0.06
        name = instrument.name
        if kind < 0.25:
            return PlaceOrder(
                account=account,
                instrument=name,
                side=side,
                size_lots=size,
                order_type=_MARKET,
                time_in_force=_IOC,
                reduce_only=reduce_only,
            )
        if kind < 0.9:
            limit = fair * (1.0 + side * through)
            price = math.ceil(limit / tick) + 1 if side > 0 else math.floor(limit / tick) - 1
            return PlaceOrder(
                account=account,
                instrument=name,
                side=side,
                size_lots=size,
                price_ticks=max(price, 1),
                time_in_force=_FOK if kind < 0.32 else _IOC,
                reduce_only=reduce_only,
            )
        inside = fair * (1.0 - side * 2e-4)
        price = math.floor(inside / tick) if side > 0 else math.ceil(inside / tick)
        return PlaceOrder(
            account=account,
            instrument=name,
            side=side,
            size_lots=size,
            price_ticks=max(price, 1),
            time_in_force=_GTT,
            expire_at_ns=now + (5 + int(row[3] * 20)) * SECOND,
        )

    # -- leveraged traders ---------------------------------------------------------------------

    def _leveraged_plans(self) -> dict[int, list[tuple[int, int, float]]]:
        """Block index -> (trader number, side, leverage) of the opening orders scripted there.

        Accounts are split in three groups: A opens early (long; every fourth of them short),
        B opens long just before the sell-off, C opens short after it.
        """
        episodes = self.session.episodes
        rng = self.leveraged_rng
        plans: dict[int, list[tuple[int, int, float]]] = {}
        for number in range(len(self.session.agents.leveraged)):
            group = number % 3
            window = (episodes.entry_long, episodes.entry_late_long, episodes.entry_short)[group]
            side = (-1 if number // 3 % 4 == 3 else 1, 1, -1)[group]
            block = window.start + int(rng.integers(len(window)))
            plans.setdefault(block, []).append((number, side, float(rng.uniform(*LEVERAGE))))
        return plans

    def _leveraged(self, index: int, now: int, txs: list[Transaction]) -> None:
        session = self.session
        rng = self.leveraged_rng
        for number, side, leverage in self.plans.get(index, []):
            txs.append(self._leveraged_order(number, side, leverage, index, reduce=False))
        episodes = session.episodes
        if index == episodes.probe:
            for number in range(len(session.agents.leveraged)):
                if number % 3 != 2:
                    txs.append(self._leveraged_order(number, 1, 2.0, index, reduce=False))
                    account = session.agents.leveraged[number]
                    underlying = _leveraged_underlying(number)
                    txs.append(Withdraw(account=account, underlying=underlying, amount=QUOTE_SCALE))
        elif index in episodes.after_shock:
            for number in range(len(session.agents.leveraged)):
                if number % 3 != 2 and rng.random() < 0.1:
                    reduce = rng.random() < 0.7
                    txs.append(self._leveraged_order(number, 1, 2.0, index, reduce=reduce))

    def _leveraged_order(
        self, number: int, side: int, leverage: float, index: int, *, reduce: bool
    ) -> PlaceOrder:
        """An IOC through the touch worth ``leverage`` times the trader's deposit; reducing:
        a reduce-only sell (a long closes part of its position)."""
        session = self.session
        account = session.agents.leveraged[number]
        underlying = _leveraged_underlying(number)
        instrument = session.perps[underlying]
        price = self._price(underlying, index)
        deposit = self.collateral[account]
        lot_units = float(instrument.lot_size * instrument.contract_size)
        lots = max(int(deposit / QUOTE_SCALE * leverage / (price * lot_units)), 1)
        if reduce:
            side = -1
        limit = price * (1.0 + side * LEVERAGED_THROUGH)
        tick = _grid(instrument)
        return PlaceOrder(
            account=account,
            instrument=instrument.name,
            side=side,
            size_lots=lots,
            price_ticks=math.ceil(limit / tick) if side > 0 else math.floor(limit / tick),
            time_in_force=_IOC,
            reduce_only=reduce,
        )

    # -- money ---------------------------------------------------------------------------------

    def _money(self, index: int, count: int, txs: list[Transaction]) -> None:
        """Takers move money; leveraged traders keep theirs (their positions are sized on it)."""
        traders = self.session.agents.takers
        rng = self.money_rng
        for row in rng.random((count, 4)).tolist():
            account = traders[int(row[0] * len(traders))]
            source, target = ("BTC", "ETH") if row[1] < 0.5 else ("ETH", "BTC")
            kind = row[2]
            usdc = 1_000 + int(row[3] * 9_000)
            if kind < 0.35:
                txs.append(
                    Transfer(
                        account=account,
                        from_underlying=source,
                        to_underlying=target,
                        amount=usdc * QUOTE_SCALE,
                    )
                )
            elif kind < 0.7:
                txs.append(Withdraw(account=account, underlying=source, amount=usdc * QUOTE_SCALE))
            elif kind < 0.85:
                txs.append(Withdraw(account=account, underlying=source, amount=10**9 * QUOTE_SCALE))
            elif kind < 0.95 or self.last_deposit is None:
                txs.append(self._deposit(account, source, 10 * usdc))
            else:
                txs.append(self.last_deposit)  # relayed twice: DUPLICATE_DEPOSIT

    # -- invalid input -------------------------------------------------------------------------

    def _invalid(self, now: int, count: int, txs: list[Transaction]) -> None:
        """``count`` invalid transactions, each kind in turn, from the takers in turn."""
        for _ in range(count):
            txs.append(self._invalid_transaction(self.invalid_count, now))
            self.invalid_count += 1

    def _invalid_transaction(self, number: int, now: int) -> Transaction:
        session = self.session
        takers = session.agents.takers
        account = takers[number // INVALID_KINDS % len(takers)]
        perp = session.perps["BTC"].name
        kind = number % INVALID_KINDS
        if kind == 0:  # PRICE_OUT_OF_RANGE
            return PlaceOrder(account=account, instrument=perp, side=1, price_ticks=0, size_lots=1)
        if kind == 1:  # PRICE_OUT_OF_RANGE
            return PlaceOrder(
                account=account, instrument=perp, side=1, price_ticks=10**16, size_lots=1
            )
        if kind == 2:  # SIZE_OUT_OF_RANGE
            return PlaceOrder(
                account=account, instrument=perp, side=-1, price_ticks=200_000, size_lots=0
            )
        if kind == 3:  # UNKNOWN_INSTRUMENT, or MARKET_EXPIRED once the options have expired
            expired = now >= OPTION_EXPIRY_NS
            return PlaceOrder(
                account=account,
                instrument=session.options[0].name if expired else "BTC_USDC-PERP",
                side=1,
                price_ticks=1,
                size_lots=1,
            )
        if kind == 4:  # ALREADY_EXPIRED
            return PlaceOrder(
                account=account,
                instrument=perp,
                side=1,
                price_ticks=1,
                size_lots=1,
                time_in_force=_GTT,
                expire_at_ns=now - SECOND,
            )
        if kind == 5:  # UNKNOWN_UNDERLYING
            return Withdraw(account=account, underlying="SOL", amount=QUOTE_SCALE)
        if kind == 6:  # ORDER_NOT_FOUND
            return Cancel(account=account, client_order_id="never-placed")
        return ListInstrument(account=account, instrument=session.perps["ETH"])  # NOT_AUTHORIZED


def _leveraged_underlying(number: int) -> str:
    """Leveraged trader ``number`` trades the BTC perp if even, the ETH perp if odd."""
    return "BTC" if number % 2 == 0 else "ETH"
