from __future__ import annotations

from strikechain.engine.events import Event, InstrumentListed, OrderAccepted, Rejected
from strikechain.engine.instruments import make_perpetual
from strikechain.engine.txs import ListInstrument, PlaceOrder, Side
from strikechain.runtime import LocalGateway, Notice, Topic
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.inbox import Receipt

from .helpers import cancel, make_runtime


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def now_ns(self) -> int:
        return self.now


def kinds(notices: list[Notice]) -> list[type[Event]]:
    return [type(n.event) for n in notices]


def test_local_gateway_dispatches_by_account_and_instrument() -> None:
    runtime = make_runtime()
    clock = Clock()
    gateway = LocalGateway(runtime, clock)
    alice: list[Notice] = []
    perp: list[Notice] = []
    everything: list[Notice] = []
    both: list[Notice] = []
    gateway.subscribe(Topic(account="alice"), alice.append)
    gateway.subscribe(Topic(instrument="BTC_USDC-PERPETUAL"), perp.append)
    gateway.subscribe(Topic(), everything.append)
    gateway.subscribe(Topic(account="alice", instrument="BTC_USDC-PERPETUAL"), both.append)

    instrument = make_perpetual("BTC", "0.5", "0.001")
    clock.now = 100
    gateway.submit(ListInstrument(account="operator", instrument=instrument))
    runtime.cut(clock.now)
    assert kinds(perp) == [type(everything[0].event)]
    assert alice == []

    clock.now = 200
    answers: list[Receipt | RuntimeRejection] = []
    gateway.submit(
        PlaceOrder(
            account="alice", instrument=instrument.name, side=Side.BUY, size_lots=1, price_ticks=10
        ),
        answers.append,
    )
    gateway.cancel("alice", order_id=999, on_outcome=answers.append)
    gateway.submit(cancel(account="bob"))
    placed, refused = answers
    assert isinstance(placed, Receipt)
    assert isinstance(refused, Receipt)  # the inbox takes it; the engine refuses it later
    runtime.cut(clock.now)
    # the default lanes apply cancels before orders: the refused cancel's event comes first
    assert kinds(alice) == [Rejected, OrderAccepted]
    assert [n.sequence for n in alice] == [refused.sequence, placed.sequence]
    assert (alice[0].height, alice[0].timestamp_ns) == (2, 200)
    assert kinds(perp)[-1] is OrderAccepted
    assert len(everything) == 1 + 3
    assert kinds(both) == [InstrumentListed, Rejected, OrderAccepted], "each event once"


def test_unsubscribe() -> None:
    runtime = make_runtime()
    gateway = LocalGateway(runtime, Clock())
    seen: list[Notice] = []
    subscription = gateway.subscribe(Topic(account="alice"), seen.append)
    gateway.submit(cancel())
    runtime.cut(1)
    subscription.unsubscribe()
    gateway.submit(cancel())
    runtime.cut(2)
    assert len(seen) == 1


def test_a_full_inbox_answers_with_a_typed_rejection() -> None:
    from strikechain.runtime import RuntimeConfig

    runtime = make_runtime(config=RuntimeConfig(inbox_capacity=1))
    gateway = LocalGateway(runtime, Clock())
    answers: list[Receipt | RuntimeRejection] = []
    gateway.submit(cancel(), answers.append)
    gateway.submit(cancel(), answers.append)
    first, second = answers
    assert isinstance(first, Receipt)
    assert isinstance(second, RuntimeRejection)
    assert second.code == "INBOX_FULL"


def test_the_ticker_channel_sends_the_top_of_book_after_every_block() -> None:
    import pytest

    from strikechain.runtime.gateway import Ticker

    runtime = make_runtime()
    clock = Clock()
    gateway = LocalGateway(runtime, clock)
    instrument = make_perpetual("BTC", "0.5", "0.001")
    tickers: list[Notice] = []
    gateway.subscribe(Topic(instrument=instrument.name, channel="ticker"), tickers.append)
    gateway.submit(ListInstrument(account="operator", instrument=instrument))
    runtime.cut(1)
    for side, price, lots in ((Side.BUY, 10, 3), (Side.SELL, 12, 4), (Side.BUY, 12, 1)):
        gateway.submit(
            PlaceOrder(
                account=f"trader-{price}-{side}",
                instrument=instrument.name,
                side=side,
                size_lots=lots,
                price_ticks=price,
            )
        )
    runtime.cut(2)
    assert [n.height for n in tickers] == [1, 2]
    last = tickers[-1].event
    assert isinstance(last, Ticker)
    assert (last.best_bid_ticks, last.best_bid_lots) == (10, 3)
    assert (last.best_ask_ticks, last.best_ask_lots) == (12, 3)  # one lot traded at 12
    assert last.last_trade_ticks == 12
    with pytest.raises(ValueError, match="channel"):
        Topic(instrument=instrument.name, channel="book")
    with pytest.raises(ValueError, match="names an instrument"):
        Topic(channel="ticker")
