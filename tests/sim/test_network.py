"""The lab's network model: path latencies from distributions or a region matrix, jitter,
loss and loss windows, the market-data stream's order, and the streams' independence."""

from __future__ import annotations

import itertools
import statistics

import msgspec
import pytest

from strikechain.sim.kernel import Kernel
from strikechain.sim.network import (
    MAX_ONE_WAY_NS,
    ConstantLatency,
    LinkParams,
    LognormalLatency,
    LossWindow,
    Network,
    NetworkCode,
    NetworkParams,
    NetworkParamsError,
    RegionLatency,
    UniformLatency,
)

MS = 1_000_000
VALIDATORS = ("v0", "v1", "v2", "v3")


def network(
    params: NetworkParams, seed: int = 7, validators: tuple[str, ...] = VALIDATORS
) -> Network:
    return Network(Kernel(seed), params, validators)


def link(**kwargs: object) -> NetworkParams:
    return NetworkParams(
        agent_validator=LinkParams(**kwargs),  # type: ignore[arg-type]
        validator_validator=LinkParams(**kwargs),  # type: ignore[arg-type]
    )


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: LinkParams(loss_probability=1.5), "LinkParams.loss_probability"),
        (lambda: LinkParams(jitter="uniform"), "LinkParams.jitter_ns"),
        (lambda: ConstantLatency(one_way_ns=-1), "ConstantLatency.one_way_ns"),
        (lambda: UniformLatency(low_ns=5, high_ns=4), "UniformLatency.high_ns"),
        (lambda: LognormalLatency(median_ns=0, sigma=0.5), "LognormalLatency.median_ns"),
        (lambda: LognormalLatency(median_ns=MS, sigma=float("nan")), "LognormalLatency.sigma"),
        (lambda: LossWindow(start_ns=5, end_ns=5, probability=0.5), "LossWindow"),
        (lambda: NetworkParams(gossip_ns=MAX_ONE_WAY_NS + 1), "NetworkParams.gossip_ns"),
        (
            lambda: RegionLatency(one_way_ns={"eu": {"eu": 1, "us": 2}, "us": {"us": 1}}),
            "RegionLatency.one_way_ns['us']",
        ),
    ],
)
def test_bad_parameters_name_their_field(make: object, field: str) -> None:
    with pytest.raises(NetworkParamsError) as raised:
        make()  # type: ignore[operator]
    assert raised.value.code is NetworkCode.INVALID_PARAMETER
    assert field in str(raised.value)


def test_parameters_load_from_a_toml_like_table() -> None:
    table = {
        "agent_validator": {
            "latency": {"kind": "lognormal", "median_ns": 20 * MS, "sigma": 0.4},
            "jitter": "exponential",
            "jitter_ns": MS,
            "loss_windows": [{"start_ns": 0, "end_ns": 10, "probability": 0.5}],
        },
        "validator_validator": {
            "latency": {"kind": "regions", "one_way_ns": {"eu": {"eu": MS}}},
        },
        "default_region": "eu",
        "gossip_ns": 3 * MS,
    }
    params = msgspec.convert(table, NetworkParams)
    assert params.agent_validator.latency == LognormalLatency(median_ns=20 * MS, sigma=0.4)
    assert params.agent_validator.loss_windows[0].probability == 0.5
    table["agent_validator"]["loss_probability"] = 2.0  # type: ignore[index]
    with pytest.raises(msgspec.ValidationError, match=r"LinkParams\.loss_probability"):
        msgspec.convert(table, NetworkParams)


