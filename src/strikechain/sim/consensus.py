"""Block production in the lab: a Tendermint-style validator set, or a single sequencer.

Both drive the runtime (:class:`~strikechain.runtime.runtime.Runtime`), never the engine: the
proposer chooses a block's transactions with ``Runtime.select`` when it proposes, and the block
is applied with ``Runtime.commit_selected`` when consensus commits it, so block interval and
finality come out of the model, not out of a parameter. Each block is recorded as a
:class:`ProducedBlock` (height, proposer, rounds, propose and commit times, transactions,
utilization, base fee, digest).

**Tendermint** (:class:`Tendermint`; Buchman, Kwon and Milosevic, "The latest gossip on BFT
consensus", 2018, Algorithm 1, with CometBFT's timeout_commit, catch-up and gossip). Every
validator runs the algorithm on its own view; one shared runtime stands for the replicated
venue (every correct replica applies the same blocks), and it applies height ``h`` when the
first validator decides ``h``: that moment is the block's **commit time (finality)**.

- Heights and rounds. Round ``r`` of height ``h`` has proposer ``sequence[(h - 1 + r) mod
  len]``: ``round_robin`` is the validator list in order; ``weighted`` is CometBFT's
  proposer-priority rotation (each step every priority grows by its power, the largest, first
  in list order on a tie, proposes and loses the total power), one cycle of ``total power``
  steps.
- Quorums are by voting power: a quorum is more than 2/3 of the total, a skip set more than
  1/3.
- Message flow of a round: the proposer broadcasts PROPOSAL(h, r, value, valid_round); a
  validator prevotes the value (or nil if it is locked on another), then precommits it when
  it sees a quorum of prevotes for it (a polka; it locks), and decides when it sees a quorum of
  precommits for a value it holds. A quorum of nil prevotes makes it precommit nil. Seeing
  messages of a higher round from a skip set makes it jump to that round. A proposer with a
  valid value from an earlier polka re-proposes it (the same block, its original time).
- Timeouts (each ``base + delta * round``): ``timeout_propose`` (no proposal in time: prevote
  nil), ``timeout_prevote`` (started by a quorum of prevotes for anything: precommit nil),
  ``timeout_precommit`` (started by a quorum of precommits for anything: next round). After a
  decision a validator waits ``timeout_commit`` before round 0 of the next height (CometBFT
  gathers late precommits and transactions there). Defaults are CometBFT's.
- With constant one-way latency ``L``, no jitter and no timeout firing: the proposal reaches
  the others at ``propose + L``, every prevote is in at ``propose + 2L`` and every precommit at
  ``propose + 3L``, so the block commits ``3L`` after it is proposed and the next is proposed
  ``timeout_commit`` later: a block interval of ``timeout_commit + 3L``.
- Gossip and loss: a consensus message that the network loses is sent again every
  ``retransmit_ns`` while both ends are online and it is still of use: the receiver has not
  passed its height, and the sender is still at it (a COMMIT: whatever the sender's height; a
  STATUS: while its sender is still at that height). CometBFT's gossip routines keep sending
  what a peer's round state lacks; here the sender reads that state directly (an
  idealization of CometBFT's peer-state messages).
- Catch-up: a validator that receives a message of a lower height from a peer sends it
  COMMIT(h, value) (the decided block with its certificate, which the peer accepts); one that
  receives a message of a higher height sends that peer a STATUS with its own height, which
  brings the COMMIT; a STATUS of the same height brings the peer's own proposals and votes of
  that height again. After a decision from a COMMIT a validator sends every peer a STATUS (for
  what they sent at the new height while it lagged). Messages one height ahead are kept until
  the validator gets there.
- Liveness needs partial synchrony, as in the paper: timeouts must come to exceed the message
  delays (``delta`` > 0 does that); with short timeouts and no ``delta`` rounds fail forever.
- Decisions need the value: like CometBFT, a validator decides on a quorum of precommits for a
  block it holds (from any round's proposal, or a COMMIT), not only the same round's proposal.
- Validators go offline in windows (``ValidatorSpec.offline``; ``TendermintParams.outages``
  takes them all down): an offline validator sends nothing, runs no timer, and what reaches it
  is lost (nobody retries toward it); it keeps its state (CometBFT's WAL), and when it is back
  it restarts its current step's timer, sends every peer a STATUS and its own messages of the
  height again, and so catches up. All validators offline is an outage: no blocks. A
  transaction sent to an offline entry validator is lost.
- Faulty validators (``behaviour``): ``late`` proposes ``propose_delay_ns`` after its round
  starts (a delay beyond ``timeout_propose`` costs the round); ``silent`` sends nothing at all
  (it still follows the protocol in its own view); ``equivocating`` proposes two different
  blocks in its rounds (the honest selection to the peers at even positions of its peer list,
  the first half of it to the others) and double-votes the same way for them. Faulty
  validators still decide by the honest rules on what they receive. **Safety** is checked, not
  assumed: a validator deciding a value other than the height's first decision is recorded in
  :attr:`Tendermint.conflicts` (the runtime keeps the first).

**Sequencer** (:class:`Sequencer`): one node cuts a block every ``block_interval_ns`` (empty
blocks too: block time moves funding and expiries), committed at once (its soft finality);
in an outage window no block is made.

**Mempool** (:class:`Mempool`): the runtime's inbox is the network's mempool; which
transactions a block takes is the runtime's selection (:class:`MempoolParams.block_policy`:
``FeePriority`` by priority fee over an EIP-1559-style base fee, or arrival order) under the
block's capacity: the runtime's bound, lowered by ``MempoolParams.capacity`` and by
:class:`CongestionWindow` s (the base fee's target follows the capacity in force, as a gas
limit would). A transaction from an agent reaches its entry validator after the network's
one-way delay (or is lost), then the mempool after ``NetworkParams.gossip_ns``: one shared
mempool stands for all the validators' mempools, which gossip makes agree; ``gossip_ns`` is
the time to reach the proposer's (the approximation: the proposer is not favoured for the
transactions sent to it). The sender learns the outcome (a receipt or ``INBOX_FULL``) over the
entry validator's stream back. Demand spikes are the agents' business:
:meth:`Mempool.demand_multiplier` is the hook their arrival rates read.

Determinism: everything runs on the kernel in virtual time; the only draws are the network's
(per link, see :mod:`strikechain.sim.network`); validators, peers and votes are iterated in
list order, never over a set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

import msgspec

from strikechain.engine.invariant import InvariantViolation, invariant
from strikechain.engine.txs import Transaction
from strikechain.engine.units import NANOS_PER_MILLISECOND, NANOS_PER_SECOND
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.gateway import Outcome
from strikechain.runtime.inbox import Receipt
from strikechain.runtime.runtime import Runtime, Selected
from strikechain.sim.consensus_params import (
    MAX_CAPACITY,
    MAX_DURATION_NS,
    MAX_FUTURE_MESSAGES,
    MAX_RETAINED_DECISIONS,
    MAX_TOTAL_POWER,
    MAX_VALIDATORS,
    Behaviour,
    Conflict,
    CongestionWindow,
    ConsensusCode,
    ConsensusParamsError,
    DemandSpike,
    MempoolParams,
    ProducedBlock,
    SequencerParams,
    TendermintParams,
    Trace,
    ValidatorSpec,
    Window,
    validator_set,
)
from strikechain.sim.kernel import Kernel
from strikechain.sim.network import (
    ConstantLatency,
    LinkParams,
    Network,
    NetworkParams,
    TransactionRoute,
)

__all__ = [
    "MAX_CAPACITY",
    "MAX_DURATION_NS",
    "MAX_FUTURE_MESSAGES",
    "MAX_RETAINED_DECISIONS",
    "MAX_TOTAL_POWER",
    "MAX_VALIDATORS",
    "NIL",
    "Behaviour",
    "Conflict",
    "CongestionWindow",
    "ConsensusCode",
    "ConsensusParamsError",
    "DemandSpike",
    "Mempool",
    "MempoolParams",
    "ProducedBlock",
    "Sequencer",
    "SequencerParams",
    "Tendermint",
    "TendermintParams",
    "Trace",
    "ValidatorSpec",
    "Window",
    "benchmark_run",
    "build_sequencer",
    "build_tendermint",
    "proposer_sequence",
    "validator_set",
]


# -- records ---------------------------------------------------------------------------------


def _trace(blocks: list[ProducedBlock]) -> Trace:
    return [(b.height, b.commit_ns, b.transactions, b.digest) for b in blocks]


def _produced(
    selected: Selected, digest: bytes, proposer: str, rounds: int, propose_ns: int, now: int
) -> ProducedBlock:
    return ProducedBlock(
        height=selected.height,
        proposer=proposer,
        rounds=rounds,
        propose_ns=propose_ns,
        commit_ns=now,
        transactions=len(selected.pending),
        capacity=selected.bounds.capacity,
        base_fee=selected.base_fee,
        digest=digest,
    )


# -- the mempool -----------------------------------------------------------------------------


class _InFlight:
    """A submission on its way: who sent it, to which validator, the answer once there is one
    and the observer's row."""

    __slots__ = ("agent", "entry", "on_outcome", "outcome", "row", "tx")

    def __init__(
        self, agent: str, entry: str, tx: Transaction, on_outcome: Outcome | None, row: int
    ) -> None:
        self.agent = agent
        self.entry = entry
        self.tx = tx
        self.on_outcome = on_outcome
        self.row = row
        self.outcome: Receipt | RuntimeRejection | None = None


