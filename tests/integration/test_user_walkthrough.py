"""A new user's walk through README.md, typed as the README shows it: `p2porch sandbox ... exec nI --
p2porch ...` (p2porch found through the sandbox's PATH, as a user with only ./.venv/bin/p2porch has it),
then the real outcomes checked on the engines and the network: containers running on every node, the
published port answering through every node (ingress), names resolving from a container, a secret
readable in its container and absent from `service inspect`, `service logs` and the daemons' logs, and a
typical web+api+db+redis Compose stack deployed, reached and removed without leftovers.

The fourth walk adds what only a running task shows: a stack service reached from another service's
task by every name Swarm users type (busybox ``nslookup``, answer lines read after ``Name:``), the stop
signal and grace period seen by ``docker inspect`` and honoured by a stop, an unhealthy task under
``--restart-condition none`` left stopped, and Docker's ``service inspect --format`` paths.

Images: only the sandbox's busybox exists, retagged to the names a user's files carry (no registry).
``P2PORCH_UX_SANDBOX``/``P2PORCH_UX_SUBNET`` name another sandbox (parallel runs on one machine)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import wait_for

from p2porch.sandbox.sandbox import Sandbox, SandboxNode

NAME = os.environ.get("P2PORCH_UX_SANDBOX", "p2ux")
SUBNET = os.environ.get("P2PORCH_UX_SUBNET", "10.31.0.0/24")
TAGS = ("nginx:alpine", "nginx:1.25-alpine", "myorg/api:1.0", "postgres:16", "redis:7-alpine")
WEB_CMD = [
    "sh",
    "-c",
    "mkdir -p /www && echo hello-$P2PORCH_SLOT > /www/index.html && exec httpd -f -p 80 -h /www",
]


def typed(
    node: str, *argv: str, timeout: float = 240, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``p2porch sandbox --name p2ux exec NODE -- ARGV`` as a user types it (``p2porch`` inside is looked
    up on PATH; the test's interpreter directory is not put there by the test)."""
    env = {k: v for k, v in os.environ.items() if k not in ("P2PORCH_HOST", "DOCKER_HOST")}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run(
        [sys.executable, "-m", "p2porch", "sandbox", "--name", NAME, "exec", node, "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def ok(node: str, *argv: str, **kw) -> str:
    result = typed(node, *argv, **kw)
    assert result.returncode == 0, f"{argv}: rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - a sandbox address
        return response.read().decode()


def task_containers(node: str, label: str) -> list[str]:
    return ok(node, "docker", "ps", "-q", "--filter", f"label={label}").split()


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[SandboxNode]]:
    sb = Sandbox(NAME, subnet=SUBNET)
    try:
        nodes = sb.up(3)
        yield nodes
    finally:
        sb.down()


@pytest.fixture(scope="module")
def formed(cluster: list[SandboxNode]) -> list[SandboxNode]:
    """README "A cluster in five commands": init prints the join command, the others run it."""
    out = ok("n1", "p2porch", "init", "--advertise-addr", cluster[0].address)
    join = re.search(r"P2PORCH_TOKEN=(P2PT-\S+) p2porch join (\S+)", out)
    assert join, out
    for node in ("n2", "n3"):
        ok(node, "env", f"P2PORCH_TOKEN={join.group(1)}", "p2porch", "join", join.group(2))

    def three_ready() -> bool:
        rows = ok("n2", "p2porch", "node", "ls").splitlines()[1:]
        return len(rows) == 3 and all(" ready " in r and " alive" in r for r in rows)

    wait_for(three_ready, 90, "node ls: 3 ready nodes")
    for node in ("n1", "n2", "n3"):
        for tag in TAGS:
            ok(node, "docker", "tag", "p2porch/busybox:latest", tag)
    return cluster


def test_quickstart_service_is_published_on_every_node_and_resolves_from_containers(formed):
    ok("n1", "p2porch", "service", "create", "--name", "web", "--replicas", "3", "--publish", "8080:80",
       "nginx:alpine", *WEB_CMD)  # fmt: skip
    ps = ok("n1", "p2porch", "service", "ps", "web")
    assert ps.count(" running ") >= 3, ps
    images = ok("n1", "p2porch", "service", "ps", "web", "--format", "{{.Name}} {{.Image}}").splitlines()
    assert sorted(images) == ["web.1 nginx:alpine", "web.2 nginx:alpine", "web.3 nginx:alpine"], images
    managers = ok("n1", "p2porch", "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}} {{.Self}}")
    rows = [line.split(" ") for line in managers.splitlines()]
    assert [r[1] for r in rows].count("Leader") == 1 and ["n1", "true"] in [[r[0], r[2]] for r in rows], rows
    running = sum(len(task_containers(n, "p2porch.service=web")) for n in ("n1", "n2", "n3"))
    assert running == 3
    inspect = ok("n2", "p2porch", "service", "inspect", "web")
    assert "8080 -> 80/tcp (ingress: port 8080 of every node)" in inspect, inspect
    for node in formed:  # the routing mesh: every node's address answers, whichever node runs the task
        bodies = {wait_for(lambda n=node: http_get(f"http://{n.address}:8080/"), 30, f"{node.name}:8080")}
        assert all(b.startswith("hello-") for b in bodies), bodies
    cid = task_containers("n2", "p2porch.service=web")[0]
    assert ok("n2", "docker", "exec", cid, "wget", "-q", "-O-", "http://web/").startswith("hello-")
    tasks = ok("n2", "docker", "exec", cid, "nslookup", "tasks.web")
    assert len(set(re.findall(r"Address: (10\.240\.\d+\.\d+)", tasks))) == 3, tasks
    ok("n1", "p2porch", "service", "rm", "web")
    wait_for(lambda: not any(task_containers(n, "p2porch.service=web") for n in ("n1", "n2", "n3")), 60,
             "web's containers gone")  # fmt: skip


def test_a_secret_is_readable_in_its_task_and_nowhere_else(formed, tmp_path):
    value = "pw-" + os.urandom(8).hex()
    secret_file = tmp_path / "pw.txt"
    secret_file.write_text(value + "\n")
    created = ok("n1", "p2porch", "secret", "create", "db-password", str(secret_file))
    ok("n1", "p2porch", "service", "create", "--name", "db",
       "--secret", "src=db-password,target=pw,uid=70,mode=0400", "--update-order", "start-first",
       "p2porch/busybox:latest", "sh", "-c", "ls -ln /run/secrets; exec sleep 1d")  # fmt: skip
    node, cid = next((n, c) for n in ("n1", "n2", "n3") for c in task_containers(n, "p2porch.service=db"))
    assert ok(node, "docker", "exec", cid, "cat", "/run/secrets/pw").strip() == value
    assert re.search(r"-r-------- +1 70 ", ok("n1", "p2porch", "service", "logs", "db"))
    inspect = ok("n1", "p2porch", "service", "inspect", "db")
    assert "Secrets:   db-password -> /run/secrets/pw" in inspect
    shown = [
        created,
        inspect,
        ok("n1", "p2porch", "--json", "service", "inspect", "db"),
        ok("n1", "p2porch", "secret", "inspect", "db-password"),
        ok(node, "docker", "inspect", cid),
    ]
    assert not [text for text in shown if value in text]
    # rotation: the new version reaches a new task (start-first), still only inside the container
    new_value = "pw2-" + os.urandom(8).hex()
    secret_file.write_text(new_value)
    ok("n1", "p2porch", "secret", "update", "db-password", str(secret_file))

    def rotated() -> bool:
        return any(
            ok(n, "docker", "exec", c, "cat", "/run/secrets/pw") == new_value
            for n in ("n1", "n2", "n3")
            for c in task_containers(n, "p2porch.service=db")
        )

    wait_for(rotated, 90, "a db task with the new secret version", interval_s=1.0)
    for daemon_log in Path(f"/var/lib/p2porch-sandbox/{NAME}").glob("n*/p2porch.log"):
        text = daemon_log.read_text(errors="replace")
        assert value not in text and new_value not in text, daemon_log
    refused = typed("n1", "p2porch", "secret", "rm", "db-password")
    assert refused.returncode == 1 and "in use" in refused.stderr
    ok("n1", "p2porch", "service", "rm", "db")


def test_a_service_whose_command_exits_at_once_fails_with_a_hint_not_a_hang(formed):
    # an imported image has no default command: Docker's "sh" exits 0 and would be restarted forever
    started = time.monotonic()
    result = typed("n1", "p2porch", "service", "create", "--name", "nocmd", "--converge-timeout", "120",
                   "--restart-delay", "1s", "redis:7-alpine", "true")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "exited with code 0" in result.stderr and "foreground" in result.stderr, result.stderr
    assert time.monotonic() - started < 110  # stopped on the failures, not on --converge-timeout
    ok("n1", "p2porch", "service", "rm", "nocmd")


COMPOSE = """\
services:
  web:
    image: nginx:1.25-alpine
    command: ["sh", "-c", "mkdir -p /www && echo shop-web > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["8080:80"]
    depends_on:
      api: {condition: service_healthy}
    networks: [front, back]
    configs:
      - source: web_conf
        target: /etc/nginx/conf.d/default.conf
    deploy:
      replicas: 2
      update_config: {parallelism: 1, delay: 2s, order: start-first}
      resources:
        limits: {cpus: "0.5", memory: 64M}
        reservations: {memory: 16M}
  api:
    image: myorg/api:1.0
    command:
      - sh
      - -c
      - mkdir -p /www && echo ok-$$LOG_LEVEL > /www/health && exec httpd -f -p 5000 -h /www
    env_file: ./api.env
    environment:
      DB_HOST: db
      REDIS_URL: redis://redis:6379/0
    secrets: [db_password]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost:5000/health"]
      interval: 2s
      timeout: 2s
      retries: 3
    depends_on:
      db: {condition: service_healthy}
      redis: {condition: service_started}
    networks: [back]
    deploy: {replicas: 2}
  db:
    image: postgres:16
    command:
      - sh
      - -c
      - test -s /run/secrets/db_password && touch /var/lib/postgresql/data/ready && exec sleep 1d
    environment:
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
    secrets: [db_password]
    volumes: ["dbdata:/var/lib/postgresql/data"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /var/lib/postgresql/data/ready"]
      interval: 2s
      retries: 5
    networks: [back]
  redis:
    image: redis:7-alpine
    command: ["httpd", "-f", "-p", "6379"]
    networks: [back]
volumes:
  dbdata: {}
networks:
  front: {}
  back: {}
secrets:
  db_password:
    file: ./db_password.txt
configs:
  web_conf:
    file: ./default.conf
"""


def iptables_mentions(node: str, word: str) -> int:
    return sum(word in line for line in ok(node, "iptables-save").splitlines())


def test_a_web_api_db_redis_compose_stack_deploys_answers_and_is_removed_cleanly(formed, tmp_path):
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    (tmp_path / "api.env").write_text("LOG_LEVEL=info\n")
    (tmp_path / "db_password.txt").write_text("pg-" + os.urandom(6).hex())
    (tmp_path / "default.conf").write_text("server { listen 80; }\n")
    before = {n: iptables_mentions(n, "shop") for n in ("n1", "n2", "n3")}
    ok("n1", "p2porch", "stack", "deploy", "-c", "docker-compose.yml", "shop", cwd=str(tmp_path))
    assert "shop" in ok("n1", "p2porch", "stack", "ls")
    ps = ok("n1", "p2porch", "stack", "ps", "shop")
    for service in ("shop-web", "shop-api", "shop-db", "shop-redis"):
        assert service in ps, ps
    for node in formed:
        body = wait_for(lambda n=node: http_get(f"http://{n.address}:8080/"), 30, f"{node.name}:8080")
        assert body.strip() == "shop-web"
    node, cid = next(
        (n, c) for n in ("n1", "n2", "n3") for c in task_containers(n, "p2porch.stack.service=web")
    )
    assert ok(node, "docker", "exec", cid, "wget", "-q", "-O-", "http://api:5000/health").strip() == "ok-info"
    assert (
        ok(node, "docker", "exec", cid, "cat", "/etc/nginx/conf.d/default.conf") == "server { listen 80; }\n"
    )
    networks = ok("n1", "p2porch", "network", "ls")
    assert "shop_front" in networks and "shop_back" in networks, networks

    ok("n1", "p2porch", "stack", "rm", "shop")

    def nothing_left() -> bool:
        return not any(task_containers(n, "p2porch.stack=shop") for n in ("n1", "n2", "n3"))

    wait_for(nothing_left, 90, "every shop container removed")
    assert "shop" not in ok("n1", "p2porch", "stack", "ls")
    wait_for(lambda: "shop_" not in ok("n1", "p2porch", "network", "ls"), 30, "shop networks removed")
    wait_for(
        lambda: all(iptables_mentions(n, "shop") <= before[n] for n in ("n1", "n2", "n3")),
        30,
        "no iptables rule naming the stack left",
    )
    published = [n for n in ("n1", "n2", "n3") if ":8080" in ok(n, "iptables-save", "-t", "nat")]
    assert not published, f"ingress rules for 8080 left on {published}"


# ------------------------------------------------------------------ the fourth walk: inside running tasks

SHOP_NAMES = """\
services:
  api:
    image: p2porch/busybox:latest
    command: httpd -f -p 80
    networks:
      back:
        aliases: [backend-api]
  client:
    image: p2porch/busybox:latest
    command: sleep 1d
    networks: [back]
networks:
  back: {}
"""


def task_of(service: str) -> tuple[str, str]:
    """(node, container id) of a running task of ``service``."""
    return next((n, c) for n in ("n1", "n2", "n3") for c in task_containers(n, f"p2porch.service={service}"))


def nslookup(node: str, cid: str, name: str) -> set[str]:
    """The IPv4 answers of busybox ``nslookup NAME`` in a task: the ``Address:`` lines after the first
    ``Name:`` (before it: the server's; NXDOMAIN lines of the search domains tried carry none)."""
    out = typed(node, "docker", "exec", cid, "nslookup", name).stdout
    lines = out.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("Name:")), len(lines))
    return {m.group(1) for line in lines[first:] if (m := re.match(r"Address:\s*([\d.]+)$", line))}


