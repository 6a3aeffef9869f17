"""The lab's world, composed: the one place that decides what is simulated in a lab run.

:func:`build_lab` turns :class:`LabParams` into a :class:`Lab`: a :class:`~strikechain.sim.kernel.
Kernel` (virtual time, the run's seed), the venue's engine behind the runtime (the same
``Runtime`` the node drives, with an in-memory block log), the network model, block production
(a Tendermint validator set or a single sequencer, over that network, cutting the runtime's
blocks), the mempool between agents and the runtime's inbox, the market-data feed back to
agents, reference price paths and an external hedging venue. Agents get a
:class:`~strikechain.sim.gateway.LabGateway` each (:meth:`Lab.gateway`): the runtime's
``Gateway`` interface over the network, the only way they reach the venue. Nothing here
sequences, matches or margins: the runtime and the engine do, as they do live.

Determinism: everything runs in the kernel's virtual time and every random draw comes from
``kernel.rng(component name)``; the same params give the same run, bit for bit (a test compares
the block digests of two runs).
"""

from __future__ import annotations

import msgspec

from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.params import VenueConfig
from strikechain.runtime.genesis import MARGIN_POLICIES, Genesis
from strikechain.runtime.log import MemoryLog
from strikechain.runtime.runtime import Runtime, RuntimeConfig
from strikechain.sim.consensus import (
    ConsensusParamsError,
    Mempool,
    MempoolParams,
    ProducedBlock,
    Sequencer,
    SequencerParams,
    Tendermint,
    TendermintParams,
    build_sequencer,
    build_tendermint,
)
from strikechain.sim.gateway import LabGateway, MarketDataFeed
from strikechain.sim.hedge_venue import HedgeVenue, HedgeVenueParams
from strikechain.sim.kernel import Kernel
from strikechain.sim.network import Network, NetworkParams
from strikechain.sim.processes import PricePaths, PricesSpec


def _invalid(field: str, requirement: str, value: object) -> ConsensusParamsError:
    return ConsensusParamsError(f"{field} {requirement}, got {value!r}")


class LabParams(msgspec.Struct, frozen=True, kw_only=True):
    """A lab world. Exactly one of ``tendermint`` and ``sequencer`` produces blocks."""

    seed: int = 1
    start_ns: int = 0
    """Virtual time at the start of the run (ns since the epoch; block times follow it)."""
    venue: VenueConfig = msgspec.field(default_factory=VenueConfig)
    margin: str = "standard"
    """The engine's margin policy by its genesis name (``standard`` or ``none``)."""
    ordering: OrderingPolicy = OrderingPolicy.LANES
    """The engine's ordering policy inside a block (lanes; arrival; fee priority, as on L1)."""
    network: NetworkParams = msgspec.field(default_factory=NetworkParams)
    tendermint: TendermintParams | None = None
    sequencer: SequencerParams | None = None
    mempool: MempoolParams = msgspec.field(default_factory=MempoolParams)
    prices: PricesSpec | None = None
    hedge: HedgeVenueParams | None = None
    """The external hedging venue (needs ``prices``)."""
    root_every: int = 0
    """Commit to the state every this many blocks (0: never)."""

    def __post_init__(self) -> None:
        if type(self.seed) is not int or self.seed < 0:
            raise _invalid("LabParams.seed", "must be an integer >= 0", self.seed)
        if type(self.start_ns) is not int or self.start_ns < 0:
            raise _invalid("LabParams.start_ns", "must be an integer >= 0", self.start_ns)
        if (self.tendermint is None) == (self.sequencer is None):
            raise _invalid("LabParams", "needs exactly one of tendermint and sequencer", None)
        if self.margin not in MARGIN_POLICIES:
            raise _invalid(
                "LabParams.margin", f"must be one of {sorted(MARGIN_POLICIES)}", self.margin
            )
        if self.hedge is not None and self.prices is None:
            raise _invalid(
                "LabParams.hedge", "needs prices (it fills at the reference price)", None
            )
        if type(self.root_every) is not int or self.root_every < 0:
            raise _invalid("LabParams.root_every", "must be an integer >= 0", self.root_every)


class Lab:
    """A composed lab world (see the module); made by :func:`build_lab`."""

    def __init__(
        self,
        params: LabParams,
        kernel: Kernel,
        runtime: Runtime,
        producer: Tendermint | Sequencer,
        feed: MarketDataFeed,
        prices: PricePaths | None,
        hedge: HedgeVenue | None,
    ) -> None:
        self.params = params
        self.kernel = kernel
        self.runtime = runtime
        self.producer = producer
        self.feed = feed
        self.prices = prices
        self.hedge = hedge
        self._gateways: dict[str, LabGateway] = {}
        self._started = False

    @property
    def engine(self) -> object:
        return self.runtime.engine

    @property
    def network(self) -> Network:
        return self.producer.network

    @property
    def mempool(self) -> Mempool:
        return self.producer.mempool

    @property
    def blocks(self) -> list[ProducedBlock]:
        return self.producer.blocks

    def gateway(self, agent: str) -> LabGateway:
        """Agent ``agent``'s gateway (one per agent)."""
        gateway = self._gateways.get(agent)
        if gateway is None:
            gateway = self._gateways[agent] = LabGateway(agent, self.mempool, self.feed)
        return gateway

    def run(self, until_ns: int) -> int:
        """Start block production (the first time) and run the world up to ``until_ns``;
        returns the events run."""
        if not self._started:
            self._started = True
            self.producer.start()
        return self.kernel.run(until_ns=until_ns)


def build_lab(params: LabParams) -> Lab:
    """The lab driver's composition: every simulated edge around the one runtime."""
    kernel = Kernel(params.seed, start_ns=params.start_ns)
    genesis = Genesis(venue=params.venue, margin=params.margin, policy=params.ordering)
    log = MemoryLog()
    log.write_genesis(genesis)
    runtime = Runtime(
        genesis.build_engine(),
        log,
        params.mempool.block_policy(),
        RuntimeConfig(root_every=params.root_every),
    )
    producer: Tendermint | Sequencer
    if params.tendermint is not None:
        producer = build_tendermint(
            kernel, runtime, params.network, params.tendermint, params.mempool
        )
    else:
        assert params.sequencer is not None  # LabParams checked it
        producer = build_sequencer(
            kernel, runtime, params.network, params.sequencer, params.mempool
        )
    feed = MarketDataFeed(kernel, producer.network, runtime)
    prices = (
        None if params.prices is None else PricePaths(params.prices, kernel.rng, params.start_ns)
    )
    hedge = None
    if params.hedge is not None and prices is not None:
        hedge = HedgeVenue(kernel, prices, params.hedge)
    return Lab(params, kernel, runtime, producer, feed, prices, hedge)
