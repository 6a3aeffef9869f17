"""Signatures and EIP-712: known vectors, round trips, refusals, and eth-account as the referee."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.oracle import (
    MAX_VOL_NODES,
    MAX_VOL_PPM,
    OracleReport,
    VolSlice,
    report_digest,
    report_struct_hash,
    sign_report,
)
from strikechain.engine.signing import (
    DEFAULT_DOMAIN,
    SECP256K1_HALF_ORDER,
    SECP256K1_ORDER,
    ZERO_ADDRESS,
    SigningDomain,
    address_of,
    domain_separator,
    encode_address,
    encode_bool,
    encode_bytes32,
    encode_int,
    encode_string,
    encode_uint,
    is_address,
    keccak256,
    recover_address,
    sign_digest,
    typed_data_digest,
)
from strikechain.engine.units import INT64_MAX
from tests.engine.harness import eip712_message

KEY_ONE = (1).to_bytes(32, "big")
ADDRESS_ONE = "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
KEY = keccak256(b"test reporter")
DIGEST = keccak256(b"a message")

private_keys = st.integers(1, SECP256K1_ORDER - 1).map(lambda n: n.to_bytes(32, "big"))
digests = st.binary(min_size=32, max_size=32)


def _split(signature: bytes) -> tuple[int, int, int]:
    return (
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )


def _join(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))


# --- keccak, addresses ------------------------------------------------------------------------


def test_keccak256_is_ethereum_keccak_not_sha3() -> None:
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )


def test_address_of_private_key_one() -> None:
    assert address_of(KEY_ONE) == ADDRESS_ONE
    assert is_address(ADDRESS_ONE)


@settings(max_examples=30)
@given(private_keys)
def test_address_of_matches_eth_account(private_key: bytes) -> None:
    address = address_of(private_key)
    assert address == Account.from_key(private_key).address.lower()
    assert is_address(address)


@pytest.mark.parametrize(
    "text",
    [
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf",  # EIP-55 display form: not canonical
        "7e5f4552091a69125d5dfcb7b8c2659029395bdf",
        "0x7e5f4552091a69125d5dfcb7b8c2659029395bd",
        "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf0",
        "0x7e5f4552091a69125d5dfcb7b8c2659029395bdg",
        "",
        None,
        b"0x7e5f4552091a69125d5dfcb7b8c2659029395bdf",
    ],
)
def test_non_canonical_addresses(text: object) -> None:
    assert not is_address(text)


@pytest.mark.parametrize(
    "key", [bytes(32), SECP256K1_ORDER.to_bytes(32, "big"), b"\x01" * 31, "00" * 32]
)
def test_invalid_private_keys_raise(key: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        address_of(key)


# --- sign and recover -------------------------------------------------------------------------


def test_signature_shape_and_eth_account_agreement() -> None:
    signature = sign_digest(DIGEST, KEY)
    r, s, v = _split(signature)
    assert len(signature) == 65
    assert v in (27, 28)
    assert 0 < s <= SECP256K1_HALF_ORDER
    # RFC 6979 nonces on both sides: the very same bytes.
    assert signature == bytes(Account.unsafe_sign_hash(DIGEST, KEY).signature)
    assert 0 < r < SECP256K1_ORDER


@settings(max_examples=40)
@given(private_keys, digests)
def test_sign_recover_round_trip(private_key: bytes, digest: bytes) -> None:
    signature = sign_digest(digest, private_key)
    assert signature == sign_digest(digest, private_key)  # deterministic
    assert _split(signature)[1] <= SECP256K1_HALF_ORDER
    assert recover_address(digest, signature) == address_of(private_key)


def test_tampered_digest_recovers_someone_else() -> None:
    signature = sign_digest(DIGEST, KEY)
    tampered = bytes((DIGEST[0] ^ 1,)) + DIGEST[1:]
    recovered = recover_address(tampered, signature)
    assert recovered != address_of(KEY)


def test_high_s_twin_is_refused() -> None:
    """(r, n - s) with the other v is the same key's valid signature: refused as malleable."""
    r, s, v = _split(sign_digest(DIGEST, KEY))
    twin = _join(r, SECP256K1_ORDER - s, 55 - v)
    assert recover_address(DIGEST, twin) is None


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda sig: sig[:64], id="64 bytes"),
        pytest.param(lambda sig: sig + b"\x00", id="66 bytes"),
        pytest.param(lambda sig: b"", id="empty"),
        pytest.param(lambda sig: sig[:64] + b"\x00", id="v=0"),
        pytest.param(lambda sig: sig[:64] + b"\x01", id="v=1"),
        pytest.param(lambda sig: sig[:64] + b"\x1d", id="v=29"),
        pytest.param(lambda sig: bytes(32) + sig[32:], id="r=0"),
        pytest.param(lambda sig: sig[:32] + bytes(32) + sig[64:], id="s=0"),
        pytest.param(lambda sig: SECP256K1_ORDER.to_bytes(32, "big") + sig[32:], id="r=n"),
        pytest.param(lambda sig: b"\xff" * 64 + sig[64:], id="r,s=2**256-1"),
        pytest.param(lambda sig: bytes(65), id="zeros"),
        pytest.param(bytearray, id="bytearray"),
        pytest.param(lambda sig: sig.hex(), id="hex text"),
        pytest.param(lambda sig: None, id="None"),
    ],
)
def test_malformed_signatures_recover_nobody(mutate: Any) -> None:
    assert recover_address(DIGEST, mutate(sign_digest(DIGEST, KEY))) is None


