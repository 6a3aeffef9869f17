"""The API key store: secrets, scopes, limits, Deribit signatures, the secret at rest."""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from strikechain.engine.invariant import InvariantViolation
from strikechain.node.keys import (
    KeyCode,
    KeyLimits,
    KeyRejection,
    KeyStore,
    KeyStoreError,
    Scope,
    ScryptParams,
    rest_signature_data,
    signature_hex,
)

T0_MS = 1_700_000_000_000
WINDOW_MS = KeyLimits().signature_window_ms
CHEAP = ScryptParams(n=16, r=1, p=1)
"""Tests hash many secrets; the cost parameters are stored per key, so any work."""
ACCOUNT = "0x" + "ab" * 20


class Clock:
    def __init__(self, now_ms: int = T0_MS) -> None:
        self.now_ns = now_ms * 1_000_000

    def __call__(self) -> int:
        return self.now_ns

    def advance_ms(self, ms: int) -> None:
        self.now_ns += ms * 1_000_000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys.sqlite"


@pytest.fixture
def store(path: Path, clock: Clock) -> Iterator[KeyStore]:
    with KeyStore(path, kdf=CHEAP, clock_ns=clock) as opened:
        yield opened


def rejected(code: KeyCode) -> pytest.RaisesExc[KeyRejection]:
    return pytest.raises(KeyRejection, match=f"^{code}: ")


def sign(secret: str, timestamp_ms: int, nonce: str, data: str = "") -> str:
    """Deribit's client_signature, computed here without the module under test."""
    message = f"{timestamp_ms}\n{nonce}\n{data}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# -- create, verify, scopes ---------------------------------------------------------------------


def test_create_and_verify(store: KeyStore, clock: Clock) -> None:
    api_key, secret = store.create(ACCOUNT, ["trade", Scope.READ], label="market maker")
    assert len(api_key) == 20
    assert len(secret) == 43
    record = store.verify(api_key, secret)
    assert record is not None
    assert record.api_key == api_key
    assert record.account == ACCOUNT
    assert record.scopes == (Scope.READ, Scope.TRADE)
    assert record.label == "market maker"
    assert record.created_at_ns == clock.now_ns
    assert not record.disabled
    assert store.get(api_key) == record
    assert store.hmac_secret(api_key) == secret.encode()


def test_default_scrypt_cost_works(path: Path) -> None:
    with KeyStore(path) as store:
        api_key, secret = store.create(ACCOUNT, ["read"])
        assert store.verify(api_key, secret) is not None
        assert store.verify(api_key, secret[:-1]) is None


def test_wrong_secret_and_unknown_key(store: KeyStore) -> None:
    api_key, secret = store.create(ACCOUNT, ["read"])
    other_key, other_secret = store.create(ACCOUNT, ["read"])
    assert store.verify(api_key, other_secret) is None
    assert store.verify(api_key, "") is None
    assert store.verify(api_key, secret + "x") is None
    assert store.verify(api_key, "é" * 43) is None
    assert store.verify(api_key, secret * 10) is None
    assert store.verify("no-such-key", secret) is None
    assert store.get("no-such-key") is None
    assert store.verify(other_key, other_secret) is not None


def test_disabled_key(store: KeyStore, clock: Clock) -> None:
    api_key, secret = store.create(ACCOUNT, ["read", "trade"])
    record = store.disable(api_key)
    assert record.disabled
    assert store.disable(api_key) == record
    assert store.get(api_key) == record
    assert store.verify(api_key, secret) is None
    with rejected(KeyCode.KEY_DISABLED):
        store.require(api_key, Scope.READ)
    with rejected(KeyCode.KEY_DISABLED):
        store.hmac_secret(api_key)
    with rejected(KeyCode.KEY_DISABLED):
        store.verify_signature(api_key, T0_MS, "n", "", sign(secret, T0_MS, "n"))
    with rejected(KeyCode.UNKNOWN_KEY):
        store.disable("no-such-key")


