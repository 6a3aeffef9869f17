"""Any Ethereum JSON-RPC endpoint as a :class:`~strikechain.settlement.chain.Chain`, via web3.py.

Tested against anvil (:mod:`~strikechain.settlement.anvil`); published gas comes from here,
because a real node charges cold storage and fresh slots as mainnet does.

Senders: a sender with a private key in ``keys`` signs locally (``eth_sendRawTransaction``);
any other sender is impersonated, which only development nodes allow (anvil's
``anvil_impersonateAccount``, funded with ``anvil_setBalance`` when empty). Transactions are
estimated first, so a revert surfaces as :class:`ChainReverted` with the contract's reason and
nothing is mined. Blobs (EIP-4844) need a local key for the sender: a blob transaction must be
signed with its sidecar.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from hexbytes import HexBytes
from web3.types import RPCEndpoint

from strikechain.settlement.chain import CONTRACTS, ChainReverted, Log, Receipt, calldata_gas
from strikechain.settlement.embedded import revert_reason

_RECEIPT_TIMEOUT_S: Final = 30


@functools.cache
def compiled(contract: str) -> tuple[list[dict[str, Any]], bytes]:
    """``(abi, deploy bytecode)`` of ``contracts/<contract>.vy``, compiled once per process."""
    import vyper

    source = (CONTRACTS / f"{contract}.vy").read_text()
    output = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    return output["abi"], bytes.fromhex(output["bytecode"].removeprefix("0x"))


class RpcChain:
    """A JSON-RPC chain (see the module docstring)."""

    def __init__(self, url: str, *, keys: dict[str, bytes] | None = None) -> None:
        from web3 import Web3

        self.url = url
        self._w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        self._keys = {address.lower(): key for address, key in (keys or {}).items()}
        self._contracts: dict[str, Any] = {}
        self._impersonated: set[str] = set()
        latest = self._w3.eth.get_block("latest")
        self.supports_blobs = "excessBlobGas" in latest

    @property
    def web3(self) -> Any:
        return self._w3

    # -- Chain -----------------------------------------------------------------------------

    def deploy(self, contract: str, args: tuple[Any, ...], sender: str) -> str:
        abi, bytecode = compiled(contract)
        factory = self._w3.eth.contract(abi=abi, bytecode=bytecode)
        receipt = self._send(factory.constructor(*_to_web3(args)), sender, contract)
        address = str(receipt["contractAddress"]).lower()
        self._contracts[address] = self._w3.eth.contract(
            address=self._w3.to_checksum_address(address), abi=abi
        )
        return address

    def attach(self, contract: str, address: str) -> None:
        """Know an already deployed contract (a verifier joining a running venue)."""
        abi, _ = compiled(contract)
        self._contracts[address.lower()] = self._w3.eth.contract(
            address=self._w3.to_checksum_address(address), abi=abi
        )

    def transact(
        self,
        address: str,
        function: str,
        args: tuple[Any, ...],
        sender: str,
        *,
        blobs: tuple[bytes, ...] = (),
    ) -> Receipt:
        contract = self._contracts[address.lower()]
        call = contract.functions[function](*_to_web3(args))
        if blobs:
            receipt = self._send_blobs(call, sender, blobs, function)
        else:
            receipt = self._send(call, sender, function)
        return self._receipt(receipt)

    def call(self, address: str, function: str, args: tuple[Any, ...] = ()) -> Any:
        from web3.exceptions import ContractLogicError

        contract = self._contracts[address.lower()]
        try:
            return _plain(contract.functions[function](*_to_web3(args)).call())
        except ContractLogicError as error:
            raise ChainReverted(_reason(error), function) from None

    def logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[Log]:
        contract = self._contracts[address.lower()]
        raw = self._w3.eth.get_logs(
            {
                "address": contract.address,
                "fromBlock": from_block,
                "toBlock": "latest" if to_block is None else to_block,
            }
        )
        return [self._decode(contract, entry) for entry in raw]

    def transaction_input(self, tx_hash: bytes) -> bytes:
        return bytes(self._w3.eth.get_transaction(HexBytes(tx_hash))["input"])

    def blobs(self, tx_hash: bytes) -> list[bytes]:
        from strikechain.settlement import blobs

        return blobs.read_blobs(self._w3, tx_hash)

    def block_number(self) -> int:
        return int(self._w3.eth.block_number)

    def timestamp(self) -> int:
        return int(self._w3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int, blocks: int = 1) -> None:
        if seconds < 0 or blocks < 0:
            raise ValueError("the chain only moves forward")
        provider = self._w3.provider
        if seconds:
            provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
        for _ in range(blocks):
            provider.make_request(RPCEndpoint("evm_mine"), [])

    def close(self) -> None:
        self._contracts.clear()

    # -- internals -------------------------------------------------------------------------

    def _send(self, call: Any, sender: str, function: str) -> Any:
        from web3.exceptions import ContractLogicError

        w3 = self._w3
        account = w3.to_checksum_address(sender)
        try:
            params = {"from": account}
            gas = call.estimate_gas(params)
            params["gas"] = gas + gas // 5 + 10_000  # timestamps can move SSTORE costs
            key = self._keys.get(sender.lower())
            if key is None:
                self._impersonate(sender)
                tx_hash = call.transact(params)
            else:
                tx = call.build_transaction(
                    {**params, "nonce": w3.eth.get_transaction_count(account)}
                )
                signed = w3.eth.account.sign_transaction(tx, key)
                tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        except ContractLogicError as error:
            raise ChainReverted(_reason(error), function) from None
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=_RECEIPT_TIMEOUT_S)
        if receipt["status"] != 1:
            raise ChainReverted("reverted when mined", function)
        return receipt

    def _send_blobs(
        self, call: Any, sender: str, payloads: tuple[bytes, ...], function: str
    ) -> Any:
        from web3.exceptions import ContractLogicError

        from strikechain.settlement import blobs

        key = self._keys.get(sender.lower())
        if key is None:
            raise ChainReverted("a blob transaction needs the sender's key", function)
        try:
            return blobs.send_blob_call(self._w3, call, "0x" + key.hex(), list(payloads))
        except ContractLogicError as error:
            raise ChainReverted(_reason(error), function) from None

    def _impersonate(self, sender: str) -> None:
        address = sender.lower()
        if address in self._impersonated:
            return
        w3 = self._w3
        w3.provider.make_request(
            RPCEndpoint("anvil_impersonateAccount"), [w3.to_checksum_address(address)]
        )
        if w3.eth.get_balance(w3.to_checksum_address(address)) < 10**18:
            w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [address, hex(10**21)])
        self._impersonated.add(address)

    def _receipt(self, receipt: Any) -> Receipt:
        w3 = self._w3
        tx = w3.eth.get_transaction(receipt["transactionHash"])
        data = bytes(tx["input"])
        block = w3.eth.get_block(receipt["blockNumber"])
        logs = []
        for entry in receipt["logs"]:
            contract = self._contracts.get(str(entry["address"]).lower())
            if contract is not None:
                logs.append(self._decode(contract, entry))
        return Receipt(
            tx_hash=bytes(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            timestamp=int(block["timestamp"]),
            gas_used=int(receipt["gasUsed"]),
            calldata_gas=calldata_gas(data),
            logs=logs,
            blob_versioned_hashes=[bytes(h) for h in tx.get("blobVersionedHashes", [])],
        )

    @staticmethod
    def _decode(contract: Any, entry: Any) -> Log:
        from web3._utils.events import get_event_data

        topic = bytes(entry["topics"][0])
        for event_abi in contract.abi:
            if event_abi.get("type") != "event":
                continue
            if _event_topic(event_abi) == topic:
                decoded = get_event_data(contract.w3.codec, event_abi, entry)
                return Log(
                    address=str(entry["address"]).lower(),
                    event=event_abi["name"],
                    args={key: _plain(value) for key, value in decoded["args"].items()},
                    block_number=int(entry["blockNumber"]),
                    tx_hash=bytes(entry["transactionHash"]),
                    log_index=int(entry["logIndex"]),
                )
        raise ValueError(f"an event of {contract.address} with unknown topic {topic.hex()}")


def _event_topic(event_abi: dict[str, Any]) -> bytes:
    from eth_utils import event_abi_to_log_topic

    return bytes(event_abi_to_log_topic(event_abi))  # type: ignore[arg-type]


def _reason(error: Exception) -> str:
    data = getattr(error, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        reason = revert_reason(bytes.fromhex(data[2:]))
        if reason:
            return reason
    message = str(getattr(error, "message", "") or error)
    return message.removeprefix("execution reverted: ").removeprefix("execution reverted")


def _to_web3(values: Any) -> Any:
    """Addresses as checksummed strings (web3 refuses lowercase), everything else as is."""
    from web3 import Web3

    if isinstance(values, str) and len(values) == 42 and values.startswith("0x"):
        return Web3.to_checksum_address(values)
    if isinstance(values, tuple):
        return tuple(_to_web3(value) for value in values)
    if isinstance(values, list):
        return [_to_web3(value) for value in values]
    return values


def _plain(value: Any) -> Any:
    """web3's values as the embedded chain gives them: addresses lowercase, bytes as bytes."""
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return value.lower()
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, (tuple, list)):
        return (
            tuple(_plain(item) for item in value)
            if isinstance(value, tuple)
            else [_plain(item) for item in value]
        )
    return value