@pytest.mark.parametrize("digest", [DIGEST[:31], DIGEST + b"\x00", DIGEST.hex(), None])
def test_malformed_digests_recover_nobody(digest: Any) -> None:
    assert recover_address(digest, sign_digest(DIGEST, KEY)) is None


def test_r_without_a_curve_point_recovers_nobody() -> None:
    """x = 5 is not the x of any point of secp256k1 (5**3 + 7 is not a square mod p)."""
    assert recover_address(DIGEST, _join(5, 1, 27)) is None


@settings(max_examples=200)
@given(digests, st.binary(min_size=65, max_size=65))
def test_garbage_never_raises(digest: bytes, signature: bytes) -> None:
    recovered = recover_address(digest, signature)
    assert recovered is None or is_address(recovered)


@pytest.mark.parametrize("digest", [DIGEST[:31], DIGEST.hex()])
def test_signing_a_non_digest_raises(digest: Any) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        sign_digest(digest, KEY)


# --- EIP-712 words ----------------------------------------------------------------------------


def test_word_encodings() -> None:
    assert encode_uint(1) == bytes(31) + b"\x01"
    assert encode_uint(2**64 - 1, 64) == bytes(24) + b"\xff" * 8
    assert encode_int(-1) == b"\xff" * 32
    assert encode_int(-(2**31), 32) == b"\xff" * 28 + b"\x80" + bytes(3)
    assert encode_bool(True) == encode_uint(1)
    assert encode_bool(False) == bytes(32)
    assert encode_address(ADDRESS_ONE) == bytes(12) + bytes.fromhex(ADDRESS_ONE[2:])
    assert encode_bytes32(DIGEST) == DIGEST
    assert encode_string("BTC") == keccak256(b"BTC")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (encode_uint, -1),
        (encode_uint, 2**256),
        (lambda v: encode_uint(v, 32), 2**32),
        (lambda v: encode_uint(v, 7), 1),
        (encode_uint, True),
        (lambda v: encode_int(v, 8), 128),
        (lambda v: encode_int(v, 8), -129),
        (encode_bool, 1),
        (encode_address, "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"),
        (encode_bytes32, b"\x00" * 31),
    ],
)
def test_word_encodings_refuse_out_of_range(call: Any, argument: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        call(argument)


def test_domain_separator_and_digest_match_eth_account() -> None:
    message = _typed_message(_report(), DEFAULT_DOMAIN)
    signable = encode_typed_data(full_message=message)
    separator = domain_separator("strikechain", "1", 31337, ZERO_ADDRESS)
    assert bytes(signable.header) == separator == DEFAULT_DOMAIN.separator
    digest = typed_data_digest(separator, bytes(signable.body))
    assert digest == keccak256(b"\x19" + signable.version + signable.header + signable.body)


def test_signing_domain() -> None:
    domain = SigningDomain(chain_id=1, verifying_contract="0x" + "ab" * 20)
    assert domain.separator == domain_separator("strikechain", "1", 1, "0x" + "ab" * 20)
    assert domain.separator is domain.separator  # computed once
    assert domain == SigningDomain(chain_id=1, verifying_contract="0x" + "ab" * 20)
    assert msgspec.json.encode(domain) == (
        b'{"chain_id":1,"verifying_contract":"0x' + b"ab" * 20 + b'"}'
    )
    with pytest.raises(InvariantViolation):
        SigningDomain(chain_id=0)
    with pytest.raises(InvariantViolation):
        SigningDomain(verifying_contract="0x" + "AB" * 20)


# --- oracle reports as EIP-712 typed data -----------------------------------------------------


def _report(**fields: Any) -> OracleReport:
    values: dict[str, Any] = {
        "account": address_of(KEY),
        "underlying": "BTC",
        "timestamp_ns": 1_767_225_600_000_000_000,
        "price": 100_000_000_000,
        "confidence": 25_000_000,
        "vols": (
            VolSlice(1_767_772_800_000_000_000, (700_000, 620_000, 560_000, 600_000)),
            VolSlice(1_769_760_000_000_000_000, (650_000, 600_000, 550_000, 580_000)),
        ),
    }
    values.update(fields)
    return OracleReport(**values)


def _typed_message(report: OracleReport, domain: SigningDomain) -> dict[str, Any]:
    """The report as eth-account's full typed-data message, written from EIP-712 directly."""
    return eip712_message(
        "OracleReport",
        {
            "OracleReport": [
                {"name": "reporter", "type": "address"},
                {"name": "underlying", "type": "string"},
                {"name": "timestampNs", "type": "uint64"},
                {"name": "price", "type": "uint256"},
                {"name": "confidence", "type": "uint256"},
                {"name": "vols", "type": "VolSlice[]"},
            ],
            "VolSlice": [
                {"name": "expiryNs", "type": "uint64"},
                {"name": "volsPpm", "type": "uint32[]"},
            ],
        },
        domain,
        {
            "reporter": report.account,
            "underlying": report.underlying,
            "timestampNs": report.timestamp_ns,
            "price": report.price,
            "confidence": report.confidence,
            "vols": [{"expiryNs": s.expiry_ns, "volsPpm": list(s.vols_ppm)} for s in report.vols],
        },
    )


GOLDEN_REPORT_DIGEST = "e4c837272b486eb1a56a381691bd17d41daa6ce8c0b5414aa736d69e3107fcd4"


def test_report_digest_golden() -> None:
    """Pins the encoding: a change here breaks every reporter's and verifier's signatures."""
    assert report_digest(_report()).hex() == GOLDEN_REPORT_DIGEST


@st.composite
def reports(draw: st.DrawFn) -> OracleReport:
    price = draw(st.integers(1, INT64_MAX))
    nodes = draw(st.integers(1, MAX_VOL_NODES))
    expiries = sorted(
        draw(
            st.lists(
                st.integers(1, INT64_MAX // 10**9).map(lambda s: s * 10**9),
                unique=True,
                max_size=4,
            )
        )
    )
    vols = tuple(
        VolSlice(
            expiry,
            tuple(draw(st.lists(st.integers(1, MAX_VOL_PPM), min_size=nodes, max_size=nodes))),
        )
        for expiry in expiries
    )
    return OracleReport(
        account=address_of(draw(private_keys)),
        underlying=draw(st.from_regex(r"[A-Z][A-Z0-9]{0,11}", fullmatch=True)),
        timestamp_ns=draw(st.integers(0, INT64_MAX)),
        price=price,
        confidence=draw(st.integers(0, price - 1)),
        vols=vols,
    )


domains = st.builds(
    SigningDomain,
    chain_id=st.integers(1, 2**256 - 1),
    verifying_contract=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
)


@settings(max_examples=40)
@given(reports(), domains, private_keys)
def test_report_digest_and_signatures_match_eth_account(
    report: OracleReport, domain: SigningDomain, private_key: bytes
) -> None:
    signable = encode_typed_data(full_message=_typed_message(report, domain))
    assert bytes(signable.header) == domain.separator
    assert bytes(signable.body) == report_struct_hash(report)
    digest = report_digest(report, domain)
    assert digest == keccak256(b"\x19" + signable.version + signable.header + signable.body)

    signer = Account.from_key(private_key)
    ours = sign_report(report, private_key, domain).signature
    assert Account.recover_message(signable, signature=ours) == signer.address
    theirs = bytes(Account.sign_message(signable, private_key).signature)
    assert theirs == ours
    assert recover_address(digest, theirs) == signer.address.lower()
