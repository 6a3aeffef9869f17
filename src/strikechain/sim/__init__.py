"""strikechain.sim: the virtual edges around the engine.

Randomness lives here, never below: every stream is a ``numpy.random.Generator`` derived from
one master seed and the component's name, and time is the block time the script chooses (no
wall clock). This part ships a scripted session (:mod:`.scripted`): a seeded BTC and ETH venue
with market makers, takers, leveraged traders and signed oracle reporters, as a stream of
blocks; and :mod:`.summary`, which runs a stream through an engine and tallies what happened.
The discrete-event lab (network, consensus, agents reacting to the venue) comes with its issue.
"""

from strikechain.sim.scripted import ScriptedSession, SessionParams
from strikechain.sim.summary import SessionSummary, run_session

__all__ = ["ScriptedSession", "SessionParams", "SessionSummary", "run_session"]
