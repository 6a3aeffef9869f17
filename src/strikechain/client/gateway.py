"""The runtime's :class:`~strikechain.runtime.gateway.Gateway` over a live node's API:
:class:`RemoteGateway`, so the lab's agents, unchanged, trade on a node from another process.

One gateway serves one account over one WebSocket, authenticated with the account's API key; it
signs orders with the account's Ethereum key. :meth:`RemoteGateway.connect` opens it.

Transactions (``submit``), each sent at once, in the order submitted:

- :class:`~strikechain.engine.txs.PlaceOrder` -> ``public/submit_signed_order``: every field of
  the order as the agent made it, signed as EIP-712 typed data with a fresh nonce and a
  signature valid for :data:`SIGNATURE_LIFETIME_S` (so the order is the agent's, down to its
  good-till-time, post-only mode and self-trade rule, and the verifier can check it);
- :class:`~strikechain.engine.txs.Cancel` -> ``private/cancel``, or by client order id
  ``private/cancel_by_label`` (the label is the client id; none open: ``ORDER_NOT_FOUND``);
- :class:`~strikechain.engine.txs.CancelAll` -> ``private/cancel_all`` or
  ``private/cancel_all_by_instrument``;
- :class:`~strikechain.engine.txs.Amend` -> ``private/edit`` (price and size converted exactly
  with the order's instrument's tick and lot);
- any other kind: refused with ``UNSUPPORTED_TRANSACTION`` (the API takes no deposits, oracle
  reports or governance from a client). A transaction for another account is refused with
  ``NOT_AUTHORIZED``. The node takes no priority fee from a client: it is dropped.

``on_outcome`` receives the answer when it arrives, which is after the transaction's block (the
node's methods answer with what the block made of it): a
:class:`~strikechain.runtime.inbox.Receipt` if the node took it into its inbox (also when the
engine then refused it: that refusal arrives as a ``Rejected`` event, as in process), else a
:class:`~strikechain.runtime.errors.RuntimeRejection` whose code is mapped from the node's error
(:func:`rejection_of`). The API reports no inbox sequence numbers: a remote receipt's
``sequence`` is 0 (no real one is) and its ``arrival_ns`` the node's receive time (microseconds).

Events (``subscribe``): a topic of the gateway's account gets the node's ``user.events.raw``, an
instrument's topic ``events.{instrument}.raw``, a ticker topic ``events.{instrument}.ticker``
(its ``interval_ns`` applied here, as the dispatcher does in process): the engine's events in
its own encoding (:mod:`strikechain.runtime.notice_wire`), so each notice equals the one the
in-process gateway delivers. A topic naming both an account and an instrument, or neither, is
not served (ValueError): no channel carries their union.

Callbacks (``on_outcome``, subscriptions) run on the event loop, one at a time. If the node
sends something that is not a notice, or the socket closes, the gateway stops: :attr:`failure`
says why, pending and later submissions answer ``DISCONNECTED``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec

from strikechain.client.client import TRANSPORT_ERROR, Client, ClientError, WsRpc
from strikechain.engine.codes import RejectCode
from strikechain.engine.events import (
    Fill,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
)
from strikechain.engine.instruments import Instrument
from strikechain.engine.orders_signing import sign_order
from strikechain.engine.signing import SigningDomain
from strikechain.engine.txs import Amend, Cancel, CancelAll, PlaceOrder, PostOnly, Transaction
from strikechain.runtime.errors import RuntimeCode, RuntimeRejection
from strikechain.runtime.gateway import CancelBySubmit
from strikechain.runtime.inbox import Receipt
from strikechain.runtime.messages import Callback, Notice, Outcome, Ticker, Topic
from strikechain.runtime.notice_wire import NoticeWireError, decode_notices

SIGNATURE_LIFETIME_S: Final = 30
"""How long an order's signature is valid: it is placed within a block or two."""
USER_EVENTS: Final = "user.events.raw"
_ENGINE_CODES: Final = frozenset(code.value for code in RejectCode)
_BEFORE_INBOX: Final[dict[int, RuntimeCode]] = {
    10047: RuntimeCode.NODE_UNAVAILABLE,
    13009: RuntimeCode.NOT_AUTHORIZED,
    13004: RuntimeCode.NOT_AUTHORIZED,
    13021: RuntimeCode.NOT_AUTHORIZED,
    13010: RuntimeCode.NOT_AUTHORIZED,
    TRANSPORT_ERROR: RuntimeCode.DISCONNECTED,
}
"""The node's codes that are always refusals before its inbox."""
_OTHER_CODES: Final[dict[int, RuntimeCode]] = {
    10004: RuntimeCode.ORDER_NOT_FOUND,
    10001: RuntimeCode.INSTRUMENT_NOT_FOUND,
}
_TOO_MANY_REQUESTS: Final = 10028


