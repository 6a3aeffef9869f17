"""The node's configuration: one TOML file, read into typed structs, refused with the field named.

```toml
[node]
data_dir = "strikechain-data"   # the block log, snapshots, the chain journal, the key store
block_interval_ms = 100.0
sync = "full"                   # "full": fsync per block; "normal": survive a process crash only
gc_interval_s = 60.0            # the node's own cyclic-garbage collections, between blocks

[settlement]
chain = "embedded"              # or an Ethereum JSON-RPC URL
batch_blocks = 600
batch_interval_s = 60.0

[[underlyings]]
name = "BTC"
reporters = ["0x..."]           # oracle reporters' addresses
quorum = 1

[[instruments]]
underlying = "BTC"
kind = "perpetual"
tick = "0.5"
lot = "0.001"
```

Every field has a default except the markets; :func:`load_config` refuses unknown fields at any
depth (a typo never silently becomes a default), wrong types and out-of-range values with a
:class:`ConfigError` naming the field's path.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final, Literal

import msgspec

from strikechain.engine.genesis import Genesis
from strikechain.engine.instruments import Instrument, make_perpetual
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.oracle import OracleParams
from strikechain.engine.params import UnderlyingParams, VenueConfig
from strikechain.engine.signing import SigningDomain

NANOS_PER_MILLISECOND: Final = 1_000_000


class ConfigError(ValueError):
    """A configuration the node refuses; ``code`` is stable (``INVALID_CONFIG``)."""

    code: Final = "INVALID_CONFIG"


class NodeSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: str = "strikechain-data"
    block_interval_ms: float = 100.0
    """How often a block is cut (empty blocks too: block time drives funding and expiry)."""
    inbox_capacity: int = 100_000
    """Transactions waiting at most; beyond it a submission is refused (``INBOX_FULL``)."""
    max_transactions_per_block: int = 10_000
    snapshot_every: int = 1_000
    """A snapshot every N blocks: recovery replays at most N blocks after loading it."""
    root_every: int = 100
    """Record the state root every N blocks (recovery checks each one it replays)."""
    sync: Literal["full", "normal"] = "full"
    gc_interval_s: float = 60.0
    """How often the node collects cyclic garbage itself, between blocks
    (:mod:`strikechain.node.heap`); CPython's own full collections are off while it runs."""
    gc_full_interval_s: float = 3_600.0
    """How often that collection walks the whole heap, frozen objects included."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.block_interval_ms <= 60_000.0:
            raise InvariantViolation("node.block_interval_ms: between 1 and 60,000")
        if not 0.0 < self.gc_interval_s <= self.gc_full_interval_s:
            raise InvariantViolation(
                "node.gc_interval_s: positive and at most node.gc_full_interval_s"
            )
        for name in (
            "inbox_capacity",
            "max_transactions_per_block",
            "snapshot_every",
            "root_every",
        ):
            if getattr(self, name) <= 0:
                raise InvariantViolation(f"node.{name}: must be at least 1")

    @property
    def block_interval_ns(self) -> int:
        return int(self.block_interval_ms * NANOS_PER_MILLISECOND)


class SettlementSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    chain: str = "embedded"
    """``embedded`` (titanoboa in a child process, journaled in the data directory) or the URL
    of an Ethereum JSON-RPC endpoint."""
    batch_blocks: int = 600
    batch_interval_s: float = 60.0
    confirmations: int = 0
    """Blocks a deposit must have on top before it is credited (0 on the embedded chain, whose
    blocks are final at once)."""
    challenge_window_s: int = 3_600
    operator_key: str = ""
    """Hex private key of the operator on a JSON-RPC chain (the embedded chain needs none)."""
    chain_timeout_s: float = 30.0
    """How long a chain call may take before the chain counts as not answering."""

    def __post_init__(self) -> None:
        if self.batch_blocks <= 0 or self.batch_interval_s < 0 or self.confirmations < 0:
            raise InvariantViolation("settlement: batch sizes and confirmations must be >= 0")
        if self.chain != "embedded" and not self.chain.startswith(("http://", "https://")):
            raise InvariantViolation("settlement.chain: 'embedded' or an http(s):// URL")


class UnderlyingSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    reporters: tuple[str, ...]
    quorum: int = 1


class InstrumentSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    underlying: str
    kind: Literal["perpetual"] = "perpetual"
    tick: str = "0.5"
    lot: str = "0.001"

    def instrument(self) -> Instrument:
        return make_perpetual(self.underlying, self.tick, self.lot)


class NodeConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    node: NodeSection = msgspec.field(default_factory=NodeSection)
    settlement: SettlementSection = msgspec.field(default_factory=SettlementSection)
    underlyings: tuple[UnderlyingSection, ...] = ()
    instruments: tuple[InstrumentSection, ...] = ()
    chain_id: int = 31_337
    """The EIP-712 domain's chain (signed orders and reports name it)."""

    @property
    def data_dir(self) -> Path:
        return Path(self.node.data_dir)

    def venue(self) -> VenueConfig:
        return VenueConfig(
            underlyings={
                u.name: UnderlyingParams(
                    oracle=OracleParams(reporters=u.reporters, quorum=u.quorum)
                )
                for u in self.underlyings
            },
            signing=SigningDomain(chain_id=self.chain_id),
        )

    def genesis(self) -> Genesis:
        return Genesis(venue=self.venue())

    def listings(self) -> list[Instrument]:
        return [section.instrument() for section in self.instruments]


def parse_config(text: str) -> NodeConfig:
    """A configuration from TOML text; :class:`ConfigError` naming the field otherwise."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not TOML: {error}") from None
    try:
        config = msgspec.convert(raw, NodeConfig)
    except msgspec.ValidationError as error:
        raise ConfigError(str(error)) from None
    except InvariantViolation as error:
        raise ConfigError(str(error)) from None
    names = {u.name for u in config.underlyings}
    for index, section in enumerate(config.instruments):
        if section.underlying not in names:
            raise ConfigError(
                f"$.instruments[{index}].underlying: {section.underlying!r} is not an underlying"
            )
    return config


def load_config(path: str | Path) -> NodeConfig:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    return parse_config(text)
