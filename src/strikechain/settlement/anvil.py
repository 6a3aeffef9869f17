"""A local anvil chain for tests and benchmarks: the pinned binary, installed on demand, and a
context manager that runs one node and drives its dev-chain controls.

Why anvil: it starts in about 0.1 s, mines on demand, accepts EIP-4844 blob transactions (and
keeps their blobs readable), and can rewind or reorganize its chain, which a deposit-reorg test
needs. Why pinned (:data:`ANVIL_VERSION`): gas costs, default hardfork, RPC extensions and the
blob network format all move between releases; a test's gas figure is only comparable with the
same binary. The node is also started with an explicit hardfork (:data:`DEFAULT_HARDFORK`)
rather than anvil's moving ``latest``.

Where it lives: :func:`ensure_anvil` runs ``npm install`` of the platform package
``@foundry-rs/anvil-<os>-<arch>`` (the binary itself; the ``@foundry-rs/anvil`` wrapper only
adds a postinstall script that npm 11 skips) into ``<repo>/.cache/anvil`` (ignored by git), or
into ``$STRIKECHAIN_ANVIL_DIR``. A second call checks ``anvil --version`` and returns at once;
concurrent callers (pytest-xdist workers) serialize on an ``fcntl.flock`` in that directory.

Simulating a reorg on anvil 1.7.1 (both checked against that binary):

- ``anvil_reorg(depth, [[raw_tx, block_offset], ...])`` (:meth:`AnvilNode.reorg`) replaces the
  last ``depth`` blocks with new ones at the same heights: the head number stays, the hashes
  change, transactions of the old blocks are dropped (not returned to the pool), and the listed
  transactions (raw signed hex, or requests from unlocked dev accounts) go into the new block
  ``block_offset`` (0 = the first replaced height). ``depth`` may not exceed the chain height.
- ``evm_snapshot`` / ``evm_revert`` (:meth:`AnvilNode.snapshot`, :meth:`AnvilNode.revert`)
  rewind state and the chain to the snapshot: blocks mined since are gone (the head number goes
  back) and so are their transactions. A snapshot id is used up by reverting to it.
  ``anvil_rollback(depth)`` removes the last ``depth`` blocks the same way, without an id.

Limits: Linux and macOS on x86-64 or arm64 (``fcntl``; the npm platform packages). Needs Node.js
with npm for the first install, and the npm registry. The node listens on 127.0.0.1 only; its
accounts are anvil's public dev accounts (mnemonic ``test test ... junk``), never for value. A
process killed without leaving the ``with`` block leaves its anvil running (no parent-death
signal is set).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final, Self

from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

if TYPE_CHECKING:
    from web3 import Web3

ANVIL_VERSION: Final = "1.7.1"
DEFAULT_CHAIN_ID: Final = 31337
DEFAULT_HARDFORK: Final = "osaka"
"""Blob transactions need cancun or later; osaka is mainnet's fork since December 2025 and the
one whose blob network format (cell proofs, EIP-7594) eth-account produces."""
ENVIRONMENT_VARIABLE: Final = "STRIKECHAIN_ANVIL_DIR"
NPM_INSTALL_TIMEOUT_S: Final = 300.0
VERSION_TIMEOUT_S: Final = 10.0
RPC_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
START_ATTEMPTS: Final = 3
"""Ports are probed, then handed to anvil: another process may take one in between; retry."""

_NPM_ARCH: Final = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_NPM_OS: Final = {"linux": "linux", "darwin": "darwin"}
_VERSION_PATTERN: Final = re.compile(r"Version:\s*(\S+)")


class AnvilUnavailable(RuntimeError):
    """anvil could not be installed or started; the message says what to do."""


class AnvilRpcError(RuntimeError):
    """A JSON-RPC call to anvil returned an error (or a control call reported failure)."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class DevAccount:
    """A funded dev account of the running node (anvil prints their keys; they are public)."""

    address: ChecksumAddress
    private_key: str
    """``0x``-prefixed hex."""


# -- installing ------------------------------------------------------------------------------


def platform_package() -> str:
    """The npm package that holds the anvil binary for this machine."""
    os_name = _NPM_OS.get(sys.platform)
    arch = _NPM_ARCH.get(platform.machine().lower())
    if os_name is None or arch is None:
        raise AnvilUnavailable(
            f"no anvil npm package for {sys.platform}/{platform.machine()}: strikechain installs "
            "anvil on Linux or macOS, x86-64 or arm64"
        )
    return f"@foundry-rs/anvil-{os_name}-{arch}"


