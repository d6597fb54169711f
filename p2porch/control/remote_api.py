"""The control API over TCP with TLS: certificates, the listener's lifecycle, and ``/cluster/ca`` (shell).

Off unless ``api.addr`` is set. With an operator certificate (``api.cert``/``api.key``, optional
``api.ca``) the listener serves it from the start. Otherwise the certificate comes from the cluster CA
(``vault.cluster_ca``): once this node is a member, it issues itself a server certificate for its
advertise address and the ``api.addr`` host, and issues a new one whenever the key epoch changes
(``cluster rotate-keys``, ``node rm``), so only the current epoch's CA verifies it, and 30 days before
it expires. A node that is no
longer in the cluster (it left, or the committed state no longer lists it) stops listening.
:func:`remote_app` is the ASGI app the listener serves: token authentication, role checks per route,
and room for more routes (``extra_routes``) and unauthenticated paths (``public_prefixes``) such as
metrics or a UI's static assets.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import trio
from starlette.routing import BaseRoute

from ..api.auth import TokenAuth, Verifier
from ..api.connlimit import ConnectionLimiter
from ..api.deadline import DEFAULT_REQUEST_TIMEOUT_S, RequestDeadline
from ..api.ratelimit import FailureLimiter
from ..api.server import Endpoint, OnResponse, build_app
from ..api.tls_server import TlsIdentity, serve_tls
from ..config import ApiConfig
from ..errors import ConfigError, DaemonError, NotFoundError
from .roles import role_of

if TYPE_CHECKING:
    from ..membership.localstate import LocalClusterState
    from ..membership.manager import ClusterManager
    from ..promclient import Metric
    from ..vault.cluster_ca import ClusterCA

log = logging.getLogger(__name__)

__all__ = ["RemoteApi", "ca_of", "remote_app"]

TLS_DIR = "api-tls"
WATCH_INTERVAL_S = 1.0
RENEW_BEFORE_S = 30 * 86400.0  # server certificates last 90 days and are renewed 30 days before
MAX_CONNECTIONS = (
    1024  # open TLS API connections in total (the per-source cap is api.max_connections_per_source)
)


def ca_of(local: LocalClusterState) -> ClusterCA:
    """The cluster CA of this node's current key epoch."""
    from ..vault.cluster_ca import CA_SEED_BYTES, cluster_ca  # cryptography.x509 only when a CA is needed

    keys = local.keys
    return cluster_ca(local.cluster_id, keys.epoch, keys.derive("api-ca", CA_SEED_BYTES))


def remote_app(
    endpoints: list[Endpoint],
    verify: Verifier,
    *,
    limiter: FailureLimiter | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    public_prefixes: Sequence[str] = (),
    public_paths: Sequence[str] = (),
    on_response: OnResponse | None = None,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    on_timeout: Callable[[], None] | None = None,
) -> RequestDeadline:
    """The TCP API: every route needs a token with its role (``control.roles``); a request body must
    arrive within ``request_timeout_s`` of its head, token or not (408 and ``on_timeout()`` otherwise)."""
    app = build_app(endpoints, role_of=role_of, extra_routes=extra_routes, on_response=on_response)
    authed = TokenAuth(
        app, verify, limiter=limiter, public_prefixes=public_prefixes, public_paths=public_paths
    )
    return RequestDeadline(authed, request_timeout_s, on_timeout)


def _hosts(local: LocalClusterState, addr: str) -> list[str]:
    host = addr.rpartition(":")[0]
    hosts = [local.advertise_addr]
    if host and host != "0.0.0.0":
        hosts.append(host)
    if host in ("0.0.0.0", "127.0.0.1"):
        hosts.append("127.0.0.1")
    return hosts