class SubmissionObserver(Protocol):
    """Told of every submission to a :class:`Mempool` when it is sent (returning a row number
    for it), and of each answer when it reaches the sender (only when the sender asked for
    one: asking draws a delivery delay from the network's stream)."""

    def sent(self, agent: str, tx: Transaction) -> int: ...

    def answered(self, row: int, outcome: Receipt | RuntimeRejection) -> None: ...


class Mempool:
    """How transactions reach the runtime's inbox, and each block's capacity (see module)."""

    def __init__(
        self,
        kernel: Kernel,
        network: Network,
        runtime: Runtime,
        params: MempoolParams,
        online: Callable[[str], bool],
    ) -> None:
        self.kernel = kernel
        self.network = network
        self.runtime = runtime
        self.params = params
        self._online = online
        self.submitted = 0
        self.lost = 0
        """Lost on the way to the entry validator, or refused by an offline one."""
        self.accepted = 0
        self.rejected = 0
        self.dropped = 0
        """Transactions that outlived ``ttl_ns`` in the mempool."""
        self.observer: SubmissionObserver | None = None
        self._routes: dict[str, TransactionRoute] = {}
        self._selection = runtime.policy.selection
        """The runtime's selection (fixed with its policy): whose base fee agents pay."""
        """Sees every submission and answer (the lab's recorder); None: nobody."""
        if params.ttl_ns:
            runtime.add_sink(self)

    def on_block(self, committed: object) -> None:
        """After a block commits (no proposal is outstanding): drop what waited too long."""
        cutoff = self.kernel.now - self.params.ttl_ns
        inbox = self.runtime.inbox
        stale = []
        for entry in inbox:  # arrival order: the oldest first
            if entry.arrival_ns > cutoff:
                break
            stale.append(entry.sequence)
        for sequence in stale:
            inbox.withdraw(sequence)
        self.dropped += len(stale)

    def submit(self, agent: str, tx: Transaction, on_outcome: Outcome | None = None) -> None:
        """Send ``tx`` from ``agent`` to its entry validator now. ``on_outcome`` receives the
        inbox's receipt or rejection when the answer reaches the agent (never, if lost)."""
        self.submitted += 1
        observer = self.observer
        row = -1 if observer is None else observer.sent(agent, tx)
        route = self._routes.get(agent)
        if route is None:
            route = self._routes[agent] = self.network.transaction_route(agent)
        now = self.kernel.now
        delay = route.delay_ns(now)
        if delay < 0:
            self.lost += 1
            return
        self.kernel.schedule(
            now + delay, self._at_entry, _InFlight(agent, route.entry, tx, on_outcome, row)
        )

    def _at_entry(self, flight: _InFlight) -> None:
        if not self._online(flight.entry):
            self.lost += 1
            return
        gossip = self.network.params.gossip_ns
        if gossip:
            self.kernel.schedule(self.kernel.now + gossip, self._at_mempool, flight)
        else:
            self._at_mempool(flight)

    def _at_mempool(self, flight: _InFlight) -> None:
        outcome: Receipt | RuntimeRejection
        try:
            outcome = self.runtime.submit(flight.tx, self.kernel.now)
            self.accepted += 1
        except RuntimeRejection as rejection:
            outcome = rejection
            self.rejected += 1
        if flight.on_outcome is not None:
            flight.outcome = outcome
            when = self.network.market_data_delivery_ns(flight.entry, flight.agent)
            self.kernel.schedule(when, self._answer, flight)

    def _answer(self, flight: _InFlight) -> None:
        outcome, on_outcome = flight.outcome, flight.on_outcome
        assert outcome is not None  # set before this was scheduled
        assert on_outcome is not None
        if self.observer is not None and flight.row >= 0:
            self.observer.answered(flight.row, outcome)
        on_outcome(outcome)

    def capacity_at(self, now_ns: int) -> int | None:
        """The transactions a block proposed at ``now_ns`` may carry below the runtime's bound
        (None: the runtime's bound)."""
        capacity = self.params.capacity or None
        for window in self.params.congestion:
            if window.start_ns <= now_ns < window.end_ns:
                capacity = window.capacity if capacity is None else min(capacity, window.capacity)
        return capacity

    def demand_multiplier(self, now_ns: int) -> float:
        """The product of the demand spikes in force at ``now_ns`` (1.0: none)."""
        multiplier = 1.0
        for spike in self.params.demand_spikes:
            if spike.start_ns <= now_ns < spike.end_ns:
                multiplier *= spike.multiplier
        return multiplier

    def base_fee_now(self) -> int:
        """The base fee the runtime's selection asks now (0 without fee priority)."""
        return self._selection.base_fee

    def demand_now(self) -> float:
        """:meth:`demand_multiplier` at the kernel's time: what agents' arrival rates follow."""
        return self.demand_multiplier(self.kernel.now)

    def select(self) -> Selected:
        """The next block's transactions, chosen now (what a proposer does)."""
        return self.runtime.select(self.capacity_at(self.kernel.now))