def test_scopes(store: KeyStore) -> None:
    api_key, _ = store.create(ACCOUNT, ["trade", "read", "trade"])
    assert store.require(api_key, Scope.TRADE).scopes == (Scope.READ, Scope.TRADE)
    with rejected(KeyCode.SCOPE_MISSING):
        store.require(api_key, Scope.WITHDRAW)
    with rejected(KeyCode.UNKNOWN_KEY):
        store.require("no-such-key", Scope.READ)
    with rejected(KeyCode.UNKNOWN_SCOPE):
        store.create(ACCOUNT, ["read", "trade:read_write"])
    with rejected(KeyCode.NO_SCOPES):
        store.create(ACCOUNT, [])
    admin, _ = store.create(ACCOUNT, set(Scope))
    assert store.require(admin, Scope.ADMIN).scopes == tuple(Scope)


def test_list(store: KeyStore) -> None:
    first, _ = store.create(ACCOUNT, ["read"])
    other, _ = store.create("0xother", ["read"])
    second, _ = store.create(ACCOUNT, ["trade"])
    store.disable(second)
    assert [r.api_key for r in store.list()] == [first, other, second]
    assert [r.api_key for r in store.list(ACCOUNT)] == [first, second]
    assert store.list("0xnobody") == ()


# -- persistence and the secret at rest ---------------------------------------------------------


def test_persists_across_reopen(path: Path, clock: Clock) -> None:
    with KeyStore(path, kdf=CHEAP, clock_ns=clock) as store:
        api_key, secret = store.create(ACCOUNT, ["read", "withdraw"], label="treasury")
        disabled, _ = store.create(ACCOUNT, ["read"])
        store.disable(disabled)
        before = store.list()
    with KeyStore(path, kdf=ScryptParams(), clock_ns=clock) as store:
        assert store.list() == before
        assert store.verify(api_key, secret) == before[0]
        assert store.hmac_secret(api_key) == secret.encode()
        signature = sign(secret, T0_MS, "after-reopen")
        assert store.verify_signature(api_key, T0_MS, "after-reopen", "", signature) == before[0]
        assert store.get(disabled) == before[1]


def test_secret_never_in_the_files(path: Path, clock: Clock) -> None:
    store = KeyStore(path, kdf=CHEAP, clock_ns=clock)
    created = [store.create(f"0x{index:040x}", ["read", "trade"]) for index in range(20)]

    def files() -> list[Path]:
        return sorted(path.parent.iterdir())

    def assert_absent() -> None:
        for file in files():
            content = file.read_bytes()
            for _, secret in created:
                assert secret.encode() not in content, file
                assert secret.encode().hex().encode() not in content, file
                assert secret[:16].encode() not in content, file

    # While open the rows are in the write-ahead log; after close, in the database file.
    assert any(file.name.endswith("-wal") for file in files())
    assert_absent()
    store.close()
    assert_absent()
    public = path.read_bytes()
    assert all(api_key.encode() in public for api_key, _ in created)


def test_files_are_private(path: Path, store: KeyStore) -> None:
    store.create(ACCOUNT, ["read"])
    master = Path(f"{path}.master")
    for file in (path, master, Path(f"{path}-wal")):
        assert file.stat().st_mode & 0o777 == 0o600, file
    assert len(master.read_bytes()) == 32


def test_exposed_missing_or_wrong_master_key_refused(path: Path, clock: Clock) -> None:
    master = Path(f"{path}.master")
    with KeyStore(path, kdf=CHEAP, clock_ns=clock) as store:
        store.create(ACCOUNT, ["read"])
    master.chmod(0o640)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        KeyStore(path, clock_ns=clock)
    master.chmod(0o600)
    original = master.read_bytes()
    master.write_bytes(os.urandom(32))
    with pytest.raises(KeyStoreError, match="not the master key"):
        KeyStore(path, clock_ns=clock)
    master.unlink()
    with pytest.raises(KeyStoreError, match="missing"):
        KeyStore(path, clock_ns=clock)
    assert not master.exists(), "a missing master key is not silently replaced"
    master.write_bytes(original)
    master.chmod(0o600)
    with KeyStore(path, clock_ns=clock) as store:
        assert len(store.list()) == 1


