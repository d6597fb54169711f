"""Peers' entries applied in batches (pyroute2's IPBatch, many per send) to a real VXLAN device.

One network namespace (``p2jb-nl``, addresses in 10.45.0.0/16), a veth pair as underlay, a VXLAN device;
the overlay driver runs in this process against it by name, as the sandbox tests do. What the kernel
holds is read back with ``ip`` and ``bridge`` (not with the driver), including after a batch where one
entry fails: the kernel's answer for that entry must become the driver's error, naming the entry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from p2porch.errors import OverlayError
from p2porch.netoverlay import netlink_batch
from p2porch.netoverlay.diff import AddFdb, DeleteFdb, DeleteNeighbour, DeleteRoute, SetNeighbour, SetRoute
from p2porch.netoverlay.driver import NetlinkDriver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("bridge") is None, reason="iproute2's bridge is not installed"),
]

NETNS = "p2jb-nl"
DEVICE = "vx0"
OWN_ADDRESS = "10.45.1.1"
PEERS = 150  # more than one send's worth (netlink_batch.CHUNK) of each kind


def sh(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return proc.stdout


def mac(i: int) -> str:
    return f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"


def gateway(i: int) -> str:
    return f"10.45.{10 + i}.1"


def subnet(i: int) -> str:
    return f"10.45.{10 + i}.0/24"


def underlay(i: int) -> str:
    return f"10.45.0.{2 + i}"


def peers_entries(numbers: range) -> list:
    """A pass's additions for these peers, in diff_overlay's order: FDB entries, neighbours, routes."""
    return [
        *(AddFdb(DEVICE, mac(i), underlay(i)) for i in numbers),
        *(SetNeighbour(DEVICE, gateway(i), mac(i)) for i in numbers),
        *(SetRoute(DEVICE, subnet(i), gateway(i)) for i in numbers),
    ]


def kernel_routes() -> dict[str, str]:
    routes = json.loads(sh("ip", "-n", NETNS, "-j", "route", "show", "dev", DEVICE))
    return {r["dst"]: r.get("gateway", "") for r in routes if "gateway" in r}


def kernel_neighbours() -> dict[str, str]:
    neighbours = json.loads(sh("ip", "-n", NETNS, "-j", "neigh", "show", "dev", DEVICE))
    return {n["dst"]: n["lladdr"] for n in neighbours if "PERMANENT" in n.get("state", [])}


def kernel_fdb() -> set[tuple[str, str]]:
    entries = json.loads(sh("bridge", "-n", NETNS, "-j", "fdb", "show", "dev", DEVICE))
    return {(e["mac"], e["dst"]) for e in entries if "dst" in e}


@pytest.fixture
def driver():
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)  # a crashed run's
    sh("ip", "netns", "add", NETNS)
    try:
        for command in (
            "link add u0 type veth peer name u1",
            "addr add 10.45.0.1/24 dev u0",
            "link set u0 up",
            f"link add {DEVICE} type vxlan id 4242 dstport 4789 local 10.45.0.1 dev u0 nolearning",
            f"addr add {OWN_ADDRESS}/24 dev {DEVICE}",
            f"link set {DEVICE} up",
        ):
            sh("ip", "-n", NETNS, *command.split())
        nl = NetlinkDriver(NETNS)
        try:
            yield nl
        finally:
            nl.close()
    finally:
        sh("ip", "netns", "del", NETNS)


def test_a_pass_of_many_peers_lands_in_batches_and_reads_back(driver) -> None:
    assert netlink_batch.CHUNK < PEERS
    driver.apply(peers_entries(range(PEERS)))
    assert kernel_routes() == {subnet(i): gateway(i) for i in range(PEERS)}
    assert kernel_neighbours() == {gateway(i): mac(i) for i in range(PEERS)}
    assert kernel_fdb() == {(mac(i), underlay(i)) for i in range(PEERS)}
    state = driver.read(DEVICE)  # and the driver's own read agrees (with the device's connected route)
    assert state.routes == {**{subnet(i): gateway(i) for i in range(PEERS)}, "10.45.1.0/24": None}
    assert len(state.neighbours) == len(state.fdb) == PEERS

    # again: replaces and appends of what exists are not errors and change nothing
    driver.apply(peers_entries(range(PEERS)))
    assert len(kernel_routes()) == len(kernel_neighbours()) == len(kernel_fdb()) == PEERS

    # deletes in batches, with entries that are not there (not errors either)
    gone = range(0, PEERS, 2)
    driver.apply(
        [
            *(DeleteRoute(DEVICE, subnet(i)) for i in [*gone, PEERS + 1]),
            *(DeleteNeighbour(DEVICE, gateway(i)) for i in [*gone, PEERS + 1]),
            *(DeleteFdb(DEVICE, mac(i), underlay(i)) for i in [*gone, PEERS + 1]),
        ]
    )
    kept = range(1, PEERS, 2)
    assert kernel_routes() == {subnet(i): gateway(i) for i in kept}
    assert kernel_neighbours() == {gateway(i): mac(i) for i in kept}
    assert kernel_fdb() == {(mac(i), underlay(i)) for i in kept}


def test_a_failed_entry_is_the_error_the_rest_of_its_batch_lands_and_later_kinds_are_not_sent(driver) -> None:
    bad = SetRoute(DEVICE, subnet(5), OWN_ADDRESS)  # a gateway that is a local address: EINVAL
    ops = [
        *(SetRoute(DEVICE, subnet(i), gateway(i)) for i in range(5)),
        bad,
        *(SetRoute(DEVICE, subnet(i), gateway(i)) for i in range(6, 10)),
        *(SetNeighbour(DEVICE, gateway(i), mac(i)) for i in range(10)),
    ]
    with pytest.raises(OverlayError) as raised:
        driver.apply(ops)
    assert str(raised.value).startswith(
        f"ip route replace {subnet(5)} via {OWN_ADDRESS} dev {DEVICE} onlink: (22,"
    )
    # the kernel went on after the failed entry (every entry of a batch is tried) ...
    assert kernel_routes() == {subnet(i): gateway(i) for i in range(10) if i != 5}
    # ... and the next kind's batch was not sent, as the one-request path stopped at the failure
    assert kernel_neighbours() == {}

    # the driver is usable afterwards: its socket's answers are not confused by the failed batch
    driver.apply(peers_entries(range(10, 20)))
    assert len(kernel_routes()) == 19 and len(kernel_neighbours()) == len(kernel_fdb()) == 10


def test_a_missing_device_fails_before_anything_is_sent(driver) -> None:
    with pytest.raises(OverlayError, match="device vx9 does not exist"):
        driver.apply([SetRoute("vx9", subnet(1), gateway(1))])
    driver.apply(peers_entries(range(3)))
    assert len(kernel_routes()) == 3