def default_cache_dir() -> Path:
    """``$STRIKECHAIN_ANVIL_DIR``, else ``<repo>/.cache/anvil`` (for an installed package
    outside a checkout, ``~/.cache/strikechain/anvil``)."""
    override = os.environ.get(ENVIRONMENT_VARIABLE)
    if override:
        return Path(override).expanduser().resolve()
    repo = Path(__file__).resolve().parents[3]
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache" / "anvil"
    return Path.home() / ".cache" / "strikechain" / "anvil"


def binary_path(cache_dir: Path) -> Path:
    """Where :func:`ensure_anvil` puts the binary inside ``cache_dir``."""
    return cache_dir / "node_modules" / platform_package() / "bin" / "anvil"


def installed_version(binary: Path) -> str | None:
    """The version ``binary --version`` reports, or None if it is missing or does not run."""
    if not binary.is_file():
        return None
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_PATTERN.search(result.stdout)
    return match.group(1) if result.returncode == 0 and match else None


def ensure_anvil(cache_dir: Path | None = None) -> Path:
    """The path of the pinned anvil binary, installed with npm first if needed.

    Idempotent, and safe to call from several processes at once (an exclusive ``flock`` on
    ``cache_dir/.lock`` around the check and the install). Raises :class:`AnvilUnavailable`
    when npm is missing or the install fails.
    """
    directory = cache_dir if cache_dir is not None else default_cache_dir()
    binary = binary_path(directory)
    if installed_version(binary) == ANVIL_VERSION:
        return binary
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if installed_version(binary) != ANVIL_VERSION:
            _npm_install(directory)
        found = installed_version(binary)
    if found != ANVIL_VERSION:
        raise AnvilUnavailable(
            f"npm installed {platform_package()}@{ANVIL_VERSION} into {directory}, but "
            f"{binary} reports version {found!r}: delete {directory} and try again"
        )
    return binary


