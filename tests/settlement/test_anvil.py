"""The local anvil chain (install, start, dev-chain controls) and data posted as EIP-4844 blobs.

The tests that run anvil are skipped only when npm is missing (anvil is installed with it);
CI has npm, so they run there. The packing tests need neither.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import eth_account.typed_transactions.base as eth_account_base
import pytest
from eth_account import Account
from eth_typing import HexStr
from hexbytes import HexBytes
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3
from web3.types import RPCEndpoint

from strikechain.settlement import blobs
from strikechain.settlement.anvil import (
    ANVIL_VERSION,
    AnvilNode,
    AnvilRpcError,
    AnvilUnavailable,
    ensure_anvil,
    installed_version,
)
from strikechain.settlement.blobs import (
    BYTES_PER_BLOB,
    MAX_BLOBS_PER_TRANSACTION,
    MAX_DATA_BYTES,
    USABLE_BYTES_PER_BLOB,
    BlobDecodeError,
    BlobNotFound,
)

needs_npm = pytest.mark.skipif(
    shutil.which("npm") is None,
    reason="npm is not on PATH: anvil is installed with npm (install Node.js 20+)",
)

# Logs BLOBHASH(0) || BLOBHASH(1) (64 bytes, LOG0), then stops: init code copying the runtime.
BLOBHASH_LOGGER_RUNTIME = "5f495f5260014960205260405fa000"
BLOBHASH_LOGGER_INIT = "600f600a5f39600f5ff3" + BLOBHASH_LOGGER_RUNTIME
POST_ABI = [
    {
        "type": "function", "name": "post", "stateMutability": "nonpayable",
        "inputs": [{"name": "header", "type": "bytes"}], "outputs": [],
    }
]  # fmt: skip
DEAD = "0x000000000000000000000000000000000000dEaD"


@pytest.fixture(scope="module")
def node(anvil_node: AnvilNode) -> AnvilNode:
    """The module's node (conftest.py starts it; skipped only without npm)."""
    return anvil_node


@pytest.fixture(scope="module")
def w3(node: AnvilNode) -> Web3:
    return node.web3()


def _send_value(w3: Web3, private_key: str, value_wei: int = 1) -> tuple[HexBytes, str]:
    """Sign and send a plain transfer; its hash and raw hex."""
    sender = Account.from_key(private_key).address
    tx = {
        "type": 2,
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(sender, "pending"),
        "to": DEAD,
        "value": value_wei,
        "gas": 21_000,
        "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 10**9,
    }
    signed = Account.sign_transaction(tx, private_key)
    return w3.eth.send_raw_transaction(signed.raw_transaction), signed.raw_transaction.to_0x_hex()


def _receipt(w3: Web3, tx_hash: HexBytes) -> object | None:
    return w3.provider.make_request(
        RPCEndpoint("eth_getTransactionReceipt"), [tx_hash.to_0x_hex()]
    ).get("result")


# -- install ---------------------------------------------------------------------------------


def test_ensure_anvil_names_npm_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(AnvilUnavailable, match="npm is not on PATH"):
        ensure_anvil(tmp_path / "anvil")


@needs_npm
def test_ensure_anvil_installs_once_under_concurrent_callers(tmp_path: Path) -> None:
    cache = tmp_path / "anvil"
    found: list[Path] = []
    callers = [threading.Thread(target=lambda: found.append(ensure_anvil(cache))) for _ in "ab"]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(found) == 2
    assert found[0] == found[1]
    assert installed_version(found[0]) == ANVIL_VERSION
    assert ensure_anvil(cache) == found[0]  # warm: only the version check


# -- the node and its controls ---------------------------------------------------------------


def test_chain_id_and_funded_accounts(node: AnvilNode, w3: Web3) -> None:
    assert node.url.startswith("http://127.0.0.1:")
    assert w3.eth.chain_id == 31337
    assert node.rpc("anvil_nodeInfo")["hardFork"] == "Osaka"
    assert len(node.accounts) == 10
    for account in node.accounts:
        assert Account.from_key(account.private_key).address == account.address
        assert w3.eth.get_balance(account.address) > 10**18


