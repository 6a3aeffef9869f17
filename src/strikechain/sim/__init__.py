"""strikechain.sim: the virtual edges around the engine, and the lab.

Randomness lives here, never below: every stream is a ``numpy.random.Generator`` derived from
one master seed and the component's name, and time is virtual (no wall clock).

- The lab's world (:mod:`.lab` composes it): the discrete-event :mod:`.kernel`; the
  :mod:`.network` model (latency per agent and validator, jitter, loss); block production by a
  Tendermint validator set or a single sequencer with a fee-priority mempool
  (:mod:`.consensus`), driving the same runtime the node drives; agents' gateways and the
  market-data feed over the network (:mod:`.gateway`); reference price processes
  (:mod:`.processes`) and an external hedging venue (:mod:`.hedge_venue`).
- Scripted sessions (:mod:`.scripted`, :mod:`.summary`): a seeded BTC and ETH venue with market
  makers, takers, leveraged traders and signed oracle reporters, as a stream of blocks; and the
  scripted crash (:mod:`.crash`) that compares liquidation designs.
"""

from strikechain.sim.lab import Lab, LabParams, build_lab
from strikechain.sim.scripted import ScriptedSession, SessionParams
from strikechain.sim.summary import SessionSummary, run_session

__all__ = [
    "Lab",
    "LabParams",
    "ScriptedSession",
    "SessionParams",
    "SessionSummary",
    "build_lab",
    "run_session",
]