class RemoteApi:
    """Owns the TLS listener of one daemon: which certificate it serves and whether it listens."""

    def __init__(self, section: ApiConfig, cluster: ClusterManager, data_dir: str, node_name: str) -> None:
        if bool(section.cert) != bool(section.key):
            raise ConfigError("--api-cert and --api-key go together", field="api.cert")
        self.section = section
        self.cluster = cluster
        self.node_name = node_name
        self.identity = TlsIdentity(os.path.join(data_dir, TLS_DIR))
        self.issued_for: tuple[str, int, tuple[str, ...]] | None = None  # (cluster id, epoch, hosts)
        self.serial = 0
        self.renew_at = 0.0  # wall time (s) after which the certificate is re-issued anyway
        per_source = section.max_connections_per_source
        self.connections = ConnectionLimiter(per_source=per_source, total=max(MAX_CONNECTIONS, per_source))
        self.send_timeouts = 0  # connections cut because their client took no data for send_timeout_s

    def count_send_timeout(self) -> None:
        self.send_timeouts += 1

    @property
    def operator_certificate(self) -> bool:
        return bool(self.section.cert)

    def ca_info(self) -> dict[str, Any]:
        """What a client pins: the PEM of the CA that issued this node's certificate."""
        if self.operator_certificate:
            if not self.section.ca:
                raise NotFoundError(
                    "this node serves an operator certificate and was given no --api-ca", field="api.ca"
                )
            with open(self.section.ca) as handle:
                return {"source": "operator", "pem": handle.read(), "epoch": None, "fingerprint": None}
        local = self.cluster.local
        if local is None:
            raise DaemonError("this node is not in a cluster: there is no cluster CA yet", field="cluster")
        ca = ca_of(local)
        return {"source": "cluster", "pem": ca.pem, "epoch": ca.epoch, "fingerprint": ca.fingerprint}

    def status(self) -> dict[str, Any]:
        """For ``status``: where the TLS API listens and whose certificate it serves."""
        if self.operator_certificate:
            source = "operator certificate"
        elif self.issued_for is not None:
            source = f"cluster CA of key epoch {self.issued_for[1]}"
        else:
            source = "not listening (not a cluster member)"
        return {"addr": self.section.addr, "certificate": source}

    def _member(self) -> LocalClusterState | None:
        """This node's cluster state while it is a member that the committed state still lists."""
        local = self.cluster.local
        if local is None:
            return None
        store = self.cluster.store
        if store is not None:
            state = store.snapshot()
            if state.initialized and local.node_id not in state.nodes:
                return None
        return local

    def refresh(self, now: dt.datetime) -> bool:
        """Issue a certificate if none is current; True while there is one to serve."""
        if self.operator_certificate:
            if not self.identity.installed:
                self.identity.load(self.section.cert, self.section.key)
            return True
        local = self._member()
        if local is None:
            return False
        hosts = _hosts(local, self.section.addr)
        wanted = (local.cluster_id, local.key_epoch, tuple(hosts))
        if wanted != self.issued_for or now.timestamp() >= self.renew_at:
            from ..vault.cluster_ca import issue_server_certificate

            issued = issue_server_certificate(ca_of(local), self.node_name, hosts, now)
            self.identity.install(issued.cert_pem, issued.key_pem)
            self.issued_for, self.serial = wanted, issued.serial
            self.renew_at = issued.not_after - RENEW_BEFORE_S
            log.info(
                "remote API certificate issued by the cluster CA of key epoch %d for %s", wanted[1], hosts
            )
        return True

    def collect_metrics(self) -> Iterator[Metric]:
        """``/metrics`` families of the TLS listener: open connections, refusals by cap, readers cut."""
        from ..promclient import CounterMetricFamily, GaugeMetricFamily

        yield GaugeMetricFamily(
            "p2porch_api_connections_open", "Open connections to the TLS API", value=self.connections.open_now
        )
        refused = CounterMetricFamily(
            "p2porch_api_connections_refused",
            "TLS API connections closed before their handshake, by the cap they hit (per_source | total)",
            labels=["reason"],
        )
        for reason, count in sorted(self.connections.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        cut = CounterMetricFamily(
            "p2porch_api_send_timeouts",
            "TLS API connections closed because their client took none of a response for api.send_timeout_s "
            "(a client that stopped reading)",
        )
        cut.add_metric([], self.send_timeouts)
        yield cut

    async def serve(self, app: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen while there is a certificate to serve; re-check every second."""
        task_status.started()
        scope: trio.CancelScope | None = None
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    serving = self.refresh(dt.datetime.now(dt.UTC))
                except (OSError, ValueError, DaemonError, ConfigError) as exc:
                    log.warning("remote API certificate: %s", exc)
                    serving = self.identity.installed
                if serving and scope is None:
                    try:
                        scope = await nursery.start(self._listen, app)
                        log.info("remote API listening on https://%s", self.section.addr)
                    except Exception as exc:  # e.g. the address is not this host's (yet): retry
                        log.warning("remote API cannot listen on %s: %r", self.section.addr, exc)
                elif not serving and scope is not None:
                    scope.cancel()
                    scope, self.issued_for = None, None
                    log.warning("this node is no longer a cluster member: the remote API stops listening")
                await trio.sleep(WATCH_INTERVAL_S)

    async def _listen(self, app: Any, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            await serve_tls(
                app,
                self.section.addr,
                self.identity,
                limiter=self.connections,
                send_timeout_s=self.section.send_timeout_s,
                on_send_timeout=self.count_send_timeout,
                task_status=_Relay(task_status, scope),
            )


class _Relay:
    """Reports the listener's cancel scope once hypercorn has bound its socket."""

    def __init__(self, status: trio.TaskStatus[trio.CancelScope], scope: trio.CancelScope) -> None:
        self.status, self.scope = status, scope

    def started(self, value: Any = None) -> None:
        self.status.started(self.scope)
