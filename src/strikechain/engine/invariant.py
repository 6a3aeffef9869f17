"""``invariant(cond, message)``: a check that survives ``python -O``.

A broken invariant (funds not conserved, a crossed book) is a bug, not bad input: it raises
:class:`InvariantViolation`, the driver stops, and replaying the block log reproduces it. Bare
``assert`` would vanish under ``-O``, so engine code uses this instead.
"""

from __future__ import annotations


class InvariantViolation(AssertionError):
    """The engine's state broke one of its own rules."""


def invariant(condition: bool, message: str) -> None:
    """Raise :class:`InvariantViolation` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InvariantViolation(message)
