"""Genesis: the configuration that rebuilds the engine a block log starts from.

Written once, as the first record of a log (and posted on chain with the first batch); replay,
recovery and the settlement verifier build their engine from it
(then apply the log's blocks, or restore a snapshot and apply the rest). Encoded as the
engine's canonical codec, in a ``GENESIS`` frame.
"""

from __future__ import annotations

from typing import Final

import msgspec

from strikechain.engine.codec import Kind, decode_body, encode_body, frame, unframe
from strikechain.engine.engine import Engine
from strikechain.engine.invariant import invariant
from strikechain.engine.limits import DEFAULT_LIMITS, Limits
from strikechain.engine.margin import STANDARD_MARGIN, MarginPolicy
from strikechain.engine.oracle import ReportVerifier
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.params import VenueConfig

MARGIN_POLICIES: Final[dict[str, MarginPolicy | None]] = {
    "standard": STANDARD_MARGIN,
    "none": None,
}
"""Margin policies by the name a genesis record gives them."""


class Genesis(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to build the engine at height 0."""

    venue: VenueConfig
    limits: Limits = DEFAULT_LIMITS
    policy: int = OrderingPolicy.LANES
    """:class:`~strikechain.engine.ordering.OrderingPolicy`, as its integer value."""
    margin: str = "standard"
    """A key of :data:`MARGIN_POLICIES`."""

    def __post_init__(self) -> None:
        invariant(self.margin in MARGIN_POLICIES, f"unknown margin policy {self.margin!r}")
        invariant(
            self.policy in OrderingPolicy.__members__.values(),
            f"unknown ordering policy {self.policy!r}",
        )
        msgspec.structs.force_setattr(self, "policy", int(self.policy))

    @property
    def ordering(self) -> OrderingPolicy:
        return OrderingPolicy(self.policy)

    @property
    def margin_policy(self) -> MarginPolicy | None:
        return MARGIN_POLICIES[self.margin]

    def build_engine(self, verifier: ReportVerifier | None = None) -> Engine:
        return Engine(
            self.limits,
            self.ordering,
            venue=self.venue,
            margin=self.margin_policy,
            verifier=verifier,
        )


_DECODER: Final = msgspec.msgpack.Decoder(Genesis)


def encode_genesis(genesis: Genesis) -> bytes:
    return frame(Kind.GENESIS, encode_body(genesis))


def decode_genesis(data: bytes) -> Genesis:
    """A genesis record; raises :class:`~strikechain.engine.codec.CodecError` for anything else."""
    _, body = unframe(data, Kind.GENESIS)
    genesis: Genesis = decode_body(body, _DECODER, "genesis")
    return genesis