def test_a_stack_service_answers_every_swarm_name_from_another_task(formed, tmp_path):
    """As in Swarm: the service's names and its aliases (the short name one of them) answer its virtual
    address, their ``tasks.`` names its tasks' addresses, from a task of another service of the stack on
    the same network (busybox ``nslookup``, which asks a name with a dot only as it is, without the
    search domains)."""
    (tmp_path / "shop.yml").write_text(SHOP_NAMES)
    ok("n1", "p2porch", "stack", "deploy", "-c", "shop.yml", "names", cwd=str(tmp_path))
    tasks = json.loads(ok("n1", "p2porch", "--json", "service", "ps", "names-api"))
    api = {t["address"] for t in tasks if t["desired_state"] == "running" and t["address"]}
    vip = json.loads(ok("n1", "p2porch", "--json", "service", "inspect", "names-api"))["vip"]
    assert len(api) == 1 and vip, (api, vip)
    node, client = task_of("names-client")
    expected = {name: {vip} for name in ("api", "names_api", "names-api", "backend-api")}
    # ``tasks.api``: the short name is an alias on the stack's networks, as Swarm's (``tasks.elasticsearch``
    # in Elastic's stacks), and so is ``tasks.backend-api``
    expected |= {
        name: api for name in ("tasks.names_api", "tasks.names-api", "tasks.api", "tasks.backend-api")
    }
    answers = {name: nslookup(node, client, name) for name in expected}
    print(f"nslookup from names-client (vip {vip}, task {api}): {answers}")
    ok("n1", "p2porch", "stack", "rm", "names")
    assert answers == expected, answers


