"""Pure DNS resolver for the cluster domain: query bytes in, response bytes out (sans-IO).

`Resolver.resolve(data, tcp=...)` returns the packed response, `FORWARD` when the name is outside
the cluster domain (the shell forwards the query to upstreams), or None to drop the packet. It owns
a response cache keyed by the query bytes after the 2-byte ID (one dict per transport, so the UDP
size class is part of the key through the EDNS OPT record in those bytes); a hit patches the ID and
never parses. The cache is replaced whenever the zone changes. Service A answers are rotated per
query by rotating the fixed-size A records inside the cached packed bytes (see `RotatingAnswer`).
It must never raise, do I/O, read the clock or log; dnslib is used only as the codec.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Final

from dnslib import NS, PTR, RR, SOA, SRV, A, DNSError, DNSHeader, DNSLabel, DNSRecord

from p2porch.dns.zone import DEFAULT_TTL_S, CompiledZone, Labels, NameRecords, ZoneData
from p2porch.dns.zone_cache import FragmentStore, ZoneCompiler
from p2porch.errors import ConfigError

# Response codes and flags (RFC 1035 §4.1.1, RFC 6891 for BADVERS).
NOERROR: Final = 0
FORMERR: Final = 1
SERVFAIL: Final = 2
NXDOMAIN: Final = 3
NOTIMP: Final = 4
REFUSED: Final = 5
_BADVERS_HIGH: Final = 1  # extended rcode 16 = (1 << 4) | 0
_QR: Final = 0x8000
_AA: Final = 0x0400
_TC: Final = 0x0200
_RD: Final = 0x0100
_RA: Final = 0x0080
_CD: Final = 0x0010
_CLASS_IN: Final = 1
_CLASS_ANY: Final = 255
_TYPE_A: Final = 1
_TYPE_NS: Final = 2
_TYPE_SOA: Final = 6
_TYPE_PTR: Final = 12
_TYPE_SRV: Final = 33
_TYPE_OPT: Final = 41
_TYPE_IXFR: Final = 251
_TYPE_AXFR: Final = 252
_TYPE_ANY: Final = 255
_MIN_UDP_BYTES: Final = 512
_MAX_TCP_BYTES: Final = 65535
# A record with its owner compressed to the question name: ptr(2) type(2) class(2) ttl(4) rdlen(2) rdata(4).
_A_RR_BYTES: Final = 16
_SOA_REFRESH_S, _SOA_RETRY_S, _SOA_EXPIRE_S = 3600, 600, 86400
_MAX_CACHED_QUERY_BYTES: Final = 512  # a stub's query with EDNS is < 300 bytes; longer ones are not cached
_ENTRY_OVERHEAD_BYTES: Final = 200  # dict slot and two bytes objects' headers, roughly


def _beside_search_domain(labels: Labels, zone: CompiledZone) -> NameRecords | None:
    """The records of ``<name>.<domain>`` for a missing ``<name>.<stack>.<domain>``: a stack's tasks search
    ``<stack>.<domain>`` first, and busybox ``nslookup`` asks every search domain at once and exits 1 on
    any NXDOMAIN although another one answers, so a name of the cluster is also found there. Only under
    an empty non-terminal of the apex other than ``node`` (a stack's, ``shop.p2p``); None otherwise."""
    n = len(zone.domain)
    if len(labels) < n + 2 or labels[-n - 1] == b"node":
        return None
    parent = zone.names.get(labels[-n - 1 :])
    if parent is None or parent.a or parent.srv or parent.ptr:
        return None
    return zone.names.get(labels[: -n - 1] + zone.domain)


class Forward:
    """The decision "this name is not ours: forward the query upstream" (singleton `FORWARD`)."""

    _instance: Forward | None = None

    def __new__(cls) -> Forward:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "FORWARD"


FORWARD: Final = Forward()

Decision = bytes | Forward | None


@dataclass(slots=True)
class ResolverCounters:
    """What the resolver did; the server adds its own I/O counters beside these."""

    cache_hits: int = 0
    cache_misses: int = 0
    answered: int = 0
    nxdomain: int = 0
    nodata: int = 0
    formerr: int = 0
    notimp: int = 0
    refused: int = 0
    badvers: int = 0
    dropped: int = 0
    truncated: int = 0
    forward_decisions: int = 0
    internal_errors: int = 0

    @property
    def queries(self) -> int:
        return self.cache_hits + self.cache_misses

    def as_dict(self) -> dict[str, int]:
        return {"queries": self.queries} | asdict(self)


class RotatingAnswer:
    """A cached answer of N equal-size A records whose order rotates on every use.

    Rotation works on the packed bytes: the answer section is N records of 16 bytes each (owner
    compressed to the question name at offset 12), so rotation k is `doubled[k*16 : k*16 + N*16]`
    where `doubled` is the section twice. Cost per query: one slice and one join, no parsing.
    """

    __slots__ = ("head", "doubled", "span", "count", "tail", "next")

    def __init__(self, head: bytes, section: bytes, count: int, tail: bytes, start: int) -> None:
        self.head = head
        self.doubled = section + section
        self.span = len(section)
        self.count = count
        self.tail = tail
        self.next = start % count

    def render(self, msg_id: bytes) -> bytes:
        """The next rotation as a whole response with ID `msg_id`."""
        return msg_id + self.next_tail()

    def next_tail(self) -> bytes:
        """The next rotation without the 2-byte ID (the UDP fast path writes it after the query's ID)."""
        k = self.next
        self.next = k + 1 if k + 1 < self.count else 0
        start = k * _A_RR_BYTES
        return b"".join((self.head, self.doubled[start : start + self.span], self.tail))


CacheEntry = bytes | Forward | RotatingAnswer


def _header_only(data: bytes, rcode: int) -> bytes:
    """A response carrying only the header of `data` (ID, opcode, RD kept) with `rcode`."""
    flags = (data[2] & 0x79) | 0x80  # opcode + RD kept, QR set
    return data[:2] + bytes((flags, 0x80 | rcode)) + b"\x00" * 8


class Resolver:
    """Answers queries for one cluster zone from memory; owns the zone, the cache and the counters.

    Never performs I/O and never raises from `resolve`. `update_zone` swaps the zone and drops the
    whole cache in one assignment, so the next query sees the new state.
    """

    def __init__(
        self,
        zone: ZoneData,
        *,
        ttl_s: int = DEFAULT_TTL_S,
        max_udp_payload_bytes: int = 1232,
        cache_max_entries: int = 10_000,
        cache_max_bytes: int = 16 << 20,
        rng: random.Random | None = None,
        fragments: FragmentStore | None = None,
    ) -> None:
        if not 0 <= ttl_s <= 0x7FFFFFFF:
            raise ConfigError(f"DNS ttl_s must be 0..2^31-1, got {ttl_s}", field="ttl_s")
        if not _MIN_UDP_BYTES <= max_udp_payload_bytes <= _MAX_TCP_BYTES:
            raise ConfigError(
                f"max_udp_payload_bytes must be 512..65535, got {max_udp_payload_bytes}",
                field="max_udp_payload_bytes",
            )
        if cache_max_entries < 1:
            raise ConfigError("cache_max_entries must be >= 1", field="cache_max_entries")
        if cache_max_bytes < 4096:
            raise ConfigError("cache_max_bytes must be >= 4096", field="cache_max_bytes")
        self.ttl_s = ttl_s
        self.max_udp_payload_bytes = max_udp_payload_bytes
        self.cache_max_entries = cache_max_entries
        self.cache_max_bytes = cache_max_bytes
        self.cache_bytes = 0  # keys + values of both caches (the bound is in bytes, not only entries)
        self._rng = rng if rng is not None else random.Random(0)
        self.counters = ResolverCounters()
        self.zone_generation = 0
        # recompiles only the services that changed; ``fragments``: shared with the node's other resolvers
        self._compiler = ZoneCompiler(fragments)
        self._zone: CompiledZone = self._compiler.compile(zone)
        self._udp_cache: dict[bytes, CacheEntry] = {}
        self._tcp_cache: dict[bytes, CacheEntry] = {}

    @property
    def zone(self) -> CompiledZone:
        return self._zone

    @property
    def fragments(self) -> FragmentStore:
        """The compiled services this resolver keeps (hand it to another resolver of the same node)."""
        return self._compiler.store

    def close(self) -> None:
        """Let go of the compiled services this resolver holds in its store (its scope was dropped):
        the store keeps only what the node's other resolvers hold. Its zone still answers."""
        self._compiler.close()

    def update_zone(self, zone: ZoneData) -> None:
        """Swap in a new zone; answers change from the next query (the cache is dropped)."""
        self.show(self._compiler.compile(zone))

    def show(self, compiled: CompiledZone) -> None:
        """Swap in a zone compiled elsewhere (a link scope's, `link_scope.link_zone`), as `update_zone`."""
        self._zone = compiled
        self._udp_cache = {}
        self._tcp_cache = {}
        self.cache_bytes = 0
        self.zone_generation += 1

    @property
    def udp_cache(self) -> dict[bytes, CacheEntry]:
        """The current UDP response cache, for the server's batched fast path (read-only use).

        Keys are query bytes after the ID; a `bytes` value is the response after the ID. The dict
        is replaced by `update_zone` and when the cache bound is reached, so fetch it again after
        every await. A caller that answers from it must add its hits to `counters.cache_hits`.
        """
        return self._udp_cache

    def cache_size(self) -> int:
        return len(self._udp_cache) + len(self._tcp_cache)

    # ---- hot path -------------------------------------------------------------------------------

    def resolve(self, data: bytes, tcp: bool = False) -> Decision:
        """Response bytes for query `data`, `FORWARD`, or None (drop). Never raises."""
        try:
            entry = (self._tcp_cache if tcp else self._udp_cache).get(data[2:])
        except TypeError:  # not bytes (e.g. a bytearray): use an immutable copy
            data = bytes(data)
            entry = (self._tcp_cache if tcp else self._udp_cache).get(data[2:])
        if entry is not None:
            self.counters.cache_hits += 1
            if entry.__class__ is bytes:
                return data[:2] + entry
            if entry is FORWARD:
                return FORWARD
            return entry.render(data[:2])  # type: ignore[union-attr]
        counters = self.counters
        counters.cache_misses += 1
        try:
            return self._resolve_slow(data, tcp)
        except Exception:  # a bug here must not stop the server: answer SERVFAIL instead
            counters.internal_errors += 1
            if len(data) < 12 or data[2] & 0x80:
                return None
            return _header_only(data, SERVFAIL)

    def error_response(self, data: bytes, rcode: int) -> bytes | None:
        """`rcode` response to query `data` with its question (and OPT) echoed; None if unparsable.

        The shell uses it for SERVFAIL when every upstream failed and REFUSED under overload.
        """
        try:
            req = DNSRecord.parse(data)
            if len(req.questions) != 1:
                return _header_only(data, rcode)
            opt = self._edns_of(req)
            bitmap = _QR | _RA | (req.header.bitmap & (_RD | _CD)) | rcode
            reply = DNSRecord(DNSHeader(id=req.header.id, bitmap=bitmap), q=req.questions[0])
            if opt is not None:
                reply.add_ar(self._opt_rr(opt, 0))
            return bytes(reply.pack())
        except Exception:
            if len(data) < 12 or data[2] & 0x80:
                return None
            return _header_only(data, rcode)

    # ---- slow path ------------------------------------------------------------------------------

    def _store(self, data: bytes, tcp: bool, entry: CacheEntry) -> None:
        """Cache `entry` for query `data`: never queries longer than a real stub sends, and both caches
        are dropped at once when they would exceed `cache_max_entries` or `cache_max_bytes`."""
        if len(data) > _MAX_CACHED_QUERY_BYTES:
            return
        if entry.__class__ is bytes:
            size = len(entry)
        elif isinstance(entry, RotatingAnswer):
            size = len(entry.head) + len(entry.doubled) + len(entry.tail)
        else:
            size = 0
        size += len(data) + _ENTRY_OVERHEAD_BYTES
        cache = self._tcp_cache if tcp else self._udp_cache
        if len(cache) >= self.cache_max_entries or self.cache_bytes + size > self.cache_max_bytes:
            self._udp_cache = {}
            self._tcp_cache = {}
            self.cache_bytes = 0
            cache = self._tcp_cache if tcp else self._udp_cache
        cache[data[2:]] = entry
        self.cache_bytes += size

    def _formerr(self, data: bytes) -> bytes:
        self.counters.formerr += 1
        return _header_only(data, FORMERR)

    @staticmethod
    def _edns_of(req: DNSRecord) -> RR | None:
        opts = [rr for rr in req.ar if rr.rtype == _TYPE_OPT]
        if len(opts) > 1:
            raise DNSError("more than one OPT record")
        if opts and opts[0].rname.label != ():
            raise DNSError("OPT owner is not the root")
        return opts[0] if opts else None

    def _opt_rr(self, opt: RR, ext_rcode_high: int) -> RR:
        do_bit = opt.ttl & 0x8000  # DO is copied back (RFC 3225)
        return RR(
            rname=DNSLabel(()),
            rtype=_TYPE_OPT,
            rclass=self.max_udp_payload_bytes,
            ttl=(ext_rcode_high << 24) | do_bit,
            rdata=[],
        )

    def _resolve_slow(self, data: bytes, tcp: bool) -> Decision:
        counters = self.counters
        if len(data) < 12 or data[2] & 0x80:  # no header, or a response: never answer those
            counters.dropped += 1
            return None
        if (data[2] >> 3) & 0x0F != 0:
            counters.notimp += 1
            return _header_only(data, NOTIMP)
        try:
            req = DNSRecord.parse(data)
            opt = self._edns_of(req)
        except Exception:
            return self._formerr(data)
        if len(req.questions) != 1:
            return self._formerr(data)
        q = req.questions[0]
        zone = self._zone
        labels: Labels = tuple(lab.lower() for lab in q.qname.label)
        n_domain = len(zone.domain)
        in_domain = len(labels) >= n_domain and labels[len(labels) - n_domain :] == zone.domain
        rec: NameRecords | None
        plain_name = not in_domain and len(labels) == 1  # "web.": never forwarded (dnsmasq's domain-needed)
        # "web." and "tasks.web." (bare, as Docker's DNS answers them) are "<name>.<domain>" when it exists.
        bare_tasks = not in_domain and len(labels) == 2 and labels[0] == b"tasks"
        if (plain_name or bare_tasks) and labels + zone.domain in zone.names:
            in_domain, plain_name, labels = True, False, labels + zone.domain
        elif (
            not in_domain
            and zone.bare
            and (
                labels + zone.domain in zone.bare
                or (labels[:1] == (b"tasks",) and labels[1:] + zone.domain in zone.bare)
            )
        ):
            # a network alias with a dot ("db.internal", "orderer.example.com") and its "tasks." name:
            # answered as asked, as Docker's DNS answers a service's aliases before forwarding (resolvers
            # try it absolute first)
            in_domain, labels = True, labels + zone.domain
        if in_domain or plain_name:
            rec = (zone.names.get(labels) or _beside_search_domain(labels, zone)) if in_domain else None
        else:
            rec = zone.reverse.get(labels)
            if rec is None or q.qtype not in (_TYPE_PTR, _TYPE_ANY):
                counters.forward_decisions += 1
                self._store(data, tcp, FORWARD)
                return FORWARD

        bitmap = _QR | _RA | (req.header.bitmap & (_RD | _CD))
        ext_rcode_high = 0
        reply = DNSRecord(DNSHeader(id=req.header.id, bitmap=bitmap), q=q)
        rotate = False
        if opt is not None and (opt.ttl >> 16) & 0xFF != 0:
            counters.badvers += 1
            ext_rcode_high = _BADVERS_HIGH
        elif q.qclass not in (_CLASS_IN, _CLASS_ANY) or q.qtype in (_TYPE_AXFR, _TYPE_IXFR):
            counters.refused += 1
            reply.header.rcode = REFUSED
        elif plain_name:
            counters.nxdomain += 1
            reply.header.rcode = NXDOMAIN
        else:
            reply.header.aa = 1
            rotate = self._answer(reply, q.qname, q.qtype, labels, rec, zone)
        if opt is not None:
            reply.add_ar(self._opt_rr(opt, ext_rcode_high))
        try:
            packed = bytes(reply.pack())
        except Exception:  # e.g. a parsed name longer than 255 bytes that cannot be packed back
            return self._formerr(data)

        if tcp:
            limit = _MAX_TCP_BYTES
        elif opt is not None:
            limit = max(_MIN_UDP_BYTES, min(opt.rclass, self.max_udp_payload_bytes))
        else:
            limit = _MIN_UDP_BYTES
        if len(packed) > limit:
            counters.truncated += 1
            short = DNSRecord(DNSHeader(id=req.header.id, bitmap=reply.header.bitmap | _TC), q=q)
            if opt is not None:
                short.add_ar(self._opt_rr(opt, ext_rcode_high))
            packed = bytes(short.pack())
            rotate = False

        entry: CacheEntry = packed[2:]
        n_answers = len(reply.rr)
        if rotate and n_answers > 1:
            rotating = self._rotating(packed, reply, n_answers)
            if rotating is not None:
                entry = rotating
        self._store(data, tcp, entry)
        if isinstance(entry, RotatingAnswer):
            return entry.render(data[:2])
        return data[:2] + packed[2:]

    def _rotating(self, packed: bytes, reply: DNSRecord, n_answers: int) -> RotatingAnswer | None:
        """Split a packed all-A answer into head, rotatable section and tail; None if not possible."""
        question_only = DNSRecord(DNSHeader(id=0, bitmap=0), q=reply.questions[0])
        start = len(question_only.pack())
        end = start + n_answers * _A_RR_BYTES
        section = packed[start:end]
        if len(section) != n_answers * _A_RR_BYTES or reply.auth or len(packed) < end:
            return None
        prefix = section[:12]
        if prefix[:6] != b"\xc0\x0c\x00\x01\x00\x01" or prefix[10:12] != b"\x00\x04":
            return None
        for i in range(n_answers):
            if section[i * _A_RR_BYTES : i * _A_RR_BYTES + 12] != prefix:
                return None
        return RotatingAnswer(
            packed[2:start], section, n_answers, packed[end:], self._rng.randrange(n_answers)
        )

    def _answer(
        self,
        reply: DNSRecord,
        qname: DNSLabel,
        qtype: int,
        labels: Labels,
        rec: NameRecords | None,
        zone: CompiledZone,
    ) -> bool:
        """Fill answer/authority/additional of `reply`; True when the answer is a rotatable A set."""
        ttl = self.ttl_s
        counters = self.counters
        if rec is None:
            counters.nxdomain += 1
            reply.header.rcode = NXDOMAIN
            reply.add_auth(self._soa_rr(zone))
            return False
        any_type = qtype == _TYPE_ANY
        if qtype == _TYPE_A or any_type:
            for address in rec.a:
                reply.add_answer(RR(qname, _TYPE_A, ttl=ttl, rdata=A(address)))
        if qtype == _TYPE_SRV or any_type:
            seen: set[Labels] = set()
            for port, target in rec.srv:
                reply.add_answer(
                    RR(qname, _TYPE_SRV, ttl=ttl, rdata=SRV(priority=0, weight=10, port=port, target=target))
                )
                if target not in seen:
                    seen.add(target)
                    target_rec = zone.names.get(target)
                    for address in target_rec.a if target_rec else ():
                        reply.add_ar(RR(DNSLabel(target), _TYPE_A, ttl=ttl, rdata=A(address)))
        if qtype == _TYPE_PTR or any_type:
            for target in rec.ptr:
                reply.add_answer(RR(qname, _TYPE_PTR, ttl=ttl, rdata=PTR(DNSLabel(target))))
        if labels == zone.domain:
            ns_name = DNSLabel((b"ns",) + zone.domain)
            if qtype == _TYPE_SOA or any_type:
                reply.add_answer(self._soa_rr(zone, qname))
            if qtype == _TYPE_NS or any_type:
                reply.add_answer(RR(qname, _TYPE_NS, ttl=ttl, rdata=NS(ns_name)))
                ns_rec = zone.names.get(ns_name.label)
                for address in ns_rec.a if ns_rec else ():
                    reply.add_ar(RR(ns_name, _TYPE_A, ttl=ttl, rdata=A(address)))
        if not reply.rr:
            counters.nodata += 1
            reply.add_auth(self._soa_rr(zone))
            return False
        counters.answered += 1
        return rec.rotate and qtype in (_TYPE_A, _TYPE_ANY) and not rec.srv and not rec.ptr

    def _soa_rr(self, zone: CompiledZone, owner: DNSLabel | None = None) -> RR:
        apex = DNSLabel(zone.domain)
        soa = SOA(
            mname=DNSLabel((b"ns",) + zone.domain),
            rname=DNSLabel((b"hostmaster",) + zone.domain),
            times=(zone.serial, _SOA_REFRESH_S, _SOA_RETRY_S, _SOA_EXPIRE_S, self.ttl_s),
        )
        return RR(owner if owner is not None else apex, _TYPE_SOA, ttl=self.ttl_s, rdata=soa)
