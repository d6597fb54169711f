"""Shapes of the tenth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Tenth sample"): a MongoDB replica set's setup service that ``links`` the members (before, links
ordered nothing: the setup could start before the members), with an ``env_file`` under its
``environment`` (``stack config`` prints the two merged; the container gets the same), and PrivateGPT's
services of the empty profile, which run when no profile is given (before, none did: "at least one
service is required"). The busybox image is tagged with the files' image names.

One sandbox (``p3cp``, 10.85.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

MONGO = "mongo:7.0.4"
OLLAMA = "ollama/ollama:latest"

SLEEP = 'x-sleep: &sleep {command: ["sh", "-c", "exec sleep 1d"], stop_grace_period: 1s}'

MONGO_RS = f"""
{SLEEP}
services:
  mongo-setup:
    <<: *sleep
    image: {MONGO}
    links: [mongo, "mongo2:second"]
    env_file: [./setup.env]
    environment:
      - FROM_BOTH=environment
      - UNSET_HERE
  mongo: {{<<: *sleep, image: "{MONGO}"}}
  mongo2: {{<<: *sleep, image: "{MONGO}"}}
"""

PRIVATE_GPT = f"""
{SLEEP}
services:
  ollama-cpu: {{<<: *sleep, image: "{OLLAMA}", profiles: ["", ollama-cpu]}}
  ollama-cuda: {{<<: *sleep, image: "{OLLAMA}", profiles: [ollama-cuda]}}
"""

cluster = compose_sample_fixture(
    "p3cp",
    "10.85.0.0/16",
    (MONGO, OLLAMA),
    {
        "mongo/compose.yaml": MONGO_RS,
        "mongo/setup.env": "FROM_FILE=file\nFROM_BOTH=file\nUNSET_HERE=from-file\n",
        "gpt/compose.yaml": PRIVATE_GPT,
    },
)


def test_links_start_the_linked_services_first_and_the_env_file_reaches_the_task(cluster):
    sb, node, workdir = cluster
    compose = str(workdir / "mongo" / "compose.yaml")
    printed = json.loads(cli(sb, "n1", "--json", "stack", "config", "-c", compose).stdout)
    env = printed["services"]["mongo-setup"]["environment"]
    assert "env_file" not in printed["services"]["mongo-setup"]
    assert env == {"FROM_FILE": "file", "FROM_BOTH": "environment", "UNSET_HERE": None}
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", compose, "rs")
    assert result.returncode == 0, result.stderr.decode()
    assert b"waiting for rs-mongo (started), rs-mongo2 (started)" in result.stderr, result.stderr.decode()
    order = [s["short"] for s in json.loads(result.stdout)["services"]]
    assert order.index("mongo-setup") > max(order.index("mongo"), order.index("mongo2")), order
    setup = wait_for(lambda: stack_container(node, "mongo-setup"), "a running mongo-setup container")
    members = [stack_container(node, short) for short in ("mongo", "mongo2")]
    assert all(m["Created"] < setup["Created"] for m in members)  # created after both members
    task_env = dict(e.split("=", 1) for e in setup["Config"]["Env"] if "=" in e)
    assert {k: task_env.get(k) for k in env} == env  # the printed environment, less its unset key
    assert "Address" in container_sh(node, setup["Id"], "nslookup second | tail -n +3")  # the link alias


def test_the_empty_profile_runs_when_no_profile_is_given(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "gpt" / "compose.yaml"), "gpt")
    assert result.returncode == 0, result.stderr.decode()
    assert [s["short"] for s in json.loads(result.stdout)["services"]] == ["ollama-cpu"]
    wait_for(lambda: stack_container(node, "ollama-cpu"), "a running ollama-cpu container")


def test_stack_rm_removes_the_tenth_samples_stacks(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", "rs")["removed"]) == 3
    assert len(cli_json(sb, "n1", "stack", "rm", "gpt")["removed"]) == 1
