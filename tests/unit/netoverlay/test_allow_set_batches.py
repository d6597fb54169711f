"""The allow-list's batched adds and deletes against a fake netfilter socket: which path runs, how the
acknowledgements are matched to entries (any order, several per read, stale ones skipped), the first
refused entry named with ipset's own text, and a lost answer closing both sockets."""

from __future__ import annotations

import errno
import logging
import struct
from collections.abc import Callable

import pytest

from p2porch.errors import OverlayError
from p2porch.netoverlay.allow_set import AllowSet
from p2porch.netoverlay.netlink_batch import CHUNK, read_acks
from p2porch.netoverlay.plan import SetDiff

HEADER = struct.Struct("=IHHII")
NLMSG_ERROR, NLMSG_DONE = 2, 3
IPSET_ERR_IPADDR_IPV4, IPSET_ERR_EXIST = 4109, 4103

#: the acknowledgements of one send as (sequence, errno) -> what each recv returns
Answer = Callable[[list[tuple[int, int]]], list[bytes]]


def ack(sequence: int, code: int = 0) -> bytes:
    """An NLMSG_ERROR answer (the request's header echoed after the error, as the kernel sends)."""
    echoed = HEADER.pack(HEADER.size, 0x609, 5, sequence, 0)
    return (
        HEADER.pack(HEADER.size + 4 + len(echoed), NLMSG_ERROR, 0, sequence, 0)
        + struct.pack("=i", -code)
        + echoed
    )


def one_per_recv(acks: list[tuple[int, int]]) -> list[bytes]:
    return [ack(s, c) for s, c in acks]


def all_in_one_recv(acks: list[tuple[int, int]]) -> list[bytes]:
    return [b"".join(ack(s, c) for s, c in acks)]


def reversed_in_pairs(acks: list[tuple[int, int]]) -> list[bytes]:
    backwards = [ack(s, c) for s, c in reversed(acks)]
    return [b"".join(backwards[i : i + 2]) for i in range(0, len(backwards), 2)]


def with_stale_ones(acks: list[tuple[int, int]]) -> list[bytes]:
    """Answers of other sequence numbers (an earlier send's, a later one's) and a non-ack message first,
    each failing: they must be skipped."""
    first, last = acks[0][0], acks[-1][0]
    noise = (
        ack(first - 1, errno.EPERM)
        + ack(last + 1, errno.EPERM)
        + HEADER.pack(20, NLMSG_DONE, 0, first, 0)
        + b"\0" * 4
    )
    return [noise, *one_per_recv(acks)]


class FakeNetfilter:
    """A netfilter socket: each send's messages are answered by ``answer``; a recv with nothing queued
    times out as the real one (``settimeout``) does."""

    def __init__(
        self, answer: Answer = one_per_recv, codes: dict[int, int] | None = None, drop_last: bool = False
    ):
        self.answer, self.codes, self.drop_last = answer, codes or {}, drop_last
        self.sent: list[list[tuple[int, int]]] = []  # per send: (sequence, message type)
        self.queue: list[bytes] = []
        self.closed = False
        self.entries = 0

    def send(self, buffer: bytes) -> int:
        messages, offset = [], 0
        while offset < len(buffer):
            length, kind, _, sequence, _ = HEADER.unpack_from(buffer, offset)
            messages.append((sequence, kind))
            offset += length
        self.sent.append(messages)
        acks = []
        for sequence, _ in messages:
            acks.append((sequence, self.codes.get(self.entries, 0)))
            self.entries += 1
        self.queue += self.answer(acks[:-1] if self.drop_last else acks)
        return len(buffer)

    def recv(self, size: int) -> bytes:
        if self.closed:
            raise OSError(errno.EBADF, "closed")
        if not self.queue:
            raise TimeoutError("timed out")
        return self.queue.pop(0)

    def close(self) -> None:
        self.closed = True


