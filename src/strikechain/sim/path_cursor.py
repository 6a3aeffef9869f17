"""Reading one underlying's reference price at one time after another, cheaply.

:class:`PriceCursor` returns exactly :meth:`PricePaths.price <strikechain.sim.processes.
PricePaths.price>` (the same grid prices, the same linear interpolation, the same float
operations in the same order), keeping the list of the chunk it last read so that a read in
that chunk costs two integer divisions and an index (agents and the recorder read the
reference for every order; ``PricePaths.price`` runs interpreted). A read in another chunk, of
a replayed underlying, or before the paths' start goes through ``PricePaths.price`` itself, so
chunks are still made (and their streams drawn) when first read and errors are its errors (but
for the chunk last read, which the cursor keeps answering from after the paths discard it); the
price read never depends on the cursor's history. Compiled by mypyc (``make native``).
"""

from __future__ import annotations

from strikechain.sim.processes import PricePaths


class PriceCursor:
    """``paths.price(underlying, t)`` for one underlying (see the module)."""

    __slots__ = (
        "_chunk",
        "_chunk_steps",
        "_paths",
        "_prices",
        "_row",
        "_start_ns",
        "_step_ns",
        "underlying",
    )

    def __init__(self, paths: PricePaths, underlying: str) -> None:
        self.underlying = underlying
        self._paths = paths
        self._row = paths.generated_row(underlying)
        self._start_ns = paths.start_ns
        self._step_ns = paths.step_ns
        self._chunk_steps = paths.chunk_steps
        self._chunk = -1
        self._prices: list[float] = []

    def price(self, t_ns: int) -> float:
        """USDC per unit at ``t_ns``, as :meth:`PricePaths.price` returns it."""
        offset = t_ns - self._start_ns
        if self._row < 0 or offset < 0:
            return self._paths.price(self.underlying, t_ns)
        step_ns = self._step_ns
        # // and - rather than divmod: compiled, they stay machine integers (offset >= 0)
        step = offset // step_ns
        remainder = offset - step * step_ns
        chunk_steps = self._chunk_steps
        chunk = step // chunk_steps
        local = step - chunk * chunk_steps
        if chunk != self._chunk:
            self._prices = self._paths.chunk_prices(self._row, chunk)
            self._chunk = chunk
        prices = self._prices
        low = prices[local]
        if remainder == 0:
            return low
        return low + (prices[local + 1] - low) * (remainder / step_ns)
