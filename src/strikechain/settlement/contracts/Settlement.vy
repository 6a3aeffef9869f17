#pragma version 0.4.3
#pragma evm-version cancun
"""
@title strikechain settlement
@license MIT
@notice Holds the venue's collateral and accepts the operator's batches of engine state.
    Why it is shaped this way:
    - Record hashes, not storage. A batch is a 16-word record (struct Batch); the contract
      stores only keccak256(abi_encode(record)) in one new slot per batch and every later
      call passes the record back in calldata, where it is hash-checked. Committing a batch
      therefore writes one fresh slot and stays far under 100k gas, and nothing the engine
      computes (roots, totals, indexes) is ever read back from storage.
    - Finality. A batch becomes final challenge_window seconds after it was committed; only
      final batches pay withdrawals or become the exit state. Finality is monotone in the
      batch number, so "the last final batch" is a single record.
    - Veto. A verifier (registered by the governor behind a timelock, so a captured governor
      cannot veto the venue at once) may discard every pending, not yet final batch; the chain
      then continues from the last final record and the operator re-commits.
    - Freeze. If the operator ignores a forced withdrawal for forced_window seconds, or stops
      committing for max_batch_gap seconds, anyone freezes the contract at the last final
      batch. Users then exit with a Merkle proof of their sub-ledger leaf (its exit_value),
      deposits the engine never consumed are refunded in full, and final withdrawals stay
      claimable.
    - Haircut. At the freeze the contract compares what it holds (minus the refundable
      deposits) with what it owes (exit_total of the exit state plus withdrawals not yet
      claimed). If it owes more, every later exit and withdrawal is paid
      floor(amount * holdings / claims): losses are shared pro rata instead of first come,
      first served.
    - Checked totals. A batch's deposited_total must equal the sum of deposits 1 ..
      deposit_index (kept per deposit, paid for by the depositor, not the commit), and the
      freeze's arithmetic saturates, so no total a bad batch states can make the freeze
      itself revert and lock the funds in.
    Encodings (records, the withdrawal tree of depth 16, the state tree of depth 32, leaves)
    are the Python engine's, byte for byte: strikechain.engine.merkle and .commitment.
    Every failure reverts with a short reason string that names the failed check.
"""

from ethereum.ercs import IERC20

WITHDRAWAL_DEPTH: constant(uint256) = 16
STATE_DEPTH: constant(uint256) = 32
MAX_BLOBS: constant(uint256) = 6
MAX_CHUNK_BYTES: constant(uint256) = 120000
MAX_LEAF_BYTES: constant(uint256) = 6368
LEAF_HEAD_BYTES: constant(uint256) = 224
POSITION_BYTES: constant(uint256) = 96
NS_PER_SECOND: constant(uint256) = 10**9


struct Batch:
    number: uint256
    prev_root: bytes32
    state_root: bytes32
    first_block: uint256
    last_block: uint256
    first_timestamp_ns: uint256
    last_timestamp_ns: uint256
    deposit_index: uint256
    deposited_total: uint256
    forced_index: uint256
    withdrawal_root: bytes32
    withdrawn_total: uint256
    exit_total: uint256
    data_hash: bytes32
    committed_at: uint256
    reserved: uint256


event Deposited:
    index: indexed(uint256)
    depositor: indexed(address)
    beneficiary: indexed(address)
    underlying: bytes32
    amount: uint256

event DataPosted:
    accumulator: bytes32
    chunk_hash: bytes32
    length: uint256

event BatchCommitted:
    number: indexed(uint256)
    state_root: bytes32
    withdrawal_root: bytes32
    data_hash: bytes32
    record_hash: bytes32
    committed_at: uint256

event Vetoed:
    bad: indexed(uint256)
    reverted_to: uint256
    root: bytes32

event Withdrawn:
    withdrawal_id: indexed(uint256)
    account: indexed(address)
    batch_number: uint256
    underlying: bytes32
    amount: uint256
    paid: uint256

event ForcedWithdrawalRequested:
    index: indexed(uint256)
    account: indexed(address)
    underlying: bytes32
    amount: uint256
    requested_at: uint256

event Frozen:
    last_final: indexed(uint256)
    exit_root: bytes32
    exit_deposit_index: uint256
    forced_index: uint256
    refundable: uint256
    holdings: uint256
    claims: uint256
    haircut_num: uint256
    haircut_den: uint256
    frozen_at: uint256