def test_time_and_mining_controls(node: AnvilNode, w3: Web3) -> None:
    start = node.block_number()
    node.mine(3)
    assert node.block_number() == start + 3
    before = w3.eth.get_block("latest")["timestamp"]
    node.increase_time(3600)
    node.mine()
    assert w3.eth.get_block("latest")["timestamp"] - before >= 3600


@needs_npm
def test_manual_mining_and_a_chosen_chain_id() -> None:
    with AnvilNode(chain_id=1337, automine=False) as manual:
        w3 = manual.web3()
        assert w3.eth.chain_id == 1337
        tx_hash, _ = _send_value(w3, manual.accounts[0].private_key)
        assert _receipt(w3, tx_hash) is None
        manual.mine()
        assert w3.eth.get_transaction_receipt(tx_hash)["blockNumber"] == 1
        manual.set_automine(True)
        tx_hash, _ = _send_value(w3, manual.accounts[0].private_key)
        assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["blockNumber"] == 2
    with pytest.raises(RuntimeError, match="not running"):
        _ = manual.url


def test_revert_to_snapshot_drops_a_mined_transaction(node: AnvilNode, w3: Web3) -> None:
    account = node.accounts[2]
    nonce, height = w3.eth.get_transaction_count(account.address), node.block_number()
    snapshot = node.snapshot()
    tx_hash, _ = _send_value(w3, account.private_key)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["status"] == 1
    node.revert(snapshot)
    assert _receipt(w3, tx_hash) is None
    assert node.block_number() == height
    assert w3.eth.get_transaction_count(account.address) == nonce
    with pytest.raises(AnvilRpcError, match="no snapshot"):
        node.revert(snapshot)  # used up


def test_reorg_replaces_blocks_at_the_same_height(node: AnvilNode, w3: Web3) -> None:
    account = node.accounts[3]
    tx_hash, raw = _send_value(w3, account.private_key)
    mined = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    node.mine(2)
    head = node.block_number()
    depth = head - mined["blockNumber"] + 1
    node.reorg(depth)
    assert node.block_number() == head
    assert w3.eth.get_block(mined["blockNumber"])["hash"] != mined["blockHash"]
    assert _receipt(w3, tx_hash) is None
    node.reorg(depth, [(raw, 1)])  # the same transaction, one block later
    moved = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert moved["blockNumber"] == mined["blockNumber"] + 1
    assert node.block_number() == head


