"""Black-76 and generalized Black-Scholes-Merton: prices, Greeks and implied volatility.

Two models, one formula. Black-76 prices an option on a forward (or futures) price ``F`` with a
discount factor ``e^(-rT)``. The generalized Black-Scholes-Merton model prices an option on a
spot ``S`` with cost of carry ``b``: ``b = r`` is a non-dividend stock, ``b = r - q`` one paying a
continuous yield ``q`` (or a currency with foreign rate ``q``), ``b = 0`` Black-76 on a futures
price. Both reduce to Black-76 with ``F = S e^(bT)``, and both reduce to the normalized Black
function of :mod:`strikechain.pricing.normalized`, which keeps full relative accuracy in the
wings where the textbook formula cancels.

Every function takes scalars or arrays that broadcast together and loops over nothing in
Python but fixed-size chunks (for cache locality). Scalars in give scalars out.

Units of the Greeks (all per unit of the underlying's currency):

========  =============================================================================
delta     dV/dS (per 1 unit of spot; of the forward for Black-76)
gamma     d2V/dS2 (per unit of spot, squared)
vega      dV/dsigma per 1.00 of volatility (divide by 100 for "per vol point")
theta     dV/dt per year of calendar time, spot fixed, ``= -dV/dT`` (divide by 365 per day)
rho       dV/dr per 1.00 of rate (divide by 100 per point). BSM: the dividend yield
          ``q = r - b`` is held, so the carry moves with the rate (Hull's rho); Black-76: the
          forward is held, so ``rho = -T V``.
vanna     d2V/dS dsigma (per unit spot, per 1.00 vol)
volga     d2V/dsigma2 (per 1.00 vol, squared)
========  =============================================================================

Bad parameters raise :class:`~strikechain.pricing.errors.PricingError` before anything is
computed. Implied volatility reports per element in the array API and raises in the scalar API.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from strikechain.pricing._types import ArrayLike, BoolArray, FloatArray, select
from strikechain.pricing.backend import Backend
from strikechain.pricing.errors import IVStatus, PricingError
from strikechain.pricing.implied import solve_otm
from strikechain.pricing.normalized import (
    log_moneyness,
    otm_parts,
    otm_value,
    otm_value_and_density,
)

CHUNK = 32768
"""Elements per chunk: small enough that every temporary stays in the CPU's cache."""
_EPSILON = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)  # the smallest normal double
ILL_POSED_TOLERANCE = 4.0
"""A time value within this many epsilons of the price is lost in the price's rounding."""

T = TypeVar("T", float, FloatArray)


GREEK_NAMES = ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga")


