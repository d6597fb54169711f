"""Compose jobs: ``deploy.mode: replicated-job|global-job`` and ``deploy.x-p2porch`` (max_concurrent,
schedule) map onto the job fields of the spec; errors name their Compose path."""

from __future__ import annotations

import textwrap

import pytest

from p2porch.stack import ComposeError, load_stack

JOBS = """
services:
  migrate:
    image: busybox
    command: ["sh", "-c", "echo migrate"]
    deploy:
      mode: replicated-job
      replicas: 6
      x-p2porch:
        max_concurrent: 2
  warm:
    image: busybox
    deploy:
      mode: global-job
  nightly:
    image: busybox
    deploy:
      mode: replicated-job
      x-p2porch:
        schedule:
          cron: "30 2 * * *"
          timezone: Europe/Paris
          concurrency: replace
          history_limit: 5
          starting_deadline: 10m
"""


def test_job_modes_and_the_extension_map_onto_the_spec():
    stack = load_stack("shop", textwrap.dedent(JOBS))
    specs = {s.short_name: s.spec for s in stack.services}
    assert (specs["migrate"]["mode"], specs["migrate"]["replicas"], specs["migrate"]["max_concurrent"]) == (
        "replicated-job",
        6,
        2,
    )
    assert specs["warm"]["mode"] == "global-job" and "schedule" not in specs["warm"]
    assert specs["nightly"]["schedule"] == {
        "cron": "30 2 * * *",
        "timezone": "Europe/Paris",
        "concurrency": "replace",
        "history_limit": 5,
        "starting_deadline_s": 600.0,
    }


@pytest.mark.parametrize(
    ("deploy", "path"),
    [
        (
            "{mode: replicated-job, x-p2porch: {schedule: '* * *'}}",
            "services.j.deploy.x-p2porch.schedule.cron",
        ),
        ("{mode: global-job, x-p2porch: {max_concurrent: 2}}", "services.j.deploy.x-p2porch.max_concurrent"),
        ("{mode: replicated-job, x-p2porch: {parallel: 2}}", "services.j.deploy.x-p2porch.parallel"),
        ("{mode: replicated, x-p2porch: {schedule: '@daily'}}", "services.j.deploy.x-p2porch.schedule"),
    ],
)
def test_bad_job_keys_name_their_path(deploy, path):
    with pytest.raises(ComposeError) as info:
        load_stack("s", f"services:\n  j:\n    image: x\n    deploy: {deploy}\n")
    assert path in [p.field for p in info.value.problems], info.value.problems