def rejection_of(error: ClientError) -> RuntimeRejection | None:
    """The runtime's view of a node's refusal: None if the engine judged the transaction (the
    node took it into its inbox: the error carries the engine's reject code in ``data.code``,
    as the block's ``Rejected`` event does), else the :class:`RuntimeRejection` of the node's
    code (``INVALID_TRANSACTION`` for one not named here)."""
    data = error.data if isinstance(error.data, dict) else {}
    reason = str(data.get("reason", ""))
    code = _BEFORE_INBOX.get(error.code)
    if code is None and error.code == _TOO_MANY_REQUESTS:
        inbox = reason.startswith(RuntimeCode.INBOX_FULL)
        code = RuntimeCode.INBOX_FULL if inbox else RuntimeCode.RATE_LIMITED
    if code is None:
        if data.get("code") in _ENGINE_CODES:
            return None
        code = _OTHER_CODES.get(error.code, RuntimeCode.INVALID_TRANSACTION)
    detail = f": {reason}" if reason else (f": {data}" if data else "")
    return RuntimeRejection(code, f"the node answered {error.code} {error.message}{detail}")


class _Local:
    """One local subscription: its topic, callback and (tickers) the next block time due."""

    __slots__ = ("callback", "channel", "gateway", "next_ticker_ns", "topic")

    def __init__(self, gateway: RemoteGateway, channel: str, topic: Topic, callback: Callback):
        self.gateway = gateway
        self.channel = channel
        self.topic = topic
        self.callback = callback
        self.next_ticker_ns = 0

    def unsubscribe(self) -> None:
        self.gateway._remove(self)