# -- Tendermint ------------------------------------------------------------------------------

_PROPOSAL: Final = 0
_PREVOTE: Final = 1
_PRECOMMIT: Final = 2
_COMMIT: Final = 3
_STATUS: Final = 4

_NEW_HEIGHT: Final = 0
_PROPOSE: Final = 1
_PREVOTING: Final = 2
_PRECOMMITTING: Final = 3

_TIMEOUT_PROPOSE: Final = 0
_TIMEOUT_PREVOTE: Final = 1
_TIMEOUT_PRECOMMIT: Final = 2
_START_HEIGHT: Final = 3
_LATE_PROPOSAL: Final = 4

NIL: Final = 0
"""The value id of a nil vote; values are numbered from 1."""
_NONE: Final = -1


class _Value:
    """A proposed block: its transactions (None for a height the venue already passed: a
    lagging proposer's block, which can never be decided) and its proposal's time."""

    __slots__ = ("height", "id", "proposed_ns", "proposer", "selected")

    def __init__(
        self, id: int, height: int, proposer: str, proposed_ns: int, selected: Selected | None
    ) -> None:
        self.id = id
        self.height = height
        self.proposer = proposer
        self.proposed_ns = proposed_ns
        self.selected = selected


class _Message:
    __slots__ = ("height", "kind", "round", "sender", "valid_round", "value", "value_id")

    def __init__(
        self,
        kind: int,
        height: int,
        round: int,
        sender: int,
        value_id: int,
        valid_round: int = -1,
        value: _Value | None = None,
    ) -> None:
        self.kind = kind
        self.height = height
        self.round = round
        self.sender = sender
        self.value_id = value_id
        self.valid_round = valid_round
        self.value = value