event Exited:
    index: indexed(uint256)
    account: indexed(address)
    underlying: bytes32
    exit_value: uint256
    paid: uint256

event Refunded:
    index: indexed(uint256)
    depositor: indexed(address)
    beneficiary: address
    underlying: bytes32
    amount: uint256

event OperatorChanged:
    previous: indexed(address)
    operator: indexed(address)

event VerifierProposed:
    verifier: indexed(address)
    ready_at: uint256

event VerifierActivated:
    verifier: indexed(address)

event VerifierRemoved:
    verifier: indexed(address)


TOKEN: immutable(IERC20)
GOVERNOR: immutable(address)
CHALLENGE_WINDOW: immutable(uint256)
VERIFIER_TIMELOCK: immutable(uint256)
FORCED_WINDOW: immutable(uint256)
MAX_BATCH_GAP: immutable(uint256)
MAX_DRIFT_NS: immutable(uint256)
DEPLOYED_AT: immutable(uint256)

operator: public(address)

batch_count: public(uint256)
batch_hashes: public(HashMap[uint256, bytes32])
last_commit_at: public(uint256)

deposit_count: public(uint256)
deposit_hashes: public(HashMap[uint256, bytes32])
# deposit_totals[i]: sum of the amounts of deposits 1..i (what a batch's deposited_total must be)
deposit_totals: public(HashMap[uint256, uint256])

forced_count: public(uint256)
forced_hashes: public(HashMap[uint256, bytes32])

data_accumulator: public(bytes32)
data_chunks: public(uint256)

verifier_ready_at: public(HashMap[address, uint256])
is_verifier: public(HashMap[address, bool])

# bitmaps keyed by id // 256, bit id % 256
claimed: public(HashMap[uint256, uint256])
exited: public(HashMap[uint256, uint256])
refunded: public(HashMap[uint256, uint256])
claimed_plus_one: uint256  # claimed_total() + 1: never zero, so a claim never writes a fresh slot

frozen: public(bool)
frozen_at: public(uint256)
exit_root: public(bytes32)
exit_deposit_index: public(uint256)
haircut_num: public(uint256)
haircut_den: public(uint256)


@deploy
def __init__(
    token: address,
    operator: address,
    governor: address,
    challenge_window: uint256,
    verifier_timelock: uint256,
    forced_window: uint256,
    max_batch_gap: uint256,
    max_drift_ns: uint256,
    genesis_root: bytes32,
    genesis_height: uint256,
    genesis_timestamp_ns: uint256,
):
    assert token != empty(address), "zero token"
    assert operator != empty(address), "zero operator"
    assert governor != empty(address), "zero governor"
    TOKEN = IERC20(token)
    GOVERNOR = governor
    CHALLENGE_WINDOW = challenge_window
    VERIFIER_TIMELOCK = verifier_timelock
    FORCED_WINDOW = forced_window
    MAX_BATCH_GAP = max_batch_gap
    MAX_DRIFT_NS = max_drift_ns
    DEPLOYED_AT = block.timestamp
    self.operator = operator
    genesis: Batch = empty(Batch)
    genesis.state_root = genesis_root
    genesis.last_block = genesis_height
    genesis.last_timestamp_ns = genesis_timestamp_ns
    self.batch_hashes[0] = keccak256(abi_encode(genesis))
    self.haircut_num = 1
    self.haircut_den = 1
    self.claimed_plus_one = 1


# --- parameters -------------------------------------------------------------------------------


@view
@external
def token() -> address:
    return TOKEN.address


@view
@external
def governor() -> address:
    return GOVERNOR


@view
@external
def challenge_window() -> uint256:
    return CHALLENGE_WINDOW


@view
@external
def verifier_timelock() -> uint256:
    return VERIFIER_TIMELOCK


@view
@external
def forced_window() -> uint256:
    return FORCED_WINDOW


@view
@external
def max_batch_gap() -> uint256:
    return MAX_BATCH_GAP


@view
@external
def max_drift_ns() -> uint256:
    return MAX_DRIFT_NS


@view
@external
def deployed_at() -> uint256:
    return DEPLOYED_AT


@view
@external
def deposit_total() -> uint256:
    return self.deposit_totals[self.deposit_count]


