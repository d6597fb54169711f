"""The VXLAN allow-list's set: the pure diff a join or a leave writes, and a kernel without ipset."""

import errno
import random

import pytest

from p2porch.errors import OverlayError
from p2porch.netoverlay.allow_set import NO_IPSET, AllowSet
from p2porch.netoverlay.netlink_classes import load
from p2porch.netoverlay.plan import SetDiff, diff_members

_, NetlinkError = load()


def test_a_join_adds_one_address_and_a_leave_removes_one():
    members = ["10.80.0.2", "10.80.0.3"]
    assert diff_members([*members, "10.80.0.10"], members) == SetDiff(add=("10.80.0.10",))
    assert diff_members(["10.80.0.3"], members) == SetDiff(remove=("10.80.0.2",))
    assert not diff_members(members, reversed(members))  # the same members: nothing to write
    assert diff_members([], members) == SetDiff(remove=("10.80.0.2", "10.80.0.3"))


def test_the_diff_is_sorted_by_address_not_text():
    diff = diff_members(["10.0.0.10", "10.0.0.9", "10.0.0.100"], ["10.0.1.2", "10.0.0.200"])
    assert diff.add == ("10.0.0.9", "10.0.0.10", "10.0.0.100")
    assert diff.remove == ("10.0.0.200", "10.0.1.2")
    assert diff.describe() == "+10.0.0.9 +10.0.0.10 +10.0.0.100 -10.0.0.200 -10.0.1.2"


def test_applying_the_diff_gives_exactly_the_wanted_members():
    rng = random.Random(19)
    pool = [f"10.80.{i // 250}.{i % 250 + 1}" for i in range(600)]
    current: set[str] = set()
    for _ in range(200):
        wanted = set(rng.sample(pool, rng.randrange(0, 40)))
        diff = diff_members(wanted, current)
        assert not set(diff.add) & current and set(diff.remove) <= current  # never a no-op write
        current = (current | set(diff.add)) - set(diff.remove)
        assert current == wanted


@pytest.mark.parametrize(
    "failure", [NetlinkError(errno.EINVAL, "Invalid argument"), OSError(errno.EPROTONOSUPPORT, "no protocol")]
)
def test_a_kernel_without_ipset_gets_a_clear_error(failure):
    def no_ipset():
        raise failure

    allow = AllowSet("p3jm-test", open_ipset=no_ipset)
    try:
        with pytest.raises(OverlayError, match="no ipset support") as caught:
            allow.sync(["10.80.0.2"])
        assert NO_IPSET in str(caught.value)
        with pytest.raises(OverlayError, match="no ipset support"):  # every call, not just the first
            allow.members()
    finally:
        allow.close()
