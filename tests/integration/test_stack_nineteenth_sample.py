"""A shape of the nineteenth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Nineteenth sample"): MLflow's own ``docker-compose/docker-compose.yml``, whose ``mlflow`` waits for a
one-shot ``create-bucket`` (``restart: "no"``, ``service_completed_successfully``) that waits for a healthy
``storage``. A redeploy that changes the bucket job waits for the job's new run: the run of its previous
spec, long complete, used to satisfy the condition at once, so the app went on before the new job ran
(``docker compose up`` waits for the recreated container). The busybox image is tagged with the file's
image names.

One sandbox (``p8cq``, 10.70.2.0/24) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

from clusterkit import cli_json, compose_sample_fixture, stack_deploy

STORAGE = "rustfs/rustfs:1.0.0-alpha.83"
AWS_CLI = "amazon/aws-cli:2.33.25"
MLFLOW = "ghcr.io/mlflow/mlflow:latest"

MLFLOW_FILE = """
services:
  storage:
    image: rustfs/rustfs:1.0.0-alpha.83
    container_name: storage
    command: ["sh", "-c", "exec sleep 1d"]
    restart: unless-stopped
    healthcheck:
      test: ["CMD-SHELL", "true"]
      interval: 1s
      timeout: 5s
      retries: 5
    stop_grace_period: 1s
  create-bucket:
    image: amazon/aws-cli:2.33.25
    container_name: mlflow-create-bucket
    depends_on:
      storage:
        condition: service_healthy
    entrypoint: >
      /bin/sh -c "
        sleep ${BUCKET_SECONDS};
        echo 'Creating bucket ${S3_BUCKET}...';
      "
    restart: "no"
  mlflow:
    image: ghcr.io/mlflow/mlflow:${MLFLOW_VERSION}
    container_name: mlflow-server
    depends_on:
      storage:
        condition: service_healthy
      create-bucket:
        condition: service_completed_successfully
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
"""


def env_text(bucket: str, seconds: int) -> str:
    return f"MLFLOW_VERSION=latest\nS3_BUCKET={bucket}\nBUCKET_SECONDS={seconds}\n"


cluster = compose_sample_fixture(
    "p8cq",
    "10.70.2.0/24",
    (STORAGE, AWS_CLI, MLFLOW),
    {"mlflow/docker-compose.yml": MLFLOW_FILE, "mlflow/.env": env_text("mlflow", 1)},
)


def deploy(sb, workdir):
    result = stack_deploy(sb, workdir / "mlflow/docker-compose.yml", "mf")
    assert result.returncode == 0, result.stderr.decode()
    assert b"waiting for mf-create-bucket (completed)" in result.stderr, result.stderr.decode()
    return {s["short"]: s["action"] for s in json.loads(result.stdout)["services"]}


def bucket_tasks(sb):
    return [t for t in cli_json(sb, "n1", "stack", "ps", "mf") if t["service"] == "mf-create-bucket"]


def test_a_redeploy_waits_for_the_changed_one_shot_jobs_new_run(cluster):
    sb, _node, workdir = cluster
    assert deploy(sb, workdir) == {"storage": "created", "create-bucket": "created", "mlflow": "created"}
    assert [t["state"] for t in bucket_tasks(sb)] == ["complete"]
    # the user renames the bucket: the job's spec changes, and its new run takes a few seconds
    (workdir / "mlflow/.env").write_text(env_text("models", 6))
    actions = deploy(sb, workdir)
    assert actions["create-bucket"] == "updated" and actions["mlflow"] == "unchanged", actions
    tasks = bucket_tasks(sb)
    current = [t for t in tasks if t["up_to_date"]]
    # the deploy went on only once the new run was done (before: at once, on the old run's completion)
    assert [t["state"] for t in current] == ["complete"], tasks
    assert len(tasks) == 2, tasks
    removed = cli_json(sb, "n1", "stack", "rm", "mf")
    assert sorted(removed["removed"]) == ["mf-create-bucket", "mf-mlflow", "mf-storage"]
