"""Templated configs and secrets (``--template-driver golang``) on a real 2-node sandbox.

One cluster (``p5tp``, 10.95.0.0/24) for the module. A config created with the golang driver is
rendered for each task of a 2-replica service spread over both nodes: each container reads its own
slot, its node's host name, the service's environment and labels and another secret's value (Go's
whole template language: ``if``, ``range``, ``printf``, pipelines); the secret's
plaintext is in no inspect output and in no file of the nodes' data dirs. A template Swarm would fail
(a function it does not define) fails the task with an error naming it, and no container starts.
"""

from __future__ import annotations

import json
import secrets

from clusterkit import (
    IMAGE,
    all_tasks,
    cli,
    cli_json,
    cluster_fixture,
    containers,
    running_tasks,
    service,
    wait_for,
)
from test_secrets import files_containing

from p2porch.sandbox.dockerd import docker

cluster = cluster_fixture("p5tp", "10.95.0.0/24", 2)

PAGE = (
    "{{/* rendered for each task */ -}}\n"
    'slot={{.Task.Slot}} host={{ .Node.Hostname }} service={{.Service.Name}} mode={{env "MODE"}}\n'
    'pw={{ secret "pw" }} raw={{`{{.Task.Slot}}`}}\n'
    '{{if eq .Task.Slot "1"}}first{{else}}later{{end}}'
    '{{range $k, $v := .Service.Labels}} {{$k}}={{$v | printf "%q"}}{{end}}\n'
)


def read_in(node, cid: str, path: str) -> str:
    result = docker(node.dockerd, "exec", cid, "cat", path, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_each_task_reads_the_config_rendered_for_its_slot_and_node(cluster, tmp_path):
    sb, nodes = cluster
    password = "p5tp-" + secrets.token_hex(12)
    (tmp_path / "pw").write_text(password)
    (tmp_path / "page").write_text(PAGE)
    assert cli(sb, "n1", "secret", "create", "pw", str(tmp_path / "pw")).returncode == 0
    created = cli_json(
        sb, "n1", "config", "create", "--template-driver", "golang", "page", str(tmp_path / "page")
    )
    assert created["template_driver"] == "golang"
    refused = cli(sb, "n1", "config", "create", "--template-driver", "jinja", "other", str(tmp_path / "page"))
    assert refused.returncode == 2 and b"--template-driver" in refused.stderr
    args = ("--replicas", "2", "--replicas-max-per-node", "1", "--env", "MODE=prod", "--secret", "pw")
    args += ("--label", "tier=web")
    with service(
        sb, nodes, "tpl", *args, "--config", "src=page,target=/etc/page", "--stop-grace-period", "1s",
        IMAGE, "sleep", "3600",
    ):  # fmt: skip
        placed = running_tasks(nodes[0], "tpl", 2, 90)
        assert sorted(t["node"] for t in placed) == ["n1", "n2"]
        for node in nodes:
            (container,) = containers(node, "tpl")
            slot = container["Config"]["Labels"]["p2porch.slot"]
            assert read_in(node, container["Id"], "/etc/page") == (
                f"slot={slot} host={node.name} service=tpl mode=prod\npw={password} raw={{{{.Task.Slot}}}}\n"
                f'{"first" if slot == "1" else "later"} tier="web"\n'
            )
            assert password.encode() not in json.dumps(container).encode()
        for argv in (
            ("config", "inspect", "page"),
            ("secret", "inspect", "pw"),
            ("service", "inspect", "tpl"),
        ):
            out = cli(sb, "n1", "--json", *argv)
            assert out.returncode == 0 and password.encode() not in out.stdout + out.stderr, argv
    wait_for(lambda: not any(containers(n, "tpl", include_stopped=True) for n in nodes), what="tpl gone")
    for node in nodes:
        assert files_containing(node.data_dir, password.encode()) == [], node.name


def test_a_template_swarm_would_fail_fails_the_task_naming_the_function(cluster, tmp_path):
    sb, nodes = cluster
    (tmp_path / "bad").write_text("value={{ nope .Task.Slot }}\n")
    assert (
        cli(
            sb, "n1", "config", "create", "--template-driver", "golang", "bad", str(tmp_path / "bad")
        ).returncode
        == 0
    )
    with service(sb, nodes, "badtpl", "--config", "src=bad,target=/etc/bad", IMAGE, "sleep", "3600"):

        def failed() -> str:
            errors = [str(t.get("error") or "") for t in all_tasks(nodes[0], "badtpl")]
            return next((e for e in errors if "template_driver" in e), "")

        error = wait_for(failed, 60, "the task failed on its template")
        assert "config 'bad' (template_driver golang): line 1: function \"nope\" not defined" in error
        assert not any(containers(n, "badtpl", include_stopped=True) for n in nodes)