class FakeIPSet:
    """pyroute2's IPSet as far as the batched path uses it: the kernel's protocol version, and adds
    and deletes one request each (the other path)."""

    def __init__(self, version: object = 7) -> None:
        if version is not None:
            self._proto_version = version
        self.requests: list[tuple[str, str]] = []
        self.closed = False

    def add(self, name: str, address: str, exclusive: bool) -> None:
        self.requests.append(("add", address))

    def delete(self, name: str, address: str, exclusive: bool) -> None:
        self.requests.append(("del", address))

    def close(self) -> None:
        self.closed = True


def address(i: int) -> str:
    return f"10.47.{i // 250}.{1 + i % 250}"


def make(
    sockets: list[FakeNetfilter], ipsets: list[FakeIPSet], batched: bool | None = None
) -> tuple[AllowSet, list[FakeNetfilter], list[FakeIPSet]]:
    """An AllowSet opening the given fakes in turn (the lists are what it opened so far)."""
    opened_sockets: list[FakeNetfilter] = []
    opened_ipsets: list[FakeIPSet] = []

    def open_batch() -> FakeNetfilter:
        opened_sockets.append(sockets.pop(0))
        return opened_sockets[-1]

    def open_ipset() -> FakeIPSet:
        opened_ipsets.append(ipsets.pop(0))
        return opened_ipsets[-1]

    allow = AllowSet("p47-test", open_ipset=open_ipset, open_batch=open_batch, batched=batched)
    return allow, opened_sockets, opened_ipsets


@pytest.mark.parametrize("answer", [one_per_recv, all_in_one_recv, reversed_in_pairs, with_stale_ones])
def test_entries_go_in_chunks_and_every_answer_is_matched_whatever_its_order(answer: Answer) -> None:
    allow, sockets, ipsets = make([FakeNetfilter(answer)], [FakeIPSet()])
    try:
        adds, removes = tuple(address(i) for i in range(300)), tuple(address(i) for i in range(300, 320))
        allow.apply(SetDiff(add=adds, remove=removes))
    finally:
        allow.close()
    sent = sockets[0].sent
    assert [len(chunk) for chunk in sent] == [CHUNK, CHUNK, 320 - 2 * CHUNK]
    for chunk in sent:  # one number each, in order within a send, never reused by the next
        assert [s for s, _ in chunk] == list(range(chunk[0][0], chunk[0][0] + len(chunk)))
    assert all(later[0][0] > earlier[-1][0] for earlier, later in zip(sent, sent[1:], strict=False))
    assert [kind & 0xFF for chunk in sent for _, kind in chunk] == [9] * 300 + [10] * 20  # add, then del
    assert (allow.entries_batched, allow.entries_one_by_one) == (320, 0)
    assert ipsets[0].requests == []  # nothing went through pyroute2's one-request path


def test_the_first_refused_entry_is_named_with_ipsets_own_text() -> None:
    codes = {5: IPSET_ERR_IPADDR_IPV4, 9: errno.EPERM}  # the 6th and 10th entries of the chunk refused
    allow, _, _ = make([FakeNetfilter(reversed_in_pairs, codes)], [FakeIPSet()])
    try:
        with pytest.raises(OverlayError) as caught:
            allow.apply(SetDiff(add=tuple(address(i) for i in range(20))))
    finally:
        allow.close()
    text = str(caught.value)
    assert f"add {address(5)}" in text and "An IPv4 address is expected" in text, text
    assert "Unknown error" not in text


def test_an_errno_below_ipsets_own_codes_reads_as_strerror() -> None:
    allow, _, _ = make([FakeNetfilter(codes={0: errno.EPERM})], [FakeIPSet()])
    try:
        with pytest.raises(OverlayError, match=rf"del {address(0)}: \(1, 'Operation not permitted'\)"):
            allow.apply(SetDiff(remove=(address(0),)))
    finally:
        allow.close()


