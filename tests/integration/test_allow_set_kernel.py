"""The VXLAN allow-list's ipset changed in batches (packed directly, many per send) in a real kernel.

One network namespace (``p8jn-ipset``); ``AllowSet`` runs in this process against it by name, as the
overlay does in a sandbox. What the kernel holds is read back with the ``ipset`` tool (not with the code
under test), after a sync from nothing, after a diff of adds and deletes larger than one send
(``netlink_batch.CHUNK``; the batched path, not pyroute2's one request per entry), and with an add of
a member and a delete of a non-member (not errors).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from p2porch.netoverlay.allow_set import AllowSet
from p2porch.netoverlay.netlink_batch import CHUNK
from p2porch.netoverlay.plan import SetDiff

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ipset") is None, reason="the ipset tool is not installed"),
]

NETNS = "p8jn-ipset"
SET = "p2porch-vxlan"


def sh(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return proc.stdout


def kernel_members() -> set[str]:
    out = sh("ip", "netns", "exec", NETNS, "ipset", "list", SET)
    return {line.strip() for line in out.split("Members:", 1)[1].splitlines() if line.strip()}


def address(i: int) -> str:
    return f"10.46.{i // 250}.{1 + i % 250}"


@pytest.fixture
def allow_set() -> Iterator[AllowSet]:
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
    sh("ip", "netns", "add", NETNS)
    allow = AllowSet(SET, NETNS)
    try:
        yield allow
    finally:
        allow.close()
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)


def test_sync_and_diffs_leave_the_kernels_set_as_asked(allow_set: AllowSet) -> None:
    first = [address(i) for i in range(CHUNK + 20)]
    diff = allow_set.sync(first)
    assert set(diff.add) == set(first) and not diff.remove
    assert kernel_members() == set(first)
    assert allow_set.members() == frozenset(first)
    # the batched path ran (pyroute2 gave the kernel's protocol version), not one request per entry
    assert (allow_set.entries_batched, allow_set.entries_one_by_one) == (len(first), 0)

    gone, new = first[: CHUNK // 2 + 40], [address(i) for i in range(CHUNK + 20, 2 * CHUNK + 40)]
    allow_set.apply(SetDiff(add=tuple(new), remove=tuple(gone)))
    assert kernel_members() == (set(first) - set(gone)) | set(new)
    assert (allow_set.entries_batched, allow_set.entries_one_by_one) == (len(first) + len(new) + len(gone), 0)

    # an add of a member and a delete of a non-member change nothing and are not errors
    allow_set.apply(SetDiff(add=(new[0],), remove=(gone[0],)))
    assert kernel_members() == (set(first) - set(gone)) | set(new)

    # a set changed by hand: the next sync reads it and repairs it
    sh("ip", "netns", "exec", NETNS, "ipset", "add", SET, "10.99.0.1")
    sh("ip", "netns", "exec", NETNS, "ipset", "del", SET, new[1])
    wanted = (set(first) - set(gone)) | set(new)
    repaired = allow_set.sync(sorted(wanted))
    assert set(repaired.add) == {new[1]} and set(repaired.remove) == {"10.99.0.1"}
    assert kernel_members() == wanted
