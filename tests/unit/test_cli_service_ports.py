"""``service ls`` has Docker's PORTS column: ``*:8080->80/tcp`` for a port published on every node
(ingress), host-mode ports marked as such, nothing for a port with no fixed host port."""

from __future__ import annotations

from p2porch.cli.service_rows import SERVICE_COLUMNS, ports_text, service_row


def test_ports_as_docker_service_ls_shows_them() -> None:
    spec = {
        "publish": [
            {"target": 80, "published": 8080, "protocol": "tcp"},
            {"target": 53, "published": 5353, "protocol": "udp"},
            {"target": 81, "published": 8081, "protocol": "tcp", "mode": "host"},
            {"target": 82, "published": 8082, "protocol": "tcp", "host_ip": "127.0.0.1"},
            {"target": 9000, "published": None, "protocol": "tcp"},
        ]
    }
    assert ports_text(spec) == (
        "*:8080->80/tcp,*:5353->53/udp,8081->81/tcp (host),127.0.0.1:8082->82/tcp (host)"
    )
    assert ports_text({}) == ""


def test_the_service_ls_row_has_the_ports_column() -> None:
    view = {
        "id": "0123456789abcdef",
        "name": "web",
        "mode": "replicated",
        "running": 3,
        "desired": 3,
        "image": "nginx:1.27",
        "pending": [],
        "spec": {"publish": [{"target": 80, "published": 8080, "protocol": "tcp"}]},
    }
    row = dict(zip(SERVICE_COLUMNS, service_row(view), strict=True))
    assert (row["replicas"], row["ports"], row["pending"]) == ("3/3", "*:8080->80/tcp", "")
