"""Importing this module registers every API method (:mod:`.public`, :mod:`.private`,
:mod:`.signed`, and strikechain's own in :mod:`.venue`) in
:data:`strikechain.node.api.registry.METHODS`; the transport imports it once."""

from __future__ import annotations

from strikechain.node.api import private, public, signed, venue

__all__ = ["private", "public", "signed", "venue"]
