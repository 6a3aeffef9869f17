"""What settlement needs of an EVM chain, whichever it is.

Two implementations: :class:`~strikechain.settlement.embedded.EmbeddedChain` (titanoboa's
in-process EVM, run in a child process so a node's event loop never waits on it; the default,
needing nothing running) and :class:`~strikechain.settlement.rpc.RpcChain` (any Ethereum JSON-RPC
endpoint through web3.py; tested against anvil). The settlement client
(:mod:`~strikechain.settlement.client`) speaks the contract's language on top of either.

The interface is deliberately small and by value: contracts are named by address, functions by
name with plain Python arguments (ints, bytes, ``0x`` address strings, tuples for structs),
and what comes back is a :class:`Receipt` with decoded logs. A revert is a
:class:`ChainReverted` carrying the contract's reason string, so callers and tests match the
same reasons on both chains.

Development-chain controls (:meth:`Chain.advance`, sending as any address) exist on both
implementations because tests, the lab and the demo need them; a production endpoint would
refuse them, and nothing outside tests, the lab and the demo calls them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Protocol

import msgspec

from strikechain.engine.codes import RejectCode, Rejection

CONTRACTS: Final = Path(__file__).resolve().parent / "contracts"
"""Where ``Settlement.vy`` and ``TestUSDC.vy`` live."""


class ChainReverted(Rejection):
    """A transaction or call reverted; ``reason`` is the contract's reason string ("" if none)."""

    def __init__(self, reason: str, function: str = "") -> None:
        self.reason = reason
        self.function = function
        super().__init__(
            RejectCode.CHAIN_REVERTED, f"{function or 'call'} reverted: {reason or 'no reason'}"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the embedded chain's process boundary
        return (ChainReverted, (self.reason, self.function))


class Log(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded event: ``args`` by field name (addresses as ``0x`` lowercase hex, bytes32
    as bytes, integers as int)."""

    address: str
    event: str
    args: dict[str, Any]
    block_number: int
    tx_hash: bytes
    log_index: int


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """A mined transaction. ``gas_used`` is the receipt's (intrinsic and calldata included);
    ``calldata_gas`` is what its input cost (the rest is execution plus the 21,000 base)."""

    tx_hash: bytes
    block_number: int
    timestamp: int
    gas_used: int
    calldata_gas: int
    logs: list[Log]
    blob_versioned_hashes: list[bytes] = []

    @property
    def execution_gas(self) -> int:
        """Gas beyond the 21,000 base and the calldata: what the contract's code cost."""
        return self.gas_used - 21_000 - self.calldata_gas


class Chain(Protocol):
    """An EVM chain with the settlement contracts on it (see the module docstring)."""

    @property
    def supports_blobs(self) -> bool: ...

    def deploy(self, contract: str, args: tuple[Any, ...], sender: str) -> str:
        """Deploy ``contracts/<contract>.vy`` with constructor ``args``; its address."""
        ...

    def transact(
        self,
        address: str,
        function: str,
        args: tuple[Any, ...],
        sender: str,
        *,
        blobs: tuple[bytes, ...] = (),
    ) -> Receipt:
        """Send a transaction and mine it; :class:`ChainReverted` if it reverts (nothing
        changes then). ``blobs``: raw blob payloads (131,072 bytes each) to carry."""
        ...

    def call(self, address: str, function: str, args: tuple[Any, ...] = ()) -> Any:
        """A read-only call at the latest block."""
        ...

    def logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[Log]:
        """Every event ``address`` emitted in the block range, in chain order."""
        ...

    def transaction_input(self, tx_hash: bytes) -> bytes:
        """A mined transaction's calldata (what a verifier reads posted data from)."""
        ...

    def blobs(self, tx_hash: bytes) -> list[bytes]:
        """The blobs a mined transaction carried (empty if none, or the chain keeps none)."""
        ...

    def block_number(self) -> int: ...

    def timestamp(self) -> int:
        """The latest block's timestamp, seconds."""
        ...

    def advance(self, seconds: int, blocks: int = 1) -> None:
        """Development chains: mine ``blocks`` blocks, the last ``seconds`` later."""
        ...

    def close(self) -> None: ...


def calldata_gas(data: bytes) -> int:
    """EIP-2028 calldata cost: 4 gas per zero byte, 16 per non-zero byte."""
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)