def test_a_lost_answer_closes_both_sockets_and_the_next_call_opens_new_ones() -> None:
    allow, sockets, ipsets = make(
        [FakeNetfilter(drop_last=True), FakeNetfilter()], [FakeIPSet(), FakeIPSet()]
    )
    try:
        with pytest.raises(OverlayError, match="3 entries: timed out"):
            allow.apply(SetDiff(add=(address(0), address(1), address(2))))
        assert sockets[0].closed and ipsets[0].closed
        allow.apply(SetDiff(add=(address(3),)))
        assert len(sockets) == len(ipsets) == 2 and len(sockets[1].sent) == 1
    finally:
        allow.close()


def test_an_entry_it_cannot_encode_says_which_and_sends_nothing() -> None:
    allow, sockets, _ = make([FakeNetfilter()], [FakeIPSet()])
    try:
        with pytest.raises(OverlayError, match="cannot encode 'fd00::1': not an IPv4 address"):
            allow.apply(SetDiff(add=(address(0), "fd00::1")))
    finally:
        allow.close()
    assert sockets == []


def test_without_a_protocol_version_one_request_per_entry_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    allow, sockets, ipsets = make([], [FakeIPSet(version=None)])
    caplog.set_level(logging.WARNING, logger="p2porch.netoverlay.allow_set")
    try:
        allow.apply(SetDiff(add=(address(0),)))
        allow.apply(SetDiff(remove=(address(0),)))
    finally:
        allow.close()
    assert ipsets[0].requests == [("add", address(0)), ("del", address(0))] and sockets == []
    assert (allow.entries_batched, allow.entries_one_by_one) == (0, 2)
    assert [r.getMessage() for r in caplog.records] == [
        "ipset p47-test: no ipset protocol version from pyroute2 (None): one request per entry"
    ]


@pytest.mark.parametrize("version", [None, "7", 300, True])
def test_batches_asked_for_without_a_protocol_version_are_an_error(version: object) -> None:
    allow, sockets, _ = make([FakeNetfilter()], [FakeIPSet(version=version)], batched=True)
    try:
        with pytest.raises(OverlayError, match="no ipset protocol version from pyroute2"):
            allow.apply(SetDiff(add=(address(0),)))
    finally:
        allow.close()
    assert sockets == []


def test_batches_turned_off_send_one_request_per_entry() -> None:
    allow, sockets, ipsets = make([FakeNetfilter()], [FakeIPSet()], batched=False)
    try:
        allow.apply(SetDiff(add=(address(0), address(1))))
    finally:
        allow.close()
    assert len(ipsets[0].requests) == 2 and sockets == [] and allow.entries_one_by_one == 2


def test_read_acks_takes_only_its_own_sequence_numbers() -> None:
    sock = FakeNetfilter()
    sock.queue = [
        ack(9, errno.EPERM) + ack(12, 0) + ack(10, IPSET_ERR_EXIST),
        ack(13, errno.EPERM),
        ack(11, 0),
    ]
    assert read_acks(sock, 10, 3) == {10: IPSET_ERR_EXIST, 11: 0, 12: 0}  # type: ignore[arg-type]
    assert sock.queue == []


def test_read_acks_raises_when_an_answer_does_not_come() -> None:
    sock = FakeNetfilter()
    sock.queue = [ack(10)]
    with pytest.raises(OSError, match="timed out"):
        read_acks(sock, 10, 2)  # type: ignore[arg-type]


class RenamedAttributeIPSet(FakeIPSet):
    """A pyroute2 release without ``_proto_version``: the version comes from its public call."""

    class Answer:
        def get_attr(self, name: str) -> object:
            return 7 if name == "IPSET_ATTR_PROTOCOL" else None

    def get_proto_version(self) -> list[Answer]:
        return [self.Answer()]


def test_without_the_private_attribute_the_public_call_gives_the_version() -> None:
    allow, sockets, _ = make([FakeNetfilter()], [RenamedAttributeIPSet(version=None)])
    try:
        allow.apply(SetDiff(add=(address(0),)))
    finally:
        allow.close()
    assert allow.entries_batched == 1 and len(sockets[0].sent) == 1
