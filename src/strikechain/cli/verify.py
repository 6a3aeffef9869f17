"""``strikechain verify``: check a venue's settlement from the chain alone, once or as a daemon.

Given a JSON-RPC endpoint and the settlement contract's address, rebuild the deployment from
the chain (:func:`strikechain.settlement.client.attach`: parameters from the contract's views,
the genesis from the data posted with batch 1), read every live batch and its posted data back,
and replay them (:func:`strikechain.settlement.verifier.verify_batches`). Prints what was
checked, or the first divergence (batch, field, committed, recomputed) and whether its
challenge window is still open. Exit status: 0 when every batch reproduces, 1 on a divergence,
2 for bad input (no chain at the URL, no settlement contract at the address, no batch yet).

``--watch`` runs :class:`strikechain.settlement.watch.Watcher` with the verifier's key: every
poll's outcome is printed (one line, or one JSON object per line), and a divergent batch still
pending is vetoed. ``--log`` verifies a node's block log instead (``strikechain replay``).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from rich import box
from rich.console import Console
from rich.table import Table

from strikechain.engine.signing import address_of
from strikechain.settlement.client import AttachError, Settlement, attach
from strikechain.settlement.rpc import RpcChain
from strikechain.settlement.verifier import Divergence, VerifyReport, verify_batches
from strikechain.settlement.watch import Watcher, WatchReport

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_KEY: Final = re.compile(r"(0x)?[0-9a-fA-F]{64}")
COUNTS: Final = (
    "blocks",
    "transactions",
    "fills",
    "oracle_signatures",
    "signed_orders",
    "unsigned_orders",
    "deposits_checked",
)


class VerifyInputError(Exception):
    """Input the command cannot verify; ``code`` is stable (printed by ``_fail``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ContractCheck:
    """One verification of a deployment: the verifier's report, the live tip, and for a
    divergence whether its batch is already final (no veto can undo it)."""

    __slots__ = ("contract", "final", "last_block", "report", "tip")

    def __init__(
        self, contract: str, report: VerifyReport, tip: int, last_block: int, final: bool
    ) -> None:
        self.contract = contract
        self.report = report
        self.tip = tip
        self.last_block = last_block
        self.final = final


# -- inputs --------------------------------------------------------------------------------------


def parse_key(text: str) -> bytes:
    if not _KEY.fullmatch(text.strip()):
        raise VerifyInputError("BAD_KEY", "the verifier key is 32 bytes of hex (64 digits)")
    return bytes.fromhex(text.strip().removeprefix("0x"))


def open_chain(url: str, keys: dict[str, bytes] | None = None) -> RpcChain:
    from web3.exceptions import Web3Exception

    try:
        return RpcChain(url, keys=keys)
    except (OSError, ValueError, Web3Exception) as error:
        raise VerifyInputError(
            "CHAIN_UNREACHABLE", f"no JSON-RPC chain at {url}: {error}"
        ) from None


def open_settlement(chain: RpcChain, address: str, from_block: int) -> Settlement:
    """The deployment at ``address``, rebuilt from the chain (:class:`AttachError` for
    ``GENESIS_UNKNOWN`` and ``GENESIS_MISMATCH``: the caller decides what they mean)."""
    from web3.exceptions import Web3Exception

    if not _ADDRESS.fullmatch(address):
        raise VerifyInputError("BAD_ADDRESS", f"{address!r} is not 0x and 40 hex digits")
    if not chain.web3.eth.get_code(chain.web3.to_checksum_address(address)):
        raise VerifyInputError("NOT_A_SETTLEMENT_CONTRACT", f"no contract at {address}")
    try:
        return Settlement(chain, attach(chain, address, from_block=from_block))
    except AttachError as error:
        if error.code == "NOT_A_SETTLEMENT_CONTRACT":
            raise VerifyInputError(error.code, error.message) from None
        raise
    except Web3Exception as error:  # a contract whose views do not decode as ours
        raise VerifyInputError(
            "NOT_A_SETTLEMENT_CONTRACT",
            f"{address} does not answer as a settlement contract: {error}",
        ) from None


# -- once ----------------------------------------------------------------------------------------


def verify_contract(url: str, address: str, from_block: int) -> ContractCheck:
    """Verify every live batch of the settlement contract at ``address`` on ``url``."""
    chain = open_chain(url)
    try:
        settlement = open_settlement(chain, address, from_block)
    except AttachError as error:
        if error.code != "GENESIS_MISMATCH":
            raise VerifyInputError(error.code, error.message) from None
        report = msgspec.convert(
            {"ok": False, "batches": 0, **dict.fromkeys(COUNTS, 0)}, VerifyReport
        ).with_divergence(_genesis_lie(error))
        count = int(chain.call(address, "batch_count"))
        return ContractCheck(address.lower(), report, count, 0, True)
    posted = settlement.posted()
    report = verify_batches(
        posted[0].record,
        posted[1:],
        settlement.deposits(),
        [request for request, _ in settlement.forced_requests()],
    )
    final = False
    if report.divergence is not None:
        bad = report.divergence.batch
        final = bad == 0 or bool(settlement.read("is_final", posted[bad].record.as_tuple()))
    tip = posted[-1].record
    return ContractCheck(settlement.address, report, tip.number, tip.last_block, final)


def check_json(check: ContractCheck) -> str:
    report = check.report
    return json.dumps(
        {
            "ok": report.ok,
            "contract": check.contract,
            "tip": check.tip,
            "last_block": check.last_block,
            "batches": report.batches,
            **{name: getattr(report, name) for name in COUNTS},
            "last_root": report.last_root.hex(),
            "divergence": _divergence_json(report.divergence, check.final),
        }
    )


def render_check(console: Console, url: str, check: ContractCheck) -> None:
    report = check.report
    table = Table(box=box.SIMPLE_HEAD, show_header=False, title=f"verify {check.contract}")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("chain", url)
    table.add_row("live batches", f"{check.tip:,} (engine blocks to {check.last_block:,})")
    table.add_row(
        "replayed",
        f"{_count(report.batches, 'batch', 'batches')}, {_count(report.blocks, 'block')}, "
        f"{_count(report.transactions, 'transaction')}, {_count(report.fills, 'fill')}",
    )
    table.add_row(
        "checked",
        f"{report.oracle_signatures:,} oracle signatures, {report.signed_orders:,} signed "
        f"orders, {report.deposits_checked:,} deposits against the contract's events",
    )
    table.add_row("not checkable", f"{report.unsigned_orders:,} unsigned orders (API-key HMAC)")
    table.add_row("last root", report.last_root.hex())
    found = report.divergence
    if found is None:
        table.add_row("result", "[green]every committed batch reproduces from the posted data[/]")
    else:
        window = "final: no veto can undo it" if check.final else "pending: a verifier can veto it"
        table.add_row("result", f"[red]batch {found.batch:,} diverges: {found.field}[/] ({window})")
        if found.committed or found.recomputed:
            table.add_row("committed", found.committed)
            table.add_row("recomputed", found.recomputed)
        if found.message:
            table.add_row("why", found.message)
    console.print(table)


# -- the daemon ----------------------------------------------------------------------------------


def watch_contract(
    url: str,
    address: str,
    from_block: int,
    key: bytes,
    interval_s: float,
    polls: int | None,
    emit: Callable[[str], None],
    warn: Callable[[str], None],
    *,
    as_json: bool,
) -> WatchReport | None:
    """Watch as the verifier whose private key is ``key`` until interrupted (Ctrl-C) or
    ``polls`` polls are done; each poll's outcome goes to ``emit``, anything else (waiting,
    an unregistered verifier) to ``warn``. The last report."""
    verifier = address_of(key)
    chain = open_chain(url, keys={verifier: key})
    stop = threading.Event()
    try:
        settlement = _wait_for_genesis(chain, address, from_block, interval_s, stop, warn)
    except AttachError as error:  # GENESIS_MISMATCH: batch 1 posted another genesis
        outcome = WatchReport(
            ok=False,
            tip=int(chain.call(address, "batch_count")),
            batches=0,
            last_verified=0,
            divergence=_genesis_lie(error),
            final=True,
        )
        emit(watch_json(outcome) if as_json else watch_line(outcome))
        return outcome
    if settlement is None:
        return None
    if not settlement.read("is_verifier", verifier):
        warn(
            f"warning: VERIFIER_NOT_ACTIVE: {verifier} is not a verifier of {settlement.address}: "
            "its vetoes revert until the governor proposes it and it is activated after the "
            "timelock"
        )
    last: list[WatchReport] = []

    def report(outcome: WatchReport) -> None:
        last[:] = [outcome]
        emit(watch_json(outcome) if as_json else watch_line(outcome))

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the daemon's normal end
        Watcher(settlement, verifier).run(interval_s, stop, on_report=report, polls=polls)
    return last[0] if last else None


def _wait_for_genesis(
    chain: RpcChain,
    address: str,
    from_block: int,
    interval_s: float,
    stop: threading.Event,
    warn: Callable[[str], None],
) -> Settlement | None:
    """Attach once batch 1 (and the genesis with it) is on chain; None if interrupted."""
    waiting = False
    try:
        while True:
            try:
                return open_settlement(chain, address, from_block)
            except AttachError as error:
                if error.code != "GENESIS_UNKNOWN":
                    raise
                if not waiting:
                    warn(f"{_now()}  waiting for batch 1: {error.message}")
                    waiting = True
            stop.wait(interval_s)
    except KeyboardInterrupt:
        return None


def watch_line(outcome: WatchReport) -> str:
    head = f"{_now()}  tip {outcome.tip:,}"
    found = outcome.divergence
    if found is None:
        if not outcome.fresh:
            return f"{head}  ok, nothing new"
        verified = _count(outcome.batches, "batch", "batches")
        return f"{head}  ok: {verified} verified, root {outcome.last_root.hex()}"
    line = f"{head}  DIVERGED at batch {found.batch:,}: {found.field}"
    if found.committed or found.recomputed:
        line += f" (committed {found.committed or '-'}, recomputed {found.recomputed or '-'})"
    if found.message:
        line += f": {found.message}"
    if outcome.vetoed is not None:
        return (
            f"{line}; VETOED batch {outcome.vetoed:,}, chain back at batch {outcome.reverted_to:,}"
        )
    if outcome.final:
        return f"{line}; FINAL: its challenge window passed, it cannot be vetoed"
    return f"{line}; VETO REFUSED: {outcome.veto_error} (tried again next poll)"


def watch_json(outcome: WatchReport) -> str:
    return json.dumps(
        {
            "time": _now(),
            "ok": outcome.ok,
            "fresh": outcome.fresh,
            "tip": outcome.tip,
            "batches": outcome.batches,
            "last_verified": outcome.last_verified,
            "last_root": outcome.last_root.hex(),
            "divergence": _divergence_json(outcome.divergence, outcome.final),
            "vetoed": outcome.vetoed,
            "reverted_to": outcome.reverted_to,
            "veto_error": outcome.veto_error or None,
        }
    )


def _genesis_lie(error: AttachError) -> Divergence:
    """What GENESIS_MISMATCH means: the state batch 1 says it starts from is not the
    deployed one, so nothing after it can be checked (nor vetoed: the record of batch 0 is
    known only by its hash)."""
    return Divergence(batch=0, field="genesis", message=error.message)


def _divergence_json(found: Divergence | None, final: bool) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "batch": found.batch,
        "field": found.field,
        "committed": found.committed,
        "recomputed": found.recomputed,
        "message": found.message,
        "final": final,
    }


def _count(number: int, one: str, many: str = "") -> str:
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
