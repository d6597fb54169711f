"""Stack naming/DNS helpers and the CLI's local validation (no daemon is contacted)."""

from __future__ import annotations

import argparse

import pytest

from p2porch.cli.stack import add_stack_commands, deploy_body, resolve_stack
from p2porch.cli.util import Parser, UsageError
from p2porch.errors import ConfigError, ConflictError, DaemonError
from p2porch.stack import (
    service_name,
    stack_dns_aliases,
    stack_dns_search,
    stack_labels,
    stack_membership,
    stack_of_spec,
)


def test_names_labels_and_dns_helpers():
    assert service_name("shop", "web") == "shop-web"
    labels = stack_labels("shop", "web")
    assert stack_membership(labels) == ("shop", "web")
    assert stack_of_spec({"labels": {"team": "x", **labels}}) == "shop"
    assert stack_of_spec({"labels": {"team": "x"}}) is None
    assert stack_dns_aliases(labels) == ("web.shop", "shop_web")  # the second: its Swarm name
    assert stack_dns_aliases({"team": "x"}) == ()
    assert stack_dns_search(labels, "p2p") == ("shop.p2p", "p2p")
    assert stack_dns_search({}, "p2p") == ("p2p",)
    assert service_name("shop", "Bookstack_DB.v2") == "shop-bookstack-db-v2"  # Compose names, DNS-label form
    assert stack_dns_aliases(stack_labels("shop", "Bookstack_DB")) == (
        "bookstack_db.shop",
        "shop_bookstack_db",
    )
    assert stack_dns_aliases(stack_labels("shop", "db.internal")) == (
        "db.internal.shop",
    )  # no dotted Swarm name
    assert service_name("shop", "1web") == "shop-1web"  # Compose allows a leading digit
    for bad in ("_web", "web!", "123", "web-", "tasks"):
        with pytest.raises(ConfigError):
            service_name("shop", bad)


def parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--host", "-H", default=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    root = Parser(prog="p2porch", parents=[common])
    sub = root.add_subparsers(dest="command", parser_class=Parser)
    add_stack_commands(sub, common)
    return root


def run(argv: list[str]) -> int:
    args = parser().parse_args(["--host", "unix:///nonexistent/p2porch-test.sock", *argv])
    return int(args.func(args))


def test_deploy_validates_locally_and_lists_every_problem(tmp_path, capsys):
    compose = tmp_path / "stack.yml"
    compose.write_text(
        "services:\n  web:\n    image: x\n    userns_mode: host\n    ports: [nope]\n  db:\n    build: .\n"
    )
    with pytest.raises(UsageError) as info:  # a UsageError is a ConfigError: the CLI exits with 2
        run(["stack", "deploy", "-c", str(compose), "shop"])
    assert info.value.field == "services.web.ports[0]"
    lines = info.value.message.splitlines()
    assert lines[0] == f"2 problems in {compose}:"
    assert lines[1].startswith("  services.web.ports[0]: invalid port 'nope'")
    assert lines[2].startswith("  services.db.build: building images is not supported")
    assert "warning: ignoring userns_mode (service web)" in capsys.readouterr().err


def test_deploy_of_a_missing_file_or_bad_name_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as info:
        run(["stack", "deploy", "-c", str(tmp_path / "missing.yml"), "shop"])
    assert info.value.field == "-c"
    compose = tmp_path / "stack.yml"
    compose.write_text("services:\n  web:\n    image: x\n")
    with pytest.raises(UsageError) as info:
        run(["stack", "deploy", "-c", str(compose), "Bad_Name"])
    assert info.value.field == "NAME"


def test_a_valid_file_reaches_for_the_daemon_as_resolved_services(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "web.env").write_text("A=${FROM_DOTENV}\n")
    (tmp_path / ".env").write_text("FROM_DOTENV=dotenv\nTAG=1.0\n")
    monkeypatch.setenv("TAG", "2.0")  # the CLI's environment wins over .env
    compose = tmp_path / "stack.yml"
    compose.write_text("services:\n  web:\n    image: x:${TAG}\n    env_file: conf/web.env\n")
    args = parser().parse_args(["stack", "deploy", "-c", str(compose), "shop"])
    definition = resolve_stack(args, "shop")
    assert definition.env_files == (str(tmp_path / "conf" / "web.env"),)
    spec = definition.services[0].spec
    assert spec["env"] == {"A": "dotenv"} and spec["image"] == "x:2.0"
    assert deploy_body(definition, definition.services, True) == {
        "services": [{"short": "web", "spec": spec}],
        "networks": [
            {
                "key": "default",
                "name": "shop_default",
                "external": False,
                "internal": False,
                "attachable": False,
                "labels": {},
            }
        ],
        "prune": True,
    }
    with pytest.raises(DaemonError):  # validated locally, then sent to the (absent) daemon
        run(["stack", "deploy", "-c", str(compose), "shop"])


