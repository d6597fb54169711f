import random

import pytest

from p2porch import wire
from p2porch.errors import WireError
from p2porch.gossip.messages import (
    ALIVE,
    DEAD,
    META_MAX_BYTES,
    PACKET_OVERHEAD_BYTES,
    Ack,
    Alive,
    Dead,
    IndirectPing,
    Nack,
    NodeMeta,
    Ping,
    StateEntry,
    Suspect,
    check_meta,
    decode_packet,
    decode_pushpull,
    encode_packet,
    encode_pushpull,
    fit_meta,
    labels_meta_room,
    message_size,
    retransmit_limit,
)

ALL = [
    Ping(1, "b", "a"),
    IndirectPing(2, "c", "10.0.0.3:7946", "a", True),
    Ack(3),
    Nack(4),
    Suspect(5, "c", "a"),
    Alive(6, "d", "10.0.0.4:7946", {"a": "10.0.0.4", "l": {"zone": "z1"}}),
    Dead(7, "e", "e"),
]


def test_packet_round_trip_and_exact_size():
    data = encode_packet(ALL)
    assert decode_packet(data) == ALL
    # the size the core accounts is never below the real encoding and at most the header slack above
    accounted = sum(message_size(m) for m in ALL) + PACKET_OVERHEAD_BYTES
    assert len(data) <= accounted <= len(data) + 2


def test_pushpull_round_trip():
    states = [StateEntry("a", "h:1", 3, ALIVE, {"x": 1}), StateEntry("b", "h:2", 9, DEAD, {})]
    assert decode_pushpull(encode_pushpull(True, states)) == (True, states)


@pytest.mark.parametrize(
    "body",
    [
        [],
        [[99, 1]],
        [[1, 1, "b"]],  # missing field
        [[1, -1, "b", "a"]],  # negative seq
        [[1, True, "b", "a"]],  # bool is not an int
        [[2, 1, "c", "h:1", "a", 1]],  # nack must be a bool
        [[6, 1, "d", "h:1", [1, 2]]],  # meta must be a map
        [[6, 1, "d", "h:1", {1: 2}]],  # meta keys must be strings
        [["1", 1]],
        [None],
        {"not": "a list"},
    ],
)
def test_malformed_packets_raise_wire_error(body):
    with pytest.raises(WireError):
        decode_packet(wire.encode_frame("g", body))


def test_wrong_frame_type_rejected():
    with pytest.raises(WireError):
        decode_packet(wire.encode_frame("pp", [[3, 1]]))
    with pytest.raises(WireError):
        decode_pushpull(encode_packet([Ack(1)]))


def test_garbage_only_ever_raises_wire_error():
    rng = random.Random(7)
    valid = encode_packet(ALL)
    for i in range(3000):
        if i % 2:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
        else:  # flip bytes of a valid packet
            buf = bytearray(valid)
            for _ in range(rng.randrange(1, 5)):
                buf[rng.randrange(len(buf))] = rng.getrandbits(8)
            data = bytes(buf[: rng.randrange(1, len(buf) + 1)])
        for decode in (decode_packet, decode_pushpull):
            try:
                decode(data)
            except WireError:
                pass


def test_node_meta_round_trip_and_limit():
    meta = NodeMeta("10.0.0.1", "10.0.0.1", {"zone": "a"}, {"cpu_millis": 2000, "memory_bytes": 2**33})
    assert NodeMeta.from_wire(meta.to_wire()) == meta
    applied = NodeMeta("10.0.0.1", "10.0.0.1", traffic_index=2**40)
    assert NodeMeta.from_wire(applied.to_wire()) == applied
    assert NodeMeta.from_wire({"a": "10.0.0.1", "t": "x"}).traffic_index == 0  # ill-typed: nothing applied
    engine = NodeMeta("10.0.0.1", "10.0.0.1", engine_version="27.5.1")
    assert NodeMeta.from_wire(engine.to_wire()) == engine and engine.to_wire()["e"] == "27.5.1"
    assert "e" not in applied.to_wire() and NodeMeta.from_wire({"e": 5}).engine_version == ""
    arch = NodeMeta("10.0.0.1", "10.0.0.1", architecture="aarch64")  # node inspect's .Description.Platform
    assert NodeMeta.from_wire(arch.to_wire()) == arch and arch.to_wire()["p"] == "aarch64"
    assert "p" not in applied.to_wire() and NodeMeta.from_wire({"p": 5}).architecture == ""
    with pytest.raises(WireError):
        check_meta({"l": {"k": "x" * 600}})


