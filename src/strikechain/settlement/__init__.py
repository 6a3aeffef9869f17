"""Settlement: the venue's money on chain, its state roots committed in batches.

- :mod:`.records`: the batch record the contract hashes, the per-batch withdrawal tree;
- :mod:`.data`: the posted data (every block, compressed) that lets anyone rebuild the state;
- :mod:`.batcher`: the runtime sink that folds blocks into batches;
- :mod:`.chain`, :mod:`.embedded`, :mod:`.rpc`: EVM chains (titanoboa in-process or in a child
  process; any JSON-RPC endpoint through web3.py), and :mod:`.anvil` to run a local one;
- :mod:`.client`: the settlement contract (``contracts/Settlement.vy``) in Python terms;
- :mod:`.verifier`: replays the posted data and checks every commitment and signature;
- :mod:`.watch`: the verifier as a daemon that vetoes a pending batch it cannot reproduce.

Layering: settlement sits on the engine and under the runtime; it never imports the runtime.
"""
