"""Development mode (``strikechain serve --dev``): a venue you can trade on within seconds.

As local development chains do, the node makes ten well-known accounts and funds them: their
Ethereum keys derive from fixed strings (public, for development only), each gets
:data:`DEV_DEPOSIT_USDC` deposited on chain per underlying (the node then credits it from the
contract's events, as any deposit), and an API key with the read, trade and withdraw scopes. A
development reporter (its key is public too) publishes a BTC and an ETH index every second,
following a seeded random walk, so that margin, marks and funding work.

Options: the venue lists BTC calls and puts on a rolling rule (the next two dailies and the next
Friday at least a day away, five strikes around the index when an expiry is listed; the node
lists each expiry as it comes into range: :mod:`strikechain.node.listing`), and the reporter
publishes a vol surface for every listed expiry: the smile
``atm * (1 + skew k + curvature k^2)`` at the oracle's log-moneyness nodes ``k`` (:data:`SMILE`,
the same shape the lab's market makers quote), so option marks and Greeks work.

The accounts are made once per data directory; their API secrets are shown when made and kept
in ``dev-accounts.json`` (mode 0600) in the data directory, which later starts read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

from strikechain.engine.oracle import MAX_VOL_SLICES, OracleReport, VolSlice, sign_report
from strikechain.engine.signing import address_of, keccak256
from strikechain.node.config import NodeConfig, parse_config
from strikechain.node.keys import KeyStore, Scope
from strikechain.node.service import NodeHalted
from strikechain.runtime.errors import RuntimeRejection

DEV_ACCOUNTS: Final = 10
DEV_DEPOSIT_USDC: Final = 100_000
USDC: Final = 1_000_000
REPORTER_KEY: Final = keccak256(b"strikechain-dev-reporter")
DEV_FILE: Final = "dev-accounts.json"
PRICES_USDC: Final = {"BTC": 100_000, "ETH": 4_000}
REPORT_INTERVAL_S: Final = 1.0
VOL_MARGIN_NS: Final = 60 * 1_000_000_000
"""No vols for an expiry this close: a report whose slice expires before its block is refused."""
PPM: Final = 1_000_000


class Smile(NamedTuple):
    """``vol(k) = atm * (1 + skew k + curvature k^2)`` at log-moneyness ``k = ln(K/F)``."""

    atm: float
    skew: float
    curvature: float

    def vols_ppm(self, log_moneyness_ppm: Sequence[int]) -> tuple[int, ...]:
        vols = []
        for node in log_moneyness_ppm:
            k = node / PPM
            vols.append(
                max(1, round(self.atm * (1.0 + self.skew * k + self.curvature * k * k) * PPM))
            )
        return tuple(vols)


SMILE: Final = Smile(atm=0.6, skew=-0.2, curvature=0.5)


def dev_key(number: int) -> bytes:
    return keccak256(f"strikechain-dev-account-{number}".encode())


def dev_config(data_dir: str, base: NodeConfig | None = None) -> NodeConfig:
    """The development venue: BTC and ETH perpetuals and rolling BTC options, indexed by the
    development reporter (a given configuration keeps its node and settlement sections)."""
    reporter = address_of(REPORTER_KEY)
    config = parse_config(
        f"""
[node]
data_dir = "{data_dir}"

[[underlyings]]
name = "BTC"
reporters = ["{reporter}"]
quorum = 1

[[underlyings]]
name = "ETH"
reporters = ["{reporter}"]
quorum = 1

[[instruments]]
underlying = "BTC"
tick = "0.5"
lot = "0.001"

[[instruments]]
underlying = "ETH"
tick = "0.05"
lot = "0.01"

