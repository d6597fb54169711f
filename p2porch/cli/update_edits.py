"""``service update``'s Docker-style list edits: ``--env-add/--env-rm`` and ``--publish-add/--publish-rm``
(shell helper of ``cli/service.py``).

``--env`` and ``--publish`` on update replace the whole list; these flags change it instead, as
``docker service update`` does. The CLI reads the service, edits its list and sends the whole list with
the version it read (compare-and-set: an update committed in between is refused with a conflict, never
overwritten). Owns only the flags and the edit; it never writes by itself.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ..model.container import parse_port
from .util import UsageError

EDIT_FLAGS = ("env_add", "env_rm", "publish_add", "publish_rm")


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


def edits_given(args: argparse.Namespace) -> bool:
    return any(flag in vars(args) for flag in EDIT_FLAGS)


def _port_text(port: dict[str, Any]) -> str:
    return f"{port.get('published') or ''}:{port['target']}/{port.get('protocol', 'tcp')}".lstrip(":")


def _removes(expr: str, port: dict[str, Any]) -> bool:
    """``80``/``80/udp``: the container port (Docker's --publish-rm); ``8080:80[/tcp]``: that exact pair."""
    text, _, proto = expr.strip().partition("/")
    if proto and proto != port.get("protocol", "tcp"):
        return False
    published, sep, target = text.rpartition(":")
    if not target.isdigit() or (sep and not published.isdigit()):
        raise UsageError(
            f"--publish-rm: {expr!r} is not TARGET[/PROTO] or PUBLISHED:TARGET[/PROTO]", field="--publish-rm"
        )
    return int(target) == port["target"] and (not sep or int(published) == port.get("published"))


def _env(spec: dict[str, Any], given: dict[str, Any]) -> list[str]:
    env = dict(spec.get("env") or {})
    for key in given.get("env_rm", []):
        if key not in env:
            raise UsageError(f"--env-rm: the service has no variable {key!r}", field="--env-rm")
        del env[key]
    for item in given.get("env_add", []):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env-add: expected KEY=VALUE, got {item!r}", field="--env-add")
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


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


def edit_changes(args: argparse.Namespace, changes: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    """``changes`` with the edited lists of the service ``view`` (its ``spec`` and ``version``)."""
    given = vars(args)
    for section, whole in (("env", "--env"), ("publish", "--publish")):
        if section in changes and any(flag.startswith(section) for flag in given if flag in EDIT_FLAGS):
            raise UsageError(
                f"{whole} replaces the whole list: give it, or --{section}-add/--{section}-rm, not both",
                field=whole,
            )
    out = dict(changes)
    if "env_add" in given or "env_rm" in given:
        out["env"] = _env(view["spec"], given)
    if "publish_add" in given or "publish_rm" in given:
        out["publish"] = _publish(view["spec"], given)
    out.setdefault("expected_version", int(view["version"]))
    return out
