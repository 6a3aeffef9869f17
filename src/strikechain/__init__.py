"""strikechain: a deterministic decentralized derivatives venue engine and the lab that measures it.

The package is layered (see DESIGN.md in the shared docs); dependencies point downwards:
``cli -> bench -> node | sim -> runtime -> settlement -> engine -> pricing``.
"""

from strikechain import _native

__version__ = "0.1.0"

_native.check()  # before any engine module loads: a stale compiled one raises here