class _Tally:
    """The votes of one kind in one round: one per sender, power per value."""

    __slots__ = ("by_sender", "power", "quorum", "quorum_value", "total")

    def __init__(self, quorum: int) -> None:
        self.by_sender: dict[int, int] = {}
        self.power: dict[int, int] = {}
        self.total = 0
        self.quorum = quorum
        self.quorum_value = _NONE
        """The first non-nil value with a quorum."""

    def add(self, sender: int, value_id: int, power: int) -> None:
        if sender in self.by_sender:
            return
        self.by_sender[sender] = value_id
        self.total += power
        reached = self.power.get(value_id, 0) + power
        self.power[value_id] = reached
        if value_id != NIL and reached >= self.quorum and self.quorum_value == _NONE:
            self.quorum_value = value_id


def proposer_sequence(validators: tuple[ValidatorSpec, ...], weighted: bool) -> tuple[int, ...]:
    """One cycle of proposers (indices): list order, or CometBFT's priority rotation."""
    if not weighted:
        return tuple(range(len(validators)))
    powers = [v.power for v in validators]
    total = sum(powers)
    priorities = [0] * len(powers)
    sequence: list[int] = []
    for _ in range(total):
        for i, power in enumerate(powers):
            priorities[i] += power
        chosen = max(range(len(powers)), key=lambda i: (priorities[i], -i))
        priorities[chosen] -= total
        sequence.append(chosen)
    return tuple(sequence)


