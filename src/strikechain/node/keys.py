"""API keys: which account a caller of the node's API acts for, and with which scopes.

A key is a public id (``api_key``, 20 url-safe characters) and a secret (43 url-safe characters,
256 random bits) shown once, by :meth:`KeyStore.create`. Two ways to prove the secret, both
Deribit's (``public/auth``):

- ``client_credentials``, the secret itself: :meth:`KeyStore.verify` checks it against an
  scrypt hash (per-key random salt; the cost parameters are stored with each hash, so they can
  rise later without breaking old keys).
- ``client_signature`` and the REST header ``Authorization: deri-hmac-sha256
  id=KEY,ts=MS,sig=HEX,nonce=N``: an HMAC-SHA256 keyed by the secret over
  ``ts + "\\n" + nonce + "\\n" + data`` (for REST, ``data`` is :func:`rest_signature_data`).
  :meth:`KeyStore.verify_signature` checks it with a timestamp window and refuses a nonce seen
  before. Verifying an HMAC needs the secret itself, which a hash cannot give back.

The secret at rest
------------------
So the store keeps the secret, sealed with a node master key: 32 random bytes in a file beside
the database (``<path>.master`` unless ``master_key_path`` says otherwise), created with mode
0600 and refused if it is readable by group or others or owned by another user. Two subkeys are
derived from it with HMAC-SHA256 (one to encrypt, one to authenticate). A secret is encrypted
with a keystream of HMAC-SHA256(encrypt key, seal nonce || api_key || counter) blocks (a PRF in
counter mode; the seal nonce is 16 random bytes per key) and every row (account, scopes, label,
disabled flag, hash, sealed secret) carries an HMAC-SHA256 tag under the authentication key,
checked at every read. The ``cryptography`` package (AES-GCM) is not a dependency here; this
construction uses only ``hmac``/``hashlib`` from the standard library. A check value derived from
the master key is kept in the database, so a wrong or regenerated master key is refused at open
instead of failing key by key.

Threat model. *Protected:* whoever reads the database file alone (a backup, a copied data
directory without the master key, a replica) learns no secret: the hash is scrypt of a 256-bit
random value and the sealed copy needs the master key. Whoever can write the database but not
read the master key cannot grant scopes, move a key to another account, re-enable a disabled key
by editing its row, or plant a secret: the row tag fails and the store raises
:class:`KeyStoreError`. *Not protected:* whoever reads both files (the same user on the same
disk, root, a backup that holds both) has every secret; keep the master key off the backups of
the data directory (``master_key_path`` can point at another mount). Code running as the node's
user can read the secrets from memory. Rolling the whole database back to an older copy (a
restored backup) brings back keys disabled since: disable them again after a restore. Losing the
master key makes the store unusable: create new keys.

Replay. Nonces are remembered in memory, per key, for as long as their timestamp is inside the
window (``KeyLimits.signature_window_ms`` either side of the node's clock); the lower edge of the
window follows the highest clock reading seen, so a clock stepping back does not reopen it, and
timestamps from before this store was opened are refused, so a signature captured before a
restart cannot be replayed after it (a client whose clock is behind the node's by d is refused
for d after a restart). The memory is bounded (``nonces_per_key_max``, ``nonces_max``); when full
it refuses new signatures rather than forget a nonce. One process per store: the nonce memory
is not shared between processes.

Scopes. A fixed vocabulary (:class:`Scope`), granted explicitly (none implies another). Deribit
names map onto it in the API layer: ``trade:read`` and ``account:read`` to ``read``,
``trade:read_write`` to ``read`` and ``trade``, ``wallet:read_write`` to ``read`` and
``withdraw``, ``account:read_write`` to ``read`` and ``admin``.

Failures. Bad input (an unknown key, a wrong signature, a label too long) is a
:class:`KeyRejection` with a stable :class:`KeyCode`; a wrong secret given to :meth:`verify` is
``None``. A store that cannot be trusted (master key missing, wrong or exposed, a row whose tag
fails) raises :class:`KeyStoreError`: an operator must act, the node stops.

One connection, used from one thread (``sqlite3``'s default).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import heapq
import hmac
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from strikechain.engine.invariant import invariant
from strikechain.engine.limits import Limits
from strikechain.runtime.sqlite_log import WriteTransaction

SCHEMA_VERSION: Final = 1
API_KEY_BYTES: Final = 15
"""Random bytes of a public key id: 20 url-safe characters."""
SECRET_BYTES: Final = 32
"""Random bytes of a secret: 43 url-safe characters."""
MASTER_KEY_BYTES: Final = 32
SEAL_NONCE_BYTES: Final = 16
SIGNATURE_HEX_CHARS: Final = 64
NANOS_PER_MILLISECOND: Final = 1_000_000

_DOMAIN: Final = b"strikechain.node.keys.v1."
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS keys("
    "api_key TEXT PRIMARY KEY, account TEXT NOT NULL, scopes TEXT NOT NULL, "
    "label TEXT NOT NULL, created_at_ns INTEGER NOT NULL, disabled INTEGER NOT NULL, "
    "scrypt_n INTEGER NOT NULL, scrypt_r INTEGER NOT NULL, scrypt_p INTEGER NOT NULL, "
    "salt BLOB NOT NULL, secret_hash BLOB NOT NULL, seal_nonce BLOB NOT NULL, "
    "sealed_secret BLOB NOT NULL, tag BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS keys_by_account ON keys(account)",
)
_COLUMNS: Final = (
    "api_key, account, scopes, label, created_at_ns, disabled, scrypt_n, scrypt_r, scrypt_p, "
    "salt, secret_hash, seal_nonce, sealed_secret"
)


class Scope(enum.StrEnum):
    """What a key may do. Released names never change meaning."""

    READ = "read"
    """Read the account's orders, positions, balances."""
    TRADE = "trade"
    """Place, amend and cancel orders."""
    WITHDRAW = "withdraw"
    """Move collateral out of the account."""
    ADMIN = "admin"
    """Manage the account's keys and settings."""


