"""The lab's network: one-way delays and losses between agents and validators, in virtual time.

Who talks to whom
- **Agents to validators** (transactions) and **validators to agents** (market data) use the
  ``agent_validator`` link parameters; **validators to validators** (consensus messages) use
  ``validator_validator``. A node is a validator if it is in the validator list the network is
  built with; every other name is an agent. Agents do not talk to each other here.
- Every agent sends its transactions to one **entry validator**: the one ``connections`` names,
  or else the validator with the smallest path latency from it (ties: the first in the list).

What a message's delay is: ``path + jitter``, or lost
- The **path latency** of a pair is drawn once and kept, the same in both directions: an
  agent's paths to every validator together, when the agent is first seen, from the agent's
  stream ``network/agent/{agent}`` (one draw per validator, in list order); a pair of
  validators' from the pair's own stream ``network/path/{a}|{b}`` (``a`` the first in list
  order), when first used. Distributions:
  :class:`ConstantLatency`; :class:`UniformLatency` (integers, both ends included);
  :class:`LognormalLatency` (``median * exp(sigma Z)``, floored to a nanosecond). Or a
  **region matrix** (:class:`RegionLatency`): every node sits in a named region
  (``NetworkParams.regions``, else ``default_region``) and the path from ``a`` to ``b`` is the
  table's entry from ``a``'s region to ``b``'s (no draw; it may differ by direction).
- **Jitter** is drawn per message: ``"uniform"`` on ``[0, jitter_ns)``, ``"exponential"`` with
  mean ``jitter_ns`` (through the pricing library's deterministic ``log1p``), or ``"none"``.
  Jitter may reorder messages of one link; the market-data feed does not let it (below).
- **Loss** is drawn per message: lost with ``loss_probability``, or inside a
  :class:`LossWindow` with the window's probability (the larger one applies). What a loss
  means is the user's business: a lost transaction never reaches the mempool; the consensus
  model's gossip sends a lost consensus message again.
- **Market data** (what a venue publishes after a block) travels from a validator to an agent
  over a reliable stream: path + jitter, never lost, and in order: a message is delivered no
  earlier than the one sent before it on the same stream
  (:meth:`Network.market_data_delivery_ns`).

Every delay is clipped to :data:`MAX_ONE_WAY_NS` (a lognormal tail is unbounded).

Determinism and streams: a link between two validators draws from its own stream
``network/link/{source}->{target}`` (``Kernel.rng``); the links to and from an agent draw from
the agent's stream ``network/agent/{agent}`` (after its paths), so a thousand agents cost a
thousand streams, not seven thousand. Draws come in blocks of :data:`DRAWS_PER_REFILL` messages
per link (that many loss uniforms, then that many jitter uniforms), one pair per message in the
order the link sends. A link's draws therefore depend on the seed, the names and how many
messages that link (and, for an agent's, the agent's other links) carried before, never on
other nodes' links: adding an agent changes no one else's delays. Node names must not contain
``|`` or ``->``.

Parameters are frozen msgspec Structs (TOML tables later: ``msgspec.convert(table,
NetworkParams)``; latency kinds are tagged by ``kind``). Each validates itself when made and
raises :class:`NetworkParamsError` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from strikechain.engine.invariant import invariant
from strikechain.pricing import detmath
from strikechain.sim.kernel import Kernel
from strikechain.sim.network_params import (
    DRAWS_PER_REFILL,
    MAX_ONE_WAY_NS,
    MAX_REGIONS,
    MAX_SIGMA,
    ConstantLatency,
    Latency,
    LinkParams,
    LognormalLatency,
    LossWindow,
    NetworkCode,
    NetworkParams,
    NetworkParamsError,
    RegionLatency,
    UniformLatency,
    _invalid,
    check_duration,
    check_probability,
    check_window,
)

__all__ = [
    "DRAWS_PER_REFILL",
    "MAX_ONE_WAY_NS",
    "MAX_REGIONS",
    "MAX_SIGMA",
    "ConstantLatency",
    "Latency",
    "LinkParams",
    "LognormalLatency",
    "LossWindow",
    "MarketDataStream",
    "Network",
    "NetworkCode",
    "NetworkParams",
    "NetworkParamsError",
    "RegionLatency",
    "TransactionRoute",
    "UniformLatency",
    "check_duration",
    "check_probability",
    "check_window",
]

# -- the model -------------------------------------------------------------------------------


class _Link:
    """One directed link: its path latency and its stream of (loss, jitter) draws."""

    __slots__ = (
        "_draws",
        "_index",
        "_jitter",
        "_loss",
        "_lossy",
        "_max_ns",
        "_rng",
        "_uniform",
        "_uniforms",
        "jitter",
        "jitter_ns",
        "params",
        "path_ns",
    )

    def __init__(self, rng: np.random.Generator, params: LinkParams, path_ns: int) -> None:
        self._rng = rng
        self.params = params
        self.path_ns = path_ns
        self.jitter = params.jitter
        self.jitter_ns = params.jitter_ns
        self._lossy = params.loss_probability > 0.0 or bool(params.loss_windows)
        """False: no message is ever lost (the loss draw is still used up, in step)."""
        self._loss: list[float] = []
        self._jitter: list[int] = []
        self._uniform = params.jitter == "uniform"
        """Uniform jitter: ``floor(U * jitter_ns)``, computed per message from ``_uniforms``
        (the same doubles and the same rounding as one NumPy pass over the refill)."""
        self._uniforms: list[float] = []
        # the two constants as fields: compiled code reads a field directly, but looks a name
        # imported from another module up in the module's globals on every message
        self._draws = DRAWS_PER_REFILL
        self._max_ns = MAX_ONE_WAY_NS
        self._index = DRAWS_PER_REFILL

    def _refill(self) -> None:
        draws = self._rng.random(2 * DRAWS_PER_REFILL)
        if self._lossy:
            self._loss = draws[:DRAWS_PER_REFILL].tolist()
        uniforms = draws[DRAWS_PER_REFILL:]
        if self._uniform:
            self._uniforms = uniforms.tolist()
            self._index = 0
            return
        if self.jitter == "exponential":
            jitter = np.floor(-detmath.log1p(-uniforms) * self.jitter_ns)
        else:
            jitter = np.zeros(DRAWS_PER_REFILL)
        self._jitter = np.minimum(jitter, MAX_ONE_WAY_NS).astype(np.int64).tolist()
        self._index = 0

    def _jitter_at(self, index: int) -> int:
        if self._uniform:
            jitter = math.floor(self._uniforms[index] * self.jitter_ns)
            return jitter if jitter < self._max_ns else self._max_ns
        return self._jitter[index]

    def draw(self, now_ns: int) -> int:
        """The delay of the next message, sent at ``now_ns``; -1 if it is lost."""
        if self._index == self._draws:
            self._refill()
        index = self._index
        self._index = index + 1
        if self._lossy and self._loss[index] < self.params.loss_at(now_ns):
            return -1
        delay = self.path_ns + self._jitter_at(index)
        return delay if delay < self._max_ns else self._max_ns

    def delay(self) -> int:
        """The delay of the next message on a stream that loses none (its loss draw used up)."""
        if self._index == self._draws:
            self._refill()
        index = self._index
        self._index = index + 1
        delay = self.path_ns + self._jitter_at(index)
        return delay if delay < self._max_ns else self._max_ns


class Network:
    """Delays between the agents and the validators of one run (see the module)."""

    def __init__(self, kernel: Kernel, params: NetworkParams, validators: Sequence[str]) -> None:
        if not validators or len(set(validators)) != len(validators):
            raise _invalid("validators", "must be distinct names, at least one", list(validators))
        self.kernel = kernel
        self.params = params
        self.validators: tuple[str, ...] = tuple(validators)
        self._rank = {name: i for i, name in enumerate(self.validators)}
        for agent, validator in sorted(params.connections.items()):
            if validator not in self._rank:
                raise NetworkParamsError(
                    NetworkCode.UNKNOWN_VALIDATOR,
                    f"NetworkParams.connections[{agent!r}] is {validator!r}, not one of "
                    f"the validators {list(self.validators)}",
                )
        for name in self.validators:
            for link in (params.agent_validator, params.validator_validator):
                if isinstance(link.latency, RegionLatency):
                    self._region(name, link.latency)
        self._paths: dict[tuple[str, str], int] = {}
        self._links: dict[tuple[str, str], _Link] = {}
        self._entries: dict[str, str] = {}
        self._streams: dict[tuple[str, str], MarketDataStream] = {}
        self._agent_rngs: dict[str, np.random.Generator] = {}

    def is_validator(self, name: str) -> bool:
        return name in self._rank

    # -- paths -----------------------------------------------------------------------------

    def path_ns(self, source: str, target: str) -> int:
        """The path latency from ``source`` to ``target`` (drawn once, then kept)."""
        key = (source, target)
        path = self._paths.get(key)
        if path is None:
            path = self._draw_path(source, target)
            self._paths[key] = path
        return path

    def _link_params(self, source: str, target: str) -> LinkParams:
        source_validates, target_validates = source in self._rank, target in self._rank
        invariant(source != target, f"a link joins two nodes, not {source!r} to itself")
        invariant(source_validates or target_validates, f"no validator on {source}->{target}")
        if source_validates and target_validates:
            return self.params.validator_validator
        return self.params.agent_validator

    def _region(self, node: str, table: RegionLatency) -> str:
        """The region ``node`` sits in (the params checked it is in ``table``)."""
        region = self.params.regions.get(node, self.params.default_region)
        if not region:
            raise NetworkParamsError(
                NetworkCode.UNKNOWN_REGION,
                f"NetworkParams.regions places no region for {node!r} and there is no "
                "default_region",
            )
        return region

    def _draw_path(self, source: str, target: str) -> int:
        latency = self._link_params(source, target).latency
        if isinstance(latency, ConstantLatency):
            return latency.one_way_ns
        if isinstance(latency, RegionLatency):
            row = latency.one_way_ns[self._region(source, latency)]
            return row[self._region(target, latency)]
        reverse = self._paths.get((target, source))
        if reverse is not None:
            return reverse
        if source in self._rank and target in self._rank:
            first, second = self._pair(source, target)
            rng = self.kernel.rng(f"network/path/{first}|{second}")
            return _draw_paths([rng], latency, 1)[0][0]
        self.place([target if source in self._rank else source])
        return self._paths[(source, target)]

    def place(self, agents: Sequence[str]) -> None:
        """Draw the paths from each of ``agents`` to every validator now, all in one
        vectorized call (the same paths as when each agent is first seen alone: the draws
        come from each agent's own stream). A run places its agents before they start:
        a thousand agents' paths one at a time cost a NumPy call each."""
        latency = self.params.agent_validator.latency
        if not isinstance(latency, UniformLatency | LognormalLatency):
            return
        first = self.validators[0]
        new = [
            a
            for a in dict.fromkeys(agents)
            if a not in self._rank and (a, first) not in self._paths
        ]
        if not new:
            return
        rows = _draw_paths([self._agent_rng(a) for a in new], latency, len(self.validators))
        paths = self._paths
        for agent, row in zip(new, rows, strict=True):
            for validator, path in zip(self.validators, row, strict=True):
                paths[(agent, validator)] = paths[(validator, agent)] = path

    def _agent_rng(self, agent: str) -> np.random.Generator:
        rng = self._agent_rngs.get(agent)
        if rng is None:
            rng = self._agent_rngs[agent] = self.kernel.rng(f"network/agent/{agent}")
        return rng

    def _pair(self, a: str, b: str) -> tuple[str, str]:
        """The pair in its canonical order: the validator first; two validators in list
        order."""
        rank = self._rank
        a_rank, b_rank = rank.get(a), rank.get(b)
        if a_rank is None:
            return b, a
        if b_rank is None or a_rank < b_rank:
            return a, b
        return b, a

    def entry_validator(self, agent: str) -> str:
        """The validator ``agent`` sends its transactions to."""
        entry = self._entries.get(agent)
        if entry is None:
            entry = self.params.connections.get(agent)
            if entry is None:
                entry = min(self.validators, key=lambda v: (self.path_ns(agent, v), self._rank[v]))
            self._entries[agent] = entry
        return entry

    # -- messages --------------------------------------------------------------------------

    def _link(self, source: str, target: str) -> _Link:
        key = (source, target)
        link = self._links.get(key)
        if link is None:
            params = self._link_params(source, target)
            if source in self._rank and target in self._rank:
                rng = self.kernel.rng(f"network/link/{source}->{target}")
            else:
                rng = self._agent_rng(target if source in self._rank else source)
            link = _Link(rng, params, self.path_ns(source, target))
            self._links[key] = link
        return link

    def delay_ns(self, source: str, target: str) -> int | None:
        """The delay of a message sent now from ``source`` to ``target``; None if it is lost."""
        delay = self._link(source, target).draw(self.kernel.now)
        return None if delay < 0 else delay

    def transaction_delay_ns(self, agent: str, validator: str | None = None) -> int | None:
        """The delay of a transaction sent now by ``agent`` to ``validator`` (default: its
        entry validator); None if it is lost."""
        return self.delay_ns(agent, validator or self.entry_validator(agent))

    def transaction_route(self, agent: str) -> TransactionRoute:
        """``agent``'s way to its entry validator, to keep: the same delays as
        :meth:`transaction_delay_ns` (the same link, in the same order), without its lookups."""
        entry = self.entry_validator(agent)
        return TransactionRoute(entry, self._link(agent, entry))

    def consensus_delay_ns(self, source: str, target: str) -> int | None:
        """The delay of a consensus message between two validators; None if it is lost."""
        return self.delay_ns(source, target)

    def market_data_delivery_ns(self, validator: str, agent: str) -> int:
        """When a message that ``validator`` sends now reaches ``agent`` over its market-data
        stream: path + jitter, never lost, never before the stream's previous message."""
        return self.market_data_stream(validator, agent).next_ns()

    def market_data_stream(self, validator: str, agent: str) -> MarketDataStream:
        """The stream from ``validator`` to ``agent`` (one per pair, kept): what the feed holds
        per agent, so a delivery costs no lookup."""
        key = (validator, agent)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = MarketDataStream(
                self.kernel, self._link(validator, agent)
            )
        return stream


def _draw_paths(
    rngs: list[np.random.Generator], latency: UniformLatency | LognormalLatency, count: int
) -> list[list[int]]:
    """``count`` path latencies from each of ``rngs`` (one draw per stream; one
    deterministic ``exp`` over all of them)."""
    if isinstance(latency, UniformLatency):
        low, high = latency.low_ns, latency.high_ns
        return [rng.integers(low, high, size=count, endpoint=True).tolist() for rng in rngs]
    normals = np.stack([rng.standard_normal(count) for rng in rngs])
    factors: list[list[float]] = detmath.exp(latency.sigma * normals).tolist()
    median = latency.median_ns
    return [[min(math.floor(median * f), MAX_ONE_WAY_NS) for f in row] for row in factors]


class TransactionRoute:
    """An agent's link to its entry validator (:meth:`Network.transaction_route`)."""

    __slots__ = ("_link", "entry")

    def __init__(self, entry: str, link: _Link) -> None:
        self.entry = entry
        self._link = link

    def delay_ns(self, now_ns: int) -> int:
        """The delay of a transaction sent at ``now_ns``; -1 if it is lost."""
        return self._link.draw(now_ns)


class MarketDataStream:
    """One validator-to-agent market-data stream: each message takes the link's path latency
    and its next jitter draw (the link's loss draw is used up but ignored: market data is never
    lost), and never arrives before the one sent before it."""

    __slots__ = ("_kernel", "_link", "last_ns")

    def __init__(self, kernel: Kernel, link: _Link) -> None:
        self._kernel = kernel
        self._link = link
        self.last_ns = 0

    def next_ns(self) -> int:
        """When a message sent now arrives."""
        delivery = self._kernel.now + self._link.delay()  # the loss draw used up, never applied
        if delivery < self.last_ns:
            return self.last_ns
        self.last_ns = delivery
        return delivery