class _Validator:
    """One validator's state machine (Algorithm 1 of the paper; see the module)."""

    def __init__(self, consensus: Tendermint, index: int, spec: ValidatorSpec) -> None:
        self.consensus = consensus
        self.index = index
        self.name = spec.name
        self.spec = spec
        self.behaviour = spec.behaviour
        self.peers = [i for i in range(len(consensus.params.validators)) if i != index]
        self.online = True
        self.down = 0
        self.epoch = 0
        """Moves when the validator goes offline: timers of an earlier epoch are void."""
        self.height = 0
        self.round = 0
        self.step = _NEW_HEIGHT
        self.decided_ns = 0
        self.future: list[_Message] = []
        self.position = {peer: position for position, peer in enumerate(self.peers)}
        self.commit_sent: dict[int, int] = {}
        self.status_sent: dict[int, tuple[int, int]] = {}
        """Per peer: (our height, the peer's height we saw) of the last STATUS sent."""
        self._reset_height()

    def _reset_height(self) -> None:
        self.locked: _Value | None = None
        self.locked_round = -1
        self.valid: _Value | None = None
        self.valid_round = -1
        self.proposals: dict[int, tuple[_Value, int]] = {}
        self.values: dict[int, _Value] = {}
        self.prevotes: dict[int, _Tally] = {}
        self.precommits: dict[int, _Tally] = {}
        self.senders: dict[int, dict[int, None]] = {}
        self.polka_rounds: dict[int, None] = {}
        self.prevote_timer = -1
        self.precommit_timer = -1
        self.proposed_round = -1
        self.variants: dict[int, tuple[int, int]] = {}
        self.sent: list[tuple[_Message, _Message]] = []
        """What this validator sent at this height: (to even peers, to odd peers)."""

    # -- timers ----------------------------------------------------------------------------

    def _timer(self, kind: int, delay_ns: int) -> None:
        kernel = self.consensus.kernel
        argument = (kind, self.epoch, self.height, self.round)
        kernel.schedule(kernel.now + delay_ns, self._on_timer, argument)

    def _on_timer(self, argument: tuple[int, int, int, int]) -> None:
        kind, epoch, height, round = argument
        if epoch != self.epoch or height != self.height:
            return
        if kind == _START_HEIGHT:
            if self.step == _NEW_HEIGHT:
                self._start_round(0)
            return
        if round != self.round:
            return
        if kind == _TIMEOUT_PROPOSE and self.step == _PROPOSE:
            self.consensus.count_timeout(kind)
            self._vote(_PREVOTE, NIL)
            self._evaluate_round()
        elif kind == _TIMEOUT_PREVOTE and self.step == _PREVOTING:
            self.consensus.count_timeout(kind)
            self._vote(_PRECOMMIT, NIL)
            self._evaluate_round()
        elif kind == _TIMEOUT_PRECOMMIT:
            self.consensus.count_timeout(kind)
            self._start_round(round + 1)
        elif kind == _LATE_PROPOSAL and self.step == _PROPOSE:
            self._send_proposal(round)
            self._evaluate_round()

    # -- rounds ----------------------------------------------------------------------------

    def start_height(self, height: int) -> None:
        self.height = height
        self._start_round(0)

    def _start_round(self, round: int) -> None:
        consensus = self.consensus
        self.round = round
        self.step = _PROPOSE
        if consensus.proposer_index(self.height, round) == self.index:
            self._propose(round)
        else:
            self._timer(_TIMEOUT_PROPOSE, consensus.timeout(_TIMEOUT_PROPOSE, round))
        height = self.height
        self._evaluate_round()
        if self.height == height and self.round == round:
            later = [r for r in self.senders if r > round and self._skip_set(r)]
            if later:
                self._start_round(max(later))

    def _propose(self, round: int) -> None:
        self.proposed_round = round
        if self.behaviour == "silent":
            return
        if self.behaviour == "late":
            self._timer(_LATE_PROPOSAL, self.spec.propose_delay_ns)
            return
        self._send_proposal(round)

    def _send_proposal(self, round: int) -> None:
        consensus = self.consensus
        if self.valid is not None:
            value, valid_round = self.valid, self.valid_round
        else:
            value, valid_round = consensus.new_value(self), -1
        message = _Message(_PROPOSAL, self.height, round, self.index, value.id, valid_round, value)
        if self.behaviour == "equivocating" and valid_round < 0:
            twin = consensus.twin_value(value)
            self.variants[round] = (value.id, twin.id)
            other = _Message(_PROPOSAL, self.height, round, self.index, twin.id, -1, twin)
            self._record(message)
            self._split(message, other)
        else:
            self._broadcast(message)

    def _vote(self, kind: int, value_id: int) -> None:
        self.step = _PREVOTING if kind == _PREVOTE else _PRECOMMITTING
        message = _Message(kind, self.height, self.round, self.index, value_id)
        variants = self.variants.get(self.round)
        if variants is not None and value_id == variants[0]:
            other = _Message(kind, self.height, self.round, self.index, variants[1])
            self._record(message)
            self._split(message, other)
        else:
            self._broadcast(message)

    def _broadcast(self, message: _Message) -> None:
        self._record(message)
        self._split(message, message)

    def _split(self, even: _Message, odd: _Message) -> None:
        """Send one message to the even-positioned peers and another to the odd (the same one
        unless equivocating); a silent validator sends nothing."""
        if self.behaviour == "silent":
            return
        self.sent.append((even, odd))
        send = self.consensus.send
        for position, peer in enumerate(self.peers):
            send(self.index, peer, even if position % 2 == 0 else odd)

    def _resend(self, peer: int) -> None:
        """Everything this validator sent at this height, to ``peer`` again."""
        even_position = self.position[peer] % 2 == 0
        send = self.consensus.send
        for even, odd in self.sent:
            send(self.index, peer, even if even_position else odd)

    # -- receiving -------------------------------------------------------------------------

    def receive(self, message: _Message) -> None:
        height, kind, sender = self.height, message.kind, message.sender
        if message.height < height:
            if kind != _COMMIT:  # a STATUS asks: answer it even if a COMMIT went before
                self._help(sender, message.height, again=kind == _STATUS)
            return
        if message.height > height:
            room = MAX_FUTURE_MESSAGES * len(self.peers) - len(self.future)
            if message.height == height + 1 and kind <= _PRECOMMIT and room > 0:
                self.future.append(message)
            self._send_status(sender, message.height, again=kind == _STATUS)
            return
        if kind == _COMMIT:
            self.consensus.catch_ups += 1
            self._decide(_carried(message), message.round)
            self._synchronize()  # for what the peers sent at the new height while we lagged
            return
        if kind == _STATUS:
            self._resend(message.sender)
            return
        self._record(message)
        if self.step != _NEW_HEIGHT:
            self._evaluate(message.round)

    def _record(self, message: _Message) -> None:
        round, kind, sender = message.round, message.kind, message.sender
        consensus = self.consensus
        if kind == _PROPOSAL:
            value = message.value
            if (
                value is not None
                and round not in self.proposals
                and sender == consensus.proposer_index(self.height, round)
            ):
                self.proposals[round] = (value, message.valid_round)
                self.values.setdefault(value.id, value)
        else:
            tallies = self.prevotes if kind == _PREVOTE else self.precommits
            tally = tallies.get(round)
            if tally is None:
                tally = tallies[round] = _Tally(consensus.quorum)
            tally.add(sender, message.value_id, consensus.powers[sender])
        self.senders.setdefault(round, {})[sender] = None

    def _skip_set(self, round: int) -> bool:
        senders = self.senders.get(round)
        if not senders:
            return False
        powers = self.consensus.powers
        return sum(powers[s] for s in senders) >= self.consensus.skip

    def _evaluate(self, round: int) -> None:
        if round > self.round:
            if self._skip_set(round):
                self._start_round(round)
            return
        if round < self.round:
            self._try_decide(round)
            return
        self._evaluate_round()

    def _evaluate_round(self) -> None:
        """The rules of the current round, in the paper's order; each sees what the ones
        before it did."""
        consensus, round = self.consensus, self.round
        quorum = consensus.quorum
        proposal = self.proposals.get(round)
        if self.step == _PROPOSE and proposal is not None:
            self._on_proposal(proposal, quorum)
        prevotes = self.prevotes.get(round)
        if prevotes is not None and self.step >= _PREVOTING:
            if self.step == _PREVOTING and prevotes.total >= quorum and self.prevote_timer != round:
                self.prevote_timer = round
                self._timer(_TIMEOUT_PREVOTE, consensus.timeout(_TIMEOUT_PREVOTE, round))
            if (
                proposal is not None
                and round not in self.polka_rounds
                and prevotes.power.get(proposal[0].id, 0) >= quorum
            ):
                self.polka_rounds[round] = None
                value = proposal[0]
                if self.step == _PREVOTING:
                    self.locked, self.locked_round = value, round
                    self._vote(_PRECOMMIT, value.id)
                self.valid, self.valid_round = value, round
            if self.step == _PREVOTING and prevotes.power.get(NIL, 0) >= quorum:
                self._vote(_PRECOMMIT, NIL)
        precommits = self.precommits.get(round)
        if precommits is not None and precommits.total >= quorum and self.precommit_timer != round:
            self.precommit_timer = round
            self._timer(_TIMEOUT_PRECOMMIT, consensus.timeout(_TIMEOUT_PRECOMMIT, round))
        self._try_decide(round)

    def _on_proposal(self, proposal: tuple[_Value, int], quorum: int) -> None:
        """Prevote on the round's proposal (lines 22 and 28 of the paper)."""
        value, valid_round = proposal
        locked = self.locked
        if valid_round < 0:
            acceptable = self.locked_round < 0 or (locked is not None and locked.id == value.id)
            self._vote(_PREVOTE, value.id if acceptable else NIL)
        elif valid_round < self.round:
            tally = self.prevotes.get(valid_round)
            if tally is not None and tally.power.get(value.id, 0) >= quorum:
                acceptable = self.locked_round <= valid_round or (
                    locked is not None and locked.id == value.id
                )
                self._vote(_PREVOTE, value.id if acceptable else NIL)

    def _try_decide(self, round: int) -> bool:
        tally = self.precommits.get(round)
        if tally is None or tally.quorum_value == _NONE:
            return False
        value = self.values.get(tally.quorum_value)
        if value is None:
            return False
        self._decide(value, round)
        return True

    def _decide(self, value: _Value, round: int) -> None:
        consensus = self.consensus
        consensus.on_decide(self, value, round)
        self.height += 1
        self._reset_height()
        self.round = 0
        self.step = _NEW_HEIGHT
        self.decided_ns = consensus.kernel.now
        self._timer(_START_HEIGHT, consensus.params.timeout_commit_ns)
        future, self.future = self.future, []
        for message in future:
            if message.height == self.height:
                self._record(message)

    # -- catch-up --------------------------------------------------------------------------

    def _help(self, peer: int, height: int, *, again: bool = False) -> None:
        """Send ``peer`` (seen at ``height``, below ours) the block decided there, once per
        height unless ``again``."""
        consensus = self.consensus
        if consensus.validators[peer].height > height or self.behaviour == "silent":
            return
        if self.commit_sent.get(peer, 0) >= height and not again:
            return
        decision = consensus.decision(height)
        if decision is None:
            return
        self.commit_sent[peer] = height
        value, round = decision
        commit = _Message(_COMMIT, height, round, self.index, value.id, -1, value)
        consensus.send(self.index, peer, commit)

    def _send_status(self, peer: int, seen: int, *, again: bool = False) -> None:
        """Tell ``peer``, seen at height ``seen``, our height: once per (our height, its
        height) unless ``again``."""
        key = (self.height, seen)
        if self.behaviour == "silent" or (self.status_sent.get(peer) == key and not again):
            return
        self.status_sent[peer] = key
        message = _Message(_STATUS, self.height, self.round, self.index, NIL)
        self.consensus.send(self.index, peer, message)

    def _synchronize(self) -> None:
        """Tell every peer our height and send it our messages of this height again: peers
        ahead answer with a COMMIT, peers at this height with their messages."""
        for peer in self.peers:
            self._send_status(peer, 0, again=True)
            self._resend(peer)

    # -- liveness windows ------------------------------------------------------------------

    def go_offline(self) -> None:
        self.down += 1
        if self.down == 1:
            self.online = False
            self.epoch += 1

    def go_online(self) -> None:
        self.down -= 1
        if self.down > 0:
            return
        self.online = True
        self.prevote_timer = self.precommit_timer = -1
        consensus = self.consensus
        if self.height > 0:
            self._synchronize()
        if self.step == _NEW_HEIGHT:
            if self.height > 0:
                wait = self.decided_ns + consensus.params.timeout_commit_ns - consensus.kernel.now
                self._timer(_START_HEIGHT, max(0, wait))
            return
        if self.step == _PROPOSE:
            if consensus.proposer_index(self.height, self.round) == self.index:
                if self.proposed_round != self.round:
                    self._propose(self.round)
                elif self.behaviour == "late" and self.round not in self.proposals:
                    self._timer(_LATE_PROPOSAL, 0)
            else:
                self._timer(_TIMEOUT_PROPOSE, consensus.timeout(_TIMEOUT_PROPOSE, self.round))
        self._evaluate_round()