class Greeks(Generic[T]):
    """Price and sensitivities, in the units of the module docstring.

    Holds the quantities that were requested (all by default); reading one that was not
    requested raises :class:`PricingError` ``GREEK_NOT_COMPUTED`` rather than returning a made-up
    value. Asking for fewer saves the memory traffic of the outputs not needed, which on a
    million options is a noticeable share of the time.
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, T]) -> None:
        self._values: dict[str, T] = values

    def _get(self, name: str) -> T:
        try:
            return self._values[name]
        except KeyError:
            raise PricingError(
                "GREEK_NOT_COMPUTED", f"{name} was not among the requested greeks"
            ) from None

    @property
    def price(self) -> T:
        return self._get("price")

    @property
    def delta(self) -> T:
        return self._get("delta")

    @property
    def gamma(self) -> T:
        return self._get("gamma")

    @property
    def vega(self) -> T:
        return self._get("vega")

    @property
    def theta(self) -> T:
        return self._get("theta")

    @property
    def rho(self) -> T:
        return self._get("rho")

    @property
    def vanna(self) -> T:
        return self._get("vanna")

    @property
    def volga(self) -> T:
        return self._get("volga")

    def as_dict(self) -> dict[str, T]:
        """The computed quantities by name, in the documented order."""
        return dict(self._values)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"Greeks({fields})"


class ImpliedVol(NamedTuple):
    """Array result of implied-volatility inversion: NaN where ``status`` is not OK."""

    vol: FloatArray
    status: NDArray[np.int8]

    @property
    def ok(self) -> BoolArray:
        """Where the volatility was found."""
        ok: BoolArray = self.status == IVStatus.OK
        return ok


class Pricer:
    """The pricing functions bound to one backend (fast or deterministic).

    The package exposes the fast instance's methods as module functions
    (``strikechain.pricing.bsm`` ...), and :mod:`strikechain.pricing.deterministic` the
    deterministic ones, with identical signatures.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- prices ----------------------------------------------------------------------------

    @overload
    def black76(
        self,
        forward: float,
        strike: float,
        expiry: float,
        vol: float,
        rate: float = 0.0,
        *,
        call: bool = True,
    ) -> float: ...
    @overload
    def black76(
        self,
        forward: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        vol: ArrayLike,
        rate: ArrayLike = 0.0,
        *,
        call: ArrayLike = True,
    ) -> FloatArray: ...
    def black76(
        self,
        forward: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        vol: ArrayLike,
        rate: ArrayLike = 0.0,
        *,
        call: ArrayLike = True,
    ) -> Any:
        """Black-76 price of a European option on a forward, discounted at ``rate``."""
        inputs = _Inputs.prepare(
            forward, strike, expiry, rate, None, call, vol, spot=False, given_name="volatility"
        )
        inputs.require_valid("INVALID_VOLATILITY", "volatility")
        return inputs.finish(inputs.run(self._price, self.backend, ("price",))[0])

    @overload
    def bsm(
        self,
        spot: float,
        strike: float,
        expiry: float,
        vol: float,
        rate: float = 0.0,
        carry: float | None = None,
        *,
        call: bool = True,
    ) -> float: ...
    @overload
    def bsm(
        self,
        spot: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        vol: ArrayLike,
        rate: ArrayLike = 0.0,
        carry: ArrayLike | None = None,
        *,
        call: ArrayLike = True,
    ) -> FloatArray: ...
    def bsm(
        self,
        spot: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        vol: ArrayLike,
        rate: ArrayLike = 0.0,
        carry: ArrayLike | None = None,
        *,
        call: ArrayLike = True,
    ) -> Any:
        """Generalized Black-Scholes-Merton price; ``carry`` defaults to ``rate``."""
        inputs = _Inputs.prepare(
            spot, strike, expiry, rate, carry, call, vol, spot=True, given_name="volatility"
        )
        inputs.require_valid("INVALID_VOLATILITY", "volatility")
        return inputs.finish(inputs.run(self._price, self.backend, ("price",))[0])

    # -- Greeks ----------------------------------------------------------------------------

    @overload
    def black76_greeks(
        self,
        forward: float,
        strike: float,
        expiry: float,
        vol: float,
        rate: float = 0.0,
        *,
        call: bool = True,
        greeks: Collection[str] = GREEK_NAMES,
    ) -> Greeks[float]: ...
    @overload
    def black76_greeks(
        self,
        forward: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        vol: ArrayLike,
        rate: ArrayLike = 0.0,
        *,
        call: ArrayLike = True,
        greeks: Collection[str] = GREEK_NAMES,
    ) -> Greeks[FloatArray]: ...
    def black76_greeks(
        self,
        forward: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        vol: ArrayLike,
        rate: ArrayLike = 0.0,
        *,
        call: ArrayLike = True,
        greeks: Collection[str] = GREEK_NAMES,
    ) -> Any:
        """Black-76 price and Greeks; delta and gamma are with respect to the forward.

        ``greeks`` names the quantities to return (any of :data:`GREEK_NAMES`; all by default).
        """
        inputs = _Inputs.prepare(
            forward, strike, expiry, rate, None, call, vol, spot=False, given_name="volatility"
        )
        inputs.require_valid("INVALID_VOLATILITY", "volatility")
        names = _wanted(greeks)
        results = inputs.run(self._greeks, self.backend, names)
        return Greeks(
            {name: inputs.finish(values) for name, values in zip(names, results, strict=True)}
        )

    @overload
    def bsm_greeks(
        self,
        spot: float,
        strike: float,
        expiry: float,
        vol: float,
        rate: float = 0.0,
        carry: float | None = None,
        *,
        call: bool = True,
        greeks: Collection[str] = GREEK_NAMES,
    ) -> Greeks[float]: ...
    @overload
    def bsm_greeks(
        self,
        spot: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        vol: ArrayLike,
        rate: ArrayLike = 0.0,
        carry: ArrayLike | None = None,
        *,
        call: ArrayLike = True,
        greeks: Collection[str] = GREEK_NAMES,
    ) -> Greeks[FloatArray]: ...
    def bsm_greeks(
        self,
        spot: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        vol: ArrayLike,
        rate: ArrayLike = 0.0,
        carry: ArrayLike | None = None,
        *,
        call: ArrayLike = True,
        greeks: Collection[str] = GREEK_NAMES,
    ) -> Any:
        """Generalized Black-Scholes-Merton price and Greeks; ``carry`` defaults to ``rate``.

        ``greeks`` names the quantities to return (any of :data:`GREEK_NAMES`; all by default).
        """
        inputs = _Inputs.prepare(
            spot, strike, expiry, rate, carry, call, vol, spot=True, given_name="volatility"
        )
        inputs.require_valid("INVALID_VOLATILITY", "volatility")
        names = _wanted(greeks)
        results = inputs.run(self._greeks, self.backend, names)
        return Greeks(
            {name: inputs.finish(values) for name, values in zip(names, results, strict=True)}
        )

    # -- implied volatility ----------------------------------------------------------------

    @overload
    def black76_implied_vol(
        self,
        price: float,
        forward: float,
        strike: float,
        expiry: float,
        rate: float = 0.0,
        *,
        call: bool = True,
    ) -> float: ...
    @overload
    def black76_implied_vol(
        self,
        price: ArrayLike,
        forward: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        rate: ArrayLike = 0.0,
        *,
        call: ArrayLike = True,
    ) -> ImpliedVol: ...
    def black76_implied_vol(
        self,
        price: ArrayLike,
        forward: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        rate: ArrayLike = 0.0,
        *,
        call: ArrayLike = True,
    ) -> Any:
        """Black-76 implied volatility.

        Scalars in: a float, or :class:`PricingError` whose code names the problem
        (``BELOW_INTRINSIC``, ``ABOVE_MAXIMUM``, ``ILL_POSED``, or an ``INVALID_*`` parameter).
        Arrays in: :class:`ImpliedVol` with NaN and a per-element :class:`IVStatus`.
        """
        return self._implied(price, forward, strike, expiry, rate, None, call, spot=False)

    @overload
    def bsm_implied_vol(
        self,
        price: float,
        spot: float,
        strike: float,
        expiry: float,
        rate: float = 0.0,
        carry: float | None = None,
        *,
        call: bool = True,
    ) -> float: ...
    @overload
    def bsm_implied_vol(
        self,
        price: ArrayLike,
        spot: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        rate: ArrayLike = 0.0,
        carry: ArrayLike | None = None,
        *,
        call: ArrayLike = True,
    ) -> ImpliedVol: ...
    def bsm_implied_vol(
        self,
        price: ArrayLike,
        spot: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        rate: ArrayLike = 0.0,
        carry: ArrayLike | None = None,
        *,
        call: ArrayLike = True,
    ) -> Any:
        """Generalized Black-Scholes-Merton implied volatility (see :meth:`black76_implied_vol`)."""
        return self._implied(price, spot, strike, expiry, rate, carry, call, spot=True)

    def _implied(
        self,
        price: ArrayLike,
        underlying: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        rate: ArrayLike,
        carry: ArrayLike | None,
        call: ArrayLike,
        *,
        spot: bool,
    ) -> Any:
        inputs = _Inputs.prepare(
            underlying, strike, expiry, rate, carry, call, price, spot=spot, given_name="price"
        )
        if not inputs.shape:  # the scalar API raises
            inputs.require_valid("INVALID_PRICE", "price")
        vol, status = inputs.run(self._implied_kernel, self.backend, ("vol", "status"))
        if inputs.shape:
            return ImpliedVol(
                vol.reshape(inputs.shape), status.astype(np.int8).reshape(inputs.shape)
            )
        code = IVStatus(int(status[0]))
        if code is not IVStatus.OK:
            raise PricingError(code.name, f"{code.message} (price {float(inputs.given[0])!r})")
        return float(vol[0])

    # -- kernels on flat, validated chunks -------------------------------------------------

    def _price(self, c: _Chunk, wanted: Collection[str]) -> dict[str, FloatArray]:
        y = -np.abs(log_moneyness(c.forward, c.strike, self.backend))
        s = c.given * np.sqrt(c.expiry)
        half, scale = _half_and_scale(c.forward, c.strike)
        b = otm_value(y, s, self.backend, half)
        return {"price": c.discount * (c.intrinsic + scale * b)}

    def _greeks(self, c: _Chunk, wanted: Collection[str]) -> dict[str, FloatArray]:
        """The ``wanted`` quantities for one chunk; shared pieces are computed once."""
        backend = self.backend
        x = log_moneyness(c.forward, c.strike, backend)
        y = -np.abs(x)
        sqrt_t = np.sqrt(c.expiry)
        s = c.given * sqrt_t
        half, scale = _half_and_scale(c.forward, c.strike)
        spot = c.carry is not None
        needs_delta = "delta" in wanted or (spot and not {"theta", "rho"}.isdisjoint(wanted))
        if needs_delta:
            parts = otm_parts(y, s, half, backend)
            value, phi0 = parts.value, parts.density
        else:
            value, phi0 = otm_value_and_density(y, s, backend, half)
        price = c.discount * (c.intrinsic + scale * value)
        density = c.discount * scale * phi0  # D F phi(d1) = D K phi(d2)
        growth = c.forward / c.underlying  # e^(bT) = dF/dS (1 for Black-76)
        out = {"price": price}
        if needs_delta:
            n1 = _first_probability(parts.tail1, parts.upper1, parts.tail2, x, c.call)
            delta_f = c.discount * (2.0 * c.call - 1.0) * n1  # dV/dF
            out["delta"] = growth * delta_f if spot else delta_f
        if "gamma" in wanted:
            gamma_f = density / (c.forward * c.forward * s)
            out["gamma"] = growth * growth * gamma_f if spot else gamma_f
        vega = density * sqrt_t
        out["vega"] = vega
        if "theta" in wanted:
            theta = -density * c.given / (2.0 * sqrt_t) + c.rate * price  # forward held
            out["theta"] = theta - c.carry * c.forward * delta_f if c.carry is not None else theta
        if "rho" in wanted:
            out["rho"] = c.expiry * (c.forward * delta_f - price) if spot else -c.expiry * price
        if not {"vanna", "volga"}.isdisjoint(wanted):
            d1 = x / s + 0.5 * s
            d2 = d1 - s
            vanna = -density * d2 / (c.forward * c.given)
            out["vanna"] = growth * vanna if spot else vanna
            out["volga"] = vega * d1 * d2 / c.given
        return out

    def _implied_kernel(self, c: _Chunk, wanted: Collection[str]) -> dict[str, FloatArray]:
        """Reduce to the out-of-the-money normalized price, classify, solve the rest."""
        valid = _valid(c)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            forward_price = c.given / c.discount
            time_value = forward_price - c.intrinsic
            # Lost in the price's rounding, or so small (subnormal) that it has lost precision.
            tolerance = np.maximum(ILL_POSED_TOLERANCE * _EPSILON * forward_price, _TINY)
            upper = np.minimum(c.forward, c.strike)  # a call's forward value < F, a put's < K
        status = np.select(
            [~valid, time_value >= upper, time_value < -tolerance, time_value <= tolerance],
            [
                IVStatus.INVALID_INPUT,
                IVStatus.ABOVE_MAXIMUM,
                IVStatus.BELOW_INTRINSIC,
                IVStatus.ILL_POSED,
            ],
            IVStatus.OK,
        ).astype(np.float64)
        vol = np.full(c.given.shape, np.nan)
        solvable = np.flatnonzero(status == IVStatus.OK)
        if solvable.size:
            sub = c.take(solvable)
            y = -np.abs(log_moneyness(sub.forward, sub.strike, self.backend))
            half, scale = _half_and_scale(sub.forward, sub.strike)
            beta = time_value[solvable] / scale
            complement = (upper[solvable] - time_value[solvable]) / scale
            s = solve_otm(beta, complement, y, half, self.backend)
            vol[solvable] = s / np.sqrt(sub.expiry)
        return {"vol": vol, "status": status}


