"""How a stack names its services and finds them again (pure).

Owns the naming rule (``<stack>-<service>``: ServiceSpec names are DNS labels, so Swarm's
``<stack>_<service>`` is not possible), the two container labels that mark a service as a member of a
stack, and the extra DNS names and search domains that make a stack's services resolvable by their short
name from the stack's own containers. It never reads cluster state and never does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

#: container label holding the stack a service belongs to
STACK_LABEL = "p2porch.stack"
#: container label holding the service's short name inside its stack (the Compose service key)
STACK_SERVICE_LABEL = "p2porch.stack.service"
#: label keys a Compose file may not set itself
RESERVED_LABEL_PREFIX = "p2porch."

_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
#: stack names that would collide with DNS names the cluster answers (``tasks.web.p2p``, ``n1.node.p2p``)
RESERVED_NAMES = ("tasks", "node")
#: Compose service names that would: ``tasks.<stack>`` is also the task list of a service named like
#: the stack. A service named ``node`` is fine: its name in the zone is ``node.<stack>``, never
#: ``<name>.node`` (Compose and Swarm accept it, and Node.js services are often called so).
RESERVED_SHORT_NAMES = ("tasks",)
MAX_SERVICE_NAME = 63


def check_stack_name(stack: str, *, fieldname: str = "NAME") -> str:
    """A stack name is a DNS label (lowercase letters, digits, '-', starting with a letter)."""
    if not isinstance(stack, str) or not _NAME_RE.match(stack):
        raise ConfigError(
            f"{fieldname}: {stack!r} is not a valid stack name: lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'",
            field=fieldname,
        )
    if stack in RESERVED_NAMES:
        raise ConfigError(f"{fieldname}: {stack!r} is reserved", field=fieldname)
    return stack


_COMPOSE_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def service_name(stack: str, short: str, *, fieldname: str | None = None) -> str:
    """The p2porch service name of Compose service ``short`` in ``stack``: ``<stack>-<short>``, with the
    short name lowercased and ``_``/``.`` written ``-`` (``bookstack_db`` -> ``<stack>-bookstack-db``);
    the short name itself stays resolvable inside the stack (:func:`stack_dns_aliases`)."""
    where = fieldname or f"services.{short}"
    label = short.lower().replace("_", "-").replace(".", "-") if isinstance(short, str) else ""
    # Compose allows a leading digit ("1web"); "<stack>-1web" is still a DNS label. Digits only ("1")
    # would read as a task slot name ("1.<stack>"), so at least one letter is required.
    if (
        not isinstance(short, str)
        or not _COMPOSE_NAME_RE.match(short)
        or not _NAME_RE.match(f"{stack}-{label}"[:63])
        or label.isdigit()
    ):
        raise ConfigError(
            f"{where}: {short!r} is not a valid service name in a stack: letters, digits, '_', '.' and "
            "'-', with a letter, not ending with '-' (the p2porch service is named '<stack>-<service>', "
            "a DNS label)",
            field=where,
        )
    if label in RESERVED_SHORT_NAMES:
        raise ConfigError(f"{where}: {short!r} is reserved", field=where)
    full = f"{stack}-{label}"
    if len(full) > MAX_SERVICE_NAME:
        raise ConfigError(
            f"{where}: {full!r} is longer than {MAX_SERVICE_NAME} characters (stack name + '-' + service)",
            field=where,
        )
    return full


def stack_labels(stack: str, short: str) -> dict[str, str]:
    """The labels p2porch puts on every service (and so every container) of a stack."""
    return {STACK_LABEL: stack, STACK_SERVICE_LABEL: short}


def stack_membership(labels: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """``(stack, short name)`` of a service from its labels, or None if it belongs to no stack."""
    if not labels:
        return None
    stack, short = labels.get(STACK_LABEL), labels.get(STACK_SERVICE_LABEL)
    if isinstance(stack, str) and isinstance(short, str) and stack and short:
        return stack, short
    return None


def stack_of_spec(spec: Mapping[str, Any]) -> str | None:
    """The stack a stored service spec (plain dict) belongs to, or None."""
    labels = spec.get("labels")
    member = stack_membership(labels if isinstance(labels, Mapping) else None)
    return member[0] if member else None


def stack_dns_aliases(labels: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Extra zone names (relative to the cluster domain) for a stack member: ``("<short>.<stack>",
    "<stack>_<short>")``.

    With :func:`stack_dns_search`, a container of stack ``shop`` resolving ``api`` asks
    ``api.shop.p2p`` first, which answers the tasks of ``shop-api``. ``shop_api`` is the service's
    name in a Swarm stack, which Swarm stack files give other services (``DB_HOST: shop_db``); a short
    name with a dot gets no such name (it would be asked as an absolute name first).
    """
    member = stack_membership(labels)
    if member is None:
        return ()
    stack, short = member
    short = short.lower()
    return (f"{short}.{stack}",) if "." in short else (f"{short}.{stack}", f"{stack}_{short}")


def swarm_service_name(labels: Mapping[str, Any] | None) -> str | None:
    """A stack member's name in a Swarm stack, ``<stack>_<short>`` (``shop_web`` for ``shop-web``): what a
    Swarm user types (``service logs shop_web``); None outside a stack."""
    member = stack_membership(labels)
    return None if member is None else f"{member[0]}_{member[1]}"


def stack_network_alias(labels: Mapping[str, Any] | None) -> str | None:
    """The network alias a stack member has on each of its networks: its short name (lower-cased), or
    None outside a stack. Swarm's ``docker stack deploy`` adds the short name to every network attachment
    of the service, so any task on those networks resolves ``api`` and ``tasks.api`` (Docker's DNS
    answers ``tasks.<alias>`` for a service's aliases); the cluster DNS answers it the same way, in the
    network scopes (``member/netviews.py: dns_scopes``), never in the whole zone."""
    member = stack_membership(labels)
    return member[1].lower() if member is not None else None


def stack_dns_search(labels: Mapping[str, Any] | None, domain: str) -> tuple[str, ...]:
    """DNS search domains for a task's container: ``("<stack>.<domain>", domain)`` for a stack member,
    ``(domain,)`` otherwise."""
    member = stack_membership(labels)
    if member is None:
        return (domain,)
    return (f"{member[0]}.{domain}", domain)
