"""The embedded chain: titanoboa's in-process EVM (py-evm) behind the :class:`Chain` interface.

Needing nothing running is what makes it the default for the demo, the lab and tests. Its
limits, stated where they matter:
- **Gas is understated**: titanoboa keeps storage warm between calls, so repeated writes look
  cheap. Published gas comes from anvil (``strikechain bench settlement``), never from here.
- **No blobs**: data is posted as calldata (``supports_blobs`` is False).
- **A block per transaction**: each transaction mines one block at the current chain time;
  :meth:`BoaChain.advance` moves time and the block number. Nothing reorganizes.

:class:`BoaChain` runs the EVM in the calling process (the lab, whose loop is virtual and may
wait). :class:`ChainProcess` runs any chain in a child process and proxies every call through a
pipe, so a live node's event loop never waits on EVM execution (the node calls it from a worker
thread). The child is spawned, not forked: a fork would copy the parent's threads' locks.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import tempfile
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO, Final

import sha3

from strikechain.settlement.chain import CONTRACTS, Chain, ChainReverted, Log, Receipt, calldata_gas

_ERROR_SELECTOR: Final = bytes.fromhex("08c379a0")  # Error(string)


@functools.cache
def _boa() -> Any:
    """titanoboa, imported on first use (about a second), with its compile cache in the
    system's temporary folder rather than the home folder. The cache is content-addressed
    and written by atomic renames, so processes share it safely (a sweep's workers compile
    the contracts once between them); it cannot simply be disabled, because titanoboa 0.2.8
    builds source maps only on its cache path."""
    import boa

    boa.interpret.set_cache_dir(str(Path(tempfile.gettempdir()) / f"strikechain-boa-{os.getuid()}"))
    return boa


@functools.cache
def _deployer(contract: str) -> Any:
    """The compiled ``contracts/<contract>.vy``, once per process."""
    return _boa().load_partial(str(CONTRACTS / f"{contract}.vy"))


def _read_journal(path: Path) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """The complete records of a chain journal (a trailing partial record is dropped, and cut
    off the file so that appends continue from a whole record)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    entries, position = [], 0
    while position + 4 <= len(data):
        size = int.from_bytes(data[position : position + 4], "big")
        end = position + 4 + size
        if end > len(data):
            break
        entries.append(pickle.loads(data[position + 4 : end]))
        position = end
    if position != len(data):
        with path.open("r+b") as file:
            file.truncate(position)
    return entries


def revert_reason(data: bytes) -> str:
    """The reason string of ``Error(string)`` revert data ("" for anything else)."""
    if data[:4] != _ERROR_SELECTOR or len(data) < 68:
        return ""
    length = int.from_bytes(data[36:68], "big")
    return data[68 : 68 + length].decode("utf-8", "replace")