# --- pure helpers -----------------------------------------------------------------------------


@internal
@pure
def _hash(record: Batch) -> bytes32:
    return keccak256(abi_encode(record))


@internal
@view
def _is_recorded(record: Batch) -> bool:
    """Whether `record` is the live record of its number (vetoed ones are not)."""
    if record.number > self.batch_count:
        return False
    return keccak256(abi_encode(record)) == self.batch_hashes[record.number]


@internal
@view
def _final_at(record: Batch, now: uint256) -> bool:
    if record.number == 0:
        return True
    return record.committed_at + CHALLENGE_WINDOW <= now


@internal
@view
def _now() -> uint256:
    if self.frozen:
        return self.frozen_at
    return block.timestamp


@internal
@pure
def _withdrawal_root(
    leaf: bytes32, index: uint256, proof: bytes32[WITHDRAWAL_DEPTH]
) -> bytes32:
    node: bytes32 = leaf
    position: uint256 = index
    for sibling: bytes32 in proof:
        if position & 1 == 1:
            node = keccak256(concat(b"\x01", sibling, node))
        else:
            node = keccak256(concat(b"\x01", node, sibling))
        position = position >> 1
    return node


@internal
@pure
def _state_tree_root(leaf: bytes32, index: uint256, proof: bytes32[STATE_DEPTH]) -> bytes32:
    node: bytes32 = leaf
    position: uint256 = index
    for sibling: bytes32 in proof:
        if position & 1 == 1:
            node = keccak256(concat(b"\x01", sibling, node))
        else:
            node = keccak256(concat(b"\x01", node, sibling))
        position = position >> 1
    return node


@internal
def _pay(to: address, amount: uint256):
    if amount > 0:
        sent: bool = extcall TOKEN.transfer(to, amount, default_return_value=True)
        assert sent, "transfer failed"


@internal
@view
def _haircut(amount: uint256) -> uint256:
    if not self.frozen:
        return amount
    return amount * self.haircut_num // self.haircut_den


# --- views ------------------------------------------------------------------------------------


@view
@external
def claimed_total() -> uint256:
    """Everything withdrawal claims have paid out (before any haircut), cumulative."""
    return self.claimed_plus_one - 1


@view
@external
def record_hash(record: Batch) -> bytes32:
    return self._hash(record)


@view
@external
def is_final(record: Batch) -> bool:
    """Whether `record` is a live batch record that is final now (False for any other input)."""
    return self._is_recorded(record) and self._final_at(record, self._now())