def _valid(c: _Chunk) -> BoolArray:
    """Per element: every parameter usable and the price a number (others get INVALID_INPUT)."""
    good = np.isfinite(c.underlying) & (c.underlying > 0.0)
    good &= np.isfinite(c.strike) & (c.strike > 0.0)
    good &= np.isfinite(c.expiry) & (c.expiry > 0.0)
    good &= np.isfinite(c.rate) & ~np.isnan(c.given)
    good &= np.isfinite(c.discount) & (c.discount > 0.0) & np.isfinite(c.forward)
    if c.carry is not None:
        good &= np.isfinite(c.carry)
    return good


def _wanted(greeks: Collection[str]) -> tuple[str, ...]:
    """The requested greeks in documented order; unknown names are bad input."""
    unknown = sorted(set(greeks) - set(GREEK_NAMES))
    if unknown or not greeks:
        raise PricingError(
            "UNKNOWN_GREEK", f"greeks must be a non-empty subset of {GREEK_NAMES}; got {unknown}"
        )
    return tuple(name for name in GREEK_NAMES if name in greeks)


def _forward(
    spot: FloatArray,
    carry: FloatArray,
    rate: FloatArray,
    expiry: FloatArray,
    discount: FloatArray,
    backend: Backend,
) -> FloatArray:
    """``S e^(bT)``; where the carry equals the rate (the default) that is ``S / e^(-rT)``.

    Reusing the discount factor saves an exponential in the common case; the choice is made per
    element from its own values, so ``carry=None`` and ``carry=rate`` give the same bits.
    """
    forward = spot / discount
    differs = np.flatnonzero(carry != rate)
    if differs.size:
        forward[differs] = spot[differs] * backend.exp(carry[differs] * expiry[differs])
    return forward


