"""The recorder: a lab run's tables are consistent with the run, and recording changes nothing.

A small Tendermint lab with a quoting market maker that hedges its fills at the external venue
and a taker that hits it (some of its orders without asking for an answer), plus the scripted
crash replayed through a lab for the liquidation path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from strikechain.engine.events import Fill
from strikechain.engine.instruments import make_perpetual
from strikechain.engine.txs import (
    ListInstrument,
    PlaceOrder,
    PostOnly,
    Side,
    TimeInForce,
    Transaction,
)
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.gateway import Gateway, Notice, Topic
from strikechain.runtime.inbox import Receipt
from strikechain.sim.consensus import (
    MempoolParams,
    SequencerParams,
    TendermintParams,
    validator_set,
)
from strikechain.sim.crash import START_NS, CrashParams, CrashScript, run_crash
from strikechain.sim.hedge_venue import HedgeFill, HedgeVenueParams
from strikechain.sim.lab import Lab, LabParams, build_lab
from strikechain.sim.metrics import compute_metrics
from strikechain.sim.network import LinkParams, LognormalLatency, NetworkParams
from strikechain.sim.processes import GbmParams, PricesSpec, UnderlyingProcess
from strikechain.sim.recorder import SCHEMA, Recorder

MS = 1_000_000
SECOND = 1_000 * MS
START = 1_798_761_600 * SECOND
PERP = make_perpetual("BTC", "0.5", "0.001")
LOT_BTC = 0.001
LINK = LinkParams(
    latency=LognormalLatency(median_ns=20 * MS, sigma=0.5), jitter="uniform", jitter_ns=5 * MS
)


def world(seed: int = 7) -> LabParams:
    """Tendermint over a jittery network, a GBM reference path and a hedging venue."""
    return LabParams(
        seed=seed,
        start_ns=START,
        margin="none",
        network=NetworkParams(agent_validator=LINK, validator_validator=LINK, gossip_ns=2 * MS),
        tendermint=TendermintParams(validators=validator_set(4), timeout_commit_ns=200 * MS),
        mempool=MempoolParams(base_fee_floor=0),
        prices=PricesSpec(
            underlyings=(UnderlyingProcess(name="BTC", process=GbmParams(vol=0.8), spot_usdc=1e5),)
        ),
        hedge=HedgeVenueParams(),
    )


class Trader:
    """A seeded agent behind a gateway: a maker quotes around the reference and hedges each
    fill at the hedging venue; a taker crosses, asking for an answer only every other time."""

    def __init__(
        self, lab: Lab, name: str, gateway: Gateway, *, maker: bool, period_ns: int
    ) -> None:
        self.lab, self.name, self.gateway = lab, name, gateway
        self.maker, self.period = maker, period_ns
        self.rng = lab.kernel.rng(f"agent/{name}")
        self.sent = 0
        self.answers: list[tuple[int, int, bool]] = []
        self.seen: list[tuple[int, int, str]] = []
        self.hedges: list[HedgeFill] = []
        gateway.subscribe(Topic(account=name), self.notice)

    def start(self) -> None:
        self.lab.kernel.call_later(int(self.rng.integers(1, self.period)), self.act)

    def notice(self, notice: Notice) -> None:
        event = notice.event
        self.seen.append((self.lab.kernel.now, notice.height, type(event).__name__))
        hedge = self.lab.hedge
        if self.maker and hedge is not None and type(event) is Fill:
            side = Side(event.taker_side)  # the maker sold what the taker bought: buy it back
            hedge.submit(self.name, "BTC", side, event.size_lots * LOT_BTC, self.hedges.append)

    def submit(self, tx: Transaction, *, answer: bool = True) -> None:
        sent = self.lab.kernel.now

        def answered(outcome: Receipt | RuntimeRejection) -> None:
            self.answers.append((sent, self.lab.kernel.now, isinstance(outcome, Receipt)))

        self.gateway.submit(tx, answered if answer else None)

    def act(self) -> None:
        prices = self.lab.prices
        assert prices is not None
        ticks = int(prices.price("BTC", self.lab.kernel.now) * 2)
        self.sent += 1
        if self.maker:
            for side, price in ((Side.BUY, ticks - 20), (Side.SELL, ticks + 20)):
                self.submit(
                    PlaceOrder(
                        account=self.name,
                        instrument=PERP.name,
                        side=side,
                        price_ticks=price,
                        size_lots=5,
                        post_only=PostOnly.REPRICE,
                        client_order_id=f"{self.name}-{self.sent}-{side}",
                    )
                )
        else:
            side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
            order = PlaceOrder(
                account=self.name,
                instrument=PERP.name,
                side=side,
                price_ticks=ticks + 200 * side,
                size_lots=1,
                time_in_force=TimeInForce.IOC,
                client_order_id=f"{self.name}-{self.sent}",
            )
            self.submit(order, answer=self.sent % 2 == 0)
        self.lab.kernel.call_later(self.period, self.act)


def traded(
    lab_params: LabParams, *, recorded: bool = True, seconds: int = 8
) -> tuple[Lab, Recorder | None, list[Trader]]:
    lab = build_lab(lab_params)
    recorder = Recorder(lab) if recorded else None
    gateway = lab.gateway

    lab.gateway("operator").submit(ListInstrument(account="operator", instrument=PERP))
    traders = [
        Trader(lab, "maker", gateway("maker"), maker=True, period_ns=400 * MS),
        Trader(lab, "taker", gateway("taker"), maker=False, period_ns=150 * MS),
    ]
    for trader in traders:
        trader.start()
    odd = gateway("taker")
    # not a transaction: the runtime refuses it; an unknown instrument: the engine does
    lab.kernel.call_at(START + 3 * SECOND, lambda: odd.submit(Topic(), lambda _: None))
    unknown = PlaceOrder(
        account="taker", instrument="ETH_USDC-PERPETUAL", side=1, size_lots=1, price_ticks=1
    )
    lab.kernel.call_at(START + 4 * SECOND, lambda: odd.submit(unknown, lambda _: None))
    lab.run(START + seconds * SECOND)
    return lab, recorder, traders


def trace(lab: Lab, traders: list[Trader]) -> tuple[object, ...]:
    blocks = tuple((b.height, b.commit_ns, b.transactions, b.digest) for b in lab.blocks)
    observed = tuple((tuple(t.seen), tuple(t.answers), tuple(t.hedges)) for t in traders)
    return blocks, observed


@pytest.fixture(scope="module")
def recorded() -> tuple[Lab, Recorder, list[Trader], dict[str, pd.DataFrame]]:
    lab, recorder, traders = traded(world())
    assert recorder is not None
    return lab, recorder, traders, recorder.frames()


def test_recording_changes_nothing_in_the_run(
    recorded: tuple[Lab, Recorder, list[Trader], dict[str, pd.DataFrame]],
) -> None:
    lab, _, traders, _ = recorded
    plain_lab, _, plain_traders = traded(world(), recorded=False)
    assert trace(lab, traders) == trace(plain_lab, plain_traders)


def test_every_table_has_the_documented_columns_and_dtypes(
    recorded: tuple[Lab, Recorder, list[Trader], dict[str, pd.DataFrame]],
) -> None:
    frames = recorded[3]
    assert list(frames) == list(SCHEMA)
    for table, columns in SCHEMA.items():
        frame = frames[table]
        assert list(frame.columns) == [column.name for column in columns], table
        for column in columns:
            assert str(frame[column.name].dtype) == column.dtype, (table, column.name)


def test_blocks_are_the_producers_blocks(
    recorded: tuple[Lab, Recorder, list[Trader], dict[str, pd.DataFrame]],
) -> None:
    lab, _, _, frames = recorded
    blocks = frames["blocks"]
    produced = lab.blocks
    assert blocks["height"].tolist() == [b.height for b in produced]
    assert blocks["commit_ns"].tolist() == [b.commit_ns for b in produced]
    assert blocks["propose_ns"].tolist() == [b.propose_ns for b in produced]
    assert blocks["timestamp_ns"].tolist() == blocks["propose_ns"].tolist()
    assert blocks["transactions"].tolist() == [b.transactions for b in produced]
    assert (blocks["commit_ns"] > blocks["propose_ns"]).all()


def test_every_fill_maps_to_the_submissions_that_made_it(
    recorded: tuple[Lab, Recorder, list[Trader], dict[str, pd.DataFrame]],
) -> None:
    lab, _, _, frames = recorded
    fills, orders = frames["fills"], frames["orders"]
    assert len(fills) > 10
    by_row = orders.set_index("submission")
    commits = dict(zip(frames["blocks"]["height"], frames["blocks"]["commit_ns"], strict=True))
    prices = lab.prices
    assert prices is not None
    for fill in fills.itertuples():
        taker = by_row.loc[fill.taker_submission]
        maker = by_row.loc[fill.maker_submission]
        assert (
            (taker.agent, maker.agent) == (fill.taker_agent, fill.maker_agent) == ("taker", "maker")
        )
        assert taker.sequence == fill.taker_sequence
        assert taker.order_id == fill.taker_order_id
        assert maker.order_id == fill.maker_order_id
        assert taker.client_order_id == fill.taker_client_order_id
        assert maker.client_order_id == fill.maker_client_order_id
        assert taker.included_height == fill.height
        assert fill.commit_ns == commits[fill.height]
        assert taker.sent_ns == fill.taker_sent_ns < fill.commit_ns
        assert maker.included_height <= fill.height
        # the reference is read exactly where the definitions say
        assert fill.reference_usdc == prices.price("BTC", fill.commit_ns)
        assert fill.taker_reference_usdc == prices.price("BTC", fill.taker_sent_ns)
        assert fill.price_usdc == fill.price_ticks * 0.5
        assert fill.notional_usdc == pytest.approx(fill.price_usdc * fill.size_lots * LOT_BTC)


def test_submissions_are_included_after_they_are_sent(
    recorded: tuple[Lab, Recorder, list[Trader], dict[str, pd.DataFrame]],
) -> None:
    _, _, traders, frames = recorded
    orders, blocks = frames["orders"], frames["blocks"]
    commits = dict(zip(blocks["height"], blocks["commit_ns"], strict=True))
    included = orders[orders["included_height"].notna()]
    assert len(included) > 0.9 * len(orders)
    for row in included.itertuples():
        assert row.sent_ns < row.commit_ns == commits[row.included_height]
    answered = orders[orders["answer_ns"].notna()]
    assert (answered["answer_ns"] > answered["sent_ns"]).all()
    assert included["sequence"].is_unique
    assert included["sequence"].notna().all()
    # answers the agents got are the ones recorded, in send order per agent
    for trader in traders:
        mine = answered[(answered["agent"] == trader.name) & (answered["instrument"] == PERP.name)]
        got = [(sent, at) for sent, at, _ in trader.answers]
        assert sorted(zip(mine["sent_ns"], mine["answer_ns"], strict=True)) == sorted(got)
    # a taker order sent without asking for an answer is still found in its block
    quiet = orders[(orders["agent"] == "taker") & orders["answer_ns"].isna()]
    assert quiet["included_height"].notna().sum() > 5
    assert quiet["order_id"].notna().sum() > 5
    refused = orders[orders["runtime_rejection"] != ""]
    assert refused["runtime_rejection"].tolist() == ["NOT_A_TRANSACTION"]
    assert refused["included_height"].isna().all()
    rejected = orders[orders["engine_rejection"] != ""]
    assert rejected["instrument"].tolist() == ["ETH_USDC-PERPETUAL"]
    assert rejected["included_height"].notna().all()
    assert rejected["order_id"].isna().all()


def test_reference_state_and_hedges_are_recorded(
    recorded: tuple[Lab, Recorder, list[Trader], dict[str, pd.DataFrame]],
) -> None:
    lab, recorder, traders, frames = recorded
    prices = lab.prices
    assert prices is not None
    reference = frames["reference"]
    times = reference["time_ns"].to_numpy()
    assert times[0] == START
    assert times[-1] == lab.kernel.now
    assert set(np.diff(times).tolist()) == {prices.step_ns} == {recorder.reference_step_ns}
    assert reference["price_usdc"].tolist() == [prices.price("BTC", int(t)) for t in times]
    markets = frames["markets"]
    quoted = markets[markets["best_bid_usdc"].notna() & markets["best_ask_usdc"].notna()]
    assert len(quoted) > 10
    assert (quoted["best_bid_usdc"] < quoted["best_ask_usdc"]).all()
    blocks = frames["blocks"]
    assert blocks["open_orders"].iloc[-1] == len(lab.runtime.engine.orders)
    hedges = frames["hedges"].set_index("agent")
    maker = traders[0]
    assert maker.hedges
    account = lab.hedge.get_account("maker")
    assert account is not None
    assert hedges.loc["maker", "fees_usdc"] == account.fees_paid_usdc
    # the half spread split from the account's totals is the one paid fill by fill
    confirmed = sum(abs(f.price - f.reference_price) * f.quantity for f in maker.hedges)
    assert hedges.loc["maker", "fills"] == len(maker.hedges)  # every one confirmed by the end
    assert hedges.loc["maker", "half_spread_usdc"] == pytest.approx(confirmed, rel=1e-9)


def _submit_at(lab: Lab, gateway: Gateway, when: int, txs: list[Transaction]) -> None:
    def send() -> None:
        for tx in txs:
            gateway.submit(tx, None)

    lab.kernel.call_at(when, send)


def test_the_liquidation_path_is_recorded_as_the_engine_reports_it() -> None:
    """The scripted crash through a lab (one block a second, as its script stamps them): the
    recorder's liquidation rows and metrics agree with the crash's own tally."""
    params = CrashParams(traders=8, wobble_blocks=10, crash_blocks=40, after_blocks=10)
    script = CrashScript(params)
    lab = build_lab(
        LabParams(
            seed=1,
            start_ns=START_NS,
            venue=script.venue,
            sequencer=SequencerParams(block_interval_ns=SECOND),
            mempool=MempoolParams(fee_priority=False, base_fee_floor=0),
        )
    )
    recorder = Recorder(lab)
    gateways: dict[str, Gateway] = {}
    for block in script.blocks():
        by_account: dict[str, list[Transaction]] = {}
        for tx in block.transactions:
            by_account.setdefault(tx.account, []).append(tx)
        for account, txs in by_account.items():
            if account not in gateways:
                gateways[account] = lab.gateway(account)
            _submit_at(lab, gateways[account], block.timestamp_ns - MS, txs)
    count = len(script.path)
    lab.run(START_NS + count * SECOND)
    assert [b.propose_ns for b in lab.blocks] == [
        START_NS + h * SECOND for h in range(1, count + 1)
    ]
    expected = run_crash(params).liquidations
    frames = recorder.frames()
    rows = frames["liquidations"]
    kinds = rows["kind"].value_counts().to_dict()
    assert expected.bad_debt > 0
    assert expected.queued > 0
    assert kinds.get("queued", 0) == expected.queued
    assert kinds.get("left", 0) == expected.left
    assert kinds.get("order", 0) == expected.orders
    orders = rows[rows["kind"] == "order"]
    assert orders["lots"].sum() == expected.lots_to_book
    lane = frames["fills"][frames["fills"]["liquidation"]]
    assert lane["notional_usdc"].sum() == pytest.approx(orders["notional_usdc"].sum())
    metrics = compute_metrics(frames)
    insurance = rows[rows["kind"] == "insurance"]
    assert metrics["insurance_paid_usdc"] == pytest.approx(expected.insurance_paid / 1e6)
    assert metrics["liquidation_fees_usdc"] == pytest.approx(expected.fees / 1e6)
    assert metrics["adl_socialized_usdc"] == pytest.approx(expected.socialized / 1e6)
    # one report per bankrupt sub-ledger here, so the sum of its reports is its deficit
    assert insurance.groupby("account").size().max() == 1
    assert metrics["bad_debt_usdc"] == pytest.approx(expected.bad_debt / 1e6)
    stepped = rows[rows["kind"].isin(["order", "backstop", "deleveraged"]) & (rows["lots"] > 0)]
    assert metrics["liquidations_count"] == stepped["account"].nunique() > 0
    # the lane runs in the block after the breach: whole seconds here
    assert metrics["liquidation_delay_ms_p50"] % 1000 == 0
    assert 1000 <= metrics["liquidation_delay_ms_p50"] <= metrics["liquidation_delay_ms_p99"]
    assert math.isnan(metrics["index_error_bps_mean"])  # no reference path in this world
    fund = frames["blocks"]["insurance_fund_usdc"]
    assert metrics["insurance_fund_start_usdc"] == params.insurance_usdc
    assert metrics["insurance_fund_end_usdc"] == fund.iloc[-1]
