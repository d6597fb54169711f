"""Peers' route, neighbour, FDB and allow-list requests encoded as netlink messages directly (pure).

pyroute2's ``IPBatch`` compiles a request through its whole machinery (an asyncio run, argument
filters, the generic encoder): ~0.27 ms of CPU per entry, most of the overlay netlink thread's CPU in a
join (a joiner's first pass compiles three entries per peer, each member three per joiner;
docs/performance.md, "The twenty-fifth round"). The six requests the overlay sends are fixed in form, so
:func:`encode` packs them with ``struct``, byte for byte as ``IPBatch`` compiles them (the port id left
0: the kernel answers the socket, whatever the header says; ``tests/unit/netoverlay/test_netlink_encode.py``
pins the bytes against ``IPBatch``). A request of any other form (not IPv4, a prefix without a length,
an argument it does not know) gives None, and the caller compiles it with ``IPBatch`` as before.
:func:`encode_ipset_entry` does the same for the VXLAN allow-list's ``ipset add|del`` (pyroute2's
``IPSet`` sends one request per address, ~1 ms of CPU each). Owns no socket; never decides what is sent.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

__all__ = ["encode", "encode_ipset_entry"]

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence number, port id
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_NLA = struct.Struct("=HH")  # length, type

RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWNEIGH, RTM_DELNEIGH = 24, 25, 28, 29
_REQUEST, _ACK, _REPLACE, _CREATE, _APPEND = 0x1, 0x4, 0x100, 0x400, 0x800
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
NDA_DST, NDA_LLADDR, NDA_PORT = 1, 2, 6
_RTPROT_STATIC, _RTN_UNICAST, _RTNH_F_ONLINK = 4, 1, 4
_NUD_PERMANENT, _NUD_NOARP, _NTF_SELF = 0x80, 0x40, 0x02
_AF_INET, _AF_BRIDGE = 2, 7  # linux/socket.h (no socket import: this module is pure)
_MAIN_TABLE = 254

#: the keyword arguments each request takes, as the driver builds them (anything else: not encoded)
_ROUTE_SET = frozenset({"dst", "gateway", "oif", "flags", "table"})
_ROUTE_DEL = frozenset({"dst", "oif", "table"})
_NEIGH_SET = frozenset({"dst", "lladdr", "ifindex", "state"})
_NEIGH_DEL = frozenset({"dst", "ifindex"})
_FDB = frozenset({"ifindex", "lladdr", "dst"})
_FDB_PORT = _FDB | {"port"}


def _attr(kind: int, payload: bytes) -> bytes:
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _ipv4(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{text!r}: not an IPv4 address")
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError as exc:
        raise ValueError(f"{text!r}: not an IPv4 address") from exc


def _mac(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError(text)
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6 or text.count(":") != 5:
        raise ValueError(text)
    return raw


def _index(value: Any) -> int:
    if type(value) is not int or not 0 < value < 1 << 31:
        raise ValueError(value)
    return value


def _prefix(dst: Any) -> tuple[bytes, int]:
    if not isinstance(dst, str) or dst.count("/") != 1:
        raise ValueError(dst)
    address, _, length = dst.partition("/")
    if not length.isdigit() or not 0 < int(length) <= 32:
        raise ValueError(dst)  # a default route (length 0) is encoded without RTA_DST: IPBatch's
    return _ipv4(address), int(length)


def _message(kind: int, flags: int, sequence: int, body: bytes) -> bytes:
    return _HEADER.pack(_HEADER.size + len(body), kind, flags, sequence, 0) + body


def _route(command: str, args: dict[str, Any], sequence: int) -> bytes | None:
    if args.get("table") != _MAIN_TABLE:
        return None
    dst, dst_len = _prefix(args["dst"])
    oif = struct.pack("=I", _index(args["oif"]))
    table = struct.pack("=I", _MAIN_TABLE)
    if command == "replace" and args.keys() == _ROUTE_SET and args["flags"] == ["onlink"]:
        header = _RTMSG.pack(
            _AF_INET, dst_len, 0, 0, _MAIN_TABLE, _RTPROT_STATIC, 0, _RTN_UNICAST, _RTNH_F_ONLINK
        )
        attrs = _attr(RTA_DST, dst) + _attr(RTA_GATEWAY, _ipv4(args["gateway"]))
        body = header + attrs + _attr(RTA_OIF, oif) + _attr(RTA_TABLE, table)
        return _message(RTM_NEWROUTE, _REQUEST | _ACK | _REPLACE | _CREATE, sequence, body)
    if command == "del" and args.keys() == _ROUTE_DEL:
        header = _RTMSG.pack(_AF_INET, dst_len, 0, 0, _MAIN_TABLE, 0, 0, 0, 0)
        body = header + _attr(RTA_DST, dst) + _attr(RTA_OIF, oif) + _attr(RTA_TABLE, table)
        return _message(RTM_DELROUTE, _REQUEST | _ACK, sequence, body)
    return None


def _neigh(command: str, args: dict[str, Any], sequence: int) -> bytes | None:
    header = _NDMSG.pack(_AF_INET, _index(args["ifindex"]), _NUD_PERMANENT, 0, 0)
    dst = _attr(NDA_DST, _ipv4(args["dst"]))
    if command == "replace" and args.keys() == _NEIGH_SET and args["state"] == "permanent":
        body = header + dst + _attr(NDA_LLADDR, _mac(args["lladdr"]))
        return _message(RTM_NEWNEIGH, _REQUEST | _ACK | _REPLACE | _CREATE, sequence, body)
    if command == "del" and args.keys() == _NEIGH_DEL:
        return _message(RTM_DELNEIGH, _REQUEST | _ACK, sequence, header + dst)
    return None


def _fdb(command: str, args: dict[str, Any], sequence: int) -> bytes | None:
    if args.keys() not in (_FDB, _FDB_PORT):
        return None
    header = _NDMSG.pack(_AF_BRIDGE, _index(args["ifindex"]), _NUD_PERMANENT | _NUD_NOARP, _NTF_SELF, 0)
    body = header + _attr(NDA_LLADDR, _mac(args["lladdr"])) + _attr(NDA_DST, _ipv4(args["dst"]))
    if "port" in args:
        port = args["port"]
        if type(port) is not int or not 0 < port < 1 << 16:
            return None
        body += _attr(NDA_PORT, struct.pack("!H", port))
    if command == "append":
        return _message(RTM_NEWNEIGH, _REQUEST | _ACK | _CREATE | _APPEND, sequence, body)
    if command == "del":
        return _message(RTM_DELNEIGH, _REQUEST | _ACK, sequence, body)
    return None


_ENCODERS = {"route": _route, "neigh": _neigh, "fdb": _fdb}


def encode(method: str, command: str, args: dict[str, Any], sequence: int) -> bytes | None:
    """One request (``IPRoute``'s method, command and keyword arguments) as its netlink message with
    ``sequence``, or None when it is not one of the forms encoded here (the caller uses ``IPBatch``)."""
    encoder = _ENCODERS.get(method)
    if encoder is None:
        return None
    try:
        return encoder(command, args, sequence)
    except (KeyError, ValueError):
        return None


# ----- ipset (NETLINK_NETFILTER): an IPv4 address added to or deleted from a set
NFNL_SUBSYS_IPSET = 6
IPSET_CMD_ADD, IPSET_CMD_DEL = 9, 10
_IPSET_COMMANDS = {"add": IPSET_CMD_ADD, "del": IPSET_CMD_DEL}
_NFGENMSG = struct.Struct("=BBH")  # family, version, resource id (big endian, 0)
IPSET_ATTR_PROTOCOL, IPSET_ATTR_SETNAME, IPSET_ATTR_DATA = 1, 2, 7
IPSET_ATTR_IP, IPSET_ATTR_IPADDR_IPV4 = 1, 1
_NLA_F_NESTED, _NLA_F_NET_BYTEORDER = 0x8000, 0x4000
IPSET_MAXNAMELEN = 32


def encode_ipset_entry(command: str, set_name: str, address: str, protocol: int, sequence: int) -> bytes:
    """``ipset add|del SET ADDRESS`` (no NLM_F_EXCL: an existing add and a missing delete are not
    errors) as pyroute2's ``IPSet.add``/``delete(..., exclusive=False)`` sends it for an IPv4 address;
    ``protocol`` is the kernel's ipset protocol version (pyroute2 asks the kernel when it opens the
    socket). Raises ValueError for a name or address it cannot encode."""
    if not set_name.isascii() or len(set_name) >= IPSET_MAXNAMELEN:
        raise ValueError(f"set name {set_name!r}: not ASCII of at most {IPSET_MAXNAMELEN - 1} characters")
    if type(protocol) is not int or not 0 <= protocol < 256:
        raise ValueError(f"ipset protocol version {protocol!r}: not an integer 0-255")
    name = set_name.encode("ascii") + b"\0"
    ip = _attr(IPSET_ATTR_IPADDR_IPV4 | _NLA_F_NET_BYTEORDER, _ipv4(address))
    data = _attr(IPSET_ATTR_DATA | _NLA_F_NESTED, _attr(IPSET_ATTR_IP | _NLA_F_NESTED, ip))
    attrs = _attr(IPSET_ATTR_PROTOCOL, bytes([protocol])) + _attr(IPSET_ATTR_SETNAME, name) + data
    kind = _IPSET_COMMANDS[command] | NFNL_SUBSYS_IPSET << 8
    return _message(kind, _REQUEST | _ACK, sequence, _NFGENMSG.pack(_AF_INET, 0, 0) + attrs)
