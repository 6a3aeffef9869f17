"""The lab's agents on a live node through the client's :class:`RemoteGateway`: the unmodified
market maker and noise trader trade over real sockets, their notices equal the in-process
gateway's, refusals are typed, cancels work, nothing leaks between accounts; and the engine
channels refuse bad input with the API's usual errors."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from strikechain.client import Client, ClientError, RemoteGateway
from strikechain.client.gateway import rejection_of
from strikechain.engine.events import Fill, OrderAccepted, OrderCancelled, Rejected
from strikechain.engine.oracle import OracleReport, sign_report
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import Amend, Cancel, Deposit, PlaceOrder, PostOnly, Side
from strikechain.node.keys import KeyStore, Scope
from strikechain.node.service import OPERATOR_ACCOUNT, Node
from strikechain.runtime.errors import RuntimeCode, RuntimeRejection
from strikechain.runtime.gateway import Gateway, LocalGateway, Notice, Subscription, Topic
from strikechain.runtime.inbox import Receipt
from strikechain.runtime.live_scheduler import LiveScheduler
from strikechain.runtime.notice_wire import NoticeWireError, decode_notices
from tests.client.live import node_in_thread
from tests.node.test_service import KEY, REPORTER, USDC, config

PERP = "BTC_USDC-PERPETUAL"
KEYS = {name: keccak256(f"gateway-test-{name}".encode()) for name in ("maker", "noise", "idle")}
ACCOUNTS = {name: address_of(key).lower() for name, key in KEYS.items()}


@dataclasses.dataclass
class Live:
    node: Node
    base: str
    keys: dict[str, tuple[str, str]]
    """account name -> (API key, secret)."""
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the node's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def client(self, name: str, *, signing: bool = True) -> Client:
        api_key, secret = self.keys[name]
        return Client(self.base, api_key, secret, KEYS[name] if signing else None)


async def _fund(node: Node) -> None:
    report = OracleReport(
        account=REPORTER, underlying="BTC", timestamp_ns=node.clock(), price=100_000 * USDC,
        confidence=USDC,
    )  # fmt: skip
    await node.submit(sign_report(report, KEY))
    for account in ACCOUNTS.values():
        await node.submit(
            Deposit(
                account=OPERATOR_ACCOUNT, deposit_id=node.engine.next_deposit_id,
                beneficiary=account, underlying="BTC", amount=1_000_000 * USDC,
            )
        )  # fmt: skip


@contextlib.contextmanager
def live_node(tmp_path: Path) -> Iterator[Live]:
    """A node and its API on a free port, in a thread with its own loop
    (:func:`tests.client.live.node_in_thread`), with three funded accounts, each with an API
    key."""
    cfg = config(tmp_path, block_interval_ms=20.0)
    cfg = msgspec.structs.replace(
        cfg, settlement=msgspec.structs.replace(cfg.settlement, enabled=False)
    )

    async def prepare(node: Node, keys: KeyStore) -> dict[str, tuple[str, str]]:
        made = {
            name: keys.create(account, (Scope.READ, Scope.TRADE))
            for name, account in ACCOUNTS.items()
        }
        await _fund(node)
        return made

    with node_in_thread(cfg, tmp_path, prepare) as (node, base, loop, made):
        yield Live(node, base, made, loop)


class Recording:
    """A :class:`Gateway` in front of another that keeps every notice it delivers (the agent
    behind it is the lab's, unchanged)."""

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner
        self.notices: list[Notice] = []

    def submit(self, tx: Any, on_outcome: Any = None) -> None:
        self.inner.submit(tx, on_outcome)

    def cancel(self, account: str, **options: Any) -> None:
        self.inner.cancel(account, **options)

    def subscribe(self, topic: Topic, callback: Any) -> Subscription:
        def record(notice: Notice) -> None:
            self.notices.append(notice)
            callback(notice)

        return self.inner.subscribe(topic, record)


async def _until(predicate: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def _in_process(live: Live, topics: list[Topic]) -> list[list[Notice]]:
    """Subscribe ``topics`` through an in-process gateway on the node: what the engine emits."""
    out: list[list[Notice]] = [[] for _ in topics]

    async def attach() -> None:
        runtime = live.node.runtime
        assert runtime is not None
        gateway = LocalGateway(runtime, LiveScheduler(asyncio.get_running_loop()))
        for topic, into in zip(topics, out, strict=True):
            gateway.subscribe(topic, into.append)

    live.run(attach())
    return out


def _common(remote: list[Notice], local: list[Notice]) -> tuple[list[Notice], list[Notice]]:
    """Both lists over the blocks both saw whole (from the later first to the earlier last)."""
    if not remote or not local:
        return remote, local
    low = max(remote[0].height, local[0].height) + 1
    high = min(remote[-1].height, local[-1].height) - 1
    return (
        [n for n in remote if low <= n.height <= high],
        [n for n in local if low <= n.height <= high],
    )


def _accounts(notice: Notice) -> set[str]:
    event = notice.event
    names = ("account", "maker_account", "taker_account", "beneficiary", "bidder")
    return {value for name in names if isinstance(value := getattr(event, name, None), str)}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_node(tmp_path_factory.mktemp("gateway")) as running:
        yield running


def test_lab_agents_trade_through_the_remote_gateway(live: Live) -> None:
    from strikechain.cli.live_makers import reference_paths
    from strikechain.sim.agents.base import AgentContext, ReferenceFeed
    from strikechain.sim.agents.market_maker import MarketMaker
    from strikechain.sim.agents.noise import NoiseTrader
    from strikechain.sim.agents.params import MarketMakerParams, NoiseParams
    from strikechain.sim.world import component_rng

    maker, noise = ACCOUNTS["maker"], ACCOUNTS["noise"]
    expected_maker, expected_ticker = _in_process(
        live, [Topic(account=maker), Topic(instrument=PERP, channel="ticker")]
    )

    async def session() -> tuple[MarketMaker, NoiseTrader, Recording, Recording]:
        loop = asyncio.get_running_loop()
        scheduler = LiveScheduler(loop)
        paths = reference_paths({"BTC": 100_000.0}, time.time_ns())
        async with live.client("maker") as maker_client, live.client("noise") as noise_client:
            maker_gateway = Recording(await RemoteGateway.connect(maker_client))
            noise_gateway = Recording(await RemoteGateway.connect(noise_client))
            instruments = maker_gateway.inner.instruments  # type: ignore[attr-defined]
            assert instruments[PERP] == live.run(_instrument(live.node))

            def context(name: str, gateway: Gateway) -> AgentContext:
                return AgentContext(
                    name=name, gateway=gateway, scheduler=scheduler,
                    rng=component_rng(11, f"agent/{name}"),
                    reference=ReferenceFeed(paths, scheduler, 0), instruments=instruments,
                )  # fmt: skip

            market_maker = MarketMaker(
                maker,
                MarketMakerParams(
                    instruments=(PERP,), levels=2, half_spread_bps=2.0, perp_size_lots=5,
                    poll_ns=100_000_000,
                ),
            )  # fmt: skip
            trader = NoiseTrader(
                noise,
                NoiseParams(
                    instruments=(PERP,), rate_per_s=20.0, take_probability=1.0,
                    through_bps=50.0, size_lots_max=2,
                ),
            )  # fmt: skip
            market_maker.start(context(maker, maker_gateway))
            await _until(lambda: market_maker.quotes_sent >= 4)
            trader.start(context(noise, noise_gateway))
            await _until(lambda: market_maker.fills >= 5)
            resting = live.run(_resting(live.node))
            assert any(account == maker for account, _ in resting)
            await asyncio.sleep(0.2)
            for gateway in (maker_gateway, noise_gateway):
                await gateway.inner.close()  # type: ignore[attr-defined]
            return market_maker, trader, maker_gateway, noise_gateway

    market_maker, trader, maker_gateway, noise_gateway = asyncio.run(session())
    assert market_maker.rejections == 0
    assert trader.takes >= 1
    # the maker's fills: the noise trader's orders against its quotes, notices equal the engine's
    fills = [n.event for n in maker_gateway.notices if isinstance(n.event, Fill)]
    assert any(fill.taker_account == noise and fill.maker_account == maker for fill in fills)
    remote, local = _common(maker_gateway.notices, expected_maker)
    assert any(isinstance(n.event, Fill) for n in remote)
    assert remote == local
    assert all(n.sequence > 0 for n in remote if isinstance(n.event, OrderAccepted))
    assert all(maker in _accounts(n) for n in maker_gateway.notices)
    remote_tickers, local_tickers = _common(noise_gateway.notices, expected_ticker)
    assert remote_tickers
    assert remote_tickers == local_tickers


async def _instrument(node: Node) -> Any:
    return node.engine.instruments[PERP]


async def _resting(node: Node) -> list[tuple[str, int]]:
    """(account, order id) of the orders resting on the perpetual."""
    return [(o.account, o.order_id) for o in node.engine.orders.values() if o.instrument == PERP]


def test_refusals_are_typed_cancels_and_amends_work_and_nothing_leaks(live: Live) -> None:
    idle, noise = ACCOUNTS["idle"], ACCOUNTS["noise"]

    async def session() -> None:
        async with live.client("idle") as idle_client, live.client("noise") as noise_client:
            gateway = await RemoteGateway.connect(idle_client)
            seen: list[Notice] = []
            gateway.subscribe(Topic(account=idle), seen.append)
            outcomes: list[Receipt | RuntimeRejection] = []
            tick = gateway.instruments[PERP].tick_size

            def order(price: int, side: Side, client_id: str, **fields: Any) -> PlaceOrder:
                ticks = int(price / tick)
                return PlaceOrder(
                    account=idle, instrument=PERP, side=int(side), price_ticks=ticks,
                    size_lots=3, client_order_id=client_id, **fields,
                )  # fmt: skip

            # refused before the inbox: typed, stable codes
            refused: dict[str, Receipt | RuntimeRejection] = {}

            def answer(label: str) -> Any:
                return lambda outcome: refused.__setitem__(label, outcome)

            gateway.submit(Cancel(account=idle, order_id=999_999), answer("unknown id"))
            gateway.submit(Cancel(account=idle, client_order_id="never"), answer("unknown cid"))
            another = msgspec.structs.replace(order(1, Side.BUY, "x"), account=noise)
            gateway.submit(another, answer("another account"))
            deposit = Deposit(
                account=idle, deposit_id=1, beneficiary=idle, underlying="BTC", amount=1
            )
            gateway.submit(deposit, answer("deposit"))
            await _until(lambda: len(refused) == 4)
            assert {label: getattr(o, "code", o) for label, o in refused.items()} == {
                "unknown id": RuntimeCode.ORDER_NOT_FOUND,
                "unknown cid": RuntimeCode.ORDER_NOT_FOUND,
                "another account": RuntimeCode.NOT_AUTHORIZED,
                "deposit": RuntimeCode.UNSUPPORTED_TRANSACTION,
            }
            # judged by the engine: a receipt, then its Rejected event, as in process
            outcomes.clear()
            gateway.submit(
                msgspec.structs.replace(order(90_000, Side.BUY, "huge"), size_lots=10**12),
                outcomes.append,
            )
            await _until(lambda: any(isinstance(n.event, Rejected) for n in seen))
            await _until(lambda: len(outcomes) == 1)
            assert isinstance(outcomes[0], Receipt)
            rejected = next(n.event for n in seen if isinstance(n.event, Rejected))
            assert (rejected.account, rejected.client_order_id) == (idle, "huge")
            assert rejected.code
            # a resting bid (alone: the maker's quotes gone), amended, partly filled by another
            # account, cancelled by client id
            async with live.client("maker") as maker_client:
                await maker_client.call("private/cancel_all")
            gateway.submit(order(60_000, Side.BUY, "bid", post_only=int(PostOnly.REJECT)))
            await _until(lambda: any(isinstance(n.event, OrderAccepted) for n in seen))
            accepted = next(n.event for n in seen if isinstance(n.event, OrderAccepted))
            assert isinstance(accepted, OrderAccepted)
            gateway.submit(
                Amend(account=idle, order_id=accepted.order_id, price_ticks=int(61_000 / tick),
                      size_lots=4),
                outcomes.append,
            )  # fmt: skip
            await _until(lambda: len(outcomes) == 2)
            assert isinstance(outcomes[1], Receipt)
            assert live.run(_price_of(live.node, accepted.order_id)) == int(61_000 / tick)
            other_rest = await noise_client.submit_signed_order(PERP, "buy", "0.002", 55_000)
            other_take = await noise_client.submit_signed_order(PERP, "sell", "0.001", 61_000)
            assert other_take["order"]["order_state"] == "filled"
            await _until(lambda: any(isinstance(n.event, Fill) for n in seen))
            gateway.cancel(idle, client_order_id="bid", on_outcome=outcomes.append)
            await _until(lambda: any(isinstance(n.event, OrderCancelled) for n in seen))
            await _until(lambda: len(outcomes) == 3)
            assert isinstance(outcomes[2], Receipt)
            assert (idle, accepted.order_id) not in live.run(_resting(live.node))
            # nothing of another account's reaches this session's user.events.raw
            await asyncio.sleep(0.1)
            assert seen
            assert all(idle in _accounts(n) for n in seen)
            other_ids = {int(other_rest["order"]["order_id"]), int(other_take["order"]["order_id"])}
            assert not any(
                isinstance(n.event, OrderAccepted) and n.event.order_id in other_ids for n in seen
            )
            await gateway.close()

    asyncio.run(session())


async def _price_of(node: Node, order_id: int) -> int:
    price: int = node.engine.orders[order_id].price
    return price


def test_engine_channels_refuse_bad_input(live: Live) -> None:
    async def session() -> None:
        async with Client(live.base) as anonymous, live.client("idle") as idle_client:
            rpc = await anonymous.websocket()
            for channel in (
                "events.NOPE-PERPETUAL.raw", f"events.{PERP}.bogus", f"events.{PERP}",
                "user.events.raw", "user.events.other",
            ):  # fmt: skip
                with pytest.raises(ClientError) as caught:
                    await rpc.call("public/subscribe", {"channels": [channel]})
                assert caught.value.code == -32602, channel
            with pytest.raises(ClientError) as caught:
                await rpc.call("private/subscribe", {"channels": ["user.events.raw"]})
            assert caught.value.code == 13009
            assert await rpc.call("public/subscribe", {"channels": [f"events.{PERP}.raw"]}) == [
                f"events.{PERP}.raw"
            ]
            await rpc.close()
            gateway = await RemoteGateway.connect(idle_client)
            with pytest.raises(RuntimeRejection) as refused:
                gateway.subscribe(Topic(account=ACCOUNTS["noise"]), print)
            assert refused.value.code == RuntimeCode.NOT_AUTHORIZED
            with pytest.raises(RuntimeRejection) as refused:
                gateway.subscribe(Topic(instrument="NOPE-PERPETUAL"), print)
            assert refused.value.code == RuntimeCode.INSTRUMENT_NOT_FOUND
            with pytest.raises(ValueError, match="not both"):
                gateway.subscribe(Topic(account=ACCOUNTS["idle"], instrument=PERP), print)
            await gateway.close()
        with pytest.raises(ClientError) as caught:
            async with live.client("idle", signing=False) as unsigned:
                await RemoteGateway.connect(unsigned)
        assert caught.value.code == 13009

    asyncio.run(session())


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"height": 1, "timestamp_ns": 2, "sequences": [], "events": "zz"},
        {"height": 1, "timestamp_ns": 2, "sequences": [1], "events": "0x00"},
        {"height": 1, "timestamp_ns": 2, "sequences": [1], "events": "0x", "extra": 1},
        {"height": 1, "timestamp_ns": 2, "ticker": {"instrument": PERP}},
    ],
)
def test_malformed_notices_are_refused(data: Any) -> None:
    with pytest.raises(NoticeWireError) as caught:
        decode_notices(data)
    assert caught.value.code == "MALFORMED_NOTICE"


