"""A missing service/node/task/secret/config/network/stack in Docker's words, the same for every command
(the h49 journey: ``no secret 'x'``, ``no network 'x'``, ``no such service: x`` and ``No such node: x``
side by side). The daemon's operations raise ``errors.no_such``; the CLI prints it as Docker's CLI does,
``Error: No such service: web`` (exit 1), and ``inspect a nope b`` shows ``a`` and ``b`` and that line."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import util as cli_util
from p2porch.cli.main import main
from p2porch.cli.util import error_line
from p2porch.control.network_ops import NetworkOps
from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.control.usage_ops import UsageOps
from p2porch.errors import NotFoundError
from p2porch.raft.state import ClusterState
from p2porch.testing.memstore import MemoryManager


class _Manager:
    def __init__(self, manager: MemoryManager) -> None:
        self.manager = manager

    def require_store(self) -> MemoryManager:
        return self.manager


def _missing(find: Any, *args: Any) -> str:
    with pytest.raises(NotFoundError) as refused:
        find(*args)
    return error_line(refused.value)


def test_every_kind_the_daemon_looks_up_is_docker_s_no_such(node_ops) -> None:
    manager = MemoryManager()
    services = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    nodes, _ = node_ops(ClusterState())
    secrets = SecretOps(_Manager(manager), lambda: (0, b"k" * 32))  # type: ignore[arg-type]
    usage = UsageOps(manager)  # type: ignore[arg-type]
    state = manager.snapshot()
    assert _missing(services.find, "web") == "Error: No such service: web"
    assert _missing(services.service_or_task, "abcd1234") == "Error: No such task or service: abcd1234"
    assert _missing(nodes.find_node, "n9") == "Error: No such node: n9"
    assert _missing(secrets.find, "secret", "db-pass") == "Error: No such secret: db-pass"
    assert _missing(secrets.find, "config", "app.conf") == "Error: No such config: app.conf"
    assert _missing(NetworkOps(manager).find, "back") == "Error: No such network: back"  # type: ignore[arg-type]
    assert _missing(usage.service_ids, state, "web") == "Error: No such service: web"
    assert _missing(usage.node_ids, state, "n9") == "Error: No such node: n9"


def test_another_error_keeps_p2porch_s_prefix() -> None:
    assert error_line(NotFoundError("service a_b is ambiguous")) == "p2porch: error: service a_b is ambiguous"


class _Daemon:
    """Knows ``a`` and ``b`` of every kind; answers anything else as the real daemon does."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def get(self, path: str, **_: Any) -> Any:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name not in ("a", "b"):
            from p2porch.errors import no_such

            raise no_such(self.kind, name)
        spec = {"name": name, "image": "img:1", "replicas": 1}
        return {"id": f"id-{name}", "name": name, "spec": spec, "kind": self.kind, "versions": [1]}

    def delete(self, path: str, body: Any = None) -> Any:
        view = self.get(path)
        return {"name": view["name"], "removed": view["id"]}


@pytest.mark.parametrize("noun", ["service", "node", "secret", "config", "network"])
def test_inspect_of_several_shows_the_found_and_says_no_such_for_the_rest(noun, monkeypatch, capsys) -> None:
    from p2porch.cli import network, node, secret, service_read

    for module in (cli_util, node, network, secret, service_read):
        monkeypatch.setattr(module, "client_for", lambda args, **kw: _Daemon(noun))
    assert main([noun, "inspect", "--format", "{{.Name}}", "a", "nope", "b"]) == 1
    out, err = capsys.readouterr()
    said = "Error: no such service: nope" if noun == "service" else f"Error: No such {noun}: nope"
    assert (out, err) == ("a\nb\n", said + "\n")  # service inspect: docker/cli's own words
    assert main([noun, "rm", "nope"]) == 1
    assert capsys.readouterr().err == f"Error: No such {noun}: nope\n"