def _carried(message: _Message) -> _Value:
    value = message.value
    if value is None:
        raise InvariantViolation("a commit carries its block")
    return value


class Tendermint:
    """A validator set producing the runtime's blocks by Tendermint consensus (see module)."""

    def __init__(
        self,
        kernel: Kernel,
        runtime: Runtime,
        network: Network,
        params: TendermintParams,
        mempool: MempoolParams | None = None,
        *,
        record_decisions: bool = False,
    ) -> None:
        names = tuple(v.name for v in params.validators)
        invariant(network.validators == names, "the network's validators are the set's")
        self.kernel = kernel
        self.runtime = runtime
        self.network = network
        self.params = params
        self.powers = [v.power for v in params.validators]
        total = sum(self.powers)
        self.quorum = total * 2 // 3 + 1
        """More than 2/3 of the voting power."""
        self.skip = total // 3 + 1
        """More than 1/3 of it."""
        self._sequence = proposer_sequence(
            params.validators, params.proposer_rotation == "weighted"
        )
        self.validators = [_Validator(self, i, spec) for i, spec in enumerate(params.validators)]
        self._by_name = {v.name: v for v in self.validators}
        self.mempool = Mempool(kernel, network, runtime, mempool or MempoolParams(), self.is_online)
        self.blocks: list[ProducedBlock] = []
        self.conflicts: list[Conflict] = []
        self.messages_sent = 0
        self.messages_lost = 0
        self.retransmissions = 0
        self.timeouts: dict[int, int] = {}
        self.catch_ups = 0
        """Heights a validator decided from a peer's COMMIT rather than its own votes."""
        self.decided: list[tuple[int, str, int]] | None = [] if record_decisions else None
        """With ``record_decisions``: (height, validator, value id) of every decision."""
        self._decisions: dict[int, tuple[_Value, int]] = {}
        self._next_value = NIL

    # -- composition -----------------------------------------------------------------------

    def start(self) -> None:
        """Every validator starts round 0 of the venue's next height now; the offline
        windows are put on the kernel."""
        for validator in self.validators:
            windows = validator.spec.offline + self.params.outages
            for window in windows:
                self._schedule_window(validator, window)
        height = self.runtime.engine.height + 1
        for validator in self.validators:
            if validator.online:
                validator.start_height(height)
            else:  # it starts round 0 when it comes online
                validator.height = height
                validator.step = _PROPOSE

    def _schedule_window(self, validator: _Validator, window: Window) -> None:
        now = self.kernel.now
        if window.end_ns <= now:
            return
        if window.start_ns <= now:
            validator.go_offline()
        else:
            self.kernel.schedule(window.start_ns, _call_offline, validator)
        self.kernel.schedule(window.end_ns, _call_online, validator)

    # -- queries ---------------------------------------------------------------------------

    def is_online(self, name: str) -> bool:
        return self._by_name[name].online

    def proposer_index(self, height: int, round: int) -> int:
        sequence = self._sequence
        return sequence[(height - 1 + round) % len(sequence)]

    def proposer(self, height: int, round: int) -> str:
        return self.validators[self.proposer_index(height, round)].name

    def timeout(self, kind: int, round: int) -> int:
        params = self.params
        if kind == _TIMEOUT_PROPOSE:
            return params.timeout_propose_ns + round * params.timeout_propose_delta_ns
        if kind == _TIMEOUT_PREVOTE:
            return params.timeout_prevote_ns + round * params.timeout_prevote_delta_ns
        return params.timeout_precommit_ns + round * params.timeout_precommit_delta_ns

    def count_timeout(self, kind: int) -> None:
        self.timeouts[kind] = self.timeouts.get(kind, 0) + 1

    def decision(self, height: int) -> tuple[_Value, int] | None:
        return self._decisions.get(height)

    def trace(self) -> Trace:
        return _trace(self.blocks)

    def stats(self) -> dict[str, int]:
        return {
            "blocks": len(self.blocks),
            "messages_sent": self.messages_sent,
            "messages_lost": self.messages_lost,
            "retransmissions": self.retransmissions,
            "timeouts_propose": self.timeouts.get(_TIMEOUT_PROPOSE, 0),
            "timeouts_prevote": self.timeouts.get(_TIMEOUT_PREVOTE, 0),
            "timeouts_precommit": self.timeouts.get(_TIMEOUT_PRECOMMIT, 0),
            "catch_ups": self.catch_ups,
            "conflicts": len(self.conflicts),
        }

    # -- values and decisions --------------------------------------------------------------

    def new_value(self, proposer: _Validator) -> _Value:
        """The block ``proposer`` proposes now: the mempool's selection, if the venue is at
        the height before the proposer's (else it lags, and its block can never win)."""
        venue_next = self.runtime.engine.height + 1
        invariant(venue_next >= proposer.height, "a validator is never ahead of the venue")
        selected = self.mempool.select() if venue_next == proposer.height else None
        self._next_value += 1
        return _Value(self._next_value, proposer.height, proposer.name, self.kernel.now, selected)

    def twin_value(self, value: _Value) -> _Value:
        """An equivocator's second block at the same height and round: the first half of
        the first one's transactions."""
        selected = value.selected
        if selected is not None:
            half = selected.pending[: len(selected.pending) // 2]
            selected = msgspec.structs.replace(selected, pending=half)
        self._next_value += 1
        return _Value(self._next_value, value.height, value.proposer, value.proposed_ns, selected)

    def on_decide(self, validator: _Validator, value: _Value, round: int) -> None:
        height = value.height
        invariant(height == validator.height, "a validator decides its own height")
        if self.decided is not None:
            self.decided.append((height, validator.name, value.id))
        first = self._decisions.get(height)
        if first is not None:
            if first[0].id != value.id:
                self.conflicts.append(Conflict(height, validator.name, value.id, first[0].id))
            return
        self._decisions[height] = (value, round)
        selected = value.selected
        if selected is None:
            raise InvariantViolation(f"the first decision at {height} is of a lagging proposer")
        result = self.runtime.commit_selected(selected, value.proposed_ns)
        now = self.kernel.now
        block = _produced(
            selected, result.digest, value.proposer, round + 1, value.proposed_ns, now
        )
        self.blocks.append(block)
        self._prune()

    def _prune(self) -> None:
        """Forget decisions every validator has passed, and all but the latest
        :data:`MAX_RETAINED_DECISIONS`."""
        lowest = min(v.height for v in self.validators)
        decisions = self._decisions
        for height in list(decisions):
            if height < lowest or len(decisions) > MAX_RETAINED_DECISIONS:
                del decisions[height]
            else:
                break

    # -- transport -------------------------------------------------------------------------

    def send(self, sender: int, target: int, message: _Message) -> None:
        self.messages_sent += 1
        source, destination = self.validators[sender].name, self.validators[target].name
        delay = self.network.consensus_delay_ns(source, destination)
        kernel = self.kernel
        if delay is None:
            self.messages_lost += 1
            kernel.schedule(
                kernel.now + self.params.retransmit_ns, self._retry, (sender, target, message)
            )
        else:
            kernel.schedule(kernel.now + delay, self._deliver, (sender, target, message))

    def _deliver(self, argument: tuple[int, int, _Message]) -> None:
        receiver = self.validators[argument[1]]
        if receiver.online:
            receiver.receive(argument[2])
        else:  # it resynchronizes when it is back
            self.messages_lost += 1

    def _retry(self, argument: tuple[int, int, _Message]) -> None:
        """Gossip sends a lost message again while it is still of use (see the module)."""
        sender, target, message = argument
        source, receiver = self.validators[sender], self.validators[target]
        if not (source.online and receiver.online):
            return
        kind = message.kind
        if kind == _STATUS:  # of use while the sender is still at that height
            if source.height != message.height:
                return
        elif receiver.height > message.height or (
            kind != _COMMIT and source.height != message.height
        ):
            return
        self.retransmissions += 1
        self.send(sender, target, message)


def _call_offline(validator: _Validator) -> None:
    validator.go_offline()


def _call_online(validator: _Validator) -> None:
    validator.go_online()


# -- the single sequencer --------------------------------------------------------------------


class Sequencer:
    """One node cuts a block every ``block_interval_ns`` unless it is down (see module)."""

    def __init__(
        self,
        kernel: Kernel,
        runtime: Runtime,
        network: Network,
        params: SequencerParams,
        mempool: MempoolParams | None = None,
    ) -> None:
        invariant(
            network.validators == (params.name,), "the network's one validator is the sequencer"
        )
        self.kernel = kernel
        self.runtime = runtime
        self.network = network
        self.params = params
        self.mempool = Mempool(kernel, network, runtime, mempool or MempoolParams(), self.is_online)
        self.blocks: list[ProducedBlock] = []
        self._down = 0

    def start(self) -> None:
        """The first block is due one interval from now."""
        kernel = self.kernel
        for window in self.params.outages:
            if window.end_ns <= kernel.now:
                continue
            if window.start_ns <= kernel.now:
                self._down += 1
            else:
                kernel.schedule(window.start_ns, self._set_down, 1)
            kernel.schedule(window.end_ns, self._set_down, -1)
        kernel.schedule(kernel.now + self.params.block_interval_ns, self._tick, None)

    def _set_down(self, change: int) -> None:
        self._down += change

    def is_online(self, name: str) -> bool:
        return self._down == 0

    def _tick(self, _: object) -> None:
        kernel = self.kernel
        now = kernel.now
        if self._down == 0:
            selected = self.mempool.select()
            result = self.runtime.commit_selected(selected, now)
            self.blocks.append(_produced(selected, result.digest, self.params.name, 1, now, now))
        kernel.schedule(now + self.params.block_interval_ns, self._tick, None)

    def trace(self) -> Trace:
        return _trace(self.blocks)


# -- composition and benchmark ---------------------------------------------------------------


def build_tendermint(
    kernel: Kernel,
    runtime: Runtime,
    network: NetworkParams,
    params: TendermintParams,
    mempool: MempoolParams | None = None,
    *,
    record_decisions: bool = False,
) -> Tendermint:
    """A network over the validator set and a :class:`Tendermint` on it (not started). The
    runtime's policy should be ``mempool.block_policy()``."""
    names = [v.name for v in params.validators]
    network_model = Network(kernel, network, names)
    return Tendermint(
        kernel, runtime, network_model, params, mempool, record_decisions=record_decisions
    )


def build_sequencer(
    kernel: Kernel,
    runtime: Runtime,
    network: NetworkParams,
    params: SequencerParams,
    mempool: MempoolParams | None = None,
) -> Sequencer:
    return Sequencer(kernel, runtime, Network(kernel, network, [params.name]), params, mempool)


BENCH_LATENCY_NS: Final = 50 * NANOS_PER_MILLISECOND


def benchmark_run(blocks: int = 2_000, seed: int = 1) -> Tendermint:
    """Four honest validators, 50 ms one-way, CometBFT timeouts, no transactions: run until
    ``blocks`` are committed. The run the lab benchmark times."""
    from strikechain.engine.limits import Limits
    from strikechain.engine.params import VenueConfig
    from strikechain.runtime.genesis import Genesis
    from strikechain.runtime.log import MemoryLog

    invariant(blocks > 0, "the benchmark runs at least one block")
    genesis = Genesis(venue=VenueConfig(), limits=Limits(), margin="none")
    log = MemoryLog()
    log.write_genesis(genesis)
    mempool = MempoolParams()
    runtime = Runtime(genesis.build_engine(), log, mempool.block_policy())
    kernel = Kernel(seed)
    link = LinkParams(latency=ConstantLatency(one_way_ns=BENCH_LATENCY_NS))
    network = NetworkParams(validator_validator=link, agent_validator=link)
    consensus = build_tendermint(
        kernel, runtime, network, TendermintParams(validators=validator_set(4)), mempool
    )
    consensus.start()
    while len(consensus.blocks) < blocks:
        invariant(kernel.run(until_ns=kernel.now + NANOS_PER_SECOND) > 0, "the chain stalled")
    return consensus