@pytest.mark.parametrize(
    ("code", "data", "expected"),
    [
        (10028, {"reason": "INBOX_FULL: the inbox holds 8"}, RuntimeCode.INBOX_FULL),
        (10028, None, RuntimeCode.RATE_LIMITED),
        (10047, {"reason": "halted"}, RuntimeCode.NODE_UNAVAILABLE),
        (13010, {"code": "NONCE_REPLAYED"}, RuntimeCode.NOT_AUTHORIZED),
        (10004, {"param": "order_id"}, RuntimeCode.ORDER_NOT_FOUND),
        (10001, None, RuntimeCode.INSTRUMENT_NOT_FOUND),
        (-32602, {"param": "price"}, RuntimeCode.INVALID_TRANSACTION),
        (-32000, None, RuntimeCode.DISCONNECTED),
        (10004, {"code": "ORDER_NOT_FOUND", "reason": "gone"}, None),
        (10009, {"code": "INSUFFICIENT_MARGIN"}, None),
    ],
)
def test_node_errors_map_to_stable_codes(code: int, data: Any, expected: Any) -> None:
    rejection = rejection_of(ClientError(code, "refused", data))
    assert (rejection.code if rejection is not None else None) == expected


def test_agents_command_runs_the_lab_agents_on_a_node(live: Live, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from strikechain.cli.main import cli

    keys = tmp_path / "keys.json"
    accounts = [
        {
            "api_key": live.keys[name][0], "api_secret": live.keys[name][1],
            "address": ACCOUNTS[name], "private_key": "0x" + KEYS[name].hex(),
        }
        for name in ("maker", "noise")
    ]  # fmt: skip
    keys.write_text(json.dumps(accounts))
    arguments = ["agents", "--url", live.base, "--keys", str(keys), "--market-makers", "1"]
    result = CliRunner().invoke(cli, [*arguments, "--noise", "1", "--duration-s", "1.5"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("strikechain agents: 1 market makers, 1 noise traders")
    assert lines[1].startswith(f"MarketMaker  {ACCOUNTS['maker']}  quotes ")
    assert lines[2].startswith(f"NoiseTrader  {ACCOUNTS['noise']}  orders ")
    assert "quotes 0," not in lines[1]
    refused = CliRunner().invoke(cli, [*arguments, "--noise", "2"])
    assert refused.exit_code == 2
    assert "NOT_ENOUGH_ACCOUNTS" in refused.output