_SCOPE_ORDER: Final = {scope: index for index, scope in enumerate(Scope)}


class KeyCode(enum.StrEnum):
    """Why the key store refused an input. Released codes never change meaning."""

    UNKNOWN_KEY = "UNKNOWN_KEY"
    KEY_DISABLED = "KEY_DISABLED"
    SCOPE_MISSING = "SCOPE_MISSING"
    """The key exists and is enabled but was not granted the scope."""
    UNKNOWN_SCOPE = "UNKNOWN_SCOPE"
    NO_SCOPES = "NO_SCOPES"
    INVALID_ACCOUNT = "INVALID_ACCOUNT"
    INVALID_LABEL = "INVALID_LABEL"
    LABEL_TOO_LONG = "LABEL_TOO_LONG"
    TOO_MANY_KEYS = "TOO_MANY_KEYS"
    """The account has its maximum of enabled keys, or the store its maximum of keys."""
    BAD_SIGNATURE = "BAD_SIGNATURE"
    TIMESTAMP_OUT_OF_WINDOW = "TIMESTAMP_OUT_OF_WINDOW"
    """Too old, too far ahead of the node's clock, or from before the node started."""
    INVALID_NONCE = "INVALID_NONCE"
    INVALID_DATA = "INVALID_DATA"
    """Signed data that is not valid UTF-8 text."""
    NONCE_REPLAYED = "NONCE_REPLAYED"
    DATA_TOO_LARGE = "DATA_TOO_LARGE"
    TOO_MANY_SIGNATURES = "TOO_MANY_SIGNATURES"
    """The key signed its maximum of requests inside one window; retry later."""
    NONCE_MEMORY_FULL = "NONCE_MEMORY_FULL"
    """All keys together did; retry later."""


