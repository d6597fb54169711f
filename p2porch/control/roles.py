"""Which role each API route needs over TCP (pure): read < operate < admin.

``read`` is every GET that shows state (never the join token or the access tokens); ``operate`` changes
what runs without changing who may do what: scale, update, roll back and rebalance services, deploy and
remove stacks, services and networks, change a node's availability or labels; ``admin`` is everything else:
access tokens, secrets and configs, node removal, the join token, key rotation and the cluster
lifecycle. A route missing from this table needs ``admin`` (deny by default); a unit test checks that
every route of the daemon is listed. The unix socket is root-only and needs no role.
"""

from __future__ import annotations

from ..vault.access import Role

R, OP, A = Role.READ, Role.OPERATE, Role.ADMIN

ROUTE_ROLES: dict[tuple[str, str], Role] = {
    ("GET", "/version"): R,
    ("GET", "/status"): R,
    ("GET", "/config"): R,
    ("GET", "/openapi.json"): R,
    ("GET", "/network"): R,
    ("GET", "/events"): R,
    ("GET", "/cluster/ca"): R,
    ("GET", "/nodes"): R,
    ("GET", "/nodes/{node}"): R,
    ("GET", "/nodes/{node}/tasks"): R,
    ("POST", "/nodes/{node}/update"): OP,  # drain, pause, activate, labels
    ("DELETE", "/nodes/{node}"): A,
    ("GET", "/services"): R,
    ("GET", "/services/{service}"): R,
    ("GET", "/services/{service}/tasks"): R,
    ("GET", "/services/{service}/logs"): R,
    ("GET", "/services/{service}/usage"): R,
    ("GET", "/services/{service}/autoscale"): R,
    ("GET", "/stats/services"): R,
    ("GET", "/stats/nodes"): R,
    ("POST", "/services"): OP,
    ("POST", "/services/{service}/update"): OP,
    ("POST", "/services/{service}/scale"): OP,
    ("POST", "/services/{service}/rollback"): OP,
    ("POST", "/services/{service}/rebalance"): OP,
    ("DELETE", "/services/{service}"): OP,
    ("GET", "/stacks"): R,
    ("GET", "/stacks/{stack}/services"): R,
    ("GET", "/stacks/{stack}/tasks"): R,
    ("POST", "/stacks/{stack}"): OP,
    ("POST", "/stacks/{stack}/plan"): R,  # a dry run: writes nothing, shows what GETs show
    ("DELETE", "/stacks/{stack}"): OP,
    ("GET", "/networks"): R,
    ("GET", "/networks/{network}"): R,
    ("POST", "/networks"): OP,  # like stacks, which create their networks
    ("DELETE", "/networks/{network}"): OP,
    ("GET", "/objects/{kind}"): R,  # metadata only
    ("GET", "/objects/{kind}/{name}"): R,
    ("POST", "/objects/{kind}"): A,
    ("POST", "/objects/{kind}/{name}/update"): A,
    ("DELETE", "/objects/{kind}/{name}"): A,
    ("GET", "/token"): A,  # the join token admits nodes: never to a read token
    ("POST", "/token"): A,
    ("GET", "/access"): A,
    ("POST", "/access"): A,
    ("DELETE", "/access/{name}"): A,
    ("POST", "/cluster/init"): A,
    ("POST", "/cluster/join"): A,
    ("POST", "/cluster/leave"): A,
    ("POST", "/cluster/recover"): A,
    ("POST", "/cluster/rotate-keys"): A,
}


def role_of(method: str, path: str) -> Role:
    """The role ``method path`` (a route template without /v1) needs; admin when not listed."""
    return ROUTE_ROLES.get((method.upper(), path), Role.ADMIN)
