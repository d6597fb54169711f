"""CLI contexts: the contexts file (0600, atomic), create/use/update/rm through the CLI, resolution
order of --host / --context / environment / current context, and no token in ls or inspect."""

from __future__ import annotations

import json
import os
import stat

import pytest

from p2porch.cli.context_store import DEFAULT_CONTEXT, Context, ContextStore, resolve
from p2porch.cli.main import main
from p2porch.errors import ConfigError, NotFoundError

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def env(tmp_path, monkeypatch):
    for var in ("P2PORCH_HOST", "P2PORCH_CONTEXT", "P2PORCH_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("P2PORCH_CONFIG_DIR", str(tmp_path / "cfg"))
    (tmp_path / "token").write_text("p2pat_secret-token\n")
    (tmp_path / "ca.pem").write_text(CA)
    return tmp_path


def test_create_use_inspect_ls_rm_through_the_cli(env, capsys):
    assert (
        main(
            [
                "context",
                "create",
                "prod",
                "--host",
                "tcp://10.0.0.1:7949",
                "--token-file",
                str(env / "token"),
                "--ca-file",
                str(env / "ca.pem"),
            ]
        )
        == 0
    )
    path = env / "cfg" / "contexts.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(env / "cfg").st_mode) == 0o700
    assert main(["context", "use", "prod"]) == 0
    capsys.readouterr()
    assert main(["--json", "context", "ls"]) == 0
    out = capsys.readouterr().out
    assert "p2pat_secret-token" not in out
    rows = json.loads(out)
    assert [r["name"] for r in rows] == [DEFAULT_CONTEXT, "prod"] and rows[1]["current"] is True
    assert main(["context", "inspect", "prod"]) == 0  # text, as every inspect
    text = capsys.readouterr().out
    assert text.startswith("context prod (current)\n") and "  token:       set\n" in text
    assert "p2pat_secret-token" not in text
    assert main(["--json", "context", "inspect", "prod"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["token"] == "set" and shown["ca"] == "set" and shown["host"] == "tcp://10.0.0.1:7949"
    assert main(["context", "create", "prod", "--host", "tcp://10.0.0.2:1"]) == 2  # exists
    assert main(["context", "update", "prod", "--host", "tcp://10.0.0.2:7949"]) == 0
    assert ContextStore(str(env / "cfg")).get("prod").token == "p2pat_secret-token"  # kept
    assert main(["context", "rm", "prod"]) == 0
    assert ContextStore(str(env / "cfg")).current() == DEFAULT_CONTEXT
    assert main(["context", "rm", "default"]) == 1
    assert main(["context", "create", "bad name", "--host", "tcp://h:1"]) == 2
    assert main(["context", "create", "x", "--host", "http://h"]) == 2
    assert main(["context", "create", "x", "--host", "tcp://h:1", "--ca-file", str(env / "token")]) == 2


def test_resolution_order(env):
    store = ContextStore(str(env / "cfg"))
    store.put(Context("a", "tcp://10.0.0.1:1", "tok-a", CA), replace=False)
    store.put(Context("b", "tcp://10.0.0.2:2", "tok-b"), replace=False)
    plain: dict[str, str] = {"P2PORCH_CONFIG_DIR": str(env / "cfg")}

    def host(**kw):
        args = {"host": None, "context": None, "token_file": None, "ca_file": None, "env": plain, **kw}
        return resolve(**args)

    assert host().host.startswith("unix://")  # no current context: the default socket
    store.use("a")
    assert (host().host, host().token) == ("tcp://10.0.0.1:1", "tok-a")
    assert host(env={**plain, "P2PORCH_CONTEXT": "b"}).token == "tok-b"
    assert host(env={**plain, "P2PORCH_HOST": "unix:///x.sock"}).host == "unix:///x.sock"
    assert host(context="b", env={**plain, "P2PORCH_HOST": "unix:///x.sock"}).host == "tcp://10.0.0.2:2"
    assert host(host="tcp://h:9", context="b").host == "tcp://h:9"
    assert host(token_file=str(env / "token")).token == "p2pat_secret-token"
    assert host(env={**plain, "P2PORCH_API_TOKEN": "tok-env"}).token == "tok-env"
    assert host(ca_file=str(env / "ca.pem")).ca_pem == CA.strip()
    with pytest.raises(NotFoundError):
        host(context="nope")
    with pytest.raises(ConfigError):
        host(token_file=str(env / "missing"))


def test_a_broken_contexts_file_is_a_clear_error(env):
    (env / "cfg").mkdir()
    (env / "cfg" / "contexts.json").write_text("{not json")
    with pytest.raises(ConfigError, match="contexts file"):
        ContextStore(str(env / "cfg")).all()