def test_stack_subcommands_parse():
    p = parser()
    assert p.parse_args(["stack", "ls"]).stack_command == "ls"
    args = p.parse_args(["stack", "ps", "shop", "--running"])
    assert (args.stack, args.running) == ("shop", True)
    assert p.parse_args(["stack", "rm", "shop"]).stacks == ["shop"]
    args = p.parse_args(["stack", "deploy", "--no-prune", "-c", "f.yml", "shop"])
    assert (args.compose_file, args.no_prune, args.stack) == (["f.yml"], True, "shop")
    # Docker's --prune is taken (prune is already the default here), and cannot go with --no-prune
    assert p.parse_args(["stack", "deploy", "--prune", "-c", "f.yml", "shop"]).no_prune is False
    with pytest.raises(SystemExit) as refused:
        p.parse_args(["stack", "deploy", "--prune", "--no-prune", "-c", "f.yml", "shop"])
    assert refused.value.code == 2
    args = p.parse_args(
        ["stack", "config", "-c", "a.yml", "-c", "b.yml", "--profile", "debug", "--env-file", "e"]
    )
    assert (args.compose_file, args.profile, args.env_file, args.stack) == (
        ["a.yml", "b.yml"],
        ["debug"],
        "e",
        None,
    )


def test_deploy_output_names_each_service_with_its_action():
    from p2porch.cli.stack import _deploy_text

    text = _deploy_text(
        {
            "stack": "shop",
            "services": [
                {"name": "shop-web", "action": "updated"},
                {"name": "shop-db", "action": "unchanged"},
            ],
        }
    )
    assert text.splitlines() == ["updated    shop-web", "unchanged  shop-db", "stack shop deployed"]


def test_the_zone_answers_a_stack_alias_like_the_service():
    """The alias names stack_dns_aliases gives are valid zone entries (``web.shop.p2p``)."""
    from p2porch.dns.zone import TaskEntry, ZoneData, compile_zone, to_labels

    entries = [TaskEntry(slot=1, address="10.240.1.2")]
    services = {"shop-web": entries}
    for short in ("web", "Book_DB"):
        for alias in stack_dns_aliases(stack_labels("shop", short)):
            services[alias] = entries
    zone = compile_zone(ZoneData(domain="p2p", services=services))
    assert zone.skipped == ()
    for name in ("shop-web.p2p", "web.shop.p2p", "1.web.shop.p2p", "tasks.web.shop.p2p", "book_db.shop.p2p",
                 "shop_web.p2p", "shop_book_db.p2p"):  # fmt: skip
        labels = to_labels(name)
        assert labels is not None and zone.names[labels].a == ["10.240.1.2"], name


@pytest.mark.parametrize(
    ("refusal", "code"),
    [
        (
            ConfigError(
                "services.api.ports: host port 7946/tcp is p2porch's own gossip port",
                field="services.api.ports",
            ),
            2,
        ),
        (ConflictError("services.api: a service named 'shop-api' already exists", field="services.api"), 1),
    ],
)
def test_a_key_the_daemon_refuses_is_reported_under_the_files_name(
    tmp_path, capsys, monkeypatch, refusal, code
):
    from p2porch.cli import stack
    from p2porch.cli.main import main

    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  api:\n    image: x\n    ports: ['7946:80']\n")

    class Client:
        def get(self, path, **params):
            return []

        def post(self, path, body):
            raise refusal

    monkeypatch.setattr(stack, "client_for", lambda args: Client())
    assert main(["stack", "deploy", "-c", str(compose), "shop"]) == code
    err = capsys.readouterr().err
    assert err == f"p2porch: error: 1 problem in {compose}:\n  {refusal.message}\n"
