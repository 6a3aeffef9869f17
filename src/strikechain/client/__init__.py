"""A client of a strikechain node's Deribit v2-compatible API (HTTP and WebSocket JSON-RPC).

It talks to a node over the network only: it imports the engine for the EIP-712 order type
(signed orders), never the node. See :class:`Client`; :class:`RemoteGateway` runs the lab's
agents on a node through it.
"""

from strikechain.client.client import Client, ClientError, Subscription, WsRpc
from strikechain.client.gateway import RemoteGateway

__all__ = ["Client", "ClientError", "RemoteGateway", "Subscription", "WsRpc"]