[[instruments]]
underlying = "BTC"
kind = "option"
tick = "5"
lot = "0.01"
dailies = 2
weeklies = 1
strikes_per_side = 2
std_devs = "1"
min_expiry_hours = 24
"""
    )
    if base is None:
        return config
    import msgspec

    return msgspec.structs.replace(
        config,
        node=msgspec.structs.replace(base.node, data_dir=data_dir),
        settlement=base.settlement,
    )


async def dev_accounts(node: Any, keys: KeyStore) -> list[dict[str, str]]:
    """The development accounts of ``node``'s data directory: made, funded on chain and given
    API keys on the first start; read back later."""
    path = Path(node.config.data_dir) / DEV_FILE
    if path.exists():
        accounts: list[dict[str, str]] = json.loads(path.read_text())
        return accounts
    accounts = []
    for number in range(DEV_ACCOUNTS):
        key = dev_key(number)
        address = address_of(key).lower()
        api_key, secret = keys.create(
            address, (Scope.READ, Scope.TRADE, Scope.WITHDRAW), label=f"dev-{number}"
        )
        accounts.append(
            {
                "api_key": api_key,
                "api_secret": secret,
                "address": address,
                "private_key": "0x" + key.hex(),
            }
        )
    if node.settlement is not None:
        await node.on_chain(_fund, node, [account["address"] for account in accounts])
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(accounts, file, indent=2)
    return accounts


def _fund(node: Any, addresses: list[str]) -> None:
    """Mint and deposit on chain for each account (the node credits the deposits)."""
    settlement = node.settlement
    amount = DEV_DEPOSIT_USDC * USDC
    for address in addresses:
        for underlying in node.config.venue().underlyings:
            settlement.mint(address, amount)
            settlement.deposit(address, underlying, amount)


def write_keys(accounts: Sequence[dict[str, str]], path: str | Path) -> None:
    """``--dev-keys-out``: the accounts as a JSON list (mode 0600: it holds secrets)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(list(accounts), file, indent=2)


async def report_prices(
    node: Any, seed: int = 1, price_of: Callable[[str, int], float] | None = None
) -> None:
    """Publish a signed index per underlying every second: ``price_of(underlying, now_ns)``
    (the reference path market makers quote around), or a seeded random walk."""
    rng = random.Random(seed)
    venue = node.config.venue()
    prices = {name: float(PRICES_USDC.get(name, 1_000)) for name in venue.underlyings}
    smiles = {
        name: SMILE.vols_ppm(params.oracle.log_moneyness_ppm)
        for name, params in venue.underlyings.items()
    }
    reporter = address_of(REPORTER_KEY)
    while True:
        now = node.clock()
        for name, previous in list(prices.items()):
            if price_of is not None:
                price = price_of(name, now)
            else:
                price = previous * (1.0 + rng.gauss(0.0, 0.0005))
            prices[name] = price
            report = OracleReport(
                account=reporter,
                underlying=name,
                timestamp_ns=now,
                price=round(price * USDC),
                confidence=round(price * USDC) // 10_000 or 1,
                vols=vol_slices(node.engine.instruments.values(), name, now, smiles[name]),
            )
            # A full inbox or a halted node refuses: the next second tries again.
            with contextlib.suppress(RuntimeRejection, NodeHalted):
                node.submit_nowait(sign_report(report, REPORTER_KEY, node.config.venue().signing))
        await asyncio.sleep(REPORT_INTERVAL_S)


def vol_slices(
    instruments: Any, underlying: str, now_ns: int, vols_ppm: tuple[int, ...]
) -> tuple[VolSlice, ...]:
    """One slice per listed expiry of ``underlying``'s options (the nearest
    :data:`MAX_VOL_SLICES`, at least :data:`VOL_MARGIN_NS` away), each the same smile."""
    expiries = sorted(
        {
            instrument.expiry_ns
            for instrument in instruments
            if instrument.is_option
            and instrument.underlying == underlying
            and instrument.expiry_ns > now_ns + VOL_MARGIN_NS
        }
    )
    return tuple(VolSlice(expiry, vols_ppm) for expiry in expiries[:MAX_VOL_SLICES])
