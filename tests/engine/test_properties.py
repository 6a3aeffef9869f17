"""Property tests: the engine against a reference model, and the auction's price."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.events import AuctionCleared, Fill, OrderAccepted
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.txs import Cancel, PlaceOrder, Side, TimeInForce, Transaction
from tests.engine.harness import AUCTION, PERP, Harness


@dataclass
class _Model:
    """Price-time priority the slow, obvious way: sort the opposite side for every taker."""

    resting: list[list[int]] = field(default_factory=list)  # [order id, account, side, price, left]
    fills: list[tuple[int, int, int, int]] = field(
        default_factory=list
    )  # maker, taker, price, lots

    def place(
        self, order_id: int, account: int, side: int, price: int, size: int, rests: bool
    ) -> None:
        opposite = [o for o in self.resting if o[2] == -side]
        opposite.sort(key=lambda o: (o[3] * side, o[0]))  # best price first, then oldest
        for maker in opposite:
            if size == 0 or (maker[3] > price if side == 1 else maker[3] < price):
                break
            if maker[1] == account:  # self-trade prevention, cancel taker: the taker stops
                return
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
            st.integers(0, 2),  # account
            st.sampled_from([1, -1]),
            st.integers(95, 105),
            st.integers(1, 5),
            st.booleans(),  # rests (GTC) or immediate (IOC)
        ),
        st.tuples(st.just("cancel"), st.integers(0, 40)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150)
@given(operations)
def test_continuous_matching_equals_the_reference_model(ops: list[tuple[object, ...]]) -> None:
    h = Harness(OrderingPolicy.ARRIVAL)
    model = _Model()
    accepted: list[int] = []
    for op in ops:
        if op[0] == "place":
            _, account, side, price, size, rests = op
            tx: Transaction = PlaceOrder(
                account=f"acct{account}",
                instrument=PERP,
                side=Side(side),
                price_ticks=price,
                size_lots=size,
                time_in_force=TimeInForce.GTC if rests else TimeInForce.IOC,
            )
            events = h.events(tx)
            (ack,) = [e for e in events if isinstance(e, OrderAccepted)]
            accepted.append(ack.order_id)
            model.place(ack.order_id, account, side, price, size, bool(rests))  # type: ignore[arg-type]
            got = [
                (f.maker_order_id, f.taker_order_id, f.price_ticks, f.size_lots)
                for f in events
                if isinstance(f, Fill)
            ]
            assert got == model.fills[len(model.fills) - len(got) :]
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
