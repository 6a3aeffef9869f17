"""Reporters' signing keys: one per scripted reporter, with its address and signing domain.

Signing is the engine's own (:func:`strikechain.engine.oracle.sign_report`, which keeps recently
used keys loaded), so a scripted report is byte-for-byte what a real reporter would send.
"""

from __future__ import annotations

from strikechain.engine.oracle import OracleReport, sign_report
from strikechain.engine.signing import DEFAULT_DOMAIN, SigningDomain, address_of


class ReportSigner:
    """One reporter's key and address."""

    __slots__ = ("_private", "address", "domain")

    def __init__(self, private_key: bytes, domain: SigningDomain = DEFAULT_DOMAIN) -> None:
        self._private = private_key
        self.address = address_of(private_key)
        self.domain = domain

    def sign(self, report: OracleReport) -> OracleReport:
        """A copy of ``report`` carrying this reporter's signature."""
        return sign_report(report, self._private, self.domain)
