"""The verifier as a daemon: watch one settlement contract, veto a batch nobody can reproduce.

Each :meth:`Watcher.poll` reads the live batches back from the chain (events, transaction
inputs, blobs: nothing the operator says), replays them from the genesis with
:func:`~strikechain.settlement.verifier.verify_batches`, and on the first divergence:

- in a batch still pending (the contract's ``is_final`` view says no), it vetoes:
  ``veto(bad, last_final, first_pending)`` discards every batch after the newest final one,
  and the operator re-commits from there (honest batches after that one included);
- in a batch already final, it reports it and raises nothing: the window passed and nothing
  can undo the batch. That is the failure the daemon exists to prevent (poll well inside the
  challenge window);
- at batch 0 (the genesis posted with batch 1 is not the deployed one), it reports it.

A veto needs the watcher's address registered as a verifier (the governor proposes it, anyone
activates it after the timelock): a veto that reverts (``not verifier``; ``pending final`` when
the window closed between the check and the transaction) is reported with the contract's
reason, and the next poll verifies and tries again.

Limits: a poll that finds a new tip replays every batch from the genesis (time grows with the
venue's history); a poll whose tip is unchanged (same batch count, same record hash) costs two
calls and re-verifies nothing. A failing RPC endpoint raises: the daemon stops rather than
pretend to watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import msgspec

from strikechain.engine.invariant import invariant
from strikechain.settlement.chain import ChainReverted
from strikechain.settlement.client import Settlement
from strikechain.settlement.records import ZERO_WORD, BatchRecord
from strikechain.settlement.verifier import Divergence, verify_batches


class WatchReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one poll found and did."""

    ok: bool
    """No live batch diverges from what its posted data reproduces."""
    tip: int
    """The newest live batch's number (0: the genesis only)."""
    batches: int
    """Batches verified by this poll (0 when it re-verified nothing: see ``fresh``)."""
    last_verified: int
    """The newest batch known to verify (the one before ``divergence.batch`` after one)."""
    last_root: bytes = ZERO_WORD
    """The state root of batch ``last_verified``."""
    fresh: bool = True
    """False when nothing was committed since the last poll: its outcome is repeated."""
    divergence: Divergence | None = None
    vetoed: int | None = None
    """The batch this poll vetoed: it and every batch after ``reverted_to`` are gone."""
    reverted_to: int | None = None
    """The newest final batch, where the chain continues after the veto."""
    final: bool = False
    """The divergent batch is final (the genesis is from the start): nothing can veto it."""
    veto_error: str = ""
    """The contract's reason when the veto reverted (``not verifier``: register the address)."""


class Watcher:
    """Polls one deployment as verifier ``verifier`` (see the module docstring)."""

    def __init__(self, settlement: Settlement, verifier: str) -> None:
        self.settlement = settlement
        self.verifier = verifier.lower()
        self._seen: tuple[int, bytes] | None = None
        """The tip (number, record hash) ``_last`` was settled for."""
        self._last: WatchReport | None = None

    def poll(self) -> WatchReport:
        """Verify the live batches (unless the tip is the one already verified); veto the
        first divergent one if it is still pending."""
        settlement = self.settlement
        count = int(settlement.read("batch_count"))
        if self._last is not None and self._seen == (
            count,
            bytes(settlement.read("batch_hashes", count)),
        ):
            return msgspec.structs.replace(self._last, fresh=False, batches=0)
        posted = settlement.posted()
        live = [entry.record for entry in posted]
        invariant(
            [record.number for record in live] == list(range(len(live))),
            "the live batches are not numbered 0, 1, 2, ...",
        )
        report = verify_batches(
            live[0],
            posted[1:],
            settlement.deposits(),
            [request for request, _ in settlement.forced_requests()],
        )
        outcome = WatchReport(
            ok=report.ok,
            tip=live[-1].number,
            batches=report.batches,
            last_verified=report.batches,
            last_root=report.last_root,
            divergence=report.divergence,
        )
        if report.divergence is not None:
            outcome = self._act(live, outcome, report.divergence.batch)
        settled = outcome.vetoed is None and not outcome.veto_error
        self._seen = (live[-1].number, live[-1].hash()) if settled else None
        self._last = outcome if settled else None
        return outcome

    def run(
        self,
        interval_s: float,
        stop: threading.Event | None = None,
        *,
        on_report: Callable[[WatchReport], None] | None = None,
        polls: int | None = None,
    ) -> WatchReport | None:
        """Poll every ``interval_s`` seconds until ``stop`` is set (or ``polls`` polls are
        done); each report goes to ``on_report``. The last report (None if none ran)."""
        stop = stop if stop is not None else threading.Event()
        last: WatchReport | None = None
        done = 0
        while not stop.is_set() and (polls is None or done < polls):
            last = self.poll()
            done += 1
            if on_report is not None:
                on_report(last)
            if polls is None or done < polls:
                stop.wait(interval_s)
        return last

    def _act(self, live: list[BatchRecord], outcome: WatchReport, bad: int) -> WatchReport:
        """Veto batch ``bad`` if it is still pending; report why not otherwise."""
        if bad == 0 or self._is_final(live[bad]):
            return msgspec.structs.replace(outcome, final=True)
        last_final = next(
            (record for record in reversed(live[1:bad]) if self._is_final(record)), live[0]
        )
        first_pending = live[last_final.number + 1]
        try:
            self.settlement.veto(self.verifier, bad, last_final, first_pending)
        except ChainReverted as error:
            return msgspec.structs.replace(outcome, veto_error=error.reason or error.message)
        return msgspec.structs.replace(outcome, vetoed=bad, reverted_to=last_final.number)

    def _is_final(self, record: BatchRecord) -> bool:
        return bool(self.settlement.read("is_final", record.as_tuple()))
