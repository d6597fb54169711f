"""`depends_on: {condition: service_completed_successfully}` on a dependency that fails for good, on a real
one-node sandbox: `stack deploy` exits 1 as soon as the migration's task failed and its restart policy gave
up, naming the service and its exit code, and never creates the dependent (before: it polled until
``--wait-timeout``, here 240 s); the same for a ``replicated-job`` whose ``max_attempts`` are used. Fixed
(exit 0), a redeploy runs the migration again and creates the app.

One sandbox (``p8s``, 10.92.6.0/24) for the module, removed even when a test fails.
"""

from __future__ import annotations

import time

from clusterkit import cli_json, compose_sample_fixture, stack_deploy

APP = """
  app:
    image: p2porch/busybox:latest
    command: ["sleep", "1d"]
    stop_grace_period: 1s
    depends_on:
      migrate: {condition: service_completed_successfully}
"""

ONE_SHOT = (
    """
services:
  migrate:
    image: p2porch/busybox:latest
    command: ["sh", "-c", "echo migrating; exit 3"]
    restart: "no"
"""
    + APP
)

JOB = (
    """
services:
  migrate:
    image: p2porch/busybox:latest
    command: ["sh", "-c", "exit 4"]
    deploy:
      mode: replicated-job
      restart_policy: {condition: on-failure, delay: 1s, max_attempts: 1}
"""
    + APP
)

cluster = compose_sample_fixture(
    "p8s",
    "10.92.6.0/24",
    (),
    {"oneshot/docker-compose.yml": ONE_SHOT, "job/docker-compose.yml": JOB},
)


def deploy_failing(sb, file, stack: str, code: int) -> float:
    began = time.monotonic()
    result = stack_deploy(sb, file, stack, wait_timeout_s=240)
    took = time.monotonic() - began
    err = result.stderr.decode()
    assert result.returncode == 1, (result.returncode, err)
    assert (
        f"depends_on: {stack}-migrate did not complete successfully: 1 of its tasks failed for good" in err
    ), err
    assert f"exit code {code}" in err, err
    assert took < 120, took  # far from the 240 s wait timeout it used to sit out
    names = {s["name"] for s in cli_json(sb, "n1", "service", "ls")}
    assert f"{stack}-migrate" in names and f"{stack}-app" not in names, names
    return took


def test_a_one_shot_dependency_that_fails_ends_the_deploy_at_once_and_a_fixed_one_goes_on(cluster):
    sb, _node, workdir = cluster
    file = workdir / "oneshot/docker-compose.yml"
    deploy_failing(sb, file, "fo", 3)
    file.write_text(ONE_SHOT.replace("exit 3", "exit 0"))
    result = stack_deploy(sb, file, "fo", wait_timeout_s=240)
    assert result.returncode == 0, result.stderr.decode()
    names = {s["name"] for s in cli_json(sb, "n1", "service", "ls")}
    assert "fo-app" in names, names
    cli_json(sb, "n1", "stack", "rm", "fo")


def test_a_job_dependency_whose_attempts_are_used_ends_the_deploy(cluster):
    sb, _node, workdir = cluster
    deploy_failing(sb, workdir / "job/docker-compose.yml", "fj", 4)
    cli_json(sb, "n1", "stack", "rm", "fj")
