"""The node's configuration: one TOML file, read into typed structs, refused with the field named.

```toml
[node]
data_dir = "strikechain-data"   # the block log, snapshots, the chain journal, the key store
block_interval_ms = 100.0
sync = "full"                   # "full": fsync per block; "normal": survive a process crash only
gc_interval_s = 10.0            # the node's own cyclic-garbage collections, between blocks

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

[[instruments]]                 # BTC calls and puts
underlying = "BTC"
kind = "option"
tick = "5"
lot = "0.01"
expiries = ["2026-12-25"]       # fixed dates (listed for 08:00 UTC), or a rolling rule:
# dailies = 2, weeklies = 1, monthlies = 0, quarterlies = 0 (Deribit's calendar, from now on)
strikes = ["90000", "100000", "110000"]   # fixed strikes, or around the index:
# strikes_per_side = 2, std_devs = "1", reference_vol = "0.6" (spacing: engine/chain.py)
min_expiry_hours = 24           # an expiry sooner than this is not listed (default 1)
```

Options are listed by the node as time goes by (:mod:`strikechain.node.listing`), not
at genesis: an expiry of the rule is listed, with all its strikes, once it is at least
``min_expiry_hours`` away and (for strikes around the index) the underlying has an index; an
expiry that has options of the underlying listed already is left alone.

Every field has a default except the markets; :func:`load_config` refuses unknown fields at any
depth (a typo never silently becomes a default), wrong types and out-of-range values with a
:class:`ConfigError` naming the field's path.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

import msgspec

from strikechain.engine.calendar import days_in_month, expiry_ns
from strikechain.engine.chain import (
    MAX_CHAIN_PARAMETER,
    MAX_EXPIRIES,
    MAX_STRIKES_PER_SIDE,
    ChainPolicy,
    listed_expiries,
    strike_step_ticks,
    strikes_around,
)
from strikechain.engine.codes import Rejection
from strikechain.engine.genesis import Genesis
from strikechain.engine.instruments import (
    MAX_EXPIRY_YEAR,
    MIN_EXPIRY_YEAR,
    Instrument,
    OptionType,
    grid_size,
    make_option,
    make_perpetual,
)
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
    cut_grace_ms: float = 5.0
    """When a block falls due, how long the node may keep taking what has already arrived
    before cutting it (a few passes of its event loop, :data:`~strikechain.node.service.
    DRAIN_PASSES`, at most this long): a message read before the due time but not yet
    submitted would otherwise wait a whole interval more. At most the block interval is
    used."""
    gc_interval_s: float = 10.0
    """How often the node collects cyclic garbage itself, between blocks
    (:mod:`strikechain.node.heap`); CPython's own full collections are off while it runs.
    A collection walks what became long-lived since the previous one, so its pause grows with
    this interval: it must fit between two blocks (after one block's answers, before the
    next cut). Every 60 s under ``bench node``'s load it walked ~45k objects (with the
    history's order records untracked; 176k before): ~50 ms, the whole gap at 60% load."""
    gc_full_interval_s: float = 3_600.0
    """How often that collection walks the whole heap, frozen objects included."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.block_interval_ms <= 60_000.0:
            raise InvariantViolation("node.block_interval_ms: between 1 and 60,000")
        if not 0.0 <= self.cut_grace_ms <= 60_000.0:
            raise InvariantViolation("node.cut_grace_ms: between 0 and 60,000")
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


NANOS_PER_HOUR: Final = 3_600 * 1_000_000_000
DEFAULT_MIN_EXPIRY_HOURS: Final = 1
MAX_MIN_EXPIRY_HOURS: Final = 24 * 366
MAX_FIXED_STRIKES: Final = 2 * MAX_STRIKES_PER_SIDE + 1
_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ROLLING: Final = ("dailies", "weeklies", "monthlies", "quarterlies")
_OPTION_ONLY: Final = (
    "expiries",
    *_ROLLING,
    "strikes",
    "strikes_per_side",
    "std_devs",
    "reference_vol",
    "min_expiry_hours",
)


class InstrumentSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``[[instruments]]`` table: a perpetual, or an underlying's calls and puts (the option
    fields are refused on a perpetual; see the module for the option syntax)."""

    underlying: str
    kind: Literal["perpetual", "option"] = "perpetual"
    tick: str = "0.5"
    lot: str = "0.001"
    expiries: tuple[str, ...] | None = None
    """Options: fixed expiry dates ``YYYY-MM-DD`` (08:00 UTC), or None for the rolling rule."""
    dailies: int | None = None
    weeklies: int | None = None
    monthlies: int | None = None
    quarterlies: int | None = None
    strikes: tuple[str, ...] | None = None
    """Options: fixed strikes (USDC, on the tick), or None for strikes around the index."""
    strikes_per_side: int | None = None
    std_devs: str | None = None
    reference_vol: str | None = None
    min_expiry_hours: int | None = None

    def instrument(self) -> Instrument:
        return make_perpetual(self.underlying, self.tick, self.lot)

    def option_expiries(self, now_ns: int) -> list[int]:
        """The expiries (ns, ascending) this option section lists at ``now_ns``: those at
        least ``min_expiry_hours`` away."""
        hours = DEFAULT_MIN_EXPIRY_HOURS if self.min_expiry_hours is None else self.min_expiry_hours
        earliest_ns = now_ns + hours * NANOS_PER_HOUR
        if self.expiries is not None:
            fixed = sorted({_expiry_of(text) for text in self.expiries})
            return [expiry for expiry in fixed if expiry > earliest_ns]
        return listed_expiries(earliest_ns, self._policy())

    def options(self, expiry: int, now_ns: int, index: Decimal | None) -> list[Instrument]:
        """Calls and puts of one expiry, strike ascending, call before put; none while the
        strikes follow an index that ``index`` (USDC) says is not there yet."""
        tick = grid_size(self.tick, "tick")
        if self.strikes is not None:
            strikes = sorted({Decimal(text) for text in self.strikes})
        elif index is None or index <= 0:
            return []
        else:
            policy = self._policy()
            step = strike_step_ticks(index, expiry - now_ns, tick, policy)
            ticks = strikes_around(index, step, tick, policy.strikes_per_side)
            strikes = [tick * count for count in ticks]
        return [
            make_option(self.underlying, expiry, strike, option_type, tick, self.lot)
            for strike in strikes
            for option_type in (OptionType.CALL, OptionType.PUT)
        ]

    def _policy(self) -> ChainPolicy:
        return ChainPolicy(
            dailies=self.dailies or 0,
            weeklies=self.weeklies or 0,
            monthlies=self.monthlies or 0,
            quarterlies=self.quarterlies or 0,
            strikes_per_side=self.strikes_per_side or 1,
            std_devs=Decimal(self.std_devs or 2),
            reference_vol=Decimal(self.reference_vol or "0.6"),
        )

    def check(self, path: str) -> None:
        """:class:`ConfigError` naming the field (``path`` is this table's) unless the option
        fields are consistent: only on an option, one source of expiries and one of strikes,
        every value in range and every strike on the tick."""
        if self.kind == "perpetual":
            for name in _OPTION_ONLY:
                if getattr(self, name) is not None:
                    raise ConfigError(f'{path}.{name}: only an option (kind = "option") has it')
            return
        for name, value in (("tick", self.tick), ("lot", self.lot)):
            try:
                grid_size(value, name)
            except Rejection as rejection:
                raise ConfigError(f"{path}.{name}: {rejection.message}") from None
        self._check_expiries(path)
        self._check_strikes(path)
        hours = self.min_expiry_hours
        if hours is not None and not 0 <= hours <= MAX_MIN_EXPIRY_HOURS:
            raise ConfigError(f"{path}.min_expiry_hours: between 0 and {MAX_MIN_EXPIRY_HOURS}")

    def _check_expiries(self, path: str) -> None:
        counts = {name: getattr(self, name) for name in _ROLLING}
        rolling = {name: count for name, count in counts.items() if count is not None}
        if self.expiries is not None:
            if rolling:
                name = next(iter(rolling))
                raise ConfigError(f"{path}.{name}: give fixed expiries or a rolling rule, not both")
            if not 1 <= len(self.expiries) <= MAX_EXPIRIES:
                raise ConfigError(f"{path}.expiries: 1 to {MAX_EXPIRIES} dates")
            for number, text in enumerate(self.expiries):
                if _get_expiry(text) is None:
                    raise ConfigError(
                        f"{path}.expiries[{number}]: {text!r} is not a date YYYY-MM-DD in "
                        f"{MIN_EXPIRY_YEAR}..{MAX_EXPIRY_YEAR}"
                    )
            return
        if not rolling:
            raise ConfigError(
                f"{path}.expiries: an option needs expiries = [...] or a rolling rule "
                "(dailies, weeklies, monthlies, quarterlies)"
            )
        for name, count in rolling.items():
            if count < 0:
                raise ConfigError(f"{path}.{name}: must be at least 0")
        if not 1 <= sum(rolling.values()) <= MAX_EXPIRIES:
            raise ConfigError(
                f"{path}.{next(iter(rolling))}: the rule's counts sum to 1..{MAX_EXPIRIES}"
            )

    def _check_strikes(self, path: str) -> None:
        around = {
            name: getattr(self, name)
            for name in ("strikes_per_side", "std_devs", "reference_vol")
            if getattr(self, name) is not None
        }
        if self.strikes is not None:
            if around:
                name = next(iter(around))
                raise ConfigError(f"{path}.{name}: give fixed strikes or strikes around the index")
            self._check_fixed_strikes(path)
            return
        if self.strikes_per_side is None:
            raise ConfigError(
                f"{path}.strikes: an option needs strikes = [...] or strikes_per_side"
            )
        if not 1 <= self.strikes_per_side <= MAX_STRIKES_PER_SIDE:
            raise ConfigError(f"{path}.strikes_per_side: between 1 and {MAX_STRIKES_PER_SIDE}")
        for name in ("std_devs", "reference_vol"):
            text = getattr(self, name)
            if text is not None and not _in_range(text, MAX_CHAIN_PARAMETER):
                raise ConfigError(
                    f"{path}.{name}: {text!r} is not a number above 0 and at most "
                    f"{MAX_CHAIN_PARAMETER}"
                )

    def _check_fixed_strikes(self, path: str) -> None:
        strikes = self.strikes or ()
        if not 1 <= len(strikes) <= MAX_FIXED_STRIKES:
            raise ConfigError(f"{path}.strikes: 1 to {MAX_FIXED_STRIKES} strikes")
        probe = expiry_ns(MAX_EXPIRY_YEAR, 1, 1)
        for number, text in enumerate(strikes):
            try:
                make_option(self.underlying, probe, text, OptionType.CALL, self.tick, self.lot)
            except Rejection as rejection:
                raise ConfigError(f"{path}.strikes[{number}]: {rejection.message}") from None


def _get_expiry(text: str) -> int | None:
    """08:00 UTC of a ``YYYY-MM-DD`` date in the years an option name can say, or None."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups())
    if not MIN_EXPIRY_YEAR <= year <= MAX_EXPIRY_YEAR or not 1 <= month <= 12:
        return None
    if not 1 <= day <= days_in_month(year, month):
        return None
    return expiry_ns(year, month, day)


def _expiry_of(text: str) -> int:
    expiry = _get_expiry(text)
    if expiry is None:
        raise ConfigError(f"{text!r} is not a date YYYY-MM-DD")
    return expiry


def _in_range(text: str, maximum: Decimal) -> bool:
    try:
        value = Decimal(text)
    except ArithmeticError:
        return False
    return value.is_finite() and 0 < value <= maximum


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
        """The perpetuals, listed at genesis (options are listed as time goes by)."""
        return [s.instrument() for s in self.instruments if s.kind == "perpetual"]

    def option_sections(self) -> list[InstrumentSection]:
        return [s for s in self.instruments if s.kind == "option"]


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
        section.check(f"$.instruments[{index}]")
    return config


def load_config(path: str | Path) -> NodeConfig:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    return parse_config(text)
