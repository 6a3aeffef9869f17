"""Which options a node lists, and when: the configuration's option sections
(:class:`~strikechain.node.config.InstrumentSection` with ``kind = "option"``) applied to the
clock and the index.

Perpetuals are listed once, when a venue starts; an option section names expiries (fixed dates
or a rolling calendar) and strikes (fixed, or around the index), so its instruments come due
as time passes. The node (:meth:`strikechain.node.service.Node.start`) runs the listing every
:data:`LISTING_INTERVAL_S` as engine ``ListInstrument`` transactions: logged, replayed and
committed like any other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from strikechain.engine.instruments import Instrument
from strikechain.engine.units import QUOTE_SCALE
from strikechain.node.config import NodeConfig

LISTING_INTERVAL_S: Final = 1.0


def due_options(config: NodeConfig, engine: Any, now_ns: int) -> list[Instrument]:
    """The options of ``config``'s option sections that are due at ``now_ns`` and not listed:
    every expiry in range none of whose options (of that underlying) was ever listed, with all
    its strikes (around the index, when the section says so and the index is there)."""
    listed = {
        (instrument.underlying, instrument.expiry_ns)
        for instruments in (engine.instruments, engine.expired_instruments)
        for instrument in instruments.values()
        if instrument.is_option
    }
    due: list[Instrument] = []
    for section in config.option_sections():
        state = engine.underlyings.get(section.underlying)
        oracle = None if state is None else state.oracle
        index = None if oracle is None or not oracle.index else Decimal(oracle.index) / QUOTE_SCALE
        for expiry in section.option_expiries(now_ns):
            if (section.underlying, expiry) not in listed:
                listed.add((section.underlying, expiry))
                due.extend(section.options(expiry, now_ns, index))
    return due