def test_master_key_elsewhere(tmp_path: Path, clock: Clock) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    master = secrets_dir / "node.key"
    path = tmp_path / "data" / "keys.sqlite"
    path.parent.mkdir()
    with KeyStore(path, master_key_path=master, kdf=CHEAP, clock_ns=clock) as store:
        api_key, secret = store.create(ACCOUNT, ["read"])
    assert master.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys.sqlite"]
    with KeyStore(path, master_key_path=master, clock_ns=clock) as store:
        assert store.hmac_secret(api_key) == secret.encode()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("scopes", "read,trade,withdraw,admin"),
        ("account", "0xattacker"),
        ("disabled", 0),
        ("sealed_secret", b"\x00" * 43),
        ("scrypt_n", 2),
    ],
)
def test_edited_row_refused(path: Path, clock: Clock, column: str, value: object) -> None:
    with KeyStore(path, kdf=CHEAP, clock_ns=clock) as store:
        api_key, secret = store.create(ACCOUNT, ["read"])
        store.disable(api_key)
    db = sqlite3.connect(path)
    with db:
        db.execute(f"UPDATE keys SET {column} = ? WHERE api_key = ?", (value, api_key))
    db.close()
    with KeyStore(path, kdf=CHEAP, clock_ns=clock) as store:
        with pytest.raises(KeyStoreError, match="fails its tag"):
            store.get(api_key)
        with pytest.raises(KeyStoreError):
            store.verify(api_key, secret)
        with pytest.raises(KeyStoreError):
            store.list()


# -- Deribit signatures -------------------------------------------------------------------------

VECTOR_SECRET = b"vKX1mYpK4pN3Zq0x8s9eLb2cQfR7tUwA6dHjG5iSoE0"


def test_signature_fixed_vectors() -> None:
    """Values from ``openssl dgst -sha256 -hmac SECRET`` over the same strings."""
    assert signature_hex(VECTOR_SECRET, 1_700_000_000_123, "abcd1234", "") == (
        "6ae78d1ce7f6c1e772461ac77a0d3e9245704f35e3d55b8cd34033d53f179a31"
    )
    data = rest_signature_data(
        "get", "/api/v2/private/get_position?instrument_name=BTC-PERPETUAL", ""
    )
    assert data == "GET\n/api/v2/private/get_position?instrument_name=BTC-PERPETUAL\n\n"
    assert signature_hex(VECTOR_SECRET, 1_700_000_000_123, "1700000000123", data) == (
        "05a03bf695468095fb3a0bc0dd63f96e43aca005c3aab0993249f19cb092a1fe"
    )


def test_verify_signature(store: KeyStore, clock: Clock) -> None:
    api_key, secret = store.create(ACCOUNT, ["read", "trade"])
    _, other_secret = store.create(ACCOUNT, ["read"])
    clock.advance_ms(5_000)
    timestamp_ms, nonce, data = T0_MS + 3_500, "xT5sQ-1", '{"instrument_name":"BTC-PERPETUAL"}'
    expected = hmac.new(
        secret.encode(),
        f"{timestamp_ms}\n{nonce}\n{data}".encode(),
        hashlib.sha256,
    ).hexdigest()
    for wrong in (
        sign(secret, timestamp_ms, nonce, data + " "),
        sign(secret, timestamp_ms + 1, nonce, data),
        sign(other_secret, timestamp_ms, nonce, data),
        "0" * 64,
    ):
        with rejected(KeyCode.BAD_SIGNATURE):
            store.verify_signature(api_key, timestamp_ms, nonce, data, wrong)
    for malformed in ("", expected[:-2], expected + "00", "zz" + expected[2:], " " + expected[1:]):
        with rejected(KeyCode.BAD_SIGNATURE):
            store.verify_signature(api_key, timestamp_ms, nonce, data, malformed)
    with rejected(KeyCode.UNKNOWN_KEY):
        store.verify_signature("no-such-key", timestamp_ms, nonce, data, expected)
    # Failed attempts did not use up the nonce.
    record = store.verify_signature(api_key, timestamp_ms, nonce, data.encode(), expected.upper())
    assert record == store.get(api_key)