class BoaChain:
    """A titanoboa EVM: the Chain interface in this process.

    ``timestamp``: the chain's clock at start (seconds); the lab passes its virtual start.

    ``journal``: a file that makes the chain durable. Every call that changes the chain
    (deploy, a transaction that did not revert, a clock move) is appended to it and fsynced
    before the call returns, and a chain opened on an existing journal replays it first: the
    EVM is deterministic, so the same calls rebuild the same state, addresses and events. A
    record cut short by a crash is dropped (its call never returned). Without a journal the
    chain lives in memory only (tests, the lab).
    """

    supports_blobs: Final = False

    def __init__(self, timestamp: int = 1_700_000_000, journal: str | Path | None = None) -> None:
        boa = _boa()
        self._env = boa.Env()
        self._env.evm.patch.block_number = 1
        self._contracts: dict[str, Any] = {}
        self._logs: list[Log] = []
        self._inputs: dict[bytes, bytes] = {}
        self._nonce = 0
        self._journal: BinaryIO | None = None
        entries = _read_journal(Path(journal)) if journal is not None else []
        if entries and entries[0][0] == "init":
            timestamp = entries[0][1][0]
            entries = entries[1:]
        self._env.evm.patch.timestamp = timestamp
        for name, args, kwargs in entries:
            getattr(self, name)(*args, **kwargs)
        if journal is not None:
            path = Path(journal)
            fresh = not path.exists() or path.stat().st_size == 0
            self._journal = path.open("ab")
            if fresh:
                self._record("init", (timestamp,), {})

    def _record(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        journal = self._journal
        if journal is None:
            return
        entry = pickle.dumps((name, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        journal.write(len(entry).to_bytes(4, "big") + entry)
        journal.flush()
        os.fsync(journal.fileno())

    # -- Chain -----------------------------------------------------------------------------

    def deploy(self, contract: str, args: tuple[Any, ...], sender: str) -> str:
        boa = _boa()
        with boa.swap_env(self._env), self._env.prank(sender):
            deployed = _deployer(contract).deploy(*args)
        address = str(deployed.address).lower()
        self._contracts[address] = deployed
        self._mine()
        self._record("deploy", (contract, args, sender), {})
        return address

    def transact(
        self,
        address: str,
        function: str,
        args: tuple[Any, ...],
        sender: str,
        *,
        blobs: tuple[bytes, ...] = (),
    ) -> Receipt:
        if blobs:
            raise ChainReverted("the embedded chain carries no blobs", function)
        boa = _boa()
        contract = self._contracts[address.lower()]
        method = getattr(contract, function)
        calldata = method.prepare_calldata(*args)
        with boa.swap_env(self._env), self._env.prank(sender):
            try:
                method(*args)
            except boa.BoaError as error:
                raise ChainReverted(self._reason(error), function) from None
        computation = contract._computation
        tx_hash = self._tx_hash(sender, calldata)
        number = self._env.evm.patch.block_number
        logs = [
            Log(
                address=_plain(fields.pop("address")),
                event=type(event).__name__,
                args={key: _plain(value) for key, value in fields.items()},
                block_number=number,
                tx_hash=tx_hash,
                log_index=index,
            )
            for index, event in enumerate(contract.get_logs())
            if hasattr(event, "_asdict") and "address" in (fields := event._asdict())
        ]
        self._logs.extend(logs)
        self._inputs[tx_hash] = calldata
        self._record("transact", (address, function, args, sender), {})
        receipt = Receipt(
            tx_hash=tx_hash,
            block_number=number,
            timestamp=self.timestamp(),
            gas_used=21_000 + calldata_gas(calldata) + computation.get_gas_used(),
            calldata_gas=calldata_gas(calldata),
            logs=logs,
        )
        self._mine()
        return receipt

    def call(self, address: str, function: str, args: tuple[Any, ...] = ()) -> Any:
        boa = _boa()
        contract = self._contracts[address.lower()]
        with boa.swap_env(self._env):
            try:
                return _plain(getattr(contract, function)(*args))
            except boa.BoaError as error:
                raise ChainReverted(self._reason(error), function) from None

    def logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[Log]:
        address = address.lower()
        last = self.block_number() if to_block is None else to_block
        return [
            log
            for log in self._logs
            if log.address == address and from_block <= log.block_number <= last
        ]

    def transaction_input(self, tx_hash: bytes) -> bytes:
        return self._inputs[tx_hash]

    def blobs(self, tx_hash: bytes) -> list[bytes]:
        return []

    def block_number(self) -> int:
        """The last mined block (a transaction mines the block it lands in)."""
        return int(self._env.evm.patch.block_number) - 1

    def timestamp(self) -> int:
        return int(self._env.evm.patch.timestamp)

    def advance(self, seconds: int, blocks: int = 1) -> None:
        if seconds < 0 or blocks < 0:
            raise ValueError("the chain only moves forward")
        patch = self._env.evm.patch
        patch.timestamp += seconds
        patch.block_number += blocks
        self._record("advance", (seconds, blocks), {})

    def close(self) -> None:
        self._contracts.clear()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # -- internals -------------------------------------------------------------------------

    def _mine(self) -> None:
        self._env.evm.patch.block_number += 1

    def _tx_hash(self, sender: str, calldata: bytes) -> bytes:
        self._nonce += 1
        digest: bytes = sha3.keccak_256(
            sender.encode() + self._nonce.to_bytes(8, "big") + calldata
        ).digest()
        return digest

    @staticmethod
    def _reason(error: Exception) -> str:
        frame = error.stack_trace.last_frame  # type: ignore[attr-defined]
        vm_error = getattr(frame, "vm_error", None)
        data = vm_error.args[0] if vm_error is not None and vm_error.args else b""
        return revert_reason(data) if isinstance(data, bytes) else str(data)


def _plain(value: Any) -> Any:
    """titanoboa's values as plain Python: addresses as lowercase hex strings, tuples kept."""
    if type(value).__name__ == "Address":
        return str(value).lower()
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# --- the child process ----------------------------------------------------------------------

_METHODS: Final = frozenset(
    {
        "deploy",
        "transact",
        "call",
        "logs",
        "transaction_input",
        "blobs",
        "block_number",
        "timestamp",
        "advance",
    }
)


def _serve(connection: Connection, factory: Callable[[], Chain]) -> None:
    chain = factory()
    connection.send(("ready", chain.supports_blobs))
    while True:
        try:
            message = connection.recv()
        except EOFError:
            break
        if message is None:
            break
        name, args, kwargs = message
        try:
            connection.send(("ok", getattr(chain, name)(*args, **kwargs)))
        except ChainReverted as error:
            connection.send(("reverted", error))
        except Exception as error:  # a bug in the child: carried to the caller, who raises it
            connection.send(("error", f"{type(error).__name__}: {error}"))
    chain.close()
    connection.close()


class ChainUnavailable(RuntimeError):
    """The chain process did not answer in time (or died); it is restarted on the next call."""

    code: Final = "CHAIN_UNAVAILABLE"


class ChainProcess:
    """Any chain (by default a :class:`BoaChain`) in a spawned child process, proxied.

    Calls block the calling thread until the child answers: a node calls it from a worker
    thread. Reverts come back as :class:`ChainReverted`; any other failure in the child is a
    ``RuntimeError`` here (a bug, not an outcome). A call that gets no answer within
    ``timeout_s`` (or finds the child dead) kills the child and raises :class:`ChainUnavailable`;
    the next call starts a new child from the same factory, which with a journaled
    :class:`BoaChain` is the same chain again (a call that timed out may or may not have been
    applied: the journal says which, and the caller re-reads the chain before retrying).
    """

    def __init__(
        self, factory: Callable[[], Chain] = BoaChain, *, timeout_s: float | None = None
    ) -> None:
        self._factory = factory
        self._timeout_s = timeout_s
        self._process: Any = None
        self._connection: Connection | None = None
        self.supports_blobs = False
        self._spawn()

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self._factory), name="strikechain-chain", daemon=True
        )
        self._process.start()
        child.close()
        tag, self.supports_blobs = self._receive("start", startup=True)
        if tag != "ready":
            raise RuntimeError("the chain process did not start")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in _METHODS:
            raise AttributeError(name)
        return functools.partial(self._request, name)

    def _request(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            self._spawn()
        assert self._connection is not None
        try:
            self._connection.send((name, args, kwargs))
        except (BrokenPipeError, OSError):
            self._abandon()
            raise ChainUnavailable(f"the chain process is gone ({name})") from None
        tag, value = self._receive(name)
        if tag == "ok":
            return value
        if tag == "reverted":
            raise value
        raise RuntimeError(f"the chain process failed in {name}: {value}")

    def _receive(self, name: str, *, startup: bool = False) -> tuple[str, Any]:
        connection = self._connection
        assert connection is not None
        timeout = self._timeout_s
        if startup and timeout is not None:
            timeout = max(timeout, 60.0)  # importing titanoboa and replaying a journal
        try:
            if timeout is not None and not connection.poll(timeout):
                self._abandon()
                raise ChainUnavailable(f"the chain did not answer {name} within {timeout} s")
            answer: tuple[str, Any] = connection.recv()
        except (EOFError, OSError):
            self._abandon()
            raise ChainUnavailable(f"the chain process died during {name}") from None
        return answer

    def _abandon(self) -> None:
        """Kill the child; the next call starts a new one."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if process is not None and process.is_alive():
            process.kill()
            process.join()
        if connection is not None:
            connection.close()

    def close(self) -> None:
        process, connection = self._process, self._connection
        if process is None or connection is None:
            return
        if process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                connection.send(None)
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        connection.close()
        self._process = self._connection = None

    def __enter__(self) -> ChainProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
