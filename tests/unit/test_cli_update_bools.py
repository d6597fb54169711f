"""Every boolean flag of ``service update`` takes docker/cli's ``=false`` and sets false (docker/cli's
update.go: ``flags.Changed`` then ``GetBool``): ``--read-only=false``, ``--init=false``, ``--rebalance=false``
turned nothing off before (the ``=false`` was dropped as if the flag were absent), and
``--no-healthcheck=false`` did not bring back the image's HEALTHCHECK. Flags p2porch takes as no-ops or
refuses (``--tty``, ``--no-resolve-image``, ``--with-registry-auth``) change nothing with ``=false``, and
the command's own (``--detach``, ``--quiet``, ``--force``) read false."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import build_parser, main
from p2porch.control.spec_merge import merge_spec
from p2porch.model import ServiceSpec


class Api:
    """One service ``web`` with ``health``; records what an update sends."""

    def __init__(self, health: Any = None) -> None:
        self.posted: list[dict[str, Any]] = []
        spec = {"name": "web", "image": "busybox", **({"health": health} if health else {})}
        self.view = {"name": "web", "version": 7, "spec": spec}

    def get(self, path: str, **_: Any) -> Any:
        return self.view

    def post(self, path: str, body: Any = None) -> Any:
        self.posted.append(body)
        return {**self.view, "changed": ["x"], "mode": "replicated-job"}  # a job: no wait


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    fake = Api()
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: fake)
    return fake


def update_body(api: Api, *flags: str) -> dict[str, Any]:
    assert main(["service", "update", "-d", *flags, "web"]) == 0
    return api.posted[-1]


@pytest.mark.parametrize(
    ("flag", "section", "key"),
    [
        ("--read-only", "container", "read_only"),
        ("--init", "container", "init"),
        ("--privileged", "container", "privileged"),
        ("--rebalance", None, "rebalance"),
    ],
)
def test_a_boolean_spec_flag_set_false_on_update_is_sent_false(flag, section, key, api):
    for value, sent in (("false", False), ("False", False), ("0", False), ("true", True), ("1", True)):
        body = update_body(api, f"{flag}={value}")
        assert (body[section] if section else body)[key] is sent, (flag, value)
    assert update_body(api, flag) == ({section: {key: True}} if section else {key: True})


def test_the_daemon_turns_the_setting_off_in_the_stored_spec():
    """What the update's body does to a spec that had them on (control/spec_merge.merge_spec)."""
    current = ServiceSpec.from_dict(
        {"name": "web", "image": "busybox", "container": {"read_only": True, "init": True}, "rebalance": True}
    ).to_dict()
    merged = merge_spec(current, {"container": {"read_only": False, "init": False}, "rebalance": False})
    spec = ServiceSpec.from_dict(merged)
    assert (spec.container.read_only, spec.container.init, spec.rebalance) == (False, False, False)


def test_no_healthcheck_false_drops_a_none_health_check_as_docker_cli(monkeypatch):
    none = Api(health={"cmd": ["NONE"], "interval_s": 30.0})
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: none)
    assert update_body(none, "--no-healthcheck=false") == {"health": None, "expected_version": 7}
    own = Api(health={"cmd": ["CMD-SHELL", "true"]})  # a check of its own: kept
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: own)
    assert update_body(own, "--no-healthcheck=false") == {"expected_version": 7}
    assert update_body(own, "--no-healthcheck") == {"health": {"cmd": ["NONE"]}}


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--no-healthcheck=false", "--health-interval", "5s"], "--health-interval"),
        (["--no-healthcheck=0", "--health-retries", "2"], "--health-retries"),
        (["--health-interval", "5s"], "--health-interval"),
        (
            ["--health-timeout", "2s", "--health-start-period", "1s"],
            "--health-timeout, --health-start-period",
        ),
    ],
)
def test_health_settings_without_a_command_on_a_disabled_check_are_refused(flags, named, monkeypatch, capsys):
    """The check stayed off: the update sent ``{"interval": "5s"}`` only (``--no-healthcheck=false`` was
    skipped with a health flag), merged into ``{"cmd": ["NONE"], "interval": "5s"}``. docker/cli runs the
    image's HEALTHCHECK with the new settings; p2porch's health spec needs a command: exit 2, naming
    --health-cmd, nothing sent."""
    none = Api(health={"cmd": ["NONE"]})
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: none)
    assert main(["service", "update", "-d", *flags, "web"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"p2porch: error: --health-cmd: {named} given to a service whose health check is off"
    )
    assert "give --health-cmd CMD" in err
    assert none.posted == []
    body = update_body(none, *flags, "--health-cmd", "true")  # with a command: a check turned on
    assert body["health"]["cmd"] == ["CMD-SHELL", "true"]
    assert merge_spec(none.view["spec"], body)["health"]["cmd"] == ["CMD-SHELL", "true"]


def test_health_settings_of_a_service_with_its_own_check_are_sent(monkeypatch):
    """The refusal above is for a check that is off only (a guard: this passes on main too)."""
    own = Api(health={"cmd": ["CMD-SHELL", "true"]})
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: own)
    assert update_body(own, "--health-interval", "5s") == {"health": {"interval": "5s"}}
    assert update_body(own, "--no-healthcheck=false", "--health-retries", "2") == {
        "health": {"retries": 2},
        "expected_version": 7,
    }


@pytest.mark.parametrize("other", [["--health-cmd", "true"], ["--health-interval", "5s"]])
def test_no_healthcheck_with_a_health_flag_is_refused_as_docker_cli(other, api, capsys):
    """docker/cli: ``--no-healthcheck conflicts with --health-* options``; before, the health flags were
    dropped without a word."""
    for command in (["service", "update", "web"], ["service", "create", "--name", "web", "busybox"]):
        assert main([*command[:2], "--no-healthcheck", *other, *command[2:]]) == 2
        assert "--no-healthcheck conflicts with --health-* options" in capsys.readouterr().err
    assert api.posted == []


@pytest.mark.parametrize(
    "flag", ["--tty=false", "--no-resolve-image=false", "--with-registry-auth=false", "--force=false"]
)
def test_a_flag_taken_as_a_no_op_changes_nothing_with_false(flag, api):
    assert update_body(api, flag) == {}


def test_the_commands_own_booleans_read_false():
    args = build_parser("service").parse_args(
        ["service", "update", "--detach=false", "--quiet=false", "--rollback=false", "web"]
    )
    assert (args.detach, args.quiet, args.rollback) == (False, False, False)


def test_every_boolean_flag_of_create_and_update_turns_off_with_false():
    """A walk of the parsers: a boolean flag added later without its negation fails here."""
    for argv in (["service", "update", "web"], ["service", "create", "busybox"]):
        parser = build_parser("service")
        command = parser._subparsers._group_actions[0].choices["service"]  # type: ignore[union-attr]
        action_parser = command._subparsers._group_actions[0].choices[argv[1]]
        flags = [
            a.option_strings[-1]
            for a in action_parser._actions
            if isinstance(a, argparse._StoreTrueAction) and a.default is argparse.SUPPRESS
        ]
        assert "--read-only" in flags and "--no-healthcheck" in flags
        for flag in flags:
            dest = action_parser._option_string_actions[flag].dest
            parsed = parser.parse_args([*argv[:2], f"{flag}=false", *argv[2:]])
            assert getattr(parsed, dest) is False, flag
