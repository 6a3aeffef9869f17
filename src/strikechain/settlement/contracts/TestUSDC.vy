#pragma version 0.4.3
#pragma evm-version cancun
"""
@title Test USD Coin (tUSDC)
@license MIT
@notice A plain ERC-20 with 6 decimals, the quote token of development chains and tests.
    Why it is shaped this way: the settlement contract only needs transfer, transferFrom and
    balanceOf, so this token is the minimal standard one with no fees, hooks or pausing, and
    its failures revert with a reason (it never returns False). mint is callable by anyone:
    this is a development-chain faucet and must never be deployed where the token has value.
    An allowance of max_value(uint256) is treated as unlimited and is not decreased.
"""

from ethereum.ercs import IERC20

implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


name: public(constant(String[32])) = "Test USD Coin"
symbol: public(constant(String[8])) = "tUSDC"
decimals: public(constant(uint8)) = 6

totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__():
    pass


@internal
def _move(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "zero receiver"
    balance: uint256 = self.balanceOf[sender]
    assert balance >= amount, "insufficient balance"
    self.balanceOf[sender] = balance - amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._move(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[sender][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "insufficient allowance"
        self.allowance[sender][msg.sender] = allowed - amount
    self._move(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(to: address, amount: uint256):
    """Anyone may mint: a faucet for development chains."""
    assert to != empty(address), "zero receiver"
    assert amount <= max_value(uint256) - self.totalSupply, "supply overflow"
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)
