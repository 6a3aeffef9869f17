"""``strikechain verify`` against the module's anvil node: an honest venue exits 0, a lying batch
exits 1 naming the divergence, ``--watch`` vetoes it; bad input exits 2 with a stable code;
``--log`` checks a block log as ``strikechain replay`` does."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from strikechain.cli.main import cli
from strikechain.engine.txs import Withdraw
from strikechain.runtime import SqliteLog, Sync
from strikechain.settlement.anvil import AnvilNode
from strikechain.settlement.rpc import RpcChain
from tests.engine.venue import USDC
from tests.runtime.helpers import cancel, make_runtime
from tests.settlement.harness import ALICE, BOB, PARAMS, SettledVenue
from tests.settlement.test_watch import commit_a_lie


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_verify_an_honest_venue_then_a_lie_then_watch_it_vetoed(anvil_node: AnvilNode) -> None:
    verifier = anvil_node.accounts[2]
    venue = SettledVenue(RpcChain(anvil_node.url))
    url, contract = anvil_node.url, venue.deployment.settlement
    code, _, err = run("verify", "--rpc", url, "--contract", contract)
    assert code == 2
    assert "GENESIS_UNKNOWN" in err
    code, _, err = run("verify", "--rpc", url, "--contract", venue.deployment.token)
    assert code == 2
    assert "NOT_A_SETTLEMENT_CONTRACT" in err
    code, _, err = run("verify", "--rpc", url, "--contract", "0x" + "12" * 20)
    assert code == 2
    assert "NOT_A_SETTLEMENT_CONTRACT" in err

    venue.settlement.propose_verifier(verifier.address.lower())
    venue.chain.advance(PARAMS.verifier_timelock_s)
    venue.settlement.activate_verifier(verifier.address.lower(), verifier.address.lower())
    venue.fund(ALICE, 2_000 * USDC)
    venue.fund(BOB, 2_000 * USDC)
    venue.block()
    venue.trade(ALICE, BOB, 3)
    venue.settle()
    code, out, _ = run("verify", "--rpc", url, "--contract", contract, "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"]
    assert report["divergence"] is None
    assert (report["contract"], report["tip"], report["batches"]) == (contract, 1, 1)
    assert report["deposits_checked"] == 2
    assert report["fills"] > 0
    assert report["oracle_signatures"] > 0
    assert report["unsigned_orders"] == 2
    assert report["last_root"] == venue.operator.tip.state_root.hex()
    code, out, _ = run("verify", "--rpc", url, "--contract", contract)
    assert code == 0
    assert "every committed batch reproduces" in out

    venue.wait_final()
    venue.block(Withdraw(account=ALICE, underlying="BTC", amount=100 * USDC))
    bad, _ = commit_a_lie(venue)
    code, out, _ = run("verify", "--rpc", url, "--contract", contract, "--json")
    assert code == 1
    found = json.loads(out)["divergence"]
    assert (found["batch"], found["field"], found["final"]) == (2, "state_root", False)
    assert found["committed"] == bad.record.state_root.hex()
    code, out, _ = run("verify", "--rpc", url, "--contract", contract)
    assert code == 1
    assert "batch 2 diverges: state_root" in out
    assert "pending" in out

    key = verifier.private_key
    watch = ("verify", "--rpc", url, "--contract", contract, "--watch", "--interval", "0")
    code, out, _ = run(*watch, "--verifier-key", key, "--polls", "2", "--json")
    assert code == 0, out
    first, second = (json.loads(line) for line in out.splitlines())
    assert (first["vetoed"], first["reverted_to"], first["divergence"]["batch"]) == (2, 1, 2)
    assert second["ok"]
    assert second["tip"] == 1
    assert second["vetoed"] is None
    assert venue.settlement.read("batch_count") == 1
    code, out, _ = run(*watch, "--verifier-key", key, "--polls", "1")
    assert code == 0
    assert "ok: 1 batch verified" in out


def test_bad_input_exits_2_with_a_code(tmp_path: Path) -> None:
    contract = "0x" + "12" * 20
    code, _, err = run("verify", "--rpc", "http://127.0.0.1:9", "--contract", contract)
    assert code == 2
    assert "CHAIN_UNREACHABLE" in err
    code, _, err = run("verify", "--contract", contract)
    assert code == 2
    assert "USAGE" in err
    code, _, err = run("verify", "--rpc", "http://127.0.0.1:9", "--contract", contract, "--watch")
    assert code == 2
    assert "--verifier-key" in err
    code, _, err = run("verify", "--log", str(tmp_path / "missing.sqlite"))
    assert code == 2
    assert "LOG_NOT_FOUND" in err


def test_verify_log_is_replay(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    log = SqliteLog(path, sync=Sync.NORMAL)
    runtime = make_runtime(log=log)
    for height in range(1, 6):
        runtime.submit(cancel(order_id=height), height * 10)
        runtime.cut(height * 10)
    log.close()
    code, out, _ = run("verify", "--log", str(path), "--json")
    assert code == 0
    assert json.loads(out)["blocks"] == 5
    code, replayed, _ = run("replay", str(path), "--json")
    assert {**json.loads(replayed), "seconds": 0} == {**json.loads(out), "seconds": 0}
