"""strikechain: a deterministic decentralized derivatives venue engine and the lab that measures it.

The package is layered (see DESIGN.md in the shared docs); dependencies point downwards:
``cli -> bench -> node | sim -> runtime -> settlement -> engine -> pricing``.
"""

__version__ = "0.1.0"
