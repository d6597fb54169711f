"""The route -> role table of the remote API covers every route the daemon serves, and its policy."""

from __future__ import annotations

from p2porch.config import load_config
from p2porch.control.roles import ROUTE_ROLES, role_of
from p2porch.vault.access import Role


def daemon_routes(tmp_path) -> set[tuple[str, str]]:
    from p2porch.daemon import Daemon

    config = load_config(
        overrides={"node.data_dir": str(tmp_path / "data"), "api.socket": str(tmp_path / "s.sock")}
    )
    return {(ep.method, ep.path) for ep in Daemon(config).endpoints()} | {("GET", "/openapi.json")}


def test_every_route_of_the_daemon_has_an_explicit_role(tmp_path):
    routes = daemon_routes(tmp_path)
    assert routes - set(ROUTE_ROLES) == set(), "add the new routes to control/roles.py"
    assert set(ROUTE_ROLES) - routes == set(), "roles.py lists routes the daemon no longer has"


def test_policy_read_for_gets_operate_for_changes_admin_for_credentials(tmp_path):
    for (method, path), role in ROUTE_ROLES.items():
        if method == "GET" and path not in ("/token", "/access"):
            assert role is Role.READ, path
    assert role_of("GET", "/token") is Role.ADMIN  # the join token admits nodes
    assert role_of("GET", "/access") is Role.ADMIN
    for path in ("/services/{service}/scale", "/services/{service}/update", "/services/{service}/rollback"):
        assert role_of("POST", path) is Role.OPERATE
    assert role_of("POST", "/nodes/{node}/update") is Role.OPERATE  # drain
    assert role_of("POST", "/stacks/{stack}") is Role.OPERATE
    for method, path in (
        ("POST", "/access"),
        ("DELETE", "/access/{name}"),
        ("POST", "/objects/{kind}"),
        ("DELETE", "/nodes/{node}"),
        ("POST", "/cluster/rotate-keys"),
        ("POST", "/cluster/leave"),
    ):
        assert role_of(method, path) is Role.ADMIN, path
    assert role_of("POST", "/not/listed") is Role.ADMIN  # deny by default
    assert role_of("get", "/services") is Role.READ