def test_retransmit_limit_formula():
    assert retransmit_limit(4, 1) == 4
    assert retransmit_limit(4, 9) == 4
    assert retransmit_limit(4, 10) == 8  # ceil(log10(11)) = 2
    assert retransmit_limit(4, 999) == 12
    assert retransmit_limit(4, 1000) == 16


def test_node_meta_carries_a_restart_announcement_only_while_restarting():
    restarting = NodeMeta("10.0.0.1", "10.0.0.1", restart_until=1_800_000_030)
    assert (
        restarting.to_wire()["r"] == 1_800_000_030 and NodeMeta.from_wire(restarting.to_wire()) == restarting
    )
    assert "r" not in NodeMeta("10.0.0.1").to_wire()
    for bad in ("soon", True, -5, 1.5, None):  # ill-typed (meta is lenient): no announcement
        assert NodeMeta.from_wire({"r": bad}).restart_until == 0


def full_labels(room_left: int) -> dict[str, str]:
    """Node labels that leave ``room_left`` bytes in a small node's meta (an address, no optional keys)."""
    labels = {"fill": ""}
    base = len(wire.pack(NodeMeta("10.0.0.1", "10.0.0.1", labels).to_wire()))
    return {"fill": "x" * (META_MAX_BYTES - base - room_left)}


def test_optional_meta_keys_that_do_not_fit_are_left_out_not_raised():
    """Before: node labels filling the meta made the engine version (``p``/``e``, the agent's first start)
    and the restart announcement (``r``, the daemon's stop) raise WireError."""
    labels = full_labels(room_left=12)  # room for "e": "27.5.1" (9 bytes), not also for "p" or "r"
    meta = NodeMeta("10.0.0.1", "10.0.0.1", labels, engine_version="27.5.1", architecture="x86_64")
    wire_meta = meta.to_wire()
    assert wire_meta["e"] == "27.5.1" and "p" not in wire_meta and wire_meta["l"] == labels
    assert len(wire.pack(wire_meta)) <= META_MAX_BYTES
    fitted, skipped = fit_meta({**meta.wire_fields(), "r": 1_800_000_030})  # "r": 7 bytes
    assert skipped == ["e", "p"] and "r" in fitted  # the restart hold outranks the display-only keys
    with pytest.raises(WireError):  # the required keys alone are still refused past the limit
        NodeMeta("10.0.0.1", "10.0.0.1", full_labels(room_left=-1)).to_wire()


def test_node_labels_room_reserves_the_largest_other_keys():
    """What ``node update --label-add`` and join checks (membership/join_checks.labels_fit_gossip)."""
    assert 275 < labels_meta_room({}) < META_MAX_BYTES  # 282 with put_secret 2 and roll_done advertised
    fits = {f"k{i}": "v" * 8 for i in range(labels_meta_room({}) // 20)}
    assert labels_meta_room(fits) >= 0
    big = 2**64 - 1
    worst = NodeMeta(
        "255.255.255.255",
        "255.255.255.255",
        fits,
        {"cpu_millis": big, "memory_bytes": big},
        generation=big,
        traffic_index=big,
        engine_version="x" * 32,
        architecture="x" * 16,
        key_epoch=big,
        restart_until=big,
    )
    assert set(worst.to_wire()) >= {"e", "p", "r", "l"}  # nothing left out at the largest values
    assert labels_meta_room({**fits, "more": "x" * 200}) < 0