def test_rest_header_signature(store: KeyStore) -> None:
    api_key, secret = store.create(ACCOUNT, ["read"])
    nonce = str(T0_MS)
    data = rest_signature_data("GET", "/api/v2/private/get_account_summary?currency=USDC", "")
    signature = sign(secret, T0_MS, nonce, data)
    assert store.verify_signature(api_key, T0_MS, nonce, data, signature).api_key == api_key


def test_replayed_nonce_refused(store: KeyStore, clock: Clock) -> None:
    api_key, secret = store.create(ACCOUNT, ["read"])
    other_key, other_secret = store.create(ACCOUNT, ["read"])
    store.verify_signature(api_key, T0_MS, "nonce-1", "", sign(secret, T0_MS, "nonce-1"))
    clock.advance_ms(10)
    with rejected(KeyCode.NONCE_REPLAYED):
        store.verify_signature(api_key, T0_MS, "nonce-1", "", sign(secret, T0_MS, "nonce-1"))
    # The same nonce with another timestamp or data is still a replay for this key ...
    later = T0_MS + 5
    with rejected(KeyCode.NONCE_REPLAYED):
        store.verify_signature(api_key, later, "nonce-1", "x", sign(secret, later, "nonce-1", "x"))
    # ... and nonces are per key.
    signature = sign(other_secret, T0_MS, "nonce-1")
    store.verify_signature(other_key, T0_MS, "nonce-1", "", signature)


def test_timestamp_window(store: KeyStore, clock: Clock) -> None:
    api_key, secret = store.create(ACCOUNT, ["read"])
    clock.advance_ms(2 * WINDOW_MS)
    now_ms = T0_MS + 2 * WINDOW_MS

    def check(timestamp_ms: int, nonce: str) -> None:
        signature = sign(secret, timestamp_ms, nonce)
        store.verify_signature(api_key, timestamp_ms, nonce, "", signature)

    for stale in (now_ms - WINDOW_MS - 1, T0_MS, 0, -1):
        with rejected(KeyCode.TIMESTAMP_OUT_OF_WINDOW):
            check(stale, f"stale-{stale}")
    with rejected(KeyCode.TIMESTAMP_OUT_OF_WINDOW):
        check(now_ms + WINDOW_MS + 1, "future")
    check(now_ms - WINDOW_MS, "oldest")
    check(now_ms + WINDOW_MS, "newest")


def test_signatures_from_before_the_store_opened_refused(path: Path, clock: Clock) -> None:
    with KeyStore(path, kdf=CHEAP, clock_ns=clock) as store:
        api_key, secret = store.create(ACCOUNT, ["read"])
        signature = sign(secret, T0_MS, "captured")
        store.verify_signature(api_key, T0_MS, "captured", "", signature)
    clock.advance_ms(1_000)
    with (
        KeyStore(path, kdf=CHEAP, clock_ns=clock) as store,
        rejected(KeyCode.TIMESTAMP_OUT_OF_WINDOW),
    ):
        store.verify_signature(api_key, T0_MS, "captured", "", signature)


def test_clock_stepping_back_does_not_reopen_the_window(store: KeyStore, clock: Clock) -> None:
    api_key, secret = store.create(ACCOUNT, ["read"])
    clock.advance_ms(10)
    timestamp_ms = T0_MS + 10
    signature = sign(secret, timestamp_ms, "once")
    store.verify_signature(api_key, timestamp_ms, "once", "", signature)
    clock.advance_ms(3 * WINDOW_MS)
    other = sign(secret, T0_MS + 3 * WINDOW_MS, "later")
    store.verify_signature(api_key, T0_MS + 3 * WINDOW_MS, "later", "", other)
    clock.advance_ms(-3 * WINDOW_MS)
    with rejected(KeyCode.TIMESTAMP_OUT_OF_WINDOW):
        store.verify_signature(api_key, timestamp_ms, "once", "", signature)


