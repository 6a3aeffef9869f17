"""The node's Deribit-compatible JSON-RPC API: methods (:mod:`.registry`, :mod:`.public`,
:mod:`.private`), their errors (:mod:`.errors`), and the HTTP and WebSocket transport."""