class RemoteGateway(CancelBySubmit):
    """A :class:`~strikechain.runtime.gateway.Gateway` for ``account`` over ``rpc`` (see the
    module). Made by :meth:`connect`."""

    rpc: WsRpc
    """The gateway's WebSocket (set by :meth:`connect`)."""

    def __init__(
        self,
        account: str,
        private_key: bytes,
        domain: SigningDomain,
        instruments: Mapping[str, Instrument],
    ) -> None:
        self.account = account
        self.instruments = dict(instruments)
        """The node's listed instruments as the engine holds them (when connected)."""
        self.failure: ClientError | NoticeWireError | None = None
        self._key = private_key
        self._domain = domain
        self._nonces = itertools.count(time.time_ns())
        self._subscriptions: dict[str, dict[int, _Local]] = {}
        self._numbers = itertools.count(1)
        self._open: dict[int, tuple[str, str]] = {}
        """The account's open orders as its events tell: order id -> (instrument, client id)."""
        self._answers: set[asyncio.Future[Any]] = set()

    @classmethod
    async def connect(cls, client: Client) -> RemoteGateway:
        """A gateway for ``client``'s account: it needs the API key (the WebSocket's session)
        and the account's private key (orders), of the same account."""
        if client.private_key is None or client.account is None or client.api_key is None:
            raise ClientError(
                13009, "unauthorized", {"reason": "a gateway needs an API key and a private key"}
            )
        domain = await client.signing_domain()
        listed = await client.call("public/get_engine_instruments")
        try:
            instruments = [msgspec.convert(item, Instrument, strict=False) for item in listed]
        except msgspec.ValidationError as error:
            reason = {"reason": str(error)}
            raise ClientError(TRANSPORT_ERROR, "not engine instruments", reason) from None
        gateway = cls(
            client.account.lower(), client.private_key, domain,
            {instrument.name: instrument for instrument in instruments},
        )  # fmt: skip
        gateway.rpc = rpc = await client.websocket(gateway._on_notification)
        try:
            await rpc.call("private/subscribe", {"channels": [USER_EVENTS]})
        except ClientError:
            await rpc.close()
            raise
        return gateway

    async def close(self) -> None:
        await self.rpc.close()

    # -- transactions -------------------------------------------------------------------------

    def submit(self, tx: Transaction, on_outcome: Outcome | None = None) -> None:
        try:
            method, params = self._request(tx)
            if self.failure is not None:
                raise RuntimeRejection(
                    RuntimeCode.DISCONNECTED, f"the gateway stopped: {self.failure}"
                )
            answer = self.rpc.send(method, params)
        except RuntimeRejection as rejection:
            if on_outcome is not None:
                on_outcome(rejection)
            return
        except ClientError as error:
            self._answered_error(error, on_outcome)
            return
        self._answers.add(answer)
        answer.add_done_callback(lambda done: self._answered(done, on_outcome, method))

    def _request(self, tx: Transaction) -> tuple[str, dict[str, Any]]:
        """The API call that carries ``tx``; RuntimeRejection if none does."""
        kind = type(tx)
        account = getattr(tx, "account", None)
        if kind not in (PlaceOrder, Cancel, CancelAll, Amend):
            raise RuntimeRejection(
                RuntimeCode.UNSUPPORTED_TRANSACTION,
                f"a {kind.__name__} is not taken from clients by the node's API",
            )
        if account != self.account:
            raise RuntimeRejection(
                RuntimeCode.NOT_AUTHORIZED,
                f"this gateway trades for {self.account}, not {account}",
            )
        if isinstance(tx, PlaceOrder):
            return "public/submit_signed_order", self._signed(tx)
        if isinstance(tx, Cancel):
            if tx.order_id:
                return "private/cancel", {"order_id": str(tx.order_id)}
            return "private/cancel_by_label", {"label": tx.client_order_id}
        if isinstance(tx, CancelAll):
            if not tx.instrument:
                return "private/cancel_all", {}
            return "private/cancel_all_by_instrument", {"instrument_name": tx.instrument}
        assert isinstance(tx, Amend)
        return "private/edit", self._edit(tx)

    def _signed(self, tx: PlaceOrder) -> dict[str, Any]:
        now = time.time_ns()
        order = msgspec.structs.replace(
            tx, nonce=next(self._nonces), expiry_ns=now + SIGNATURE_LIFETIME_S * 1_000_000_000
        )
        signed = sign_order(order, self._key, self._domain)
        return {
            "account": signed.account,
            "instrument_name": signed.instrument,
            "side": signed.side,
            "size_lots": signed.size_lots,
            "price_ticks": signed.price_ticks,
            "order_type": signed.order_type,
            "time_in_force": signed.time_in_force,
            "post_only": signed.post_only,
            "reduce_only": signed.reduce_only,
            "self_trade": signed.self_trade,
            "client_order_id": signed.client_order_id,
            "expire_at_ns": signed.expire_at_ns,
            "nonce": signed.nonce,
            "expiry": signed.expiry_ns,
            "signature": "0x" + signed.signature.hex(),
        }

    def _edit(self, tx: Amend) -> dict[str, Any]:
        known = self._open.get(tx.order_id)
        instrument = None if known is None else self.instruments.get(known[0])
        if instrument is None:
            raise RuntimeRejection(
                RuntimeCode.ORDER_NOT_FOUND, f"{tx.order_id} is no open order of {self.account}"
            )
        return {
            "order_id": str(tx.order_id),
            "price": tx.price_ticks * Decimal(instrument.tick_size),
            "contracts": tx.size_lots * Decimal(instrument.lot_size),
            "post_only": tx.post_only != PostOnly.NONE,
            "reject_post_only": tx.post_only == PostOnly.REJECT,
        }

    def _answered(
        self, answer: asyncio.Future[Any], on_outcome: Outcome | None, method: str
    ) -> None:
        self._answers.discard(answer)
        if answer.cancelled():
            error = ClientError(TRANSPORT_ERROR, "the request was cancelled")
        elif (exception := answer.exception()) is not None:
            if not isinstance(exception, ClientError):
                raise exception
            error = exception
        else:
            envelope = answer.result()
            failed = envelope.get("error") if isinstance(envelope, dict) else None
            if failed is None and method == "private/cancel_by_label" and not envelope["result"]:
                if on_outcome is not None:  # no open order had the label: nothing was sent
                    on_outcome(
                        RuntimeRejection(
                            RuntimeCode.ORDER_NOT_FOUND,
                            f"no open order of {self.account} has that client id",
                        )
                    )
                return
            if failed is None:
                if on_outcome is not None:
                    on_outcome(Receipt(0, int(envelope.get("usIn", 0)) * 1_000))
                return
            error = ClientError(
                int(failed.get("code", 0)), str(failed.get("message")), failed.get("data")
            )
            if rejection_of(error) is None and on_outcome is not None:
                on_outcome(Receipt(0, int(envelope.get("usIn", 0)) * 1_000))
                return
        self._answered_error(error, on_outcome)

    def _answered_error(self, error: ClientError, on_outcome: Outcome | None) -> None:
        if on_outcome is None:
            return
        rejection = rejection_of(error)
        if rejection is None:  # no envelope: a transport failure always maps
            rejection = RuntimeRejection(RuntimeCode.DISCONNECTED, str(error))
        on_outcome(rejection)

    # -- events -------------------------------------------------------------------------------

    def subscribe(self, topic: Topic, callback: Callback) -> _Local:
        channel = self._channel_of(topic)
        local = _Local(self, channel, topic, callback)
        subscribers = self._subscriptions.get(channel)
        if subscribers is None:
            subscribers = self._subscriptions[channel] = {}
            if channel != USER_EVENTS:
                self._track(self.rpc.send("public/subscribe", {"channels": [channel]}))
        subscribers[next(self._numbers)] = local
        return local

    def _channel_of(self, topic: Topic) -> str:
        if topic.channel == "ticker":
            self._require_instrument(topic.instrument)
            return f"events.{topic.instrument}.ticker"
        if bool(topic.account) == bool(topic.instrument):
            raise ValueError(
                "a remote gateway serves a topic of its account or of one instrument, not both "
                "or neither (no channel carries their union)"
            )
        if topic.account:
            if topic.account != self.account:
                raise RuntimeRejection(
                    RuntimeCode.NOT_AUTHORIZED,
                    f"this gateway sees the events of {self.account}, not {topic.account}",
                )
            return USER_EVENTS
        self._require_instrument(topic.instrument)
        return f"events.{topic.instrument}.raw"

    def _require_instrument(self, name: str) -> None:
        if name not in self.instruments:
            raise RuntimeRejection(
                RuntimeCode.INSTRUMENT_NOT_FOUND, f"the node lists no instrument {name!r}"
            )

    def _remove(self, local: _Local) -> None:
        subscribers = self._subscriptions.get(local.channel, {})
        for number, found in list(subscribers.items()):
            if found is local:
                del subscribers[number]
        if not subscribers and local.channel in self._subscriptions:
            del self._subscriptions[local.channel]
            if local.channel != USER_EVENTS and self.failure is None:
                self._track(self.rpc.send("public/unsubscribe", {"channels": [local.channel]}))

    def _track(self, request: asyncio.Future[Any]) -> None:
        """A subscription request: a refusal stops the gateway (its topics were checked)."""
        self._answers.add(request)

        def done(answer: asyncio.Future[Any]) -> None:
            self._answers.discard(answer)
            if answer.cancelled():
                return
            exception = answer.exception()
            envelope = None if exception is not None else answer.result()
            failed = envelope.get("error") if isinstance(envelope, dict) else None
            if isinstance(exception, ClientError):
                self._stop(exception)
            elif failed is not None:
                self._stop(
                    ClientError(
                        int(failed.get("code", 0)), str(failed.get("message")), failed.get("data")
                    )
                )

        request.add_done_callback(done)

    def _on_notification(self, channel: str, data: Any) -> None:
        if self.failure is not None:
            return
        try:
            notices = decode_notices(data)
        except NoticeWireError as error:
            self._stop(error)
            return
        if channel == USER_EVENTS:
            for notice in notices:
                self._follow(notice)
        subscribers = self._subscriptions.get(channel)
        if not subscribers:
            return
        for notice in notices:
            for local in list(subscribers.values()):
                if isinstance(notice.event, Ticker):
                    if local.next_ticker_ns > notice.timestamp_ns:
                        continue
                    if local.topic.interval_ns:
                        local.next_ticker_ns = notice.timestamp_ns + local.topic.interval_ns
                local.callback(notice)

    def _follow(self, notice: Notice) -> None:
        """Keep the account's open orders (amends need their instruments)."""
        event = notice.event
        if isinstance(event, OrderAccepted):
            if event.account == self.account:
                self._open[event.order_id] = (event.instrument, event.client_order_id)
        elif isinstance(event, OrderCancelled | OrderExpired):
            self._close(event.order_id)
        elif isinstance(event, Fill):
            if event.maker_remaining_lots == 0:
                self._close(event.maker_order_id)
            if event.taker_remaining_lots == 0:
                self._close(event.taker_order_id)

    def _close(self, order_id: int) -> None:
        self._open.pop(order_id, None)

    def _stop(self, error: ClientError | NoticeWireError) -> None:
        if self.failure is None:
            self.failure = error
            closing = asyncio.ensure_future(self.rpc.close())
            self._answers.add(closing)
            closing.add_done_callback(self._answers.discard)