@view
@external
def is_claimed(withdrawal_id: uint256) -> bool:
    return self.claimed[withdrawal_id // 256] & (1 << (withdrawal_id % 256)) != 0


@view
@external
def is_exited(index: uint256) -> bool:
    return self.exited[index // 256] & (1 << (index % 256)) != 0


@view
@external
def is_refunded(index: uint256) -> bool:
    return self.refunded[index // 256] & (1 << (index % 256)) != 0


# --- roles ------------------------------------------------------------------------------------


@external
def set_operator(operator: address):
    assert msg.sender == GOVERNOR, "not governor"
    assert operator != empty(address), "zero operator"
    log OperatorChanged(previous=self.operator, operator=operator)
    self.operator = operator


@external
def propose_verifier(verifier: address):
    assert msg.sender == GOVERNOR, "not governor"
    assert verifier != empty(address), "zero verifier"
    assert not self.is_verifier[verifier], "already verifier"
    ready_at: uint256 = block.timestamp + VERIFIER_TIMELOCK
    self.verifier_ready_at[verifier] = ready_at
    log VerifierProposed(verifier=verifier, ready_at=ready_at)


@external
def activate_verifier(verifier: address):
    ready_at: uint256 = self.verifier_ready_at[verifier]
    assert ready_at != 0, "not proposed"
    assert ready_at <= block.timestamp, "timelock"
    self.verifier_ready_at[verifier] = 0
    self.is_verifier[verifier] = True
    log VerifierActivated(verifier=verifier)


@external
def remove_verifier(verifier: address):
    """Removes an active verifier or cancels a proposal, at once."""
    assert msg.sender == GOVERNOR, "not governor"
    known: bool = self.is_verifier[verifier] or self.verifier_ready_at[verifier] != 0
    assert known, "unknown verifier"
    self.is_verifier[verifier] = False
    self.verifier_ready_at[verifier] = 0
    log VerifierRemoved(verifier=verifier)


# --- deposits and forced withdrawals ----------------------------------------------------------


@external
def deposit(beneficiary: address, underlying: bytes32, amount: uint256):
    assert not self.frozen, "frozen"
    assert amount > 0, "zero amount"
    pulled: bool = extcall TOKEN.transferFrom(msg.sender, self, amount, default_return_value=True)
    assert pulled, "transfer failed"
    index: uint256 = self.deposit_count + 1
    self.deposit_count = index
    self.deposit_totals[index] = self.deposit_totals[index - 1] + amount
    self.deposit_hashes[index] = keccak256(
        abi_encode(index, msg.sender, beneficiary, underlying, amount)
    )
    log Deposited(
        index=index,
        depositor=msg.sender,
        beneficiary=beneficiary,
        underlying=underlying,
        amount=amount,
    )


@external
def request_forced_withdrawal(underlying: bytes32, amount: uint256):
    assert not self.frozen, "frozen"
    assert amount > 0, "zero amount"
    index: uint256 = self.forced_count + 1
    self.forced_count = index
    self.forced_hashes[index] = keccak256(
        abi_encode(index, msg.sender, underlying, amount, block.timestamp)
    )
    log ForcedWithdrawalRequested(
        index=index,
        account=msg.sender,
        underlying=underlying,
        amount=amount,
        requested_at=block.timestamp,
    )


# --- batches ----------------------------------------------------------------------------------


@internal
def _accumulate(chunk_hash: bytes32, length: uint256):
    accumulator: bytes32 = keccak256(concat(self.data_accumulator, chunk_hash))
    self.data_accumulator = accumulator
    self.data_chunks += 1
    log DataPosted(accumulator=accumulator, chunk_hash=chunk_hash, length=length)


@external
def post_data(chunk: Bytes[MAX_CHUNK_BYTES]):
    assert not self.frozen, "frozen"
    assert msg.sender == self.operator, "not operator"
    assert len(chunk) > 0, "empty chunk"
    # The chunk is hashed where it lies and the rest happens in an internal frame: a local
    # declared here would sit after the 120000-byte buffer, and every call would pay for
    # that much memory (some 39k gas).
    self._accumulate(keccak256(chunk), len(chunk))


@internal
@view
def _blob_data_hash(blob_count: uint256) -> bytes32:
    hashes: bytes32[MAX_BLOBS] = empty(bytes32[MAX_BLOBS])
    for i: uint256 in range(blob_count, bound=MAX_BLOBS):
        versioned: bytes32 = blobhash(i)
        assert versioned != empty(bytes32), "missing blob"
        hashes[i] = versioned
    return keccak256(slice(abi_encode(hashes), 0, 32 * blob_count))


@external
def commit_batch(prev: Batch, header: Batch, blob_count: uint256):
    assert not self.frozen, "frozen"
    assert msg.sender == self.operator, "not operator"
    count: uint256 = self.batch_count
    assert self._hash(prev) == self.batch_hashes[count], "prev mismatch"
    assert header.number == 0, "number not zero"
    assert header.committed_at == 0, "committed_at not zero"
    assert header.reserved == 0, "reserved not zero"
    assert header.prev_root == prev.state_root, "prev root"
    assert header.first_block == prev.last_block + 1, "first block"
    assert header.last_block >= header.first_block, "block range"
    assert header.first_timestamp_ns >= prev.last_timestamp_ns, "timestamp order"
    assert header.last_timestamp_ns >= header.first_timestamp_ns, "timestamp range"
    drift_bound_ns: uint256 = block.timestamp * NS_PER_SECOND + MAX_DRIFT_NS
    assert header.last_timestamp_ns <= drift_bound_ns, "timestamp drift"
    assert header.deposit_index >= prev.deposit_index, "deposit index low"
    assert header.deposit_index <= self.deposit_count, "deposit index high"
    # Exact, not merely monotone: the freeze's refunds are deposit_total minus this.
    expected_total: uint256 = prev.deposited_total
    if header.deposit_index != prev.deposit_index:
        expected_total = self.deposit_totals[header.deposit_index]
    assert header.deposited_total == expected_total, "deposited total"
    assert header.forced_index >= prev.forced_index, "forced index low"
    assert header.forced_index <= self.forced_count, "forced index high"
    assert header.withdrawn_total >= prev.withdrawn_total, "withdrawn total"
    if blob_count == 0:
        accumulator: bytes32 = self.data_accumulator
        assert header.data_hash == accumulator, "data mismatch"
        if accumulator != empty(bytes32):
            self.data_accumulator = empty(bytes32)
            self.data_chunks = 0
    else:
        assert blob_count <= MAX_BLOBS, "blob count"
        assert self.data_accumulator == empty(bytes32), "pending data"
        assert header.data_hash == self._blob_data_hash(blob_count), "blob mismatch"
    record: Batch = header
    record.number = count + 1
    record.committed_at = block.timestamp
    record_hash: bytes32 = self._hash(record)
    self.batch_hashes[record.number] = record_hash
    self.batch_count = record.number
    self.last_commit_at = block.timestamp
    log BatchCommitted(
        number=record.number,
        state_root=header.state_root,
        withdrawal_root=header.withdrawal_root,
        data_hash=header.data_hash,
        record_hash=record_hash,
        committed_at=block.timestamp,
    )


@external
def veto(bad: uint256, last_final: Batch, first_pending: Batch):
    assert not self.frozen, "frozen"
    assert self.is_verifier[msg.sender], "not verifier"
    assert self._is_recorded(last_final), "bad last final"
    assert first_pending.number == last_final.number + 1, "bad pending"
    assert self._is_recorded(first_pending), "bad pending"
    assert self._final_at(last_final, block.timestamp), "last not final"
    assert not self._final_at(first_pending, block.timestamp), "pending final"
    assert bad > last_final.number and bad <= self.batch_count, "veto range"
    self.batch_count = last_final.number
    if self.data_accumulator != empty(bytes32):
        self.data_accumulator = empty(bytes32)
        self.data_chunks = 0
    log Vetoed(bad=bad, reverted_to=last_final.number, root=last_final.state_root)


# --- withdrawals ------------------------------------------------------------------------------


@external
def withdraw(
    batch: Batch,
    withdrawal_id: uint256,
    account: address,
    underlying: bytes32,
    amount: uint256,
    index: uint256,
    proof: bytes32[WITHDRAWAL_DEPTH],
):
    assert self._is_recorded(batch), "bad batch"
    assert self._final_at(batch, self._now()), "not final"
    assert msg.sender == account, "not yours"
    word: uint256 = withdrawal_id // 256
    bit: uint256 = 1 << (withdrawal_id % 256)
    bits: uint256 = self.claimed[word]
    assert bits & bit == 0, "claimed"
    assert index < 1 << WITHDRAWAL_DEPTH, "bad index"
    leaf: bytes32 = keccak256(
        concat(b"\x00", abi_encode(withdrawal_id, account, underlying, amount))
    )
    assert self._withdrawal_root(leaf, index, proof) == batch.withdrawal_root, "bad proof"
    self.claimed[word] = bits | bit
    self.claimed_plus_one += amount
    paid: uint256 = self._haircut(amount)
    self._pay(account, paid)
    log Withdrawn(
        withdrawal_id=withdrawal_id,
        account=account,
        batch_number=batch.number,
        underlying=underlying,
        amount=amount,
        paid=paid,
    )


# --- freeze -----------------------------------------------------------------------------------


@internal
def _freeze(last_final: Batch, next: Batch, forced_index: uint256):
    count: uint256 = self.batch_count
    assert self._is_recorded(last_final), "bad last final"
    assert self._final_at(last_final, block.timestamp), "last not final"
    if last_final.number < count:
        assert next.number == last_final.number + 1, "bad next"
        assert self._is_recorded(next), "bad next"
        assert not self._final_at(next, block.timestamp), "next final"
    refundable: uint256 = self.deposit_totals[self.deposit_count] - last_final.deposited_total
    balance: uint256 = staticcall TOKEN.balanceOf(self)
    holdings: uint256 = 0
    if balance > refundable:
        holdings = balance - refundable
    # Saturating: totals a bad batch overstates must not make the freeze itself revert.
    outstanding: uint256 = 0
    claimed_total: uint256 = self.claimed_plus_one - 1
    if last_final.withdrawn_total > claimed_total:
        outstanding = last_final.withdrawn_total - claimed_total
    claims: uint256 = max_value(uint256)
    if last_final.exit_total <= max_value(uint256) - outstanding:
        claims = last_final.exit_total + outstanding
    num: uint256 = 1
    den: uint256 = 1
    if claims > holdings:
        num = holdings
        den = claims
    self.frozen = True
    self.frozen_at = block.timestamp
    self.exit_root = last_final.state_root
    self.exit_deposit_index = last_final.deposit_index
    self.haircut_num = num
    self.haircut_den = den
    log Frozen(
        last_final=last_final.number,
        exit_root=last_final.state_root,
        exit_deposit_index=last_final.deposit_index,
        forced_index=forced_index,
        refundable=refundable,
        holdings=holdings,
        claims=claims,
        haircut_num=num,
        haircut_den=den,
        frozen_at=block.timestamp,
    )


@external
def freeze_forced(
    index: uint256,
    account: address,
    underlying: bytes32,
    amount: uint256,
    requested_at: uint256,
    tip: Batch,
    last_final: Batch,
    next: Batch,
):
    assert not self.frozen, "frozen"
    request: bytes32 = keccak256(abi_encode(index, account, underlying, amount, requested_at))
    assert request == self.forced_hashes[index], "bad request"
    assert requested_at + FORCED_WINDOW <= block.timestamp, "too early"
    assert tip.number == self.batch_count, "bad tip"
    assert self._is_recorded(tip), "bad tip"
    assert tip.forced_index < index, "served"
    self._freeze(last_final, next, index)


@external
def freeze_stale(tip: Batch, last_final: Batch, next: Batch):
    assert not self.frozen, "frozen"
    assert tip.number == self.batch_count, "bad tip"
    assert self._is_recorded(tip), "bad tip"
    assert max(tip.committed_at, DEPLOYED_AT) + MAX_BATCH_GAP <= block.timestamp, "not stale"
    self._freeze(last_final, next, 0)


@external
def exit(
    leaf: Bytes[MAX_LEAF_BYTES], index: uint256, proof: bytes32[STATE_DEPTH], rest_hash: bytes32
):
    assert self.frozen, "not frozen"
    size: uint256 = len(leaf)
    assert size >= LEAF_HEAD_BYTES and (size - LEAF_HEAD_BYTES) % POSITION_BYTES == 0, "leaf size"
    assert extract32(leaf, 0, output_type=uint256) == 32, "leaf offset"
    account_word: uint256 = extract32(leaf, 32, output_type=uint256)
    assert account_word < 1 << 160, "leaf account"
    account: address = convert(convert(account_word, uint160), address)
    assert account == msg.sender, "not yours"
    assert index > 0 and index < 1 << STATE_DEPTH, "bad index"
    word: uint256 = index // 256
    bit: uint256 = 1 << (index % 256)
    bits: uint256 = self.exited[word]
    assert bits & bit == 0, "exited"
    tree_root: bytes32 = self._state_tree_root(keccak256(concat(b"\x00", leaf)), index, proof)
    assert keccak256(concat(b"\x02", tree_root, rest_hash)) == self.exit_root, "bad proof"
    self.exited[word] = bits | bit
    underlying: bytes32 = extract32(leaf, 64)
    exit_value: uint256 = extract32(leaf, 128, output_type=uint256)
    paid: uint256 = exit_value * self.haircut_num // self.haircut_den
    self._pay(account, paid)
    log Exited(
        index=index, account=account, underlying=underlying, exit_value=exit_value, paid=paid
    )


@external
def refund(
    index: uint256, depositor: address, beneficiary: address, underlying: bytes32, amount: uint256
):
    """Pays back, in full and to its depositor, a deposit the exit state never consumed."""
    assert self.frozen, "not frozen"
    assert index > self.exit_deposit_index, "consumed"
    deposited: bytes32 = keccak256(abi_encode(index, depositor, beneficiary, underlying, amount))
    assert deposited == self.deposit_hashes[index], "bad deposit"
    word: uint256 = index // 256
    bit: uint256 = 1 << (index % 256)
    bits: uint256 = self.refunded[word]
    assert bits & bit == 0, "refunded"
    self.refunded[word] = bits | bit
    self._pay(depositor, amount)
    log Refunded(
        index=index,
        depositor=depositor,
        beneficiary=beneficiary,
        underlying=underlying,
        amount=amount,
    )
