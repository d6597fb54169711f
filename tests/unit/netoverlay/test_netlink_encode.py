"""The overlay's route, neighbour, FDB and ipset requests packed directly: the same bytes as pyroute2's."""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

import pytest

from p2porch.netoverlay.driver import (
    AddFdb,
    DeleteFdb,
    DeleteNeighbour,
    DeleteRoute,
    SetNeighbour,
    SetRoute,
    _entry_request,
)
from p2porch.netoverlay.netlink_batch import RequestBatch
from p2porch.netoverlay.netlink_classes import load_ipset
from p2porch.netoverlay.netlink_encode import encode, encode_ipset_entry


def ipbatch_bytes(batch: RequestBatch, requests: list[Any]) -> tuple[bytes, int]:
    """IPBatch's messages for ``requests`` with their port ids zeroed (the kernel answers the socket)."""
    raw, first = batch._compile_with_ipbatch(requests)
    out, offset = bytearray(raw), 0
    while offset < len(out):
        length = struct.unpack_from("=I", out, offset)[0]
        struct.pack_into("=I", out, offset + 12, 0)
        offset += length
    return bytes(out), first


def random_operations(rng: random.Random, count: int) -> list[Any]:
    def ip() -> str:
        return ".".join(str(rng.randrange(256)) for _ in range(4))

    def mac() -> str:
        return ":".join(f"{rng.randrange(256):02x}" for _ in range(6))

    def dst() -> str:
        return f"{ip()}:{rng.randrange(1, 65536)}" if rng.random() < 0.3 else ip()

    makers = [
        lambda: SetRoute("vx0", f"{ip()}/{rng.randrange(1, 33)}", ip()),
        lambda: DeleteRoute("vx0", f"{ip()}/{rng.randrange(1, 33)}"),
        lambda: SetNeighbour("vx0", ip(), mac()),
        lambda: DeleteNeighbour("vx0", ip()),
        lambda: AddFdb("vx0", mac(), dst()),
        lambda: DeleteFdb("vx0", mac(), dst()),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def test_every_entry_operation_packs_to_ipbatchs_bytes() -> None:
    rng = random.Random(19)
    batch = RequestBatch()
    try:
        for op in random_operations(rng, 600):
            index = rng.randrange(1, 1 << 31)
            request = _entry_request(op, lambda name, index=index: index)
            expected, first = ipbatch_bytes(batch, [request])
            assert encode(*request, first) == expected, op
    finally:
        batch.close()


def test_a_chunk_is_packed_directly_and_numbered_like_ipbatchs() -> None:
    rng = random.Random(7)
    requests = [_entry_request(op, lambda name: 12) for op in random_operations(rng, 40)]
    direct, reference = RequestBatch(), RequestBatch()
    try:
        packed, first = direct._compile(requests)
        expected, expected_first = ipbatch_bytes(reference, requests)
        assert (packed, first) == (expected, expected_first)
        assert direct._compiler is None  # IPBatch was never built
        again, second = direct._compile(requests[:3])
        assert second == first + len(requests) + 1  # as IPBatch's path numbers them
        assert again == ipbatch_bytes(reference, requests[:3])[0]
    finally:
        direct.close()
        reference.close()


@pytest.mark.parametrize(
    "request_",
    [
        (
            "route",
            "replace",
            {"dst": "0.0.0.0/0", "gateway": "10.0.0.1", "oif": 3, "flags": ["onlink"], "table": 254},
        ),
        ("route", "replace", {"dst": "10.1.0.0/24", "gateway": "10.0.0.1", "oif": 3, "table": 254}),
        ("route", "del", {"dst": "10.1.0.0/24", "oif": 3, "table": 100}),
        ("route", "del", {"dst": "fd00::/64", "oif": 3, "table": 254}),
        (
            "neigh",
            "replace",
            {"dst": "10.1.0.1", "lladdr": "02:00:00:00:00:01", "ifindex": 3, "state": "reachable"},
        ),
        (
            "neigh",
            "add",
            {"dst": "10.1.0.1", "lladdr": "02:00:00:00:00:01", "ifindex": 3, "state": "permanent"},
        ),
        ("fdb", "append", {"ifindex": 3, "lladdr": "02:00:00:00:00:01", "dst": "10.0.0.2", "vni": 7}),
        ("fdb", "append", {"ifindex": "vx0", "lladdr": "02:00:00:00:00:01", "dst": "10.0.0.2"}),
        ("link", "set", {"index": 3, "state": "up"}),
    ],
)
def test_another_form_is_left_to_ipbatch(request_: Any) -> None:
    assert encode(*request_, 1) is None


def test_a_chunk_with_another_form_is_compiled_by_ipbatch_whole() -> None:
    other = ("route", "replace", {"dst": "10.1.0.0/24", "gateway": "10.0.0.1", "oif": 3, "table": 254})
    requests = [_entry_request(SetNeighbour("vx0", "10.1.0.1", "02:00:00:00:00:01"), lambda n: 3), other]
    batch, reference = RequestBatch(), RequestBatch()
    try:
        packed, first = batch._compile(requests)
        assert batch._compiler is not None
        assert first == 1 and batch._sequence == 3
        raw = bytearray(packed)
        struct.pack_into("=I", raw, 12, 0)
        second = struct.unpack_from("=I", raw, 0)[0]
        struct.pack_into("=I", raw, second + 12, 0)
        assert bytes(raw) == ipbatch_bytes(reference, requests)[0]
    finally:
        batch.close()
        reference.close()


def pyroute2_ipset_bytes(command: str, set_name: str, address: str, protocol: int, sequence: int) -> bytes:
    """The message pyroute2's ``IPSet.add``/``delete(..., exclusive=False)`` sends, built with its own
    message class and its entry attributes (``AsyncIPSet._add_delete_test``)."""
    load_ipset()
    from pyroute2.ipset import AsyncIPSet
    from pyroute2.netlink.nfnetlink.ipset import IPSET_CMD_ADD, IPSET_CMD_DEL, ipset_msg

    data = AsyncIPSet._entry_to_data_attrs(
        AsyncIPSet.__new__(AsyncIPSet), address, "ip", AsyncIPSet._family_to_version(socket.AF_INET)
    )
    msg = ipset_msg()
    msg["attrs"] = [
        ["IPSET_ATTR_PROTOCOL", protocol],
        ["IPSET_ATTR_SETNAME", set_name],
        ["IPSET_ATTR_DATA", {"attrs": data}],
    ]
    msg["nfgen_family"] = socket.AF_INET  # AsyncIPSet.request_iter's
    msg["header"]["type"] = (IPSET_CMD_ADD if command == "add" else IPSET_CMD_DEL) | 6 << 8
    msg["header"]["flags"] = 1 | 4  # NLM_F_REQUEST | NLM_F_ACK, no NLM_F_EXCL
    msg["header"]["sequence_number"] = sequence
    msg.encode()
    return bytes(msg.data)


def test_ipset_entries_pack_to_pyroute2s_bytes() -> None:
    rng = random.Random(46)
    for n in range(300):
        name = "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz-0123456789") for _ in range(rng.randrange(1, 32))
        )
        address = ".".join(str(rng.randrange(256)) for _ in range(4))
        command, protocol = rng.choice(("add", "del")), rng.choice((6, 7))
        expected = pyroute2_ipset_bytes(command, name, address, protocol, n)
        assert encode_ipset_entry(command, name, address, protocol, n) == expected, (command, name, address)


@pytest.mark.parametrize(
    "name, address, protocol, says",
    [
        ("x" * 32, "10.0.0.1", 7, "set name 'xxx"),
        ("sé", "10.0.0.1", 7, "set name 'sé': not ASCII"),
        ("ok", "fd00::1", 7, "'fd00::1': not an IPv4 address"),
        ("ok", "10.0.0", 7, "'10.0.0': not an IPv4 address"),
        ("ok", "10.0.0.1", 256, "ipset protocol version 256: not an integer 0-255"),
        ("ok", "10.0.0.1", -1, "ipset protocol version -1"),
    ],
)
def test_an_ipset_entry_it_cannot_encode_is_refused_saying_what(
    name: str, address: str, protocol: int, says: str
) -> None:
    with pytest.raises(ValueError) as caught:
        encode_ipset_entry("add", name, address, protocol, 1)
    assert says in str(caught.value)  # what failed, not the set name for every failure