def _half_and_scale(forward: FloatArray, strike: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``e^(-|x|/2) = sqrt(min(F,K)/max(F,K))`` and ``sqrt(F K)``, without an exponential.

    The square root of the quotient is correctly rounded, so this is as accurate as
    ``exp(-|x|/2)`` and deterministic, at a fraction of the cost.
    """
    high = np.maximum(forward, strike)
    half = np.sqrt(np.minimum(forward, strike) / high)
    return half, high * half


def _first_probability(
    tail1: FloatArray, upper1: FloatArray, tail2: FloatArray, x: FloatArray, call: BoolArray
) -> FloatArray:
    """``N1 = Phi(theta d1)`` (the delta's probability) from the out-of-the-money tails.

    With ``y = -|x|``, ``tail1 = Phi(y/s + s/2)`` and ``tail2 = Phi(y/s - s/2)``. Out of the
    money (a call at ``x <= 0``, a put at ``x >= 0``) ``N1`` is ``tail1`` for a call and
    ``tail2`` for a put; in the money it is ``1 - tail2`` for a call and ``1 - tail1`` (held
    as ``upper1`` without cancellation) for a put.
    """
    is_call = call.astype(np.float64)
    in_money = (((x > 0.0) == call) & (x != 0.0)).astype(np.float64)
    inside = select(is_call, 1.0 - tail2, upper1)
    outside = select(is_call, tail1, tail2)
    return select(in_money, inside, outside)


class _Chunk(NamedTuple):
    """Flat, validated inputs of one chunk, in Black-76 terms.

    ``given`` is the per-option input besides the contract: the volatility when pricing, the
    price when inverting. ``carry`` is None for Black-76 (the underlying is the forward).
    """

    underlying: FloatArray
    forward: FloatArray
    strike: FloatArray
    expiry: FloatArray
    rate: FloatArray
    carry: FloatArray | None
    call: BoolArray
    given: FloatArray
    discount: FloatArray
    intrinsic: FloatArray  # forward-value intrinsic, max(theta (F - K), 0)

    def take(self, idx: NDArray[np.intp]) -> _Chunk:
        return _Chunk(
            self.underlying[idx],
            self.forward[idx],
            self.strike[idx],
            self.expiry[idx],
            self.rate[idx],
            None if self.carry is None else self.carry[idx],
            self.call[idx],
            self.given[idx],
            self.discount[idx],
            self.intrinsic[idx],
        )


@dataclass(frozen=True, slots=True)
class _Inputs:
    """Inputs broadcast together and flattened, the original shape, and chunked execution."""

    shape: tuple[int, ...]
    underlying: FloatArray
    strike: FloatArray
    expiry: FloatArray
    rate: FloatArray
    carry: FloatArray | None
    call: BoolArray
    given: FloatArray
    spot: bool

    @classmethod
    def prepare(
        cls,
        underlying: ArrayLike,
        strike: ArrayLike,
        expiry: ArrayLike,
        rate: ArrayLike,
        carry: ArrayLike | None,
        call: ArrayLike,
        given: ArrayLike,
        *,
        spot: bool,
        given_name: str,
    ) -> _Inputs:
        """Broadcast and flatten; reject non-numeric values and shapes that do not fit."""
        names = ["spot" if spot else "forward", "strike", "expiry", "rate", given_name]
        values: list[ArrayLike] = [underlying, strike, expiry, rate, given]
        if spot:
            names.append("carry")
            values.append(rate if carry is None else carry)
        arrays = [_as_float_array(name, value) for name, value in zip(names, values, strict=True)]
        flags = np.asarray(call)
        if flags.dtype != np.bool_:
            raise PricingError("INVALID_CALL_FLAG", "call must be a bool or an array of bools")
        try:
            broadcast = np.broadcast_arrays(*arrays, flags)
        except ValueError as exc:
            shapes = ", ".join(
                f"{n} {a.shape}" for n, a in zip([*names, "call"], [*arrays, flags], strict=True)
            )
            raise PricingError("SHAPE_MISMATCH", f"inputs do not broadcast: {shapes}") from exc
        flat = [np.ascontiguousarray(b).reshape(-1) for b in broadcast]
        return cls(
            shape=broadcast[0].shape,
            underlying=flat[0],
            strike=flat[1],
            expiry=flat[2],
            rate=flat[3],
            given=flat[4],
            carry=flat[5] if spot else None,
            call=flat[-1],
            spot=spot,
        )

    def require_valid(self, given_code: str, given_name: str) -> None:
        """Raise for the first bad parameter (pricing: everything must be valid)."""
        underlying = ("INVALID_SPOT", "spot") if self.spot else ("INVALID_FORWARD", "forward")
        _require(self.underlying, *underlying, positive=True)
        _require(self.strike, "INVALID_STRIKE", "strike", positive=True)
        _require(self.expiry, "INVALID_EXPIRY", "expiry (years)", positive=True)
        _require(self.given, given_code, given_name, positive=given_code == "INVALID_VOLATILITY")
        _require(self.rate, "INVALID_RATE", "rate", positive=False)
        if self.carry is not None:
            _require(self.carry, "INVALID_CARRY", "carry", positive=False)

    def run(
        self,
        kernel: Callable[[_Chunk, Collection[str]], dict[str, FloatArray]],
        backend: Backend,
        names: Sequence[str],
    ) -> list[FloatArray]:
        """Apply ``kernel`` chunk by chunk and gather its outputs ``names``, in that order.

        Every element is computed independently of the others, so chunking changes no bit.
        """
        size = self.underlying.size
        results = [np.empty(size) for _ in names]
        wanted = frozenset(names)
        for start in range(0, size, CHUNK):
            outputs = kernel(self.chunk(slice(start, start + CHUNK), backend), wanted)
            for result, name in zip(results, names, strict=True):
                result[start : start + CHUNK] = outputs[name]
        return results

    def chunk(self, part: slice, backend: Backend) -> _Chunk:
        """One chunk in Black-76 terms: forward ``S e^(bT)``, discount ``e^(-rT)``, intrinsic."""
        underlying = self.underlying[part]
        strike = self.strike[part]
        expiry = self.expiry[part]
        rate = self.rate[part]
        call = self.call[part]
        carry = None if self.carry is None else self.carry[part]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # flagged later
            discount = backend.exp(-rate * expiry)
            forward = (
                underlying
                if carry is None
                else _forward(underlying, carry, rate, expiry, discount, backend)
            )
            intrinsic = np.maximum((2.0 * call - 1.0) * (forward - strike), 0.0)
        return _Chunk(
            underlying,
            forward,
            strike,
            expiry,
            rate,
            carry,
            call,
            self.given[part],
            discount,
            intrinsic,
        )

    def finish(self, values: FloatArray) -> Any:
        """Back to the callers' shape; a Python float when every input was a scalar."""
        if not self.shape:
            return float(values[0])
        return values.reshape(self.shape)


def _as_float_array(name: str, value: ArrayLike) -> FloatArray:
    try:
        array: FloatArray = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PricingError("INVALID_NUMBER", f"{name} must be numeric; got {value!r}") from exc
    return array


def _require(values: FloatArray, code: str, name: str, *, positive: bool) -> None:
    """Raise ``code`` naming the first offending element unless all are finite (and > 0)."""
    good = np.isfinite(values)
    if positive:
        good &= values > 0.0
    if good.all():
        return
    index = int(np.flatnonzero(~good)[0])
    where = "" if values.size == 1 else f" (element {index} of {values.size})"
    rule = "finite and > 0" if positive else "finite"
    raise PricingError(code, f"{name} must be {rule}; got {float(values[index])!r}{where}")
