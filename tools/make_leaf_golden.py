"""Write tests/golden/leaf_vectors.json: encoded state leaves, a small state tree and its proofs.

The vectors pin the state commitment's leaf encoding (Solidity ABI, see
:mod:`strikechain.engine.commitment`) and state root for the settlement contract's tests to
share: each leaf lists its fields, its bytes, its leaf hash and its proof; the tree lists its
root, the ``rest_hash`` used and the resulting state root. They change only when the encoding
changes on purpose; then rerun

    .venv/bin/python tools/make_leaf_golden.py

and review the diff. tests/engine/test_commitment.py checks the committed file equals this
script's output and re-derives the bytes with eth_abi.
"""

from __future__ import annotations

import json
from pathlib import Path

from strikechain.engine.commitment import (
    SYSTEM_INDEX,
    LedgerTree,
    account_address,
    encode_leaf,
    system_leaf,
)
from strikechain.engine.merkle import DEPTH, leaf_hash
from strikechain.engine.signing import address_of, keccak256

PATH = Path(__file__).resolve().parent.parent / "tests" / "golden" / "leaf_vectors.json"
REST_HASH = keccak256(b"strikechain.golden.rest")
SYSTEM = {"fee_pool": 1_234_567, "insurance_fund": 50_000_000, "backstop": 0, "dust": 3}
PERP = "BTC_USDC-PERPETUAL"
CALL = "BTC_USDC-27DEC26-100000-C"
LedgerFields = tuple[str, str, int, int, tuple[tuple[str, int, int], ...]]
"""``encode_leaf``'s arguments: account, underlying, collateral, exit value, positions."""
LEDGERS: tuple[LedgerFields, ...] = (
    ("alice", "BTC", 10_000_000_000, 10_000_000_000, ()),
    (
        address_of(keccak256(b"golden-0")),
        "BTC",
        9_595_000_000,
        9_980_000_000,
        ((CALL, -10, -5_000_000), (PERP, 4, 400_000_000)),
    ),
    ("bob", "BTC", -250_000_000, 0, ((PERP, 10, 1_000_000_000),)),
    (
        "0x" + "AbCdEf0123" * 4,
        "ETH",
        -(2**255),
        2**256 - 1,
        (("ETH_USDC-PERPETUAL", 2**255 - 1, -(2**255)),),
    ),
)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _ledger_document(fields: LedgerFields) -> dict[str, object]:
    account, underlying, collateral, exit_value, positions = fields
    return {
        "account": account,
        "address": account_address(account),
        "underlying": underlying,
        "collateral": collateral,
        "exit_value": exit_value,
        "positions": [list(position) for position in positions],
    }


def vectors() -> dict[str, object]:
    """The document: the system leaf at 0, the sub-ledgers from 1, the tree and proofs."""
    leaves = [system_leaf(**SYSTEM), *(encode_leaf(*fields) for fields in LEDGERS)]
    tree = LedgerTree()
    tree.update(enumerate(leaves))
    documents = [SYSTEM, *(_ledger_document(fields) for fields in LEDGERS)]
    entries = [
        {
            "index": index,
            "kind": "system" if index == SYSTEM_INDEX else "ledger",
            "fields": document,
            "leaf_data": _hex(data),
            "leaf_hash": _hex(leaf_hash(data)),
            "proof": [_hex(h) for h in tree.proof(index)],
        }
        for index, (document, data) in enumerate(zip(documents, leaves, strict=True))
    ]
    return {
        "description": (
            "State commitment leaves. Sub-ledger leaf data = abi.encode((address account, "
            "bytes32 underlying, int256 collateral, uint256 exit_value, (bytes32 instrument, "
            "int256 size_lots, int256 cost_basis)[] positions)); system leaf (index 0) = "
            "abi.encode((bytes32 tag, int256 fee_pool, int256 insurance_fund, int256 backstop, "
            "int256 dust)), tag 'strikechain.system'. Names are UTF-8 right-padded to bytes32; "
            "an account that is not an address commits keccak256(utf-8 name)[12:] ('address'). "
            "leaf_hash = keccak(0x00 || data) in the depth-32 tree of merkle_vectors.json; "
            "state_root = keccak(0x02 || tree_root || rest_hash)."
        ),
        "depth": DEPTH,
        "rest_hash": _hex(REST_HASH),
        "tree_root": _hex(tree.tree_root()),
        "state_root": _hex(tree.state_root(REST_HASH)),
        "leaves": entries,
    }


def main() -> None:
    PATH.write_text(json.dumps(vectors(), indent=1) + "\n")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
