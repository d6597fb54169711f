"""A Compose service's environment values that are not Swarm service templates -> kept literally (pure).

``docker compose up`` never expands ``{{...}}``; files pass templates meant for the application
(watchtower's ``{{range .}}{{.Message}}{{end}}``, diun's ``{{ .Entry.Image }}``, Jinja's
``{{ x | default('y') }}``). A value that checks as a Swarm template (``{{.Task.Slot}}``) is expanded
per task as ``docker stack deploy`` does; one that does not is written with ``templates.literal`` so the
task gets the text as written, with one warning per service naming the variables (never their values:
one may be a secret). Owns only that choice; never reads files or refuses a value.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError
from ..model.templates import check, literal
from .problems import Problems


def service_env(env: Mapping[str, str | None], path: str, problems: Problems) -> dict[str, str]:
    """The spec's ``env`` of the service at ``path``: unset variables dropped, values that are no Swarm
    template made literal (one warning naming them)."""
    out: dict[str, str] = {}
    kept: list[str] = []
    for key, value in env.items():
        if value is None:
            continue
        if "{{" in value:
            try:
                check(value, key)
            except ConfigError:
                value = literal(value)
                kept.append(key)
        out[key] = value
    if kept:
        problems.warn(
            f"{path}.environment ({', '.join(sorted(kept))}): not a Swarm service template "
            "({{.Node.Hostname}}, {{.Task.Slot}}...); passed to the task as written"
        )
    return out