def test_stop_signal_and_grace_period_reach_the_container_and_its_stop(formed):
    ok("n1", "p2porch", "service", "create", "--name", "stopper", "-e", "A=1", "--stop-signal", "SIGUSR1",
       "--stop-grace-period", "2s", "--mount", "type=volume,source=stopper-out,target=/out",
       "p2porch/busybox:latest", "sh", "-c",
       "trap 'echo got-usr1 > /out/stop; sleep 6; echo not-killed >> /out/stop; exit 0' USR1; "
       "rm -f /out/stop; while true; do sleep 1 & wait $!; done")  # fmt: skip
    node, cid = task_of("stopper")
    config = json.loads(ok(node, "docker", "inspect", cid))[0]["Config"]
    print(f"docker inspect: StopSignal={config['StopSignal']} StopTimeout={config.get('StopTimeout')}")
    assert config["StopSignal"] == "SIGUSR1"
    assert config.get("StopTimeout") in (None, 2)  # p2porch stops with the grace period itself
    env = ok("n1", "p2porch", "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Env}}",
             "stopper")  # fmt: skip
    assert env == "[A=1]\n"  # Docker's path and Docker's printing
    ok("n1", "p2porch", "service", "rm", "stopper")
    wait_for(lambda: not task_containers(node, "p2porch.service=stopper"), 30, "stopper's container removed")
    written = ok(
        node, "docker", "run", "--rm", "-v", "stopper-out:/out", "p2porch/busybox:latest", "cat", "/out/stop"
    )
    assert written == "got-usr1\n", written  # the signal trapped, then killed after 2 s (not 6)


def test_an_unhealthy_task_under_restart_condition_none_stays_stopped(formed):
    ok("n1", "p2porch", "service", "create", "-d", "--name", "sick", "--restart-condition", "none",
       "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1",
       "p2porch/busybox:latest", "sleep", "1d")  # fmt: skip

    def tasks() -> list[dict]:
        return json.loads(ok("n1", "p2porch", "--json", "service", "ps", "sick"))

    wait_for(
        lambda: [t["desired_state"] for t in tasks()] == ["shutdown"], 60, "the unhealthy task shut down"
    )
    time.sleep(5)  # rounds that would create the slot again
    (task,) = tasks()
    print(f"sick: {task['desired_state']} {task['state']} {task['message']!r}")
    assert task["message"] == "not restarted: unhealthy; restart condition none", task
    ok("n1", "p2porch", "service", "rm", "sick")
