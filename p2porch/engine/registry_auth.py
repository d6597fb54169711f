"""Registry credentials for an image pull, read as the docker CLI stores them (blocking; no network).

``pull_auth_header(image)`` returns the ``X-Registry-Auth`` value (URL-safe base64 of a JSON auth
object) for the image's registry, or "" to pull anonymously. Credentials come from
``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``): a ``credHelpers`` entry for the
registry, else the ``credsStore`` (each runs ``docker-credential-NAME get``), else the ``auths`` entry
(``auth`` = base64 ``user:password``, or an ``identitytoken``). Docker Hub is looked up under
``https://index.docker.io/v1/`` as the CLI stores it. It never logs a credential; a broken config file
or helper means an anonymous pull (the registry's refusal is then the task's error).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

INDEX_NAME = "docker.io"
INDEX_URL = "https://index.docker.io/v1/"
HELPER_TIMEOUT_S = 30.0


def split_reference(image: str) -> tuple[str, str]:
    """(repository, tag or digest) of an image reference; tag "latest" when none is given."""
    repository, at, digest = image.rpartition("@")
    if at:
        return repository, digest
    repository, colon, tag = image.rpartition(":")
    if colon and "/" not in tag:
        return repository, tag
    return image, "latest"


def registry_of(repository: str) -> str:
    """The registry host of a repository name ("docker.io" when its first part is not a host)."""
    first, slash, _rest = repository.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        return INDEX_NAME
    return INDEX_NAME if first in ("index.docker.io", "registry-1.docker.io") else first


def _hostname(key: str) -> str:
    """A config key (maybe a URL like https://host/v1/) reduced to its host."""
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return INDEX_NAME if host in ("index.docker.io", "registry-1.docker.io") else host


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The docker CLI's config.json as a dict ({} when absent or unreadable)."""
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    path = os.path.join(directory, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring the Docker config %s: %s", path, type(exc).__name__)
        return {}
    return config if isinstance(config, dict) else {}


def auth_for(registry: str, config: Mapping[str, Any], *, run_helper: Any = None) -> dict[str, str]:
    """The auth object the engine expects for ``registry`` ({} = anonymous)."""
    server = INDEX_URL if registry == INDEX_NAME else registry
    helpers = config.get("credHelpers") or {}
    helper = helpers.get(registry) or (helpers.get(INDEX_URL) if registry == INDEX_NAME else None)
    helper = helper or config.get("credsStore")
    if isinstance(helper, str) and helper:
        found = (run_helper or _run_helper)(helper, server)
        if found:
            return found
    auths = config.get("auths") or {}
    for key, entry in auths.items():
        if isinstance(entry, dict) and (key == server or _hostname(key) == registry):
            return _from_auths_entry(entry, server)
    return {}


def _from_auths_entry(entry: Mapping[str, Any], server: str) -> dict[str, str]:
    if entry.get("identitytoken"):
        return {"IdentityToken": str(entry["identitytoken"]), "ServerAddress": server}
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]) + "==").decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            log.warning("ignoring an unreadable auth entry for %s in the Docker config", server)
            return {}
        username, _, password = decoded.partition(":")
    if not username:
        return {}
    out = {"Username": username, "Password": password, "ServerAddress": server}
    if entry.get("email"):
        out["Email"] = str(entry["email"])
    return out


def _run_helper(helper: str, server: str) -> dict[str, str]:
    """``docker-credential-HELPER get`` for ``server``: its credentials, or {} when it has none."""
    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("credential helper docker-credential-%s failed: %s", helper, type(exc).__name__)
        return {}
    if done.returncode != 0:
        return {}  # "credentials not found" and the like: pull anonymously
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        log.warning("credential helper docker-credential-%s answered something that is not JSON", helper)
        return {}
    username, secret = str(answer.get("Username") or ""), str(answer.get("Secret") or "")
    if username == "<token>":
        return {"IdentityToken": secret, "ServerAddress": server}
    if not username:
        return {}
    return {"Username": username, "Password": secret, "ServerAddress": server}


def encode_header(auth: Mapping[str, str]) -> str:
    """The X-Registry-Auth value of an auth object: URL-safe base64 of its JSON."""
    return base64.urlsafe_b64encode(json.dumps(dict(auth)).encode()).decode("ascii")


def pull_auth_header(image: str, environ: Mapping[str, str] | None = None) -> str:
    """X-Registry-Auth for pulling ``image`` ("" when no credentials are configured for its registry)."""
    repository, _ = split_reference(image)
    auth = auth_for(registry_of(repository), load_config(environ))
    return encode_header(auth) if auth else ""