def test_regions_and_connections_must_exist() -> None:
    table = RegionLatency(
        one_way_ns={"eu": {"eu": MS, "us": 40 * MS}, "us": {"eu": 40 * MS, "us": MS}}
    )
    with pytest.raises(NetworkParamsError) as raised:
        NetworkParams(validator_validator=LinkParams(latency=table), regions={"v0": "asia"})
    assert raised.value.code is NetworkCode.UNKNOWN_REGION
    params = NetworkParams(validator_validator=LinkParams(latency=table), regions={"v0": "eu"})
    with pytest.raises(NetworkParamsError, match="places no region for 'v1'"):
        network(params)
    with pytest.raises(NetworkParamsError) as unknown:
        network(NetworkParams(connections={"alice": "v9"}))
    assert unknown.value.code is NetworkCode.UNKNOWN_VALIDATOR


# -- latency ---------------------------------------------------------------------------------


def test_constant_latency_is_exact_in_both_directions() -> None:
    net = network(link(latency=ConstantLatency(one_way_ns=50 * MS)))
    assert net.consensus_delay_ns("v0", "v1") == 50 * MS
    assert net.transaction_delay_ns("alice", "v2") == 50 * MS
    assert net.market_data_delivery_ns("v2", "alice") == 50 * MS


def test_uniform_paths_are_drawn_once_per_pair_and_symmetric() -> None:
    net = network(link(latency=UniformLatency(low_ns=10 * MS, high_ns=20 * MS)))
    paths = [net.path_ns(f"agent-{i}", v) for i in range(50) for v in VALIDATORS]
    assert all(10 * MS <= p <= 20 * MS for p in paths)
    assert len(set(paths)) > 150
    assert net.path_ns("agent-3", "v1") == net.path_ns("v1", "agent-3")
    assert net.path_ns("v2", "v0") == net.path_ns("v0", "v2")
    assert [net.consensus_delay_ns("v0", "v2") for _ in range(3)] == [net.path_ns("v0", "v2")] * 3


def test_lognormal_paths_have_the_median() -> None:
    net = network(link(latency=LognormalLatency(median_ns=30 * MS, sigma=0.5)))
    paths = [net.path_ns(f"agent-{i}", "v0") for i in range(2_000)]
    median = statistics.median(paths)
    assert 27 * MS < median < 33 * MS  # the sample median of 2,000 is within ~3% here
    assert min(paths) < 15 * MS < 60 * MS < max(paths)


def test_region_matrix_places_agents_and_validators() -> None:
    table = RegionLatency(
        one_way_ns={
            "eu": {"eu": 2 * MS, "us": 40 * MS, "asia": 90 * MS},
            "us": {"eu": 41 * MS, "us": 3 * MS, "asia": 70 * MS},
            "asia": {"eu": 91 * MS, "us": 71 * MS, "asia": 4 * MS},
        }
    )
    params = NetworkParams(
        agent_validator=LinkParams(latency=table),
        validator_validator=LinkParams(latency=table),
        regions={"v0": "eu", "v1": "us", "v2": "asia", "v3": "us", "tokyo-mm": "asia"},
        default_region="eu",
        connections={"pinned": "v2"},
    )
    net = network(params)
    assert net.path_ns("v0", "v1") == 40 * MS
    assert net.path_ns("v1", "v0") == 41 * MS, "a table may differ by direction"
    assert net.path_ns("tokyo-mm", "v2") == 4 * MS
    assert net.path_ns("london", "v2") == 90 * MS, "unplaced agents sit in the default region"
    assert net.entry_validator("tokyo-mm") == "v2"
    assert net.entry_validator("london") == "v0"
    assert net.entry_validator("pinned") == "v2"
    us = NetworkParams(
        agent_validator=LinkParams(latency=table), regions=params.regions, default_region="us"
    )
    assert network(us).entry_validator("nyc") == "v1", "ties go to the first in the list"


# -- jitter and loss -------------------------------------------------------------------------


def test_uniform_jitter_is_within_its_range() -> None:
    net = network(link(latency=ConstantLatency(one_way_ns=10 * MS), jitter="uniform", jitter_ns=MS))
    delays = [net.consensus_delay_ns("v0", "v1") for _ in range(1_000)]
    assert all(d is not None and 10 * MS <= d < 11 * MS for d in delays)
    assert len(set(delays)) > 900


def test_exponential_jitter_has_its_mean() -> None:
    net = network(link(jitter="exponential", jitter_ns=5 * MS))
    delays = [net.consensus_delay_ns("v0", "v1") for _ in range(5_000)]
    values = [d for d in delays if d is not None]
    # the sample mean of 5,000 exponentials is within 4% of the mean with probability ~0.995
    assert 4.8 * MS < statistics.fmean(values) < 5.2 * MS


def test_loss_probability_and_windows() -> None:
    window = LossWindow(start_ns=100 * MS, end_ns=200 * MS, probability=1.0)
    net = network(link(loss_probability=0.2, loss_windows=(window,)))
    kernel = net.kernel
    sample = [net.consensus_delay_ns("v0", "v1") for _ in range(5_000)]
    assert 0.18 < sample.count(None) / len(sample) < 0.22
    kernel.run(until_ns=150 * MS)
    assert all(net.consensus_delay_ns("v1", "v2") is None for _ in range(100))
    assert net.transaction_delay_ns("alice") is None
    kernel.run(until_ns=200 * MS)
    healed = [net.consensus_delay_ns("v1", "v2") for _ in range(1_000)]
    assert 0.15 < healed.count(None) / len(healed) < 0.25


def test_market_data_is_never_lost_and_stays_in_order() -> None:
    params = link(
        latency=ConstantLatency(one_way_ns=5 * MS),
        jitter="exponential",
        jitter_ns=20 * MS,
        loss_probability=0.5,
    )
    net = network(params)
    kernel = net.kernel
    deliveries: list[int] = []
    for step in range(500):
        kernel.run(until_ns=step * 10 * MS)
        deliveries.append(net.market_data_delivery_ns("v0", "alice"))
    assert deliveries == sorted(deliveries)
    assert all(d >= i * 10 * MS + 5 * MS for i, d in enumerate(deliveries))
    held = sum(1 for a, b in itertools.pairwise(deliveries) if a == b)
    assert 0 < held < 400, "some messages wait for the one before them, most do not"


def test_delays_are_clipped() -> None:
    net = network(link(latency=LognormalLatency(median_ns=MAX_ONE_WAY_NS, sigma=5.0)))
    paths = [net.path_ns(f"a{i}", "v0") for i in range(100)]
    assert max(paths) == MAX_ONE_WAY_NS


# -- determinism -----------------------------------------------------------------------------


NOISY = link(
    latency=LognormalLatency(median_ns=20 * MS, sigma=0.6),
    jitter="exponential",
    jitter_ns=2 * MS,
    loss_probability=0.1,
)


def draws(net: Network, agents: list[str]) -> dict[str, list[int | None]]:
    """Ten transactions per agent, interleaved across agents, plus consensus messages."""
    out: dict[str, list[int | None]] = {agent: [] for agent in agents}
    out["consensus"] = []
    for _ in range(10):
        for agent in agents:
            out[agent].append(net.transaction_delay_ns(agent))
        out["consensus"].append(net.consensus_delay_ns("v1", "v3"))
    return out


def test_same_seed_same_delays_different_seed_different() -> None:
    first = draws(network(NOISY, seed=11), ["alice", "bob"])
    assert draws(network(NOISY, seed=11), ["alice", "bob"]) == first
    assert draws(network(NOISY, seed=12), ["alice", "bob"]) != first


def test_adding_an_agent_changes_no_one_elses_draws() -> None:
    alone = draws(network(NOISY), ["alice", "bob"])
    crowded = draws(network(NOISY), ["alice", "carol", "bob", "dave"])
    for name in ("alice", "bob", "consensus"):
        assert crowded[name] == alone[name]


def test_validators_must_be_distinct() -> None:
    with pytest.raises(NetworkParamsError, match="validators"):
        network(NetworkParams(), validators=("v0", "v0"))
