"""Block production in the lab: the Tendermint model's round structure, safety under a faulty
proposer and message loss, liveness once the network heals, inclusion by fee under congestion,
the single sequencer, and determinism.

The timing bounds are derived from the protocol's round structure (module docstring of
``strikechain.sim.consensus``). With 4 validators (quorum 3), one-way latency ``L`` between
validators, a proposal at ``P``, and no timeout firing:

- the proposal reaches the others at ``P + L``; each prevotes at once; prevotes arrive at
  ``P + 2L``, where every validator has a quorum and precommits; precommits arrive at
  ``P + 3L``, where every validator decides. So **finality** (commit - propose) is ``3L``.
- The next proposer proposes ``timeout_commit`` (``C``) after it decided: the **block
  interval** is ``C + 3L``.
- With per-message jitter in ``[0, J)``: a message takes ``[L, L + J)``. No decision can come
  before ``P + 3L`` (it needs two foreign precommits, each sent after a quorum of prevotes of
  which one at least is foreign and sent after the proposal arrived), and every validator has
  decided by ``P + 3(L + J)``. The next proposal comes ``C`` after its proposer decided, so
  the interval between first decisions is in ``[C + 3L, C + 3L + 6J]``.
- A proposer that is silent (or later than ``timeout_propose``) costs its height one round:
  the others prevote nil at ``S + TP`` (``S`` the height's start), precommit nil at
  ``S + TP + L``, see a quorum of precommits at ``S + TP + 2L`` and start round 1 after
  ``timeout_precommit`` (``TPC``), whose proposer's block commits ``3L`` later: an interval of
  ``C + TP + TPC + 5L``.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable

import msgspec
import numpy as np
import pytest

from strikechain.engine.events import BlockResult
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.limits import Limits
from strikechain.engine.params import VenueConfig
from strikechain.engine.txs import Cancel
from strikechain.runtime import (
    Committed,
    FeePriority,
    Genesis,
    MemoryLog,
    Receipt,
    Runtime,
    RuntimeRejection,
    Selected,
)
from strikechain.runtime.selection import BaseFeeRule, next_base_fee
from strikechain.sim.consensus import (
    CongestionWindow,
    ConsensusParamsError,
    DemandSpike,
    MempoolParams,
    ProducedBlock,
    Sequencer,
    SequencerParams,
    Tendermint,
    TendermintParams,
    ValidatorSpec,
    Window,
    benchmark_run,
    build_sequencer,
    build_tendermint,
    proposer_sequence,
    validator_set,
)
from strikechain.sim.kernel import Kernel
from strikechain.sim.network import (
    ConstantLatency,
    LinkParams,
    LognormalLatency,
    LossWindow,
    NetworkParams,
)

MS = 1_000_000
S = 1_000 * MS
C = 200 * MS
"""timeout_commit in these tests."""
TP = 3 * S
TPC = S


def make_runtime(mempool: MempoolParams, limits: Limits | None = None) -> Runtime:
    genesis = Genesis(venue=VenueConfig(), limits=limits or Limits(), margin="none")
    log = MemoryLog()
    log.write_genesis(genesis)
    return Runtime(genesis.build_engine(), log, mempool.block_policy())


def constant(latency_ns: int, **extra: object) -> LinkParams:
    return LinkParams(latency=ConstantLatency(one_way_ns=latency_ns), **extra)  # type: ignore[arg-type]


def chain(
    *,
    seed: int = 1,
    validators: tuple[ValidatorSpec, ...] | None = None,
    link: LinkParams | None = None,
    agents: LinkParams | None = None,
    mempool: MempoolParams | None = None,
    gossip_ns: int = 0,
    **params: object,
) -> Tendermint:
    mempool = mempool or MempoolParams()
    kernel = Kernel(seed)
    network = NetworkParams(
        validator_validator=link or constant(50 * MS),
        agent_validator=agents or constant(10 * MS),
        gossip_ns=gossip_ns,
    )
    settings = TendermintParams(
        validators=validators or validator_set(4),
        timeout_commit_ns=params.pop("timeout_commit_ns", C),  # type: ignore[arg-type]
        **params,  # type: ignore[arg-type]
    )
    consensus = build_tendermint(
        kernel, make_runtime(mempool), network, settings, mempool, record_decisions=True
    )
    consensus.start()
    return consensus


def run(consensus: Tendermint, until_ns: int) -> list[ProducedBlock]:
    consensus.kernel.run(until_ns=until_ns)
    return consensus.blocks


def intervals(blocks: list[ProducedBlock]) -> list[int]:
    return [b.commit_ns - a.commit_ns for a, b in itertools.pairwise(blocks)]


def finality(blocks: list[ProducedBlock]) -> list[int]:
    return [b.commit_ns - b.propose_ns for b in blocks]


def assert_safe(consensus: Tendermint) -> None:
    """No two validators decided different blocks at one height, and the venue applied
    exactly the decided blocks, one per height."""
    assert consensus.conflicts == []
    assert consensus.decided is not None
    by_height: dict[int, set[int]] = {}
    for height, _, value in consensus.decided:
        by_height.setdefault(height, set()).add(value)
    assert all(len(values) == 1 for values in by_height.values())
    heights = [b.height for b in consensus.blocks]
    assert heights == list(range(1, len(heights) + 1))
    assert [r.height for r in consensus.runtime.log.records()] == heights
    assert [r.digest for r in consensus.runtime.log.records()] == [
        b.digest for b in consensus.blocks
    ]


def with_behaviour(index: int, **spec: object) -> tuple[ValidatorSpec, ...]:
    validators = list(validator_set(4))
    validators[index] = ValidatorSpec(name=f"v{index}", **spec)  # type: ignore[arg-type]
    return tuple(validators)


# -- the runtime's split: select when proposing, commit when committed --------------------------


def test_select_then_commit_selected() -> None:
    runtime = make_runtime(MempoolParams(base_fee_floor=0))
    runtime.submit(Cancel(account="a", order_id=1, priority_fee=5), 1)
    runtime.submit(Cancel(account="a", order_id=2, priority_fee=9), 2)
    selected = runtime.select(capacity=1)
    assert isinstance(selected, Selected)
    assert [p.tx.priority_fee for p in selected.pending] == [9]
    assert (selected.height, selected.bounds.capacity, len(runtime.inbox)) == (1, 1, 2)
    runtime.submit(Cancel(account="a", order_id=3, priority_fee=99), 3)  # after the proposal
    result = runtime.commit_selected(selected, 10)
    assert isinstance(result, BlockResult)
    assert (result.height, result.timestamp_ns) == (1, 10)
    assert [p.tx.order_id for p in runtime.inbox] == [1, 3]  # type: ignore[union-attr]
    with pytest.raises(InvariantViolation, match="a selection for 1, not 2"):
        runtime.commit_selected(selected, 11)
    stale = runtime.select()
    runtime.inbox.withdraw(stale.pending[0].sequence)
    with pytest.raises(InvariantViolation, match="no longer waits"):
        runtime.commit_selected(stale, 12)
    assert runtime.cut(13) is not None, "cut is select and commit at once, as before"


def test_commit_selected_refuses_a_selection_from_another_base_fee() -> None:
    runtime = make_runtime(MempoolParams())
    assert isinstance(runtime.policy.selection, FeePriority)
    first = runtime.select()
    for order_id in range(1, 20_001):  # a full block moves the base fee
        runtime.submit(Cancel(account="a", order_id=order_id, priority_fee=10), 0)
    runtime.cut(1)
    second = runtime.select()
    runtime.commit_selected(second, 2)
    stale = msgspec.structs.replace(first, height=3)
    with pytest.raises(InvariantViolation, match="base fee moved"):
        runtime.commit_selected(stale, 3)


# -- round structure: interval and finality from latency ----------------------------------------


@pytest.mark.parametrize("latency_ms", [10, 50, 100])
def test_interval_and_finality_follow_the_round_structure(latency_ms: int) -> None:
    latency = latency_ms * MS
    consensus = chain(link=constant(latency))
    blocks = run(consensus, 20 * S)
    assert len(blocks) >= 20
    assert all(b.rounds == 1 for b in blocks)
    assert finality(blocks) == [3 * latency] * len(blocks)
    assert intervals(blocks) == [C + 3 * latency] * (len(blocks) - 1)
    stats = consensus.stats()
    assert stats["timeouts_propose"] == stats["timeouts_prevote"] == 0
    assert stats["timeouts_precommit"] == 0
    # per height: the proposal to 3 peers, 4 x 3 prevotes, 4 x 3 precommits (+ the next's)
    assert 27 * len(blocks) <= stats["messages_sent"] < 27 * (len(blocks) + 1)
    assert [b.proposer for b in blocks[:5]] == ["v0", "v1", "v2", "v3", "v0"]
    assert_safe(consensus)


def test_jitter_keeps_interval_and_finality_within_the_derived_bounds() -> None:
    jitter = 20 * MS
    means: list[float] = []
    for latency in (20 * MS, 80 * MS):
        consensus = chain(link=constant(latency, jitter="uniform", jitter_ns=jitter), seed=3)
        blocks = run(consensus, 30 * S)
        assert all(3 * latency <= f <= 3 * (latency + jitter) for f in finality(blocks))
        gaps = intervals(blocks)
        assert all(C + 3 * latency <= g <= C + 3 * latency + 6 * jitter for g in gaps)
        means.append(statistics.fmean(gaps))
        assert_safe(consensus)
    # 60 ms more one-way latency: about 180 ms more per block (three message delays)
    assert 180 * MS - 6 * jitter < means[1] - means[0] < 180 * MS + 6 * jitter


def test_a_silent_proposer_costs_its_heights_one_round() -> None:
    consensus = chain(validators=with_behaviour(1, behaviour="silent"), link=constant(50 * MS))
    blocks = run(consensus, 40 * S)
    assert_safe(consensus)
    silent_heights = [b for b in blocks if (b.height - 1) % 4 == 1]
    assert silent_heights
    assert all(b.rounds == 2 and b.proposer == "v2" for b in silent_heights)
    assert all(b.rounds == 1 for b in blocks if (b.height - 1) % 4 != 1)
    expected = C + TP + TPC + 5 * 50 * MS
    for block, gap in zip(blocks[1:], intervals(blocks), strict=True):
        assert gap == (expected if block in silent_heights else C + 150 * MS)


def test_a_late_proposer_within_the_timeout_only_delays_its_blocks() -> None:
    delay = S
    consensus = chain(
        validators=with_behaviour(2, behaviour="late", propose_delay_ns=delay),
        link=constant(10 * MS),
    )
    blocks = run(consensus, 20 * S)
    assert_safe(consensus)
    assert all(b.rounds == 1 for b in blocks)
    assert finality(blocks) == [30 * MS] * len(blocks)
    late = {b.height for b in blocks if b.proposer == "v2"}
    for block, gap in zip(blocks[1:], intervals(blocks), strict=True):
        assert gap == C + 30 * MS + (delay if block.height in late else 0)


def test_a_proposer_later_than_the_timeout_loses_its_round() -> None:
    consensus = chain(
        validators=with_behaviour(2, behaviour="late", propose_delay_ns=4 * S),
        link=constant(50 * MS),
    )
    blocks = run(consensus, 30 * S)
    assert_safe(consensus)
    lost = [b for b in blocks if (b.height - 1) % 4 == 2]
    assert lost
    assert all(b.rounds == 2 and b.proposer == "v3" for b in lost)
    assert consensus.stats()["timeouts_propose"] >= 3 * len(lost)


def test_weighted_rotation_follows_power() -> None:
    assert proposer_sequence(validator_set(3), weighted=False) == (0, 1, 2)
    powers = (3, 1, 1, 1)
    validators = tuple(ValidatorSpec(name=f"v{i}", power=p) for i, p in enumerate(powers))
    sequence = proposer_sequence(validators, weighted=True)
    assert len(sequence) == 6
    assert sequence.count(0) == 3
    consensus = chain(validators=validators, link=constant(5 * MS), proposer_rotation="weighted")
    blocks = run(consensus, 30 * S)[:120]
    counts = {
        name: sum(1 for b in blocks if b.proposer == name) for name in ("v0", "v1", "v2", "v3")
    }
    assert counts == {"v0": 60, "v1": 20, "v2": 20, "v3": 20}
    assert consensus.quorum == 5, "more than 2/3 of 6"
    assert_safe(consensus)


# -- safety and liveness under faults --------------------------------------------------------


def lossy(latency_ns: int, until_ns: int, probability: float) -> LinkParams:
    window = LossWindow(start_ns=0, end_ns=until_ns, probability=probability)
    return constant(latency_ns, jitter="uniform", jitter_ns=30 * MS, loss_windows=(window,))


def test_safety_under_an_equivocating_proposer_and_message_loss() -> None:
    heal_ns = 40 * S
    consensus = chain(  # short timeouts, so that loss makes some rounds fail
        validators=with_behaviour(1, behaviour="equivocating"),
        link=lossy(50 * MS, heal_ns, 0.3),
        seed=4,
        timeout_propose_ns=400 * MS,
        timeout_prevote_ns=200 * MS,
        timeout_precommit_ns=200 * MS,
        timeout_propose_delta_ns=100 * MS,
        timeout_prevote_delta_ns=100 * MS,
        timeout_precommit_delta_ns=100 * MS,
    )
    load(consensus, until_ns=70 * S, per_second=40)
    blocks = run(consensus, 80 * S)
    assert_safe(consensus)
    stats = consensus.stats()
    assert stats["messages_lost"] > 300
    assert stats["retransmissions"] > 300
    assert stats["catch_ups"] > 0, "the peers shown the equivocator's other block catch up"
    assert any(b.rounds > 1 for b in blocks), "loss made rounds fail"
    equivocated = [b for b in blocks if b.proposer == "v1"]
    assert equivocated, "the equivocator's first block can win (two honest and itself)"
    # liveness once the network heals: blocks keep coming at the loss-free pace
    healed = [b for b in blocks if b.commit_ns >= heal_ns]
    assert len(healed) >= 50
    assert all(v.height >= blocks[-1].height for v in consensus.validators)


@pytest.mark.parametrize("seed", range(8))
def test_random_faults_keep_safety_and_heal(seed: int) -> None:
    """4 to 7 validators with up to f faulty (late, silent or equivocating), offline windows,
    lossy spells, lognormal latency with jitter: safe throughout, live and converged after
    every window has passed (sweeps of 1,000 such seeds found no failure)."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(4, 8))
    faulty = rng.choice(count, size=(count - 1) // 3, replace=False).tolist()
    validators = []
    for i in range(count):
        start = int(rng.integers(0, 20)) * S
        offline = (Window(start_ns=start, end_ns=start + int(rng.integers(1, 8)) * S),)
        spec: dict[str, object] = {"offline": offline if rng.random() < 0.4 else ()}
        if i in faulty:
            spec["behaviour"] = str(rng.choice(["late", "silent", "equivocating"]))
            if spec["behaviour"] == "late":
                spec["propose_delay_ns"] = int(rng.integers(1, 5)) * S
        validators.append(ValidatorSpec(name=f"v{i}", **spec))  # type: ignore[arg-type]
    windows = tuple(
        LossWindow(start_ns=a * S, end_ns=(a + int(rng.integers(1, 6))) * S, probability=p)
        for a, p in zip(rng.integers(0, 25, size=2).tolist(), rng.random(2).tolist(), strict=True)
    )
    link = LinkParams(
        latency=LognormalLatency(median_ns=int(rng.integers(5, 100)) * MS, sigma=0.5),
        jitter="exponential",
        jitter_ns=10 * MS,
        loss_probability=0.02,
        loss_windows=windows,
    )
    consensus = chain(
        seed=seed,
        validators=tuple(validators),
        link=link,
        timeout_commit_ns=int(rng.integers(0, 1000)) * MS,
        proposer_rotation="weighted" if rng.random() < 0.3 else "round_robin",
    )
    load(consensus, until_ns=40 * S, per_second=30)
    blocks = run(consensus, 60 * S)
    assert_safe(consensus)
    assert len([b for b in blocks if b.commit_ns > 35 * S]) >= 5
    heights = [v.height for v in consensus.validators if v.behaviour != "silent"]
    assert max(heights) - min(heights) <= 1


def test_liveness_after_a_partition_heals() -> None:
    heal_ns = 6 * S
    window = LossWindow(start_ns=2 * S, end_ns=heal_ns, probability=1.0)
    consensus = chain(link=constant(50 * MS, loss_windows=(window,)))
    blocks = run(consensus, 15 * S)
    assert_safe(consensus)
    assert not [b for b in blocks if 2 * S + 150 * MS < b.commit_ns < heal_ns]
    after = [b for b in blocks if b.commit_ns >= heal_ns]
    # the height's round 0 timed out during the partition; one more round after it heals:
    # the nil prevotes get through (<= retransmit + L), timeout_precommit, then 3L
    assert after[0].commit_ns <= heal_ns + 100 * MS + 2 * 50 * MS + TPC + 150 * MS + 100 * MS
    assert intervals(after) == [C + 150 * MS] * (len(after) - 1)


def test_outage_then_recovery() -> None:
    consensus = chain(link=constant(50 * MS), outages=(Window(start_ns=2 * S, end_ns=5 * S),))
    blocks = run(consensus, 10 * S)
    assert_safe(consensus)
    assert not [b for b in blocks if 2 * S <= b.commit_ns < 5 * S]
    after = [b for b in blocks if b.commit_ns >= 5 * S]
    assert after[0].commit_ns <= 5 * S + C + 150 * MS
    assert len(after) >= 12


def test_one_validator_offline_then_catching_up() -> None:
    spec = ValidatorSpec(name="v3", offline=(Window(start_ns=S, end_ns=6 * S),))
    validators = (*validator_set(3), spec)
    consensus = chain(validators=validators, link=constant(50 * MS))
    blocks = run(consensus, 12 * S)
    assert_safe(consensus)
    assert [b for b in blocks if S < b.commit_ns < 6 * S], "three of four are a quorum"
    assert len({v.height for v in consensus.validators}) == 1, "it caught up"


def test_a_conflicting_decision_is_recorded() -> None:
    consensus = chain(link=constant(5 * MS))
    while not consensus.blocks:  # up to the first decision, the others not yet made
        consensus.kernel.step()
    decision = consensus.decision(1)
    assert decision is not None
    undecided = [v for v in consensus.validators if v.height == 1]
    assert undecided
    other = consensus.twin_value(decision[0])  # a block of the same height, another value
    consensus.on_decide(undecided[0], other, 0)
    assert [(c.height, c.validator) for c in consensus.conflicts] == [(1, undecided[0].name)]
    assert [r.height for r in consensus.runtime.log.records()] == [1], "the first one stands"


# -- transactions: the way to the mempool, and inclusion by fee ----------------------------------


def test_transactions_reach_the_mempool_after_latency_and_gossip() -> None:
    consensus = chain(agents=constant(20 * MS), gossip_ns=5 * MS, timeout_commit_ns=S)
    kernel = consensus.kernel
    outcomes: list[tuple[int, Receipt | RuntimeRejection]] = []
    kernel.run(until_ns=400 * MS)
    consensus.mempool.submit(
        "alice", Cancel(account="alice", order_id=1), lambda o: outcomes.append((kernel.now, o))
    )
    kernel.run(until_ns=424 * MS)
    assert len(consensus.runtime.inbox) == 0
    kernel.run(until_ns=425 * MS)
    assert [p.arrival_ns for p in consensus.runtime.inbox] == [425 * MS]
    kernel.run(until_ns=S)
    assert outcomes == [(445 * MS, Receipt(1, 425 * MS))]
    assert consensus.network.entry_validator("alice") == "v0"


def test_transactions_to_an_offline_validator_are_lost() -> None:
    spec = ValidatorSpec(name="v0", offline=(Window(start_ns=0, end_ns=S),))
    consensus = chain(validators=(spec, *validator_set(4)[1:]))
    consensus.mempool.submit("alice", Cancel(account="alice", order_id=1))
    consensus.kernel.run(until_ns=2 * S)
    assert (consensus.mempool.submitted, consensus.mempool.lost) == (1, 1)


def load(
    consensus: Tendermint,
    *,
    until_ns: int,
    per_second: float,
    fees: tuple[int, int] = (8, 400),
    on_submit: Callable[[int, Cancel], None] | None = None,
) -> None:
    """Twenty traders sending cancels (cheap, always valid) at ``per_second`` in all, Poisson,
    with fees uniform in ``fees``, each a unique order id."""
    kernel, mempool = consensus.kernel, consensus.mempool
    rng = kernel.rng("test/load")
    state = {"order": 0}

    def send(_: object) -> None:
        state["order"] += 1
        trader = f"trader-{int(rng.integers(20))}"
        fee = int(rng.integers(fees[0], fees[1], endpoint=True))
        tx = Cancel(account=trader, order_id=state["order"], priority_fee=fee)
        if on_submit is not None:
            on_submit(kernel.now, tx)
        mempool.submit(trader, tx)
        gap = int(rng.exponential(S / (per_second * mempool.demand_multiplier(kernel.now))))
        if kernel.now + gap < until_ns:
            kernel.schedule(kernel.now + gap, send, None)

    kernel.schedule(kernel.now, send, None)


class Inclusions:
    """Each transaction's inclusion time, by order id (a sink on the runtime)."""

    def __init__(self) -> None:
        self.at: dict[int, int] = {}
        self.height: dict[int, int] = {}

    def on_block(self, committed: Committed) -> None:
        for tx in committed.block.transactions:
            assert isinstance(tx, Cancel)
            self.height[tx.order_id] = committed.block.height


def test_under_congestion_the_base_fee_rises_and_low_fees_wait() -> None:
    window = CongestionWindow(start_ns=3 * S, end_ns=6 * S, capacity=4)
    mempool = MempoolParams(capacity=20, congestion=(window,))
    consensus = chain(link=constant(5 * MS), mempool=mempool, timeout_commit_ns=100 * MS)
    runtime = consensus.runtime
    selections: list[tuple[Selected, list[tuple[int, int]]]] = []
    select = runtime.select

    def spy(capacity: int | None = None) -> Selected:
        chosen = select(capacity)
        waiting = [(p.tx.priority_fee, p.sequence) for p in runtime.inbox]
        selections.append((chosen, waiting))
        return chosen

    runtime.select = spy  # type: ignore[method-assign]
    sent: dict[int, tuple[int, int]] = {}
    load(
        consensus,
        until_ns=9 * S,
        per_second=60,
        on_submit=lambda t, tx: sent.update({tx.order_id: (t, tx.priority_fee)}),
    )
    inclusions = Inclusions()
    runtime.add_sink(inclusions)
    blocks = run(consensus, 20 * S)
    assert_safe(consensus)

    # the base fee follows its rule block after block, with the capacity in force
    for before, after in itertools.pairwise(blocks):
        assert after.base_fee == next_base_fee(
            before.base_fee, before.transactions, before.capacity, 8
        )
    congested = [b for b in blocks if 3 * S <= b.propose_ns < 6 * S]
    assert congested
    assert all(b.capacity == 4 and b.transactions == 4 for b in congested)
    fees = [b.base_fee for b in congested]
    assert all(b > a for a, b in itertools.pairwise(fees)), "up every full block"
    assert fees[-1] > 8 * fees[0], "by 1/8 a block (at least 1)"
    calm = [b for b in blocks if b.propose_ns < 3 * S]
    assert all(b.capacity == 20 and b.base_fee < 12 for b in calm)
    assert max(b.utilization for b in calm) < 1.0

    # each block takes the highest fees at or above the base fee, ties by arrival
    for chosen, waiting in selections:
        eligible = sorted((-fee, seq) for fee, seq in waiting if fee >= chosen.base_fee)
        expected = {seq for _, seq in eligible[: chosen.bounds.capacity]}
        assert {p.sequence for p in chosen.pending} == expected
        assert all(p.tx.priority_fee >= chosen.base_fee for p in chosen.pending)

    # low fees sent in the congestion wait for it to pass; high fees do not wait long
    assert len(runtime.inbox) == 0
    assert len(inclusions.height) == len(sent)
    commit_at = {b.height: b.commit_ns for b in blocks}
    waits: dict[str, list[int]] = {"low": [], "high": []}
    for order_id, (time, fee) in sent.items():
        if 3 * S <= time < 5 * S and (fee < 60 or fee > 350):
            waited = commit_at[inclusions.height[order_id]] - time
            waits["low" if fee < 60 else "high"].append(waited)
    assert min(waits["low"]) > S
    assert statistics.fmean(waits["high"]) < 400 * MS
    assert statistics.fmean(waits["low"]) > 5 * statistics.fmean(waits["high"])


def test_mempool_parameters() -> None:
    assert MempoolParams().selection().rule == BaseFeeRule(floor=8)  # type: ignore[attr-defined]
    assert MempoolParams(fee_priority=False, base_fee_floor=0).selection().name == "arrival"
    for bad, field in (
        (lambda: MempoolParams(base_fee_floor=4), "MempoolParams.base_fee_floor"),
        (lambda: MempoolParams(fee_priority=False), "MempoolParams.base_fee_floor"),
        (lambda: CongestionWindow(start_ns=0, end_ns=1, capacity=0), "CongestionWindow.capacity"),
        (lambda: DemandSpike(start_ns=0, end_ns=1, multiplier=-1.0), "DemandSpike.multiplier"),
        (lambda: ValidatorSpec(name="v", behaviour="late"), "ValidatorSpec.propose_delay_ns"),
        (lambda: ValidatorSpec(name="a->b"), "ValidatorSpec.name"),
        (lambda: TendermintParams(validators=()), "TendermintParams.validators"),
        (
            lambda: TendermintParams(validators=validator_set(2), timeout_propose_ns=0),
            "timeout_propose_ns",
        ),
        (lambda: SequencerParams(block_interval_ns=0), "SequencerParams.block_interval_ns"),
    ):
        with pytest.raises(ConsensusParamsError, match=field):
            bad()
    table = {
        "validators": [{"name": "a", "power": 2}, {"name": "b", "behaviour": "silent"}],
        "proposer_rotation": "weighted",
        "outages": [{"start_ns": 5, "end_ns": 9}],
    }
    params = msgspec.convert(table, TendermintParams)
    assert params.validators[1].behaviour == "silent"
    assert params.outages[0].end_ns == 9
    table["validators"] = [{"name": "a", "power": 0}]
    with pytest.raises(msgspec.ValidationError, match=r"ValidatorSpec\.power"):
        msgspec.convert(table, TendermintParams)


def test_demand_multiplier_hook() -> None:
    spikes = (
        DemandSpike(start_ns=S, end_ns=3 * S, multiplier=4.0),
        DemandSpike(start_ns=2 * S, end_ns=4 * S, multiplier=0.5),
    )
    consensus = chain(mempool=MempoolParams(demand_spikes=spikes))
    multiplier = consensus.mempool.demand_multiplier
    assert [multiplier(t * S) for t in range(5)] == [1.0, 4.0, 2.0, 0.5, 1.0]


# -- the single sequencer --------------------------------------------------------------------


def sequencer(seed: int = 1, outages: tuple[Window, ...] = ()) -> Sequencer:
    mempool = MempoolParams()
    kernel = Kernel(seed)
    params = SequencerParams(block_interval_ns=250 * MS, outages=outages)
    network = NetworkParams(agent_validator=constant(10 * MS))
    producer = build_sequencer(kernel, make_runtime(mempool), network, params, mempool)
    producer.start()
    return producer


def test_sequencer_cuts_at_its_interval_and_stops_in_an_outage() -> None:
    producer = sequencer(outages=(Window(start_ns=S, end_ns=2 * S),))
    producer.mempool.submit("alice", Cancel(account="alice", order_id=1, priority_fee=50))
    producer.mempool.submit("bob", Cancel(account="bob", order_id=2, priority_fee=50))
    producer.kernel.run(until_ns=3 * S)
    blocks = producer.blocks
    assert [b.commit_ns // MS for b in blocks] == [250, 500, 750, 2000, 2250, 2500, 2750, 3000]
    assert all(
        b.rounds == 1 and b.propose_ns == b.commit_ns and b.proposer == "sequencer" for b in blocks
    )
    assert [b.transactions for b in blocks[:2]] == [2, 0]
    producer.kernel.run(until_ns=3100 * MS)
    producer.mempool.submit("alice", Cancel(account="alice", order_id=3))
    assert producer.mempool.lost == 0


# -- determinism -----------------------------------------------------------------------------


def traced(seed: int) -> tuple[list[tuple[int, int, int, bytes]], dict[str, int]]:
    consensus = chain(
        validators=with_behaviour(3, behaviour="equivocating"),
        link=lossy(30 * MS, 10 * S, 0.2),
        agents=constant(10 * MS, jitter="exponential", jitter_ns=5 * MS, loss_probability=0.05),
        seed=seed,
    )
    load(consensus, until_ns=15 * S, per_second=50)
    run(consensus, 20 * S)
    return consensus.trace(), consensus.stats()


def test_same_seed_same_trace_different_seed_different() -> None:
    trace, stats = traced(21)
    assert len(trace) > 20
    assert sum(count for _, _, count, _ in trace) > 500
    assert traced(21) == (trace, stats)
    other, _ = traced(22)
    assert other != trace


def test_benchmark_run() -> None:
    consensus = benchmark_run(blocks=20)
    assert len(consensus.blocks) == 20
    assert intervals(consensus.blocks) == [S + 150 * MS] * 19