# -- packing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [
        0, 1, 31, 32, USABLE_BYTES_PER_BLOB - 4, USABLE_BYTES_PER_BLOB - 3, 300_000,
        MAX_DATA_BYTES,
    ],
)  # fmt: skip
def test_pack_round_trip(size: int) -> None:
    data = bytes((i * 7 + size) % 256 for i in range(size))
    packed = blobs.pack(data)
    assert len(packed) == blobs.blob_count(size) == -(-(size + 4) // USABLE_BYTES_PER_BLOB)
    for blob in packed:
        assert len(blob) == BYTES_PER_BLOB
        assert not any(blob[::32])  # every field element below the BLS modulus
    assert blobs.unpack(packed) == data


@given(st.binary(max_size=3000))
def test_pack_round_trip_small(data: bytes) -> None:
    packed = blobs.pack(data)
    assert len(packed) == 1
    assert blobs.unpack(packed) == data


def test_pack_refuses_more_than_a_transaction_holds() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        blobs.pack(bytes(MAX_DATA_BYTES + 1))


def test_unpack_refuses_non_canonical_blobs() -> None:
    (blob,) = blobs.pack(b"abc")
    cases = {
        "nonzero first byte": b"\x01" + blob[1:],
        "nonzero bytes after": blob[:100] + b"\x01" + blob[101:],
        "does not match": blob[:1] + (10**6).to_bytes(4, "big") + blob[5:],
    }
    for message, bad in cases.items():
        with pytest.raises(BlobDecodeError, match=message):
            blobs.unpack([bad])
    with pytest.raises(BlobDecodeError, match="does not match 2 blobs"):
        blobs.unpack([blob, bytes(BYTES_PER_BLOB)])
    with pytest.raises(BlobDecodeError, match="bytes, not"):
        blobs.unpack([blob[:-1]])
    with pytest.raises(BlobDecodeError, match="expected 1 to"):
        blobs.unpack([blob] * (MAX_BLOBS_PER_TRANSACTION + 1))


def test_versioned_hash_of_the_zero_blob() -> None:
    commitment = blobs.kzg_commitment(bytes(BYTES_PER_BLOB))
    assert commitment == b"\xc0" + bytes(47)  # the point at infinity
    assert blobs.versioned_hash(commitment).hex() == (
        "010657f37554c781402a22917dee2f75def7ab966d7b770905398eba3c444014"
    )


def test_network_form_matches_eth_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our sidecar is byte for byte eth-account's (given the setup it would reload each time)."""
    setup = blobs.kzg_setup()
    monkeypatch.setattr(eth_account_base, "load_trusted_setup", lambda path, precompute: setup)
    packed = blobs.pack(b"strikechain" * 1000)
    key = "0x" + "11" * 32
    tx = {
        "type": 3, "chainId": 31337, "nonce": 0, "to": DEAD, "value": 0, "gas": 30_000,
        "data": b"\x01", "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
        "maxFeePerBlobGas": 10**10, "blobVersionedHashes": blobs.versioned_hashes(packed),
    }  # fmt: skip
    theirs = Account.sign_transaction(tx, key, blobs=packed).raw_transaction
    body = Account.sign_transaction(tx, key).raw_transaction
    assert blobs.network_transaction(bytes(body), packed, cell_proofs=True) == bytes(theirs)


# -- blobs on the chain ----------------------------------------------------------------------


def test_blob_transaction_to_a_contract_reads_back(node: AnvilNode, w3: Web3) -> None:
    deployer = node.accounts[4]
    deployed = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": deployer.address, "data": HexStr(BLOBHASH_LOGGER_INIT)}),
        timeout=10,
    )
    contract = deployed["contractAddress"]
    assert contract is not None
    assert w3.eth.get_code(contract).hex() == BLOBHASH_LOGGER_RUNTIME
    data = bytes(range(256)) * 700  # 179,200 bytes: two blobs
    packed = blobs.pack(data)
    ours = blobs.versioned_hashes(packed)
    assert len(packed) == 2

    logger = w3.eth.contract(address=contract, abi=POST_ABI)  # it ignores its calldata
    receipt = blobs.send_blob_call(
        w3, logger.functions.post(b"batch 1"), node.accounts[5].private_key, packed
    )
    assert receipt["status"] == 1
    assert receipt["blobGasUsed"] == 2 * blobs.GAS_PER_BLOB  # type: ignore[typeddict-item]
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 3
    assert bytes(tx["input"]) == bytes(HexBytes(logger.encode_abi("post", [b"batch 1"])))
    assert [bytes(h) for h in tx["blobVersionedHashes"]] == ours
    (log,) = receipt["logs"]
    assert bytes(log["data"]) == ours[0] + ours[1]  # what BLOBHASH saw in the EVM

    read = blobs.read_blobs(w3, receipt["transactionHash"])
    assert read == packed
    assert blobs.unpack(read) == data
    assert blobs.read_blob(w3, ours[1]) == packed[1]


def test_blob_transaction_in_the_eip4844_network_form(node: AnvilNode, w3: Web3) -> None:
    packed = blobs.pack(b"cancun-style sidecar")
    receipt = blobs.send_blob_transaction(
        w3, node.accounts[6].private_key, DEAD, packed, cell_proofs=False
    )
    assert receipt["status"] == 1
    assert blobs.unpack(blobs.read_blobs(w3, receipt["transactionHash"])) == (
        b"cancun-style sidecar"
    )


def test_reading_blobs_that_do_not_exist(node: AnvilNode, w3: Web3) -> None:
    tx_hash, _ = _send_value(w3, node.accounts[7].private_key)
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert blobs.read_blobs(w3, tx_hash) == []
    with pytest.raises(BlobNotFound):
        blobs.read_blob(w3, b"\x01" + bytes(31))