def test_nonce_memory_is_bounded(path: Path, clock: Clock) -> None:
    limits = KeyLimits(nonces_per_key_max=3, nonces_max=5)
    with KeyStore(path, kdf=CHEAP, clock_ns=clock, limits=limits) as store:
        first, first_secret = store.create(ACCOUNT, ["read"])
        second, second_secret = store.create(ACCOUNT, ["read"])

        def check(api_key: str, secret: str, nonce: str) -> None:
            timestamp_ms = clock.now_ns // 1_000_000
            signature = sign(secret, timestamp_ms, nonce)
            store.verify_signature(api_key, timestamp_ms, nonce, "", signature)

        for index in range(3):
            check(first, first_secret, f"a{index}")
        with rejected(KeyCode.TOO_MANY_SIGNATURES):
            check(first, first_secret, "a3")
        check(second, second_secret, "b0")
        check(second, second_secret, "b1")
        with rejected(KeyCode.NONCE_MEMORY_FULL):
            check(second, second_secret, "b2")
        # Once their timestamps leave the window, the nonces are forgotten and room is back.
        clock.advance_ms(WINDOW_MS + 1)
        for index in range(3):
            check(first, first_secret, f"c{index}")
        check(second, second_secret, "b2")


# -- limits -------------------------------------------------------------------------------------


def test_keys_per_account_limit(path: Path, clock: Clock) -> None:
    limits = KeyLimits(keys_per_account_max=2, keys_max=4)
    with KeyStore(path, kdf=CHEAP, clock_ns=clock, limits=limits) as store:
        first, _ = store.create(ACCOUNT, ["read"])
        store.create(ACCOUNT, ["read"])
        with rejected(KeyCode.TOO_MANY_KEYS):
            store.create(ACCOUNT, ["read"])
        store.create("0xother", ["read"])
        store.disable(first)
        store.create(ACCOUNT, ["read"])
        with rejected(KeyCode.TOO_MANY_KEYS):
            store.create("0xthird", ["read"])
        assert len(store.list()) == 4


def test_input_limits(store: KeyStore) -> None:
    limits = store.limits
    with rejected(KeyCode.LABEL_TOO_LONG):
        store.create(ACCOUNT, ["read"], label="x" * (limits.label_chars_max + 1))
    with rejected(KeyCode.INVALID_LABEL):
        store.create(ACCOUNT, ["read"], label="line\nbreak")
    for account in ("", "0x" + "a" * limits.account_chars_max, "0x a", "0x\x00", "\ud800"):
        with rejected(KeyCode.INVALID_ACCOUNT):
            store.create(account, ["read"])
    assert store.list() == ()
    store.create(ACCOUNT, ["read"], label="y" * limits.label_chars_max)

    api_key, secret = store.create(ACCOUNT, ["read"])
    for nonce in ("", "n" * (limits.nonce_chars_max + 1), "has space", "\ud800"):
        with rejected(KeyCode.INVALID_NONCE):
            store.verify_signature(api_key, T0_MS, nonce, "", "0" * 64)
    data = "d" * (limits.signed_data_bytes_max + 1)
    with rejected(KeyCode.DATA_TOO_LARGE):
        store.verify_signature(api_key, T0_MS, "n", data, sign(secret, T0_MS, "n", data))
    with rejected(KeyCode.INVALID_DATA):
        store.verify_signature(api_key, T0_MS, "n", "\ud800", "0" * 64)


def test_limit_relations_checked() -> None:
    with pytest.raises(InvariantViolation):
        KeyLimits(keys_per_account_max=10, keys_max=5)
    with pytest.raises(InvariantViolation):
        KeyLimits(nonces_per_key_max=10, nonces_max=5)
    with pytest.raises(InvariantViolation):
        KeyLimits(signature_window_ms=0)
    with pytest.raises(InvariantViolation):
        ScryptParams(n=1000)
