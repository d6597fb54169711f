"""``service update``'s Docker-style list edits: ``--env-add/--env-rm``, ``--publish-add/--publish-rm``,
``--constraint-add/--constraint-rm``, ``--mount-add/--mount-rm``, ``--label-add/--label-rm`` (the
service's labels) and ``--container-label-add/--container-label-rm`` (shell helper of ``cli/service.py``).

``--env``, ``--publish``, ``--constraint``, ``--mount``, ``--label`` and ``--container-label`` on update
replace the whole list; these flags
change it instead, as ``docker service update`` does. The CLI reads the service, edits its list and
sends the whole list with the version it read (compare-and-set: an update committed in between is
refused with a conflict, never overwritten; ``cli/service.py`` then reads and edits again unless the
user gave ``--if-version``). Owns only the flags and the edit; it never writes by itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from ..model.container import HealthSpec, parse_mount, parse_port
from ..model.health_rules import settings_of_an_off_check, turns_the_check_off
from ..model.placement import parse_constraint
from .util import UsageError

EDIT_FLAGS = (
    "env_add",
    "env_rm",
    "publish_add",
    "publish_rm",
    "constraint_add",
    "constraint_rm",
    "mount_add",
    "mount_rm",
    "label_add",
    "label_rm",
    "container_label_add",
    "container_label_rm",
)
#: the list a flag pair edits, and the flag that replaces it whole
SECTIONS = {
    "env": "--env",
    "publish": "--publish",
    "constraint": "--constraint",
    "mount": "--mount",
    "label": "--label",
    "container_label": "--container-label",
}


def add_edit_flags(p: argparse.ArgumentParser) -> None:
    d = argparse.SUPPRESS
    p.add_argument("--env-add", action="append", default=d, metavar="K=V", help="add or change a variable")
    p.add_argument("--env-rm", action="append", default=d, metavar="KEY", help="remove a variable")
    p.add_argument(
        "--publish-add",
        action="append",
        default=d,
        metavar="PORT",
        help="publish one more port (as --publish)",
    )
    p.add_argument(
        "--publish-rm",
        action="append",
        default=d,
        metavar="TARGET[/PROTO]",
        help="unpublish by container port, as Docker (or by PUBLISHED:TARGET[/PROTO])",
    )
    p.add_argument("--constraint-add", action="append", default=d, metavar="EXPR", help="add a constraint")
    p.add_argument("--constraint-rm", action="append", default=d, metavar="EXPR", help="remove a constraint")
    p.add_argument(
        "--mount-add", action="append", default=d, metavar="MOUNT", help="add a mount (as --mount)"
    )
    p.add_argument(
        "--mount-rm", action="append", default=d, metavar="TARGET", help="remove the mount at TARGET"
    )
    for flag, whose in (("label", "service"), ("container-label", "container")):
        p.add_argument(
            f"--{flag}-add", action="append", default=d, metavar="K=V", help=f"add a {whose} label"
        )
        p.add_argument(
            f"--{flag}-rm", action="append", default=d, metavar="KEY", help=f"remove a {whose} label"
        )


def edits_given(args: argparse.Namespace) -> bool:
    """An edit of what the service has: a list flag pair, or ``--no-healthcheck=false`` (which drops a
    ``NONE`` health check, as docker/cli's, and changes nothing else)."""
    given = vars(args)
    return any(flag in given for flag in EDIT_FLAGS) or given.get("no_healthcheck") is False


def refuse_settings_of_an_off_check(
    args: argparse.Namespace, changes: dict[str, Any], read: Callable[[], dict[str, Any]]
) -> None:
    """A UsageError for ``--health-interval 5s`` (and ``--no-healthcheck=false --health-retries 2``)
    without ``--health-cmd`` on a service whose check is off (test ``NONE``; ``read()``: its view, read
    only then): docker/cli runs the image's HEALTHCHECK with the new settings, which p2porch's health
    spec cannot say (it needs a command); before, the check stayed off without a word (stored as
    ``{"cmd": ["NONE"], "interval": "5s"}``)."""
    settings = changes.get("health") or {}
    if vars(args).get("no_healthcheck") or not settings or "cmd" in settings:
        return
    if not turns_the_check_off(read()["spec"].get("health")):
        return
    if not settings_of_an_off_check(HealthSpec.from_dict({**settings, "cmd": ["NONE"]})):
        return  # the API's rule too (model/health_rules.py): only the defaults, the check as it is
    flags = ", ".join(f"--health-{key.replace('_', '-')}" for key in settings)
    raise UsageError(
        f"--health-cmd: {flags} given to a service whose health check is off (--no-healthcheck, test "
        "NONE); p2porch cannot run the image's HEALTHCHECK with other settings: give --health-cmd CMD "
        "with them to turn a check on",
        field="--health-cmd",
    )


def _port_text(port: dict[str, Any]) -> str:
    return f"{port.get('published') or ''}:{port['target']}/{port.get('protocol', 'tcp')}".lstrip(":")


def _port_digits(text: str) -> bool:
    """A port's ASCII digits (``str.isdigit`` alone admits ``²``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 5


def _removes(expr: str, port: dict[str, Any]) -> bool:
    """``80``/``80/udp``: the container port (Docker's --publish-rm); ``8080:80[/tcp]``: that exact pair."""
    text, _, proto = expr.strip().partition("/")
    if proto and proto != port.get("protocol", "tcp"):
        return False
    published, sep, target = text.rpartition(":")
    if not _port_digits(target) or (sep and not _port_digits(published)):
        raise UsageError(
            f"--publish-rm: {expr!r} is not TARGET[/PROTO] or PUBLISHED:TARGET[/PROTO]", field="--publish-rm"
        )
    return int(target) == port["target"] and (not sep or int(published) == port.get("published"))


def _pairs(
    key: str, section: str, what: str, needs_value: bool
) -> Callable[[dict[str, Any], dict[str, Any]], list[str]]:
    """The edit of the ``KEY=VALUE`` mapping ``key`` of the spec by ``--SECTION-rm`` then ``--SECTION-add``
    (a label may have no value, as Docker's; a variable must)."""
    flag = "--" + section.replace("_", "-")

    def edit(spec: dict[str, Any], given: dict[str, Any]) -> list[str]:
        pairs = dict(spec.get(key) or {})
        for name in given.get(f"{section}_rm", []):
            if name not in pairs:
                raise UsageError(f"{flag}-rm: the service has no {what} {name!r}", field=f"{flag}-rm")
            del pairs[name]
        for item in given.get(f"{section}_add", []):
            name, sep, value = item.partition("=")
            if not name or (needs_value and not sep):
                raise UsageError(f"{flag}-add: expected KEY=VALUE, got {item!r}", field=f"{flag}-add")
            pairs[name] = value
        return [f"{k}={v}" for k, v in pairs.items()]

    return edit


def _publish(spec: dict[str, Any], given: dict[str, Any]) -> list[Any]:
    ports: list[Any] = list(spec.get("publish") or [])
    for expr in given.get("publish_rm", []):
        kept = [p for p in ports if not _removes(expr, p)]
        if len(kept) == len(ports):
            have = ", ".join(_port_text(p) for p in ports) or "none"
            raise UsageError(
                f"--publish-rm: no published port matches {expr!r} (ports: {have})", field="--publish-rm"
            )
        ports = kept
    for expr in given.get("publish_add", []):
        try:
            parse_port(expr, fieldname="--publish-add")
        except ConfigError as exc:
            raise UsageError(exc.message, field="--publish-add") from exc
        ports.append(expr)
    return ports


def _checked(parse: Any, expr: str, flag: str) -> Any:
    try:
        return parse(expr, fieldname=flag)
    except ConfigError as exc:
        raise UsageError(exc.message, field=flag) from exc


def _constraints(spec: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Constraints compare as parsed (``node.role == manager`` is ``node.role==voter``)."""
    have = [str(parse_constraint(c)) for c in spec.get("constraints") or ()]
    for expr in given.get("constraint_rm", []):
        gone = str(_checked(parse_constraint, expr, "--constraint-rm"))
        if gone not in have:
            listed = ", ".join(have) or "none"
            raise UsageError(
                f"--constraint-rm: the service has no constraint {expr!r} (constraints: {listed})",
                field="--constraint-rm",
            )
        have.remove(gone)
    for expr in given.get("constraint_add", []):
        added = str(_checked(parse_constraint, expr, "--constraint-add"))
        if added not in have:
            have.append(added)
    return have


def _mounts(spec: dict[str, Any], given: dict[str, Any]) -> list[Any]:
    """Docker's ``--mount-rm`` names the mount by its target path."""
    mounts: list[Any] = list(spec.get("mounts") or [])
    for target in given.get("mount_rm", []):
        kept = [m for m in mounts if m.get("target") != target.rstrip("/") or target == "/"]
        if len(kept) == len(mounts):
            listed = ", ".join(str(m.get("target")) for m in mounts) or "none"
            raise UsageError(f"--mount-rm: no mount at {target!r} (targets: {listed})", field="--mount-rm")
        mounts = kept
    for expr in given.get("mount_add", []):
        _checked(parse_mount, expr, "--mount-add")
        mounts.append(expr)
    return mounts


def edit_changes(args: argparse.Namespace, changes: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    """``changes`` with the edited lists of the service ``view`` (its ``spec`` and ``version``)."""
    given = vars(args)
    edits: dict[str, tuple[str, Callable[[dict[str, Any], dict[str, Any]], list[Any]]]] = {
        "env": ("env", _pairs("env", "env", "variable", True)),
        "publish": ("publish", _publish),
        "constraint": ("constraints", _constraints),
        "mount": ("mounts", _mounts),
        "label": ("service_labels", _pairs("service_labels", "label", "label", False)),
        "container_label": ("labels", _pairs("labels", "container_label", "container label", False)),
    }
    out = dict(changes)
    health = view["spec"].get("health") or {}
    refuse_settings_of_an_off_check(args, changes, lambda: view)
    if given.get("no_healthcheck") is False and "health" not in changes and health.get("cmd") == ["NONE"]:
        out["health"] = None  # docker/cli's --no-healthcheck=false: back to the image's HEALTHCHECK
    for section, (key, edit) in edits.items():
        if not any(flag in given for flag in (f"{section}_add", f"{section}_rm")):
            continue
        if key in changes:
            whole = SECTIONS[section]
            raise UsageError(
                f"{whole} replaces the whole list: give it, or --{section}-add/--{section}-rm, not both",
                field=whole,
            )
        out[key] = edit(view["spec"], given)
    out.setdefault("expected_version", int(view["version"]))
    return out