class KeyRejection(Exception):
    """An input the key store refused; carries a :class:`KeyCode`, changes nothing."""

    def __init__(self, code: KeyCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class KeyStoreError(Exception):
    """The store cannot be trusted as it is (master key missing, wrong or exposed; a row whose
    tag fails; an unknown schema). Never the caller's fault: an operator must act."""


@dataclasses.dataclass(frozen=True, slots=True)
class KeyLimits:
    """Every bound of the key store, with their relations checked."""

    keys_per_account_max: int = 16
    """Enabled keys of one account."""
    keys_max: int = 100_000
    """Rows in the store, disabled ones included (keys are disabled, never deleted)."""
    account_chars_max: int = Limits().max_account_length
    label_chars_max: int = 64
    secret_chars_max: int = 128
    """A longer secret given to :meth:`KeyStore.verify` is wrong without hashing it."""
    nonce_chars_max: int = 64
    signed_data_bytes_max: int = 65_536
    signature_window_ms: int = 60_000
    """A signature's timestamp may be this far behind or ahead of the node's clock."""
    nonces_per_key_max: int = 10_000
    """Signatures of one key remembered at once (one window's worth)."""
    nonces_max: int = 200_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            invariant(getattr(self, field.name) > 0, f"KeyLimits.{field.name} must be positive")
        invariant(self.keys_per_account_max <= self.keys_max, "per-account keys <= keys")
        invariant(self.nonces_per_key_max <= self.nonces_max, "per-key nonces <= nonces")
        invariant(
            self.secret_chars_max >= -(-SECRET_BYTES * 4 // 3),
            "a generated secret fits secret_chars_max",
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt's cost for new keys (old keys keep the parameters stored with their hash).

    The default (N=2**14, r=8: 16 MiB, tens of ms) is low for a password but the secrets are
    256 random bits: the hash guards a leaked file, it does not stretch a guessable input, and
    :meth:`KeyStore.verify` is on the login path. Tests use a lower N.
    """

    n: int = 2**14
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        invariant(2 <= self.n <= 2**20 and self.n & (self.n - 1) == 0, "scrypt n: 2..2**20, 2**k")
        invariant(1 <= self.r <= 32 and 1 <= self.p <= 16, "scrypt r in 1..32, p in 1..16")

    def derive(self, secret: bytes, salt: bytes) -> bytes:
        maxmem = 128 * self.r * (self.n + self.p + 2) + 65_536
        return hashlib.scrypt(
            secret, salt=salt, n=self.n, r=self.r, p=self.p, maxmem=maxmem, dklen=32
        )


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as the API sees it: never its secret."""

    api_key: str
    account: str
    scopes: tuple[Scope, ...]
    """In :class:`Scope`'s order, each once."""
    label: str
    created_at_ns: int
    disabled: bool

    def has_scope(self, scope: Scope) -> bool:
        return scope in self.scopes


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    record: KeyRecord
    kdf: ScryptParams
    salt: bytes
    secret_hash: bytes
    seal_nonce: bytes
    sealed_secret: bytes


def rest_signature_data(method: str, uri_with_query: str, body: str) -> str:
    """The ``data`` a Deribit REST request signs: ``METHOD\\nURI?QUERY\\nBODY\\n``."""
    return f"{method.upper()}\n{uri_with_query}\n{body}\n"


def signature_hex(secret: bytes, timestamp_ms: int, nonce: str, data: str | bytes) -> str:
    """Deribit's signature: hex HMAC-SHA256(secret, ``ts\\nnonce\\ndata``)."""
    raw = data.encode() if isinstance(data, str) else data
    return hmac.new(secret, _string_to_sign(timestamp_ms, nonce, raw), hashlib.sha256).hexdigest()


def _string_to_sign(timestamp_ms: int, nonce: str, data: bytes) -> bytes:
    return f"{timestamp_ms}\n{nonce}\n".encode() + data


class KeyStore:
    """The API keys in the SQLite file at ``path`` (created if missing, continued if not)."""

    def __init__(
        self,
        path: str | Path,
        *,
        master_key_path: str | Path | None = None,
        limits: KeyLimits | None = None,
        kdf: ScryptParams | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = Path(path)
        self.master_key_path = (
            Path(master_key_path) if master_key_path is not None else Path(f"{self.path}.master")
        )
        self.limits = limits if limits is not None else KeyLimits()
        self.kdf = kdf if kdf is not None else ScryptParams()
        self._clock_ns = clock_ns
        _create_private_file(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise
        opened_at_ms = clock_ns() // NANOS_PER_MILLISECOND
        self._nonces = _NonceMemory(self.limits, opened_at_ms)

    def _open(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise KeyStoreError(f"{self.path}: could not switch the journal to WAL (got {mode})")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                db.execute(statement)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if "schema" in meta and meta["schema"] != SCHEMA_VERSION:
                raise KeyStoreError(f"{self.path}: schema {meta['schema']}, this reads 1")
            if "key_check" in meta and not self.master_key_path.exists():
                raise KeyStoreError(
                    f"{self.path} holds keys sealed with a master key, but "
                    f"{self.master_key_path} is missing: restore it, or start a new key store"
                )
            master = _load_or_create_master_key(self.master_key_path)
            self._encrypt_key = _derive(master, b"encrypt")
            self._tag_key = _derive(master, b"authenticate")
            check = _derive(master, b"check")
            if "key_check" not in meta:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                db.execute("INSERT INTO meta VALUES ('key_check', ?)", (check,))
            elif not hmac.compare_digest(bytes(meta["key_check"]), check):
                raise KeyStoreError(
                    f"{self.master_key_path} is not the master key {self.path} was sealed with"
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- keys ----------------------------------------------------------------------------------

    def create(
        self, account: str, scopes: Iterable[Scope | str], label: str = ""
    ) -> tuple[str, str]:
        """A new key for ``account``: ``(api_key, api_secret)``. The secret is shown only here."""
        granted = self._check_new_key(account, scopes, label)
        api_key = secrets.token_urlsafe(API_KEY_BYTES)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        salt = secrets.token_bytes(16)
        seal_nonce = secrets.token_bytes(SEAL_NONCE_BYTES)
        row = _Row(
            record=KeyRecord(
                api_key=api_key,
                account=account,
                scopes=granted,
                label=label,
                created_at_ns=self._clock_ns(),
                disabled=False,
            ),
            kdf=self.kdf,
            salt=salt,
            secret_hash=self.kdf.derive(secret.encode(), salt),
            seal_nonce=seal_nonce,
            sealed_secret=self._seal(api_key, seal_nonce, secret.encode()),
        )
        with WriteTransaction(self._db):
            self._check_room(account)
            self._db.execute(
                f"INSERT INTO keys({_COLUMNS}, tag) VALUES ({', '.join('?' * 14)})",
                (*_row_values(row), self._tag(row)),
            )
        return api_key, secret

    def get(self, api_key: str) -> KeyRecord | None:
        """The key's record (enabled or not), or ``None`` if there is no such key."""
        row = self._read(api_key)
        return None if row is None else row.record

    def require(self, api_key: str, scope: Scope) -> KeyRecord:
        """The enabled key's record if it has ``scope``; else :class:`KeyRejection`."""
        record = self._require_enabled(api_key).record
        if scope not in record.scopes:
            granted = ", ".join(record.scopes)
            raise KeyRejection(
                KeyCode.SCOPE_MISSING, f"key {api_key} has scopes [{granted}], not {scope}"
            )
        return record

    def verify(self, api_key: str, api_secret: str) -> KeyRecord | None:
        """The record of an enabled key whose secret is ``api_secret``, else ``None`` (unknown
        key, disabled key or wrong secret alike: the caller answers "invalid credentials")."""
        row = self._read(api_key)
        if (
            row is None
            or row.record.disabled
            or len(api_secret) > self.limits.secret_chars_max
            or not api_secret.isascii()
        ):
            return None
        candidate = row.kdf.derive(api_secret.encode(), row.salt)
        return row.record if hmac.compare_digest(candidate, row.secret_hash) else None

    def hmac_secret(self, api_key: str) -> bytes:
        """The enabled key's secret as the HMAC key Deribit's signatures use (its UTF-8 bytes).

        For the API layer to compute an expected signature; prefer :meth:`verify_signature`.
        """
        row = self._require_enabled(api_key)
        return self._unseal(row)

    def verify_signature(
        self, api_key: str, timestamp_ms: int, nonce: str, data: str | bytes, signature_hex: str
    ) -> KeyRecord:
        """Check a Deribit ``client_signature`` (or REST header) signature and remember its
        nonce; the enabled key's record, else :class:`KeyRejection`.

        Checked in this order, cheapest first, the nonce remembered only once the signature is
        valid (so that no one without the secret can fill the memory).
        """
        raw = _check_signature_input(self.limits, nonce, data, signature_hex)
        row = self._require_enabled(api_key)
        now_ms = self._clock_ns() // NANOS_PER_MILLISECOND
        self._nonces.check_timestamp(timestamp_ms, now_ms)
        expected = hmac.new(
            self._unseal(row), _string_to_sign(timestamp_ms, nonce, raw), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(expected, bytes.fromhex(signature_hex)):
            raise KeyRejection(KeyCode.BAD_SIGNATURE, f"the signature does not match key {api_key}")
        self._nonces.remember(api_key, nonce, timestamp_ms)
        return row.record

    def disable(self, api_key: str) -> KeyRecord:
        """Disable the key for good (idempotent); its record as it now is."""
        with WriteTransaction(self._db):
            row = self._read(api_key)
            if row is None:
                raise KeyRejection(KeyCode.UNKNOWN_KEY, f"no key {api_key}")
            disabled = dataclasses.replace(
                row, record=dataclasses.replace(row.record, disabled=True)
            )
            self._db.execute(
                "UPDATE keys SET disabled = 1, tag = ? WHERE api_key = ?",
                (self._tag(disabled), api_key),
            )
        return disabled.record

    def list(self, account: str | None = None) -> tuple[KeyRecord, ...]:
        """Every key (of ``account`` if given), disabled ones too, oldest first."""
        where, args = ("WHERE account = ?", (account,)) if account is not None else ("", ())
        rows = self._db.execute(
            f"SELECT {_COLUMNS}, tag FROM keys {where} ORDER BY rowid", args
        ).fetchall()
        return tuple(self._checked(raw).record for raw in rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------

    def _check_new_key(
        self, account: str, scopes: Iterable[Scope | str], label: str
    ) -> tuple[Scope, ...]:
        limits = self.limits
        if not 0 < len(account) <= limits.account_chars_max or not _is_plain(account):
            raise KeyRejection(
                KeyCode.INVALID_ACCOUNT,
                f"an account is 1 to {limits.account_chars_max} printable characters, no spaces",
            )
        if len(label) > limits.label_chars_max:
            raise KeyRejection(
                KeyCode.LABEL_TOO_LONG,
                f"a label is at most {limits.label_chars_max} characters, not {len(label)}",
            )
        if not label.isprintable():
            raise KeyRejection(KeyCode.INVALID_LABEL, "a label has no control characters")
        granted: set[Scope] = set()
        for name in scopes:
            if name not in _SCOPE_ORDER:
                known = ", ".join(Scope)
                raise KeyRejection(KeyCode.UNKNOWN_SCOPE, f"{name!r} is not one of [{known}]")
            granted.add(Scope(name))
        if not granted:
            raise KeyRejection(KeyCode.NO_SCOPES, "a key needs at least one scope")
        return tuple(sorted(granted, key=_SCOPE_ORDER.__getitem__))

    def _check_room(self, account: str) -> None:
        limits = self.limits
        total = self._db.execute("SELECT COUNT(*) FROM keys").fetchone()[0]
        if total >= limits.keys_max:
            raise KeyRejection(
                KeyCode.TOO_MANY_KEYS, f"the store holds its maximum of {limits.keys_max} keys"
            )
        enabled = self._db.execute(
            "SELECT COUNT(*) FROM keys WHERE account = ? AND disabled = 0", (account,)
        ).fetchone()[0]
        if enabled >= limits.keys_per_account_max:
            raise KeyRejection(
                KeyCode.TOO_MANY_KEYS,
                f"{account} has {enabled} enabled keys, the maximum: disable one first",
            )

    def _read(self, api_key: str) -> _Row | None:
        raw = self._db.execute(
            f"SELECT {_COLUMNS}, tag FROM keys WHERE api_key = ?", (api_key,)
        ).fetchone()
        return None if raw is None else self._checked(raw)

    def _require_enabled(self, api_key: str) -> _Row:
        row = self._read(api_key)
        if row is None:
            raise KeyRejection(KeyCode.UNKNOWN_KEY, f"no key {api_key}")
        if row.record.disabled:
            raise KeyRejection(KeyCode.KEY_DISABLED, f"key {api_key} is disabled")
        return row

    def _checked(self, raw: Any) -> _Row:
        """The row, once its tag shows it was written with this master key and not edited."""
        row = _decode_row(raw[:-1])
        if not hmac.compare_digest(self._tag(row), bytes(raw[-1])):
            raise KeyStoreError(
                f"{self.path}: the record of key {row.record.api_key} fails its tag: edited "
                "outside the node, or sealed with another master key"
            )
        return row

    def _tag(self, row: _Row) -> bytes:
        return hmac.new(self._tag_key, _canonical(row), hashlib.sha256).digest()

    def _seal(self, api_key: str, seal_nonce: bytes, secret: bytes) -> bytes:
        stream = _keystream(self._encrypt_key, seal_nonce, api_key, len(secret))
        return bytes(a ^ b for a, b in zip(secret, stream, strict=True))

    def _unseal(self, row: _Row) -> bytes:
        return self._seal(row.record.api_key, row.seal_nonce, row.sealed_secret)


class _NonceMemory:
    """The nonces of valid signatures whose timestamp is still inside the window.

    An entry is kept until the lower edge of the window, which follows the highest clock
    reading seen (never a lower one), passes its timestamp; a heap orders them by that time.
    """

    def __init__(self, limits: KeyLimits, opened_at_ms: int) -> None:
        self._window_ms = limits.signature_window_ms
        self._per_key_max = limits.nonces_per_key_max
        self._max = limits.nonces_max
        self._opened_at_ms = opened_at_ms
        self._high_water_ms = opened_at_ms
        self._seen: set[tuple[str, str]] = set()
        self._per_key: dict[str, int] = {}
        self._expiry: list[tuple[int, str, str]] = []

    def check_timestamp(self, timestamp_ms: int, now_ms: int) -> None:
        self._high_water_ms = max(self._high_water_ms, now_ms)
        earliest = max(self._high_water_ms - self._window_ms, self._opened_at_ms)
        latest = now_ms + self._window_ms
        if not earliest <= timestamp_ms <= latest:
            raise KeyRejection(
                KeyCode.TIMESTAMP_OUT_OF_WINDOW,
                f"timestamp {timestamp_ms} ms is outside [{earliest}, {latest}]: sign with the "
                f"current time (the window is {self._window_ms} ms either side)",
            )

    def remember(self, api_key: str, nonce: str, timestamp_ms: int) -> None:
        self._forget_expired()
        entry = (api_key, nonce)
        if entry in self._seen:
            raise KeyRejection(KeyCode.NONCE_REPLAYED, f"nonce {nonce!r} was already used")
        count = self._per_key.get(api_key, 0)
        if count >= self._per_key_max:
            raise KeyRejection(
                KeyCode.TOO_MANY_SIGNATURES,
                f"key {api_key} signed {count} requests in one window, the maximum: retry later",
            )
        if len(self._seen) >= self._max:
            raise KeyRejection(KeyCode.NONCE_MEMORY_FULL, "too many signed requests: retry later")
        self._seen.add(entry)
        self._per_key[api_key] = count + 1
        heapq.heappush(self._expiry, (timestamp_ms, api_key, nonce))

    def _forget_expired(self) -> None:
        earliest = self._high_water_ms - self._window_ms
        while self._expiry and self._expiry[0][0] < earliest:
            _, api_key, nonce = heapq.heappop(self._expiry)
            self._seen.discard((api_key, nonce))
            left = self._per_key[api_key] - 1
            if left:
                self._per_key[api_key] = left
            else:
                del self._per_key[api_key]

    def __len__(self) -> int:
        return len(self._seen)


def _check_signature_input(limits: KeyLimits, nonce: str, data: str | bytes, sig: str) -> bytes:
    """The signed data as bytes, once the inputs are within limits."""
    if not 0 < len(nonce) <= limits.nonce_chars_max or not _is_plain(nonce):
        raise KeyRejection(
            KeyCode.INVALID_NONCE,
            f"a nonce is 1 to {limits.nonce_chars_max} printable characters, no spaces",
        )
    try:
        raw = data.encode() if isinstance(data, str) else data
    except UnicodeEncodeError as error:
        raise KeyRejection(KeyCode.INVALID_DATA, "signed data is not valid UTF-8") from error
    if len(raw) > limits.signed_data_bytes_max:
        raise KeyRejection(
            KeyCode.DATA_TOO_LARGE,
            f"signed data is at most {limits.signed_data_bytes_max} bytes, not {len(raw)}",
        )
    if len(sig) != SIGNATURE_HEX_CHARS or not all(c in "0123456789abcdefABCDEF" for c in sig):
        raise KeyRejection(
            KeyCode.BAD_SIGNATURE, f"a signature is {SIGNATURE_HEX_CHARS} hexadecimal digits"
        )
    return raw


def _is_plain(text: str) -> bool:
    return text.isprintable() and not any(c.isspace() for c in text)


def _derive(master: bytes, purpose: bytes) -> bytes:
    return hmac.new(master, _DOMAIN + purpose, hashlib.sha256).digest()


def _keystream(key: bytes, seal_nonce: bytes, api_key: str, length: int) -> bytes:
    prefix = _DOMAIN + b"stream." + seal_nonce + api_key.encode()
    blocks = (length + 31) // 32
    stream = b"".join(
        hmac.new(key, prefix + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        for counter in range(blocks)
    )
    return stream[:length]


def _canonical(row: _Row) -> bytes:
    """Every field of a row in one unambiguous byte string (JSON of a flat list)."""
    fields = [_DOMAIN.decode() + "record"] + [
        value.hex() if isinstance(value, bytes) else value for value in _row_values(row)
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()


def _row_values(row: _Row) -> tuple[object, ...]:
    record = row.record
    return (
        record.api_key,
        record.account,
        ",".join(record.scopes),
        record.label,
        record.created_at_ns,
        int(record.disabled),
        row.kdf.n,
        row.kdf.r,
        row.kdf.p,
        row.salt,
        row.secret_hash,
        row.seal_nonce,
        row.sealed_secret,
    )


def _decode_row(raw: Any) -> _Row:
    api_key, account, scopes, label, created_at_ns, disabled, n, r, p = raw[:9]
    salt, secret_hash, seal_nonce, sealed_secret = (bytes(value) for value in raw[9:])
    try:
        granted = tuple(Scope(name) for name in str(scopes).split(","))
        kdf = ScryptParams(n=int(n), r=int(r), p=int(p))
    except (ValueError, AssertionError) as error:
        raise KeyStoreError(f"the record of key {api_key} is malformed: {error}") from error
    record = KeyRecord(
        api_key=str(api_key),
        account=str(account),
        scopes=granted,
        label=str(label),
        created_at_ns=int(created_at_ns),
        disabled=bool(disabled),
    )
    return _Row(record, kdf, salt, secret_hash, seal_nonce, sealed_secret)


def _create_private_file(path: Path) -> None:
    """Create an empty file readable by its owner only, unless it exists (SQLite gives its WAL
    and shared-memory files the database file's permissions)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _load_or_create_master_key(path: Path) -> bytes:
    if not path.exists():
        _write_master_key(path)
    status = path.stat()
    if os.name == "posix" and (status.st_mode & 0o077 or status.st_uid != os.getuid()):
        raise KeyStoreError(
            f"{path} must be readable by its owner only, the node's user (chmod 600), "
            f"not mode {status.st_mode & 0o777:o} owned by uid {status.st_uid}"
        )
    master = path.read_bytes()
    if len(master) != MASTER_KEY_BYTES:
        raise KeyStoreError(f"{path} holds {len(master)} bytes, not a {MASTER_KEY_BYTES}-byte key")
    return master


def _write_master_key(path: Path) -> None:
    """Write a new master key atomically: a temporary file, then a link that fails if another
    process created the key meanwhile (whose key is then used)."""
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(MASTER_KEY_BYTES))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        temporary.unlink(missing_ok=True)
