"""Shapes of the twelfth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Twelfth sample"): Tube Archivist's environment with a tab before a comment and Grocy's read-only nginx
whose long-syntax tmpfs ``mode: 01777`` (octal, as compose-go reads it) reaches the engine as 01777;
bluepuma77's Swarm Traefik stack (a global service on a host-mode port, ``hostname:
'{{.Node.Hostname}}'``, ``$$`` in ``deploy.labels``) beside its socket proxy, whose config ``content``
holds ``$$request_method``. The busybox image is tagged with the files' image names.

One sandbox (``p4co``, 10.96.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

from p2porch.agent.model import LABEL_NODE

ES = "bbilly1/tubearchivist-es:latest"
GROCY = "grocy/grocy-docker:nginx"
TRAEFIK = "traefik:v2.10"
WHOAMI = "traefik/whoami:v1.10"
SOCKET = "nginx:alpine-slim"

SLEEP = 'x-sleep: &sleep {command: ["sh", "-c", "exec sleep 1d"], stop_grace_period: 1s}'

TABS_FILE = (
    f"{SLEEP}\n"
    "services:\n"
    "  archivist-es:\n"
    "    <<: *sleep\n"
    f"    image:\t{ES}\t# only for amd64\n"
    "    environment:\n"
    "      - DJANGO_DEBUG=True\t\t#enables additional application logging\n"
    '      - "ES_JAVA_OPTS=-Xms512m -Xmx512m"\n'
    "  grocy-nginx:\n"
    "    <<: *sleep\n"
    f"    image: {GROCY}\n"
    "    read_only: true\n"
    "    volumes:\n"
    "      - {type: tmpfs, target: /var/lib/nginx/tmp, tmpfs: {mode: 01777}}\n"
    "    tmpfs:\n"
    "      - /run/nginx\n"
)

SWARM_FILE = f"""
{SLEEP}
services:
  traefik:
    <<: *sleep
    image: {TRAEFIK}
    hostname: '{{{{.Node.Hostname}}}}'
    ports:
      - {{target: 80, published: 8080, protocol: tcp, mode: host}}
    networks: [proxy]
    deploy:
      mode: global
      placement:
        constraints: [node.role==manager]
      labels:
        - traefik.enable=true
        - traefik.http.middlewares.myauth.basicauth.users=test:$$apr1$$H6uskkkW$$IgXLP6ewTrSuBkTrqE8wj/
  whoami:
    <<: *sleep
    image: {WHOAMI}
    hostname: '{{{{.Node.Hostname}}}}'
    networks: [proxy]
    deploy:
      mode: global
  dockersocket:
    <<: *sleep
    image: {SOCKET}
    security_opt: [no-new-privileges:true]
    configs:
      - {{source: nginx, target: /etc/nginx/nginx.conf}}
networks:
  proxy:
    name: proxy
    driver: overlay
    attachable: true
configs:
  nginx:
    content: |
      if ($$request_method != GET) {{ return 405; }}
"""

cluster = compose_sample_fixture(
    "p4co",
    "10.96.0.0/16",
    (ES, GROCY, TRAEFIK, WHOAMI, SOCKET),
    {"tabs/docker-compose.yml": TABS_FILE, "swarm/docker-compose.yml": SWARM_FILE},
)


def test_a_file_with_tabs_before_comments_deploys_with_its_octal_tmpfs_mode(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "stack", "deploy", "-c", str(workdir / "tabs" / "docker-compose.yml"), "ta")
    assert result.returncode == 0, result.stderr.decode()
    es = wait_for(lambda: stack_container(node, "archivist-es"), "a running archivist-es container")
    assert es["Config"]["Image"] == ES
    assert "DJANGO_DEBUG=True" in es["Config"]["Env"]
    assert "ES_JAVA_OPTS=-Xms512m -Xmx512m" in es["Config"]["Env"]
    nginx = wait_for(lambda: stack_container(node, "grocy-nginx"), "a running grocy-nginx container")
    assert nginx["HostConfig"]["ReadonlyRootfs"] is True
    modes = {m["Target"]: (m.get("TmpfsOptions") or {}).get("Mode") for m in nginx["HostConfig"]["Mounts"]}
    assert modes == {"/var/lib/nginx/tmp": 0o1777, "/run/nginx": None}, modes
    perms = container_sh(node, nginx["Id"], "stat -c %a /var/lib/nginx/tmp").strip()
    assert perms == "1777", perms  # the engine made the directory world-writable and sticky


def test_the_swarm_traefik_stack_deploys_globally_with_its_templates_and_config(cluster):
    sb, node, workdir = cluster
    result = cli(
        sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "swarm" / "docker-compose.yml"), "bp"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert {s["short"] for s in json.loads(result.stdout)["services"]} == {
        "traefik",
        "whoami",
        "dockersocket",
    }
    traefik = wait_for(lambda: stack_container(node, "traefik"), "a running traefik container")
    assert traefik["Config"]["Hostname"] == traefik["Config"]["Labels"][LABEL_NODE]  # {{.Node.Hostname}}
    assert [b["HostPort"] for b in traefik["HostConfig"]["PortBindings"]["80/tcp"]] == ["8080"]  # mode: host
    spec = cli_json(sb, "n1", "service", "inspect", "bp-traefik")["spec"]
    assert spec["mode"] == "global"
    users = spec["service_labels"]["traefik.http.middlewares.myauth.basicauth.users"]
    assert users == "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"
    proxy = wait_for(lambda: stack_container(node, "dockersocket"), "a running dockersocket container")
    conf = container_sh(node, proxy["Id"], "cat /etc/nginx/nginx.conf")
    assert conf == "if ($request_method != GET) { return 405; }\n", conf


def test_stack_rm_removes_the_twelfth_samples_stacks(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", "ta")["removed"]) == 2
    assert len(cli_json(sb, "n1", "stack", "rm", "bp")["removed"]) == 3
