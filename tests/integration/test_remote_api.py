"""The remote API on a real 3-node sandbox (issue 18), driven by a CLI in the host namespace.

One cluster (``p2ap``, 10.51.0.0/24) whose daemons serve the API over TLS on ADDRESS:7949. The CLI runs
outside every node namespace with a context (host, admin token, the cluster CA from ``cluster ca``):
it manages the cluster over TLS; ``service create`` waits and shows per-task progress; a wrong token
gets 401, a revoked one (``access rm``) 401, a read-only one 403 naming the role; ``node rm`` starts a
new key epoch, so the CA changes, members serve certificates of the new CA and the removed node's
certificate no longer verifies.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys

import httpx
import pytest
from clusterkit import IMAGE, api_get, cli, cli_json, formed_cluster, wait_for

from p2porch.sandbox.sandbox import Sandbox

PORT = 7949
P2PORCH = [sys.executable, "-m", "p2porch"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p2ap", "10.51.0.0/24", 3, api_port=PORT) as (sb, nodes):
        yield sb, nodes, tmp_path_factory.mktemp("remote")


def host_cli(workdir, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``p2porch ARGS`` in the host namespace (outside every node), with its own contexts file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PORCH_")}
    env["P2PORCH_CONFIG_DIR"] = str(workdir / "config")
    if token is not None:
        env["P2PORCH_API_TOKEN"] = token
    return subprocess.run([*P2PORCH, *args], capture_output=True, text=True, env=env, timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def secret_file(workdir, name: str, text: str) -> str:
    path = workdir / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return str(path)


def https(
    addr: str, ca_pem: str, token: str, method: str = "GET", path: str = "/v1/services"
) -> httpx.Response:
    with httpx.Client(verify=ssl.create_default_context(cadata=ca_pem), timeout=10) as client:
        return client.request(method, f"https://{addr}{path}", headers={"authorization": f"Bearer {token}"})


def test_remote_cli_over_tls_tokens_roles_progress_and_node_rm(cluster):
    sb, nodes, work = cluster
    # the operator on n1 (root, unix socket: full power, no token) makes an admin token and fetches the CA
    admin = ok(cli_raw(sb, "n1", "access", "create", "admin", "--role", "admin")).strip()
    assert admin.startswith("p2pat_")
    ca_v0 = ok(cli_raw(sb, "n1", "cluster", "ca"))
    assert "BEGIN CERTIFICATE" in ca_v0
    listed = cli_json(sb, "n1", "access", "ls")
    assert [t["name"] for t in listed] == ["admin"] and admin not in json.dumps(listed)

    ca_file = secret_file(work, "ca.pem", ca_v0)
    ok(
        host_cli(
            work, "context", "create", "prod", "--host", f"tcp://10.51.0.1:{PORT}",
            "--token-file", secret_file(work, "admin.tok", admin), "--ca-file", ca_file,
        )
    )  # fmt: skip
    ok(host_cli(work, "context", "use", "prod"))
    assert oct(os.stat(work / "config" / "contexts.json").st_mode & 0o777) == "0o600"
    wait_for(lambda: host_cli(work, "node", "ls").returncode == 0, 30, "the TLS API of n1")
    assert f"api:      https://10.51.0.1:{PORT} (cluster CA of key epoch 0)" in ok(host_cli(work, "status"))
    rows = json.loads(ok(host_cli(work, "--json", "node", "ls")))
    assert sorted(r["name"] for r in rows) == ["n1", "n2", "n3"]

    read_tok = ok(host_cli(work, "access", "create", "viewer", "--role", "read")).strip()
    ops_tok = ok(host_cli(work, "access", "create", "ci", "--role", "operate")).strip()

    # progress: service create waits until both tasks run and says so, per task, on stderr
    created = host_cli(
        work, "service", "create", "--name", "web", "--replicas", "2", "--stop-grace-period", "1s",
        IMAGE, "sleep", "3600", token=ops_tok,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert len(created.stdout.strip()) >= 12  # the service id, alone on stdout
    assert "web: converged" in created.stderr
    assert "1/2: running" in created.stderr and "2/2: running" in created.stderr
    assert (
        len([t for t in api_get(nodes[0], "/services/web/tasks", all="false") if t["state"] == "running"])
        == 2
    )
    scaled = host_cli(work, "--json", "service", "scale", "web=3", token=ops_tok)
    assert scaled.returncode == 0 and scaled.stderr == "", scaled.stderr  # --json: no progress text
    assert json.loads(scaled.stdout)[0]["desired"] == 3
    assert api_get(nodes[0], "/services/web")["running"] == 3  # it returned only once converged

    # read-only: reads work, writes get 403 naming the role needed
    assert ok(host_cli(work, "service", "ls", token=read_tok)).count("web") == 1
    refused = host_cli(work, "service", "scale", "web=1", token=read_tok)
    assert refused.returncode == 1 and "needs the operate role" in refused.stderr
    ca_pem = ca_v0
    forbidden = https(f"10.51.0.2:{PORT}", ca_pem, read_tok, "POST", "/v1/services/web/scale")
    assert forbidden.status_code == 403 and "operate" in forbidden.json()["message"]
    assert https(f"10.51.0.2:{PORT}", ca_pem, read_tok, "GET", "/v1/token").status_code == 403

    # wrong token: 401 with nothing revealed; revoked token: 401 on every member once committed there
    wrong = https(f"10.51.0.1:{PORT}", ca_pem, read_tok[:-4] + "AAAA")
    assert wrong.status_code == 401 and wrong.json()["message"] == "a valid access token is required"
    bad_cli = host_cli(work, "service", "ls", token="p2pat_0000000000000000_" + "A" * 43)
    assert bad_cli.returncode == 1 and "a valid access token is required" in bad_cli.stderr
    assert https(f"10.51.0.3:{PORT}", ca_pem, ops_tok).status_code == 200
    ok(host_cli(work, "access", "rm", "ci"))
    for index in (1, 2, 3):
        wait_for(
            lambda i=index: https(f"10.51.0.{i}:{PORT}", ca_pem, ops_tok).status_code == 401,
            20,
            f"the revoked token refused by n{index}",
        )

    # node rm revokes: a new key epoch, a new cluster CA; members re-issue, n3's certificate is dead
    ok(host_cli(work, "node", "rm", "--force", "n3"))
    wait_for(lambda: ok(cli_raw(sb, "n1", "cluster", "ca")) != ca_v0, 60, "a new cluster CA on n1")
    ca_v1 = ok(cli_raw(sb, "n1", "cluster", "ca"))
    wait_for(
        lambda: host_cli(work, "node", "ls").returncode == 1, 30, "n1 no longer serving the old CA's cert"
    )
    stale = host_cli(work, "node", "ls")
    assert "does not verify" in stale.stderr and "cluster ca" in stale.stderr
    ok(host_cli(work, "context", "update", "prod", "--ca-file", secret_file(work, "ca1.pem", ca_v1)))
    wait_for(lambda: host_cli(work, "node", "ls").returncode == 0, 30, "n1 with the new CA")
    assert "n3" not in ok(host_cli(work, "node", "ls"))
    assert "(cluster CA of key epoch 1)" in ok(host_cli(work, "status"))
    wait_for(lambda: https(f"10.51.0.2:{PORT}", ca_v1, admin).status_code == 200, 30, "n2 with the new CA")
    removed = host_cli(work, "--host", f"tcp://10.51.0.3:{PORT}", "node", "ls", token=admin)
    assert removed.returncode == 1
    assert "does not verify" in removed.stderr or "cannot reach" in removed.stderr, removed.stderr
    with pytest.raises(httpx.ConnectError):
        https(f"10.51.0.3:{PORT}", ca_v1, admin)


def cli_raw(sb: Sandbox, node: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``p2porch ARGS`` inside a node (its unix socket), as text."""
    result = cli(sb, node, *args)
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )
