"""DOCKER_HOST / --docker-host parsing and the registry credentials of a pull (no engine, no network)."""

from __future__ import annotations

import base64
import json
import ssl

import pytest

from p2porch.engine.endpoint import parse_endpoint
from p2porch.engine.registry_auth import (
    auth_for,
    encode_header,
    pull_auth_header,
    registry_of,
    split_reference,
)
from p2porch.errors import ConfigError


def test_the_default_and_unix_addresses() -> None:
    assert parse_endpoint(None, {}).socket_path == "/var/run/docker.sock"
    assert (
        parse_endpoint(None, {"DOCKER_HOST": "unix:///run/x/docker.sock"}).socket_path == "/run/x/docker.sock"
    )
    assert (
        parse_endpoint("unix:///tmp/d.sock", {"DOCKER_HOST": "tcp://ignored:1"}).socket_path == "/tmp/d.sock"
    )
    assert parse_endpoint("/tmp/bare.sock", {}).socket_path == "/tmp/bare.sock"


def test_tcp_without_and_with_tls_as_the_docker_cli_reads_the_environment(tmp_path) -> None:
    plain = parse_endpoint(None, {"DOCKER_HOST": "tcp://10.0.0.5"})
    assert (plain.host, plain.port, plain.tls) == ("10.0.0.5", 2375, None)
    tls = parse_endpoint(
        None,
        {"DOCKER_HOST": "tcp://engine:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)},
    )
    assert tls.tls is not None and tls.tls.verify and tls.tls.cert_path == str(tmp_path)
    context = tls.tls.context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    unverified = parse_endpoint("tcp://engine", {"DOCKER_CERT_PATH": str(tmp_path)})
    assert unverified.port == 2376 and unverified.tls is not None and not unverified.tls.verify
    assert unverified.tls.context().verify_mode == ssl.CERT_NONE
    assert parse_endpoint(None, {"DOCKER_HOST": "tcp://e:1", "DOCKER_TLS_VERIFY": ""}).tls is None


@pytest.mark.parametrize(
    ("base_url", "env", "field", "words"),
    [
        (None, {"DOCKER_HOST": "ssh://me@engine"}, "DOCKER_HOST", "ssh:// Docker hosts are not supported"),
        ("ssh://me@engine", {}, "node.docker_host", "ssh:// Docker hosts are not supported"),
        (
            None,
            {"DOCKER_HOST": "npipe:////./pipe/docker_engine"},
            "DOCKER_HOST",
            "unsupported scheme 'npipe'",
        ),
        (None, {"DOCKER_HOST": "tcp://"}, "DOCKER_HOST", "no host"),
    ],
)
def test_an_address_p2porch_cannot_use_names_the_setting(base_url, env, field, words) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse_endpoint(base_url, env)
    assert caught.value.field == field and field in caught.value.message


def test_image_references_and_their_registries() -> None:
    assert split_reference("busybox") == ("busybox", "latest")
    assert split_reference("localhost:5000/app") == ("localhost:5000/app", "latest")
    assert split_reference("localhost:5000/app:1.2") == ("localhost:5000/app", "1.2")
    assert split_reference("app@sha256:abc") == ("app", "sha256:abc")
    assert registry_of("busybox") == "docker.io" and registry_of("library/busybox") == "docker.io"
    assert registry_of("ghcr.io/o/app") == "ghcr.io" and registry_of("localhost/app") == "localhost"
    assert registry_of("localhost:5000/app") == "localhost:5000"
    assert registry_of("index.docker.io/library/x") == "docker.io"


def test_credentials_from_auths_entries() -> None:
    token = base64.b64encode(b"alice:s3cret:with:colons").decode()
    config = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": token},
            "registry.example:5000": {"auth": base64.b64encode(b"bob:pw").decode(), "email": "b@x"},
            "https://ghcr.io": {"identitytoken": "tok"},
        }
    }
    assert auth_for("docker.io", config) == {
        "Username": "alice",
        "Password": "s3cret:with:colons",
        "ServerAddress": "https://index.docker.io/v1/",
    }
    assert auth_for("registry.example:5000", config)["Email"] == "b@x"
    assert auth_for("ghcr.io", config) == {"IdentityToken": "tok", "ServerAddress": "ghcr.io"}
    assert auth_for("quay.io", config) == {}


def test_credential_helpers_win_over_auths_and_a_helper_without_credentials_falls_back() -> None:
    asked: list[tuple[str, str]] = []

    def helper(name: str, server: str) -> dict[str, str]:
        asked.append((name, server))
        return {"Username": "h", "Password": "p", "ServerAddress": server} if name == "ecr-login" else {}

    config = {
        "credHelpers": {"1.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"},
        "credsStore": "desktop",
        "auths": {"docker.io": {"auth": base64.b64encode(b"a:b").decode()}},
    }
    assert auth_for("1.dkr.ecr.eu-west-1.amazonaws.com", config, run_helper=helper)["Username"] == "h"
    assert auth_for("docker.io", config, run_helper=helper)["Username"] == "a"  # the store had nothing
    assert asked == [
        ("ecr-login", "1.dkr.ecr.eu-west-1.amazonaws.com"),
        ("desktop", "https://index.docker.io/v1/"),
    ]


def test_the_header_is_url_safe_base64_json_read_from_docker_config(tmp_path) -> None:
    entry = {"auth": base64.b64encode(b"u:p?>").decode()}
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"ghcr.io": entry}}))
    header = pull_auth_header("ghcr.io/o/app:1", {"DOCKER_CONFIG": str(tmp_path)})
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "Username": "u",
        "Password": "p?>",
        "ServerAddress": "ghcr.io",
    }
    assert pull_auth_header("busybox", {"DOCKER_CONFIG": str(tmp_path)}) == ""
    assert encode_header({"Username": "u"}) == base64.urlsafe_b64encode(b'{"Username": "u"}').decode()
    (tmp_path / "config.json").write_text("{not json")
    assert pull_auth_header("ghcr.io/o/app", {"DOCKER_CONFIG": str(tmp_path)}) == ""  # anonymous, no crash


def test_the_daemon_refuses_an_ssh_docker_host_before_it_starts() -> None:
    from p2porch.cli.daemon import load_daemon_config
    from p2porch.cli.main import build_parser

    args = build_parser("daemon").parse_args(["daemon", "--data-dir", "/nonexistent/d"])
    with pytest.raises(ConfigError, match="DOCKER_HOST='ssh://me@engine'"):
        load_daemon_config(args, env={"DOCKER_HOST": "ssh://me@engine"})
    assert load_daemon_config(args, env={"DOCKER_HOST": "unix:///tmp/x.sock"}).node.docker_host == ""
