"""Every list's ``--format`` with each placeholder Docker's reference gives that command (docker/cli's
row methods: ``docker service ls``'s ``.ID .Name .Mode .Replicas .Image .Ports``, ...): each one is a
field of p2porch's row, printed with no ``<no value>`` and no error, alone and all in one ``table``."""

from __future__ import annotations

from typing import Any

import pytest
import test_cli_docker_format_rows as rows

from p2porch.cli import network, node, secret, service, service_read, stack
from p2porch.cli.main import main


class Api(rows.Api):
    """The Docker reference rows' fake daemon (test_cli_docker_format_rows), with a stack's services."""

    def get(self, path: str, **kw: Any) -> Any:
        if path == "/stacks/shop/services":
            return super().get("/services")
        return super().get(path, **kw)


@pytest.fixture(autouse=True)
def api(monkeypatch) -> None:
    for module in (network, secret, node, service, service_read, stack):
        monkeypatch.setattr(module, "client_for", lambda args, **kw: Api())


TASK_FIELDS = ("ID", "Name", "Image", "Node", "DesiredState", "CurrentState", "Error", "Ports")
SERVICE_FIELDS = ("ID", "Name", "Mode", "Replicas", "Image", "Ports")
#: each list command and Docker's placeholders for it (its reference page's table; docker/cli's methods)
PLACEHOLDERS = {
    ("service", "ls"): SERVICE_FIELDS,
    ("service", "ps", "top"): TASK_FIELDS,
    ("node", "ls"): (
        "ID", "Self", "Hostname", "Status", "Availability", "ManagerStatus", "TLSStatus", "EngineVersion",
    ),
    ("node", "ps"): TASK_FIELDS,
    ("secret", "ls"): ("ID", "Name", "Driver", "CreatedAt", "UpdatedAt", "Labels"),
    ("config", "ls"): ("ID", "Name", "CreatedAt", "UpdatedAt", "Labels"),
    ("network", "ls"): ("ID", "Name", "Driver", "Scope", "IPv6", "Internal", "Labels", "CreatedAt"),
    ("stack", "ls"): ("Name", "Services", "Orchestrator", "Namespace"),
    ("stack", "services", "shop"): SERVICE_FIELDS,
    ("stack", "ps", "shop"): TASK_FIELDS,
}  # fmt: skip


def _run(capsys, command: tuple[str, ...], template: str) -> str:
    code = main([*command[:2], "--format", template, *command[2:]])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), f"{' '.join(command)} --format {template!r}: {err}"
    return out


@pytest.mark.parametrize("command", list(PLACEHOLDERS), ids=" ".join)
def test_every_docker_placeholder_of_a_list_is_a_field(command, capsys) -> None:
    for name in PLACEHOLDERS[command]:
        assert "<no value>" not in _run(capsys, command, f"{{{{.{name}}}}}"), name


#: docker/cli's ``table`` header of each field (its formatter's ``SubHeaderContext``), by command
HEADERS = {
    "ID": "ID", "Name": "NAME", "Mode": "MODE", "Replicas": "REPLICAS", "Image": "IMAGE", "Ports": "PORTS",
    "Node": "NODE", "DesiredState": "DESIRED STATE", "CurrentState": "CURRENT STATE", "Error": "ERROR",
    "Self": "", "Hostname": "HOSTNAME", "Status": "STATUS", "Availability": "AVAILABILITY",
    "ManagerStatus": "MANAGER STATUS", "TLSStatus": "TLS STATUS", "EngineVersion": "ENGINE VERSION",
    "Driver": "DRIVER", "CreatedAt": "CREATED", "UpdatedAt": "UPDATED", "Labels": "LABELS", "Scope": "SCOPE",
    "IPv6": "IPV6", "Internal": "INTERNAL", "Services": "SERVICES", "Orchestrator": "ORCHESTRATOR",
    "Namespace": "NAMESPACE",
}  # fmt: skip
NETWORK_HEADERS = {"ID": "NETWORK ID", "CreatedAt": "CREATED AT"}  # docker/cli's network formatter's


@pytest.mark.parametrize("command", list(PLACEHOLDERS), ids=" ".join)
def test_a_table_of_every_placeholder_has_docker_s_headers(command, capsys) -> None:
    """``node ls``'s ``{{.Self}}`` column had ``SELF`` over it (docker/cli's has none), ``network ls``'s
    ``ID`` and ``CreatedAt`` were ``ID``, ``CREATED`` (docker/cli's: ``NETWORK ID``, ``CREATED AT``)."""
    fields = PLACEHOLDERS[command]
    known = {**HEADERS, **(NETWORK_HEADERS if command[0] == "network" else {})}
    header = _run(capsys, command, "table " + "|".join(f"{{{{.{name}}}}}" for name in fields)).splitlines()[0]
    assert header.rstrip() == "|".join(known[name] for name in fields)
