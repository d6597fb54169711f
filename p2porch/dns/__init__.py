"""p2porch.dns: the embedded cluster DNS (pure cores, trio shell).

Pure: zone (the cluster's names from committed state), resolver (answers from a zone; dnslib only as
codec), upstream (forwarding targets). Shell: server (trio UDP + TCP loop, cached packed answers),
mmsg (batched UDP syscalls). Entry point: :func:`p2porch.dns.server.serve_dns`, started by
:mod:`p2porch.member.dns`. See docs/dns.md.
"""

__all__ = ["mmsg", "resolver", "server", "upstream", "zone"]
