"""The ``strikechain`` command: one entry point for every driver.

Subcommands compose the layers below; they hold no logic of their own beyond parsing,
formatting and exit codes. Bad input exits with status 2 and a one-line message naming the
stable error code; success exits 0.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from strikechain import __version__
from strikechain.pricing import GREEK_NAMES, PricingError


def _fail(code: str, message: str) -> NoReturn:
    click.echo(f"error: {code}: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strikechain")
def cli() -> None:
    """strikechain: a deterministic derivatives venue engine and the lab that measures it."""


@cli.command()
@click.option("--spot", type=float, required=True, help="Spot price of the underlying.")
@click.option("--strike", type=float, required=True, help="Strike price.")
@click.option("--expiry-years", type=float, required=True, help="Time to expiry in years.")
@click.option("--vol", type=float, default=None, help="Volatility (0.2 = 20%); prices the option.")
@click.option("--price", type=float, default=None, help="Option price; solves the implied vol.")
@click.option("--rate", type=float, default=0.0, show_default=True, help="Continuous rate.")
@click.option("--carry", type=float, default=None, help="Cost of carry b (default: the rate).")
@click.option("--put", is_flag=True, help="A put (default: a call).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--deterministic", is_flag=True, help="Use the bit-reproducible mode (as the venue does)."
)
def price(
    spot: float,
    strike: float,
    expiry_years: float,
    vol: float | None,
    price: float | None,
    rate: float,
    carry: float | None,
    put: bool,
    as_json: bool,
    deterministic: bool,
) -> None:
    """Price a European option with Greeks, or solve its implied volatility.

    Generalized Black-Scholes-Merton with cost of carry b: b = r for a non-dividend
    underlying, b = r - q for a dividend yield q, b = 0 for an option on a futures price.
    """
    from strikechain.cli.price import PriceRequest, render_table, run_price

    if (vol is None) == (price is None):
        _fail("USAGE", "give exactly one of --vol (to price) and --price (to solve the vol)")
    request = PriceRequest(spot, strike, expiry_years, vol, price, rate, carry, not put)
    try:
        result = run_price(request, deterministic=deterministic)
    except PricingError as error:
        _fail(error.code, error.message)
    if as_json:
        keys = (*GREEK_NAMES, "iv") if price is not None else GREEK_NAMES
        click.echo(json.dumps({key: result[key] for key in keys}))
    else:
        render_table(request, result, deterministic=deterministic)


@cli.command()
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=7,
    show_default=True,
    help="Seed of the venue session and the synthetic market.",
)
@click.option(
    "--part",
    type=click.Choice(["lab", "all", "venue", "crash", "pricing"]),
    default="lab",
    show_default=True,
    help="The lab (scenarios/crash.toml under two block-production settings); or the venue "
    "session, the scripted crash (dynamic margin off and on), the pricing demo, or all.",
)
@click.option(
    "--blocks",
    type=click.IntRange(200, 12_000),
    default=300,
    show_default=True,
    help="Blocks of the venue session (60 transactions each).",
)
@click.option(
    "--log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep the session's block log (SQLite) in this new file, for `strikechain replay`.",
)
@click.option(
    "--duration-s",
    type=click.FloatRange(min=10.0, max=3_600.0),
    default=None,
    help="Shorten the lab's runs to this many simulated seconds (the scenario's: an hour).",
)
def demo(seed: int, part: str, blocks: int, log: Path | None, duration_s: float | None) -> None:
    """Run the lab's crash scenario under two block-production settings and compare them
    (the default); or a seeded venue session with what its block log proves, the scripted
    crash with dynamic margin off and on, and the pricing library on a whole option chain."""
    from strikechain.cli.demo import run_demo

    if log is not None and log.exists():
        _fail("LOG_EXISTS", f"{log} exists; the demo writes a new block log")
    if not run_demo(seed, part, blocks, log, duration_s):
        sys.exit(1)


@cli.command()
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--from-snapshot", is_flag=True, help="Restore the log's latest snapshot, replay the rest."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def replay(log: Path, from_snapshot: bool, as_json: bool) -> None:
    """Rebuild the venue from block log LOG (SQLite) and check every digest and state root.

    From genesis by default. Exits 0 if everything matches, 1 naming the first block that
    differs, 2 if LOG is not a block log."""
    _replay(log, from_snapshot=from_snapshot, as_json=as_json)


def _replay(log: Path, *, from_snapshot: bool, as_json: bool) -> None:
    from rich.console import Console

    from strikechain.cli.replay import ReplayInputError, render, replay_log, report_json

    try:
        report, last_height = replay_log(log, from_snapshot=from_snapshot)
    except ReplayInputError as error:
        _fail(error.code, error.message)
    if as_json:
        click.echo(report_json(report, last_height))
    else:
        # a pipe or a log file gets room for whole hashes; a terminal keeps its own width
        render(Console(width=None if sys.stdout.isatty() else 120), log, report, last_height)
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8545, show_default=True)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The node's TOML configuration (markets, data directory, settlement).",
)
@click.option("--data-dir", default=None, help="Where the block log, chain and keys live.")
@click.option(
    "--dev", is_flag=True, help="A development venue: ten funded accounts and a price feed."
)
@click.option(
    "--dev-keys-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --dev: write the accounts' keys as JSON (api_key, api_secret, address, "
    "private_key).",
)
@click.option(
    "--with-market-makers",
    is_flag=True,
    help="With --dev: the lab's market makers quote every perpetual (two dev accounts).",
)
@click.option("--stop-after", "stop_after_s", type=float, default=None, hidden=True)
def serve(
    host: str,
    port: int,
    config_path: Path | None,
    data_dir: str | None,
    dev: bool,
    dev_keys_out: Path | None,
    with_market_makers: bool,
    stop_after_s: float | None,
) -> None:
    """Run the node: the live venue, its block log and settlement, /metrics over HTTP."""
    import asyncio

    from rich.console import Console

    from strikechain.cli.serve import serve as run_serve
    from strikechain.node.config import ConfigError

    if (dev_keys_out is not None or with_market_makers) and not dev:
        _fail("USAGE", "--dev-keys-out and --with-market-makers need --dev")
    try:
        asyncio.run(
            run_serve(
                Console(),
                host=host,
                port=port,
                config_path=config_path,
                data_dir=data_dir,
                dev=dev,
                dev_keys_out=dev_keys_out,
                stop_after_s=stop_after_s,
                with_market_makers=with_market_makers,
            )
        )
    except ConfigError as error:
        _fail(error.code, str(error))
    except ValueError as error:
        _fail("USAGE", str(error))


@cli.command()
@click.option("--rpc", "rpc_url", default=None, help="JSON-RPC URL of the settlement chain.")
@click.option("--contract", default=None, help="Address of the settlement contract (0x...).")
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Read the contract's events from this block (its deployment block or earlier).",
)
@click.option(
    "--log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Verify a node's block log (SQLite) instead: the same as `strikechain replay LOG`.",
)
@click.option("--watch", is_flag=True, help="Keep verifying; veto a pending divergent batch.")
@click.option(
    "--verifier-key",
    envvar="STRIKECHAIN_VERIFIER_KEY",
    default=None,
    help="With --watch: the hex private key of a registered verifier, which signs vetoes "
    "(or set STRIKECHAIN_VERIFIER_KEY).",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.0),
    default=12.0,
    show_default=True,
    help="With --watch: seconds between polls.",
)
@click.option(
    "--polls",
    type=click.IntRange(min=1),
    default=None,
    help="With --watch: stop after this many polls (default: until Ctrl-C).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with --watch: one per poll).")
def verify(
    rpc_url: str | None,
    contract: str | None,
    from_block: int,
    log: Path | None,
    watch: bool,
    verifier_key: str | None,
    interval_s: float,
    polls: int | None,
    as_json: bool,
) -> None:
    """Re-execute every batch the venue committed, from the data posted on chain alone.

    --rpc URL --contract ADDRESS rebuilds the deployment from the chain and checks every live
    batch record, signature and deposit; --watch keeps doing it and vetoes a divergent batch
    while its challenge window is open; --log PATH checks a block log instead. Exits 0 if
    everything reproduces, 1 on a divergence (--watch: one not vetoed at the last poll), 2 for
    bad input."""
    if log is not None:
        if rpc_url is not None or contract is not None or watch:
            _fail("USAGE", "--log verifies a block log: give it without --rpc, --contract, --watch")
        _replay(log, from_snapshot=False, as_json=as_json)
        return
    if rpc_url is None or contract is None:
        _fail("USAGE", "give --rpc URL and --contract ADDRESS (or --log PATH)")
    if watch != (verifier_key is not None):
        _fail("USAGE", "--watch needs --verifier-key (vetoes are signed), and only --watch uses it")
    from rich.console import Console

    from strikechain.cli import verify as commands

    try:
        if verifier_key is not None:  # --watch
            last = commands.watch_contract(
                rpc_url,
                contract,
                from_block,
                commands.parse_key(verifier_key),
                interval_s,
                polls,
                click.echo,
                lambda line: click.echo(line, err=True),
                as_json=as_json,
            )
            if last is not None and last.divergence is not None and last.vetoed is None:
                sys.exit(1)
            return
        check = commands.verify_contract(rpc_url, contract, from_block)
    except commands.VerifyInputError as error:
        _fail(error.code, error.message)
    if as_json:
        click.echo(commands.check_json(check))
    else:
        commands.render_check(Console(width=None if sys.stdout.isatty() else 120), rpc_url, check)
    if not check.report.ok:
        sys.exit(1)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Override the scenario's run.seed."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the run folder here (a new or empty directory).",
)
@click.option("--quiet", is_flag=True, help="No progress bar and no summary; only the folder.")
def simulate(scenario: Path, seed: int | None, out: Path | None, quiet: bool) -> None:
    """Run lab scenario SCENARIO (TOML; see scenarios/README.md) and print its key metrics.

    With --out, write the run folder: metrics.json, scenario.toml, one Parquet file per table
    and report.html. Exits 0 when the run completes, 2 if the scenario cannot run."""
    from strikechain.cli.simulate import prepare, run_simulate
    from strikechain.sim.scenario import ScenarioError

    if out is not None and out.exists() and any(out.iterdir()):
        _fail("OUT_NOT_EMPTY", f"{out} is not empty; a run folder goes in a new directory")
    try:
        run = prepare(scenario, seed)
    except ScenarioError as error:
        _fail(error.code, error.message)
    run_simulate(scenario, run, out=out, quiet=quiet)


@cli.command()
@click.argument("sweep_file", metavar="SWEEP", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=2,
    show_default=True,
    help="Local worker processes (not used with --address).",
)
@click.option(
    "--address",
    default=None,
    help="Run on the Dask scheduler at this address (tcp://host:port): a cluster you run, "
    "with strikechain installed on its workers.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the sweep folder here (a new or empty directory; default: runs/<SWEEP's name>).",
)
@click.option("--quiet", is_flag=True, help="No progress bar and no summary; only the folder.")
def sweep(
    sweep_file: Path, workers: int, address: str | None, out: Path | None, quiet: bool
) -> None:
    """Run sweep SWEEP (TOML: one scenario over a grid of parameters x designs x seeds; see
    scenarios/sweeps/) and print each design's means with 95% intervals and its A/B verdicts.

    Writes the sweep folder: runs, summary and comparisons as Parquet and CSV, the sweep and
    scenario files, and report.html. Exits 0 when every run completes, 2 if the sweep cannot
    run (a bad file, or no scheduler at --address), 1 naming the run if a run fails."""
    from strikechain.cli.sweep import default_out, prepare, run_sweep_command
    from strikechain.sim.sweep import SweepError, SweepRunError

    folder = out if out is not None else default_out(sweep_file)
    if folder.exists() and any(folder.iterdir()):
        _fail("OUT_NOT_EMPTY", f"{folder} is not empty; a sweep folder goes in a new directory")
    try:
        spec = prepare(sweep_file)
        run_sweep_command(
            sweep_file, spec, workers=workers, address=address, out=folder, quiet=quiet
        )
    except SweepError as error:
        _fail(error.code, error.message)
    except SweepRunError as error:
        where = "; ".join(getattr(error, "__notes__", ()))
        click.echo(f"error: SWEEP_RUN_FAILED: {where}: {error.error}\n{error.trace}", err=True)
        sys.exit(1)


@cli.command()
@click.argument("name")
@click.option(
    "--out", type=click.Path(file_okay=False), default="benchmarks/results", show_default=True
)
def bench(name: str, out: str) -> None:
    """Run benchmark NAME (or ``all``) on one core; write OUT/NAME.json."""
    from strikechain.bench.runner import BENCHMARKS, run_in_subprocess

    names = sorted(BENCHMARKS) if name == "all" else [name]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        _fail("UNKNOWN_BENCHMARK", f"{unknown[0]!r}; known: {', '.join(sorted(BENCHMARKS))}, all")
    for each in names:
        status = run_in_subprocess(each, out)
        if status != 0:
            _fail("BENCHMARK_FAILED", f"{each} exited with status {status}")


@cli.command()
@click.option(
    "--url", envvar="STRIKECHAIN_URL", default="http://127.0.0.1:8545", show_default=True,
    help="The node's HTTP address (or STRIKECHAIN_URL).",
)  # fmt: skip
@click.option(
    "--keys",
    "keys_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="The accounts' keys, as `serve --dev --dev-keys-out` writes them.",
)
@click.option("--market-makers", type=click.IntRange(0, 100), default=2, show_default=True)
@click.option("--noise", type=click.IntRange(0, 100), default=2, show_default=True)
@click.option("--arbitrageurs", type=click.IntRange(0, 100), default=0, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="The agents' master seed.")
@click.option(
    "--duration-s", type=click.FloatRange(min=0.0), default=None,
    help="Stop after this many seconds (default: until Ctrl-C).",
)  # fmt: skip
def agents(
    url: str,
    keys_path: Path,
    market_makers: int,
    noise: int,
    arbitrageurs: int,
    seed: int,
    duration_s: float | None,
) -> None:
    """Run the lab's agents on a running node through the client (one account each).

    Accounts come from --keys in order: market makers, noise traders, then arbitrageurs. Each
    trades every perpetual over its own WebSocket (signed orders; the engine's events back).
    """
    import asyncio

    from rich.console import Console

    from strikechain.cli.remote_agents import AgentsInputError, read_keys, run_agents, summary_lines
    from strikechain.client import ClientError

    console = Console()
    try:
        accounts = read_keys(keys_path, market_makers + noise + arbitrageurs)
        started = asyncio.run(
            run_agents(
                console, url=url, accounts=accounts, makers=market_makers, noise=noise,
                arbitrageurs=arbitrageurs, seed=seed, duration_s=duration_s,
            )
        )  # fmt: skip
    except AgentsInputError as error:
        _fail(error.code, str(error))
    except ClientError as error:
        reason = error.data.get("reason") if isinstance(error.data, dict) else None
        _fail(str(error.code), error.message + (f": {reason}" if reason else ""))
    except KeyboardInterrupt:
        return
    for line in summary_lines(started):
        click.echo(line)


# --- the client: orders and accounts on a running node ---------------------------------------


def _connection_options(function: Any) -> Any:
    """``--url``, ``--key``/``--secret`` (API key), ``--private-key`` (account key), ``--json``;
    the keys may come from the environment."""
    options = (
        click.option(
            "--url", envvar="STRIKECHAIN_URL", default="http://127.0.0.1:8545", show_default=True,
            help="The node's HTTP address (or STRIKECHAIN_URL).",
        ),
        click.option("--key", envvar="STRIKECHAIN_API_KEY", default=None,
                     help="API key (or STRIKECHAIN_API_KEY)."),
        click.option("--secret", envvar="STRIKECHAIN_API_SECRET", default=None,
                     help="API secret (or STRIKECHAIN_API_SECRET)."),
        click.option("--private-key", envvar="STRIKECHAIN_PRIVATE_KEY", default=None,
                     help="The account's hex private key, for --signed (or "
                     "STRIKECHAIN_PRIVATE_KEY)."),
        click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON."),
    )  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function


def _client_command(kind: str, as_json: bool, call: Callable[[], Any]) -> None:
    from strikechain.cli.client_cmds import render
    from strikechain.client import ClientError

    try:
        result = call()
    except ClientError as error:
        reason = error.data.get("reason") if isinstance(error.data, dict) else None
        _fail(str(error.code), error.message + (f": {reason}" if reason else ""))
    for line in render(kind, result, as_json=as_json):
        click.echo(line)


def _credentials(url: str, key: str | None, secret: str | None, private_key: str | None) -> Any:
    from strikechain.cli.client_cmds import Credentials

    return Credentials(url, key, secret, private_key)


@cli.group()
def order() -> None:
    """Place, cancel and list orders on a running node (API key, or --signed with the
    account's private key)."""


def _place_command(side: str) -> Any:
    @order.command(name=side)
    @click.argument("instrument")
    @click.argument("amount")
    @click.option("--price", default=None, help="Limit price (none: a market order).")
    @click.option("--post-only", is_flag=True, help="Rest only; never take.")
    @click.option("--ioc", is_flag=True, help="Immediate or cancel.")
    @click.option("--signed", is_flag=True, help="Sign with --private-key (EIP-712), no API key.")
    @click.option("--label", default="", help="Client order id.")
    @_connection_options
    def place(
        instrument: str, amount: str, price: str | None, post_only: bool, ioc: bool,
        signed: bool, label: str, url: str, key: str | None, secret: str | None,
        private_key: str | None, as_json: bool,
    ) -> None:  # fmt: skip
        from strikechain.cli import client_cmds

        credentials = _credentials(url, key, secret, private_key)
        _client_command(
            "placed",
            as_json,
            lambda: client_cmds.place(
                credentials, side, instrument, amount, price, post_only=post_only, ioc=ioc,
                signed=signed, label=label,
            ),
        )  # fmt: skip

    place.__doc__ = f"{side.capitalize()} AMOUNT (units of the underlying) of INSTRUMENT."
    return place


_buy = _place_command("buy")
_sell = _place_command("sell")


@order.command(name="cancel")
@click.argument("order_id")
@_connection_options
def order_cancel(
    order_id: str, url: str, key: str | None, secret: str | None, private_key: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Cancel ORDER_ID."""
    from strikechain.cli import client_cmds

    credentials = _credentials(url, key, secret, private_key)
    _client_command("order", as_json, lambda: client_cmds.cancel(credentials, order_id))


@order.command(name="list")
@click.option("--instrument", default=None, help="Only this instrument's orders.")
@_connection_options
def order_list(
    instrument: str | None, url: str, key: str | None, secret: str | None,
    private_key: str | None, as_json: bool,
) -> None:  # fmt: skip
    """List the account's open orders."""
    from strikechain.cli import client_cmds

    credentials = _credentials(url, key, secret, private_key)
    _client_command("orders", as_json, lambda: client_cmds.open_orders(credentials, instrument))


@cli.group()
def account() -> None:
    """The account's summary and positions on a running node (API key)."""


@account.command(name="summary")
@click.option("--currency", default="USDC", show_default=True, help="USDC or an underlying.")
@_connection_options
def account_summary(
    currency: str, url: str, key: str | None, secret: str | None, private_key: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """The account's equity, balance and margins."""
    from strikechain.cli import client_cmds

    credentials = _credentials(url, key, secret, private_key)
    _client_command("summary", as_json, lambda: client_cmds.summary(credentials, currency))


@account.command(name="positions")
@click.option("--currency", default=None, help="Only this underlying's positions.")
@_connection_options
def account_positions(
    currency: str | None, url: str, key: str | None, secret: str | None,
    private_key: str | None, as_json: bool,
) -> None:  # fmt: skip
    """The account's open positions."""
    from strikechain.cli import client_cmds

    credentials = _credentials(url, key, secret, private_key)
    _client_command("positions", as_json, lambda: client_cmds.positions(credentials, currency))


def main() -> None:
    """Console-script entry point."""
    cli()
