"""The composed lab: agents reach the venue only through their gateways, over the network model;
blocks come out of consensus; market data comes back over the same model. Same seed, same run;
another seed, another run; an added component leaves the others' draws as they were."""

from __future__ import annotations

import numpy as np

from strikechain.engine.engine import Engine
from strikechain.engine.instruments import make_perpetual
from strikechain.engine.txs import ListInstrument, PlaceOrder, PostOnly, Side, TimeInForce
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.gateway import Notice, Topic
from strikechain.runtime.inbox import Receipt
from strikechain.sim.consensus import (
    MempoolParams,
    SequencerParams,
    TendermintParams,
    validator_set,
)
from strikechain.sim.lab import Lab, LabParams, build_lab
from strikechain.sim.network import LinkParams, LognormalLatency, NetworkParams

MS = 1_000_000
SECOND = 1_000 * MS
PERP = make_perpetual("BTC", "0.5", "0.001")
LINK = LinkParams(
    latency=LognormalLatency(median_ns=20 * MS, sigma=0.5), jitter="uniform", jitter_ns=5 * MS
)


def params(seed: int = 7, *, sequencer: bool = False) -> LabParams:
    production = (
        {"sequencer": SequencerParams(block_interval_ns=250 * MS)}
        if sequencer
        else {
            "tendermint": TendermintParams(validators=validator_set(4), timeout_commit_ns=200 * MS)
        }
    )
    return LabParams(
        seed=seed,
        start_ns=1_798_761_600 * SECOND,
        margin="none",
        network=NetworkParams(agent_validator=LINK, validator_validator=LINK, gossip_ns=2 * MS),
        mempool=MempoolParams(base_fee_floor=0),  # fee priority, but no base fee to pay
        **production,  # type: ignore[arg-type]
    )


class Trader:
    """A scripted agent: quotes (maker) or takes (taker) every ``period`` with its own stream,
    and records what it is told and when."""

    def __init__(self, lab: Lab, name: str, *, maker: bool, period_ns: int) -> None:
        self.lab, self.name, self.maker, self.period = lab, name, maker, period_ns
        self.gateway = lab.gateway(name)
        self.rng = lab.kernel.rng(f"agent/{name}")
        self.seen: list[tuple[int, int, str]] = []  # (arrival, height, event kind)
        self.answers: list[tuple[int, int, bool]] = []  # (sent, answered, in the inbox)
        self.gateway.subscribe(Topic(account=name), self.notice)

    def notice(self, notice: Notice) -> None:
        self.seen.append((self.lab.kernel.now, notice.height, type(notice.event).__name__))

    def submit(self, order: PlaceOrder) -> None:
        sent = self.lab.kernel.now

        def answer(outcome: Receipt | RuntimeRejection) -> None:
            self.answers.append((sent, self.lab.kernel.now, isinstance(outcome, Receipt)))

        self.gateway.submit(order, answer)

    def start(self) -> None:
        self.lab.kernel.call_later(int(self.rng.integers(0, self.period)), self.act)

    def act(self) -> None:
        offset = int(self.rng.integers(0, 20))
        if self.maker:
            for side, price in ((Side.BUY, 199_990 - offset), (Side.SELL, 200_010 + offset)):
                order = PlaceOrder(
                    account=self.name,
                    instrument=PERP.name,
                    side=side,
                    price_ticks=price,
                    size_lots=5,
                    post_only=PostOnly.REPRICE,
                )
                self.submit(order)
        else:
            side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
            order = PlaceOrder(
                account=self.name,
                instrument=PERP.name,
                side=side,
                price_ticks=200_100 if side == Side.BUY else 199_900,
                size_lots=1,
                time_in_force=TimeInForce.IOC,
            )
            self.submit(order)
        self.lab.kernel.call_later(self.period, self.act)


def run(lab_params: LabParams, *, watcher: bool = False) -> tuple[Lab, list[Trader], list[int]]:
    lab = build_lab(lab_params)
    lab.gateway("operator").submit(ListInstrument(account="operator", instrument=PERP))
    traders = [
        Trader(lab, "maker", maker=True, period_ns=400 * MS),
        Trader(lab, "taker", maker=False, period_ns=150 * MS),
    ]
    arrivals: list[int] = []
    if watcher:  # a component that only listens: it draws nothing the others draw
        lab.gateway("watcher").subscribe(Topic(), lambda _: arrivals.append(lab.kernel.now))
    for trader in traders:
        trader.start()
    lab.run(lab_params.start_ns + 8 * SECOND)
    return lab, traders, arrivals


def trace(lab: Lab, traders: list[Trader]) -> tuple[object, ...]:
    blocks = tuple((b.height, b.commit_ns, b.transactions, b.digest) for b in lab.blocks)
    return blocks, tuple(tuple(t.seen) for t in traders), tuple(tuple(t.answers) for t in traders)


def test_agents_trade_through_their_gateways_and_hear_back_over_the_network() -> None:
    lab, traders, _ = run(params())
    engine = lab.runtime.engine
    assert isinstance(engine, Engine)
    engine.check()
    blocks = lab.blocks
    assert len(blocks) > 10
    assert all(b.commit_ns > b.propose_ns for b in blocks)
    maker, taker = traders
    assert {"OrderAccepted", "Fill"} <= {kind for _, _, kind in taker.seen}
    assert all(ok for _, _, ok in maker.answers + taker.answers)
    # an answer crosses the network there and back: it is never immediate
    assert all(answered > sent for sent, answered, _ in maker.answers + taker.answers)
    # market data arrives after its block committed (over the network, never before)
    committed = {b.height: b.commit_ns for b in blocks}
    for arrival, height, _ in maker.seen + taker.seen:
        assert arrival > committed[height]
    # and in order: a stream never reorders
    for trader in traders:
        arrivals = [(arrival, height) for arrival, height, _ in trader.seen]
        assert arrivals == sorted(arrivals)


def test_same_seed_same_run_and_another_seed_another() -> None:
    first = trace(*run(params(7))[:2])
    again = trace(*run(params(7))[:2])
    other = trace(*run(params(8))[:2])
    assert first == again
    assert first != other


def test_a_component_that_only_listens_changes_nobody_else() -> None:
    plain = run(params(7))
    with_watcher = run(params(7), watcher=True)
    assert trace(*plain[:2]) == trace(*with_watcher[:2])
    assert with_watcher[2]  # it heard the blocks


def test_a_single_sequencer_cuts_blocks_at_its_interval() -> None:
    lab, traders, _ = run(params(7, sequencer=True))
    intervals = np.diff([b.commit_ns for b in lab.blocks])
    assert set(intervals.tolist()) == {250 * MS}
    assert {"OrderAccepted", "Fill"} <= {kind for _, _, kind in traders[1].seen}