def _npm_install(directory: Path) -> None:
    npm = shutil.which("npm")
    package = f"{platform_package()}@{ANVIL_VERSION}"
    if npm is None:
        raise AnvilUnavailable(
            f"npm is not on PATH, and anvil {ANVIL_VERSION} is not yet installed in {directory}: "
            f"install Node.js 20 or later (it ships npm), or run `npm install --prefix "
            f"{directory} {package}` where npm is available"
        )
    command = [
        npm, "install", "--prefix", str(directory), "--ignore-scripts",
        "--save-exact", "--no-audit", "--no-fund", "--loglevel=error", package,
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=NPM_INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise AnvilUnavailable(
            f"`npm install {package}` took longer than {NPM_INSTALL_TIMEOUT_S:.0f} s: check "
            "access to the npm registry (`npm config get registry`)"
        ) from error
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise AnvilUnavailable(
            f"`npm install {package}` failed (exit {result.returncode}); check access to the "
            f"npm registry (`npm config get registry`), or delete {directory} and retry:\n"
            f"{output}"
        )


# -- running ---------------------------------------------------------------------------------


class AnvilNode:
    """One anvil process on 127.0.0.1 and a free port, for the life of a ``with`` block.

    ``block_time_s`` mines a block every so many seconds instead of one per transaction (anvil
    then does not automine, whatever ``automine`` says); ``automine=False`` mines only when
    asked (:meth:`mine`). Entering waits until ``eth_chainId`` answers; leaving terminates the
    process (then kills it) and reaps it.
    """

    def __init__(
        self,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        hardfork: str = DEFAULT_HARDFORK,
        block_time_s: float | None = None,
        automine: bool = True,
        account_count: int = 10,
        binary: Path | None = None,
        startup_timeout_s: float = 10.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if block_time_s is not None and block_time_s <= 0:
            raise ValueError(f"block_time_s must be positive, not {block_time_s}")
        self.chain_id = chain_id
        self.hardfork = hardfork
        self.block_time_s = block_time_s
        self.automine = automine
        self.account_count = account_count
        self.binary = binary
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._accounts: tuple[DevAccount, ...] = ()

    @property
    def url(self) -> str:
        """The node's JSON-RPC (and beacon API) base URL."""
        if self._url is None:
            raise RuntimeError("the anvil node is not running: use it inside `with`")
        return self._url

    @property
    def accounts(self) -> tuple[DevAccount, ...]:
        """The funded dev accounts, in anvil's order (index 0 is anvil's default sender)."""
        return self._accounts

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start anvil and wait until it answers; :class:`AnvilUnavailable` if it cannot."""
        if self._process is not None:
            raise RuntimeError("this anvil node is already running")
        binary = self.binary if self.binary is not None else ensure_anvil()
        failure = ""
        for _ in range(START_ATTEMPTS):
            failure = self._start_once(binary)
            if not failure:
                return
            if "in use" not in failure.lower():
                break
        raise AnvilUnavailable(f"anvil did not start: {failure}")

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers) and reap it. Idempotent."""
        process, self._process, self._url = self._process, None, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()

    def _command(self, binary: Path, port: int, config_out: Path) -> list[str]:
        command = [
            str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent",
            "--chain-id", str(self.chain_id), "--hardfork", self.hardfork,
            "--accounts", str(self.account_count), "--config-out", str(config_out),
        ]  # fmt: skip
        if self.block_time_s is not None:
            command += ["--block-time", f"{self.block_time_s:g}"]
        elif not self.automine:
            command.append("--no-mining")
        return [*command, *self.extra_args]

    def _start_once(self, binary: Path) -> str:
        """Start on a probed port: '' when the node answers, else why it did not."""
        port = _free_port()
        with tempfile.TemporaryDirectory(prefix="strikechain-anvil-") as scratch:
            config_out = Path(scratch) / "config.json"
            with tempfile.TemporaryFile() as stderr:
                process = subprocess.Popen(
                    self._command(binary, port, config_out),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
                self._process, self._url = process, f"http://127.0.0.1:{port}"
                try:
                    failure = self._wait_until_ready(process, stderr, config_out)
                    if not failure:
                        self._accounts = _read_accounts(config_out)
                except BaseException:
                    self.stop()  # no orphan when interrupted or surprised mid-start
                    raise
                if failure:
                    self.stop()
        return failure

    def _wait_until_ready(
        self, process: subprocess.Popen[bytes], stderr: IO[bytes], config_out: Path
    ) -> str:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                stderr.seek(0)
                output = stderr.read().decode(errors="replace").strip()
                return f"exit {process.returncode}: {output[-2000:] or '(no output)'}"
            with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
                if int(self.rpc("eth_chainId"), 16) == self.chain_id and config_out.is_file():
                    return ""
            time.sleep(0.01)
        return f"no JSON-RPC answer within {self.startup_timeout_s} s"

    # -- JSON-RPC and dev-chain controls -----------------------------------------------------

    def rpc(self, method: str, *params: Any) -> Any:
        """Call ``method`` and return its result; :class:`AnvilRpcError` on an RPC error."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as response:
            reply = json.load(response)
        if "error" in reply:
            error = reply["error"]
            raise AnvilRpcError(method, int(error.get("code", 0)), str(error.get("message")))
        return reply["result"]

    def web3(self) -> Web3:
        """A web3.py client for this node (HTTP)."""
        from web3 import HTTPProvider, Web3

        return Web3(HTTPProvider(self.url, request_kwargs={"timeout": RPC_TIMEOUT_S}))

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks now (with whatever the pool holds), automine or not."""
        if blocks < 1:
            raise ValueError(f"blocks must be at least 1, not {blocks}")
        self.rpc("anvil_mine", hex(blocks))

    def increase_time(self, seconds: int) -> None:
        """Move the clock forward: the next mined block is stamped ``seconds`` later."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, not {seconds}")
        self.rpc("evm_increaseTime", seconds)

    def set_automine(self, enabled: bool) -> None:
        """Mine a block per transaction (True) or only on :meth:`mine` (False)."""
        self.rpc("evm_setAutomine", enabled)

    def snapshot(self) -> str:
        """Record the chain's state; :meth:`revert` returns to it once."""
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        """Rewind to ``snapshot_id``: later blocks and their transactions are gone, the head
        number goes back. :class:`AnvilRpcError` if the id is unknown or already used."""
        if self.rpc("evm_revert", snapshot_id) is not True:
            raise AnvilRpcError("evm_revert", 0, f"no snapshot {snapshot_id} to revert to")

    def reorg(self, depth: int, transactions: Sequence[tuple[str, int]] = ()) -> None:
        """Replace the last ``depth`` blocks with as many new ones (same heights, new hashes).

        Their transactions are dropped; each ``(raw_signed_tx_hex, block_offset)`` in
        ``transactions`` goes into the new block ``block_offset`` (0 = the oldest replaced).
        """
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        for _, offset in transactions:
            if not 0 <= offset < depth:
                raise ValueError(f"block offset {offset} is outside the {depth} new blocks")
        self.rpc("anvil_reorg", depth, [[raw, offset] for raw, offset in transactions])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _read_accounts(config_out: Path) -> tuple[DevAccount, ...]:
    config = json.loads(config_out.read_text())
    addresses, keys = config["available_accounts"], config["private_keys"]
    if len(addresses) != len(keys):
        raise AnvilUnavailable(f"anvil's {config_out.name} lists unequal addresses and keys")
    return tuple(
        DevAccount(address=to_checksum_address(address), private_key=key)
        for address, key in zip(addresses, keys, strict=True)
    )
