"""Genesis lives in :mod:`strikechain.engine.genesis` (settlement's verifier rebuilds the engine
from it too); re-exported here for the runtime's callers."""

from strikechain.engine.genesis import (
    MARGIN_POLICIES,
    Genesis,
    decode_genesis,
    encode_genesis,
)

__all__ = ["MARGIN_POLICIES", "Genesis", "decode_genesis", "encode_genesis"]
