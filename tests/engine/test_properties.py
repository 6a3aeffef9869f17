"""Property tests: the engine against a reference model, and the auction's price."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from strikechain.engine.events import AuctionCleared, Fill, OrderAccepted
from strikechain.engine.ordering import OrderingPolicy, lane_of
from strikechain.engine.txs import (
    Cancel,
    OrderType,
    PlaceOrder,
    PostOnly,
    SelfTrade,
    Side,
    TimeInForce,
    Transaction,
)
from tests.engine.harness import AUCTION, PERP, Harness


@dataclass
class _Model:
    """Price-time priority the slow, obvious way: sort the opposite side for every taker."""

    resting: list[list[int]] = field(default_factory=list)  # [order id, account, side, price, left]
    fills: list[tuple[int, int, int, int]] = field(
        default_factory=list
    )  # maker, taker, price, lots

    def best(self, side: int) -> int | None:
        prices = [o[3] for o in self.resting if o[2] == side]
        return (max(prices) if side == 1 else min(prices)) if prices else None

    def place(
        self, order_id: int, account: int, side: int, price: int, size: int, rests: bool, mode: int
    ) -> None:
        opposite = [o for o in self.resting if o[2] == -side]
        opposite.sort(key=lambda o: (o[3] * side, o[0]))  # best price first, then oldest
        for maker in opposite:
            if size == 0 or (maker[3] > price if side == 1 else maker[3] < price):
                break
            if maker[1] == account:  # self-trade prevention by the taker's mode
                if mode != SelfTrade.CANCEL_TAKER:
                    self.resting.remove(maker)
                if mode != SelfTrade.CANCEL_MAKER:
                    return
                continue
            lots = min(size, maker[4])
            maker[4] -= lots
            size -= lots
            self.fills.append((maker[0], order_id, maker[3], lots))
            if maker[4] == 0:
                self.resting.remove(maker)
        if size and rests:
            self.resting.append([order_id, account, side, price, size])

    def cancel(self, order_id: int) -> None:
        self.resting = [o for o in self.resting if o[0] != order_id]

    def depth(self, side: int) -> list[tuple[int, int]]:
        levels: dict[int, int] = {}
        for o in self.resting:
            if o[2] == side:
                levels[o[3]] = levels.get(o[3], 0) + o[4]
        return sorted(levels.items(), key=lambda item: -item[0] * side)


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("place"),
            st.integers(0, 1),  # two accounts: self-trades are frequent
            st.sampled_from([1, -1]),
            st.integers(98, 102),  # a narrow band: most orders meet the other side
            st.integers(1, 5),
            st.sampled_from(["gtc", "ioc", "post", "reject", "market"]),
            st.sampled_from(list(SelfTrade)),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 40)),
    ),
    min_size=1,
    max_size=60,
)


def _order(account: int, side: int, price: int, size: int, kind: str, mode: int) -> PlaceOrder:
    return PlaceOrder(
        account=f"acct{account}",
        instrument=PERP,
        side=Side(side),
        price_ticks=0 if kind == "market" else price,
        size_lots=size,
        order_type=OrderType.MARKET if kind == "market" else OrderType.LIMIT,
        time_in_force=TimeInForce.IOC if kind in ("ioc", "market") else TimeInForce.GTC,
        post_only={"post": PostOnly.REPRICE, "reject": PostOnly.REJECT}.get(kind, PostOnly.NONE),
        self_trade=mode,
    )


def _model_price(model: _Model, side: int, price: int, kind: str) -> int | None:
    """The price the engine should use, or None if it should reject the order."""
    best = model.best(-side)
    if kind == "market":
        if best is None:
            return None
        band = best * 50_000 // 1_000_000
        return best + band if side == 1 else max(best - band, 1)
    if (
        kind in ("post", "reject")
        and best is not None
        and (price >= best if side == 1 else price <= best)
    ):
        return None if kind == "reject" else (best - 1 if side == 1 else best + 1)
    return price


@settings(max_examples=300)
@given(operations)
@example(  # an own order ahead of another account's: each self-trade mode differs here
    [
        ("place", 0, -1, 100, 1, "gtc", SelfTrade.CANCEL_TAKER),
        ("place", 1, -1, 100, 1, "gtc", SelfTrade.CANCEL_TAKER),
        ("place", 0, 1, 100, 2, "gtc", SelfTrade.CANCEL_MAKER),
        ("place", 1, -1, 101, 2, "post", SelfTrade.CANCEL_TAKER),
        ("place", 1, 1, 102, 3, "market", SelfTrade.CANCEL_BOTH),
    ]
)
def test_continuous_matching_equals_the_reference_model(ops: list[tuple[object, ...]]) -> None:
    """Every order type and self-trade mode against the obvious implementation."""
    h = Harness(OrderingPolicy.ARRIVAL)
    model = _Model()
    accepted: list[int] = []
    for op in ops:
        if op[0] == "place":
            _, account, side, price, size, kind, mode = op
            expected = _model_price(model, side, price, kind)  # type: ignore[arg-type]
            events = h.events(_order(account, side, price, size, kind, mode))  # type: ignore[arg-type]
            acks = [e for e in events if isinstance(e, OrderAccepted)]
            if expected is None:
                assert not acks
                continue
            (ack,) = acks
            accepted.append(ack.order_id)
            rests = kind in ("gtc", "post", "reject")
            before = len(model.fills)
            model.place(ack.order_id, account, side, expected, size, rests, mode)  # type: ignore[arg-type]
            got = [
                (f.maker_order_id, f.taker_order_id, f.price_ticks, f.size_lots)
                for f in events
                if isinstance(f, Fill)
            ]
            assert got == model.fills[before:]
        elif accepted:
            order_id = accepted[int(op[1]) % len(accepted)]  # type: ignore[call-overload]
            owner = next((o[1] for o in model.resting if o[0] == order_id), 0)
            h.apply(Cancel(account=f"acct{owner}", order_id=order_id))
            model.cancel(order_id)
        bids, asks = h.depth()
        assert bids == model.depth(1)
        assert asks == model.depth(-1)


auction_orders = st.lists(
    st.tuples(st.sampled_from([1, -1]), st.integers(90, 110), st.integers(1, 9)),
    min_size=2,
    max_size=30,
)


@settings(max_examples=150)
@given(auction_orders)
def test_batch_auction_price_maximizes_volume(orders: list[tuple[int, int, int]]) -> None:
    h = Harness()
    events = h.events(
        *[
            PlaceOrder(
                account=f"a{i}", instrument=AUCTION, side=Side(s), price_ticks=p, size_lots=z
            )
            for i, (s, p, z) in enumerate(orders)
        ]
    )

    def volume(price: int) -> int:
        demand = sum(z for s, p, z in orders if s == 1 and p >= price)
        supply = sum(z for s, p, z in orders if s == -1 and p <= price)
        return min(demand, supply)

    best = max(volume(p) for p in range(80, 121))
    cleared = [e for e in events if isinstance(e, AuctionCleared)]
    trades = [e for e in events if isinstance(e, Fill)]
    if best == 0:
        assert not cleared
        assert not trades
        return
    (auction,) = cleared
    assert auction.volume_lots == best == volume(auction.price_ticks)
    assert sum(f.size_lots for f in trades) == best
    assert {f.price_ticks for f in trades} == {auction.price_ticks}
    bids, asks = h.depth(AUCTION)
    if bids and asks:
        assert bids[0][0] < asks[0][0]


def _block_transactions(draw: st.DrawFn) -> list[Transaction]:
    """A block mixing resting orders, takers, post-only quotes and cancels by client id."""
    count = draw(st.integers(1, 25))
    txs: list[Transaction] = []
    for i in range(count):
        kind = draw(st.sampled_from(["rest", "take", "post", "cancel"]))
        account = f"acct{draw(st.integers(0, 3))}"
        fee = draw(st.integers(0, 5))
        if kind == "cancel":
            txs.append(
                Cancel(
                    account=account,
                    client_order_id=f"o{draw(st.integers(0, 30))}",
                    priority_fee=fee,
                )
            )
            continue
        txs.append(
            PlaceOrder(
                account=account,
                instrument=PERP,
                side=Side(draw(st.sampled_from([1, -1]))),
                price_ticks=draw(st.integers(96, 104)),
                size_lots=draw(st.integers(1, 4)),
                time_in_force=TimeInForce.IOC if kind == "take" else TimeInForce.GTC,
                post_only=1 if kind == "post" else 0,
                client_order_id="" if kind == "take" else f"o{i}",
                priority_fee=fee,
            )
        )
    return txs


@st.composite
def _blocks(draw: st.DrawFn) -> list[list[Transaction]]:
    return [_block_transactions(draw) for _ in range(draw(st.integers(1, 4)))]


def _outcome(policy: OrderingPolicy, blocks: list[list[Transaction]]) -> tuple[object, ...]:
    h = Harness(policy)
    events = []
    for block in blocks:
        # The position of each event's transaction differs between policies; drop it.
        events += [msgspec.structs.replace(e, tx=0) for e in h.events(*block)]
    return tuple(msgspec.msgpack.encode(e) for e in events), h.depth()


@settings(max_examples=120)
@given(_blocks())
def test_lanes_equal_arrival_order_of_the_lane_sorted_block(
    blocks: list[list[Transaction]],
) -> None:
    """The lanes policy is exactly arrival order after a stable sort into lanes."""
    sorted_blocks = [
        [tx for _, tx in sorted(enumerate(b), key=lambda p: (lane_of(p[1]), p[0]))] for b in blocks
    ]
    assert _outcome(OrderingPolicy.LANES, blocks) == _outcome(OrderingPolicy.ARRIVAL, sorted_blocks)


@settings(max_examples=120)
@given(_blocks())
def test_fee_priority_equals_arrival_order_of_the_fee_sorted_block(
    blocks: list[list[Transaction]],
) -> None:
    by_fee = [sorted(b, key=lambda tx: -tx.priority_fee) for b in blocks]
    assert _outcome(OrderingPolicy.FEE_PRIORITY, blocks) == _outcome(OrderingPolicy.ARRIVAL, by_fee)
