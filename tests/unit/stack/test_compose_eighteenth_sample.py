"""Constructs of the eighteenth real-world sample (docs/stack.md, "Eighteenth sample"): the options of a short
``tmpfs`` entry (alsd4git's netalertx ``/tmp:uid=0,gid=0,mode=1700,rw,noexec,nosuid,nodev,...``, its
jellyfin's ``/config/data/transcodes:rw,size=2g,mode=1777``), which were warned one by one and dropped and
now reach the engine as Compose passes them (``HostConfig.Tmpfs``, Docker's ``--tmpfs``); and the sample's
shapes, checked right: several files in several directories behind a base file with no services, services
extending one in a shared file two directories up, YAML anchors with profiles and bind-backed volumes; and
``service_started`` on a one-shot init job already done (Matomo's ``matomo-db-init``), which held the deploy
until ``--wait-timeout``."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2porch.agent.dockerspec import create_request
from p2porch.agent.model import MountSpec, TaskAssignment
from p2porch.errors import ConfigError
from p2porch.member.views import agent_mounts
from p2porch.model import ServiceSpec, parse_mount
from p2porch.stack.rollout import dependency_ready, deploy_waves
from p2porch.stack.source import stack_source

from .compose_text import load, refusal, spec_of

CORPUS = Path(__file__).parent / "corpus"

NETALERTX = """
services:
  app:
    image: busybox
    read_only: true
    tmpfs:
      - /tmp:uid=0,gid=0,mode=1700,rw,noexec,nosuid,nodev,async,noatime,nodiratime
      - /config/data/transcodes:rw,size=2g,mode=1777
      - /run/app:uid=1000,gid=1000,exec
      - /cache:ro
      - /plain
"""


def test_a_short_tmpfs_entrys_options_reach_the_spec_as_compose_passes_them() -> None:
    definition = load(NETALERTX)
    mounts = spec_of(definition, "app")["mounts"]
    assert [m["target"] for m in mounts] == [
        "/tmp",
        "/config/data/transcodes",
        "/run/app",
        "/cache",
        "/plain",
    ]
    assert mounts[0]["tmpfs_mode"] == 0o1700 and mounts[0]["tmpfs_options"] == [
        *("uid=0", "gid=0", "noexec", "nosuid", "nodev", "async", "noatime", "nodiratime")
    ]
    # rw is a tmpfs's default: nothing to keep; size and mode have their own fields
    assert "tmpfs_options" not in mounts[1] and mounts[1]["tmpfs_size_bytes"] == 2 * 1024**3
    assert mounts[2]["tmpfs_options"] == ["uid=1000", "gid=1000", "exec"]
    assert mounts[3]["readonly"] is True and "tmpfs_options" not in mounts[3]
    assert (
        not definition.warnings
    )  # each option used to be warned ("ignoring tmpfs option noexec") and dropped


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("/run:noexecc", "services.app.tmpfs[0]: unknown tmpfs option 'noexecc'"),
        ("/run:uid=", "services.app.tmpfs[0]: unknown tmpfs option 'uid='"),
        ("/run:bind", "services.app.tmpfs[0]: unknown tmpfs option 'bind'"),
    ],
)
def test_an_option_docker_does_not_take_is_refused_naming_the_entry(entry: str, message: str) -> None:
    assert message in refusal(f"services:\n  app:\n    image: busybox\n    tmpfs: ['{entry}']\n")


def test_the_agent_passes_a_tmpfs_with_options_as_docker_run_tmpfs_does() -> None:
    mounts = (
        MountSpec("tmpfs", "", "/tmp", tmpfs_mode=0o1700, tmpfs_options=("uid=0", "noexec")),
        MountSpec("tmpfs", "", "/ro", read_only=True, tmpfs_size_bytes=1 << 20, tmpfs_options=("nosuid",)),
        MountSpec("tmpfs", "", "/plain", tmpfs_size_bytes=8 << 20),
    )
    _, body = create_request(TaskAssignment("t", "s", "sid", 1, "n1", "img", mounts=mounts))
    host = body["HostConfig"]
    assert host["Tmpfs"] == {"/tmp": "uid=0,noexec,mode=1700", "/ro": "nosuid,size=1048576,ro"}
    # without other options a tmpfs stays a Mounts entry, as before (its size and mode in TmpfsOptions)
    assert host["Mounts"] == [
        {
            "Type": "tmpfs",
            "Source": "",
            "Target": "/plain",
            "ReadOnly": False,
            "TmpfsOptions": {"SizeBytes": 8 << 20},
        }
    ]


def test_a_tasks_mounts_carry_the_options_and_a_mount_without_them_keeps_its_canonical_form() -> None:
    spec = spec_of(load(NETALERTX), "app")
    mounts = ServiceSpec.from_dict(spec).mounts
    assert agent_mounts(mounts)[0].tmpfs_options == mounts[0].tmpfs_options != ()
    # the key appears only when set: a service deployed before keeps its spec (and template hash)
    assert parse_mount({"type": "tmpfs", "target": "/x"}).to_dict() == {
        "type": "tmpfs",
        "target": "/x",
        "source": "",
        "readonly": False,
        "volume_driver": "",
    }


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        (
            {"type": "volume", "source": "v", "target": "/x", "tmpfs_options": ["noexec"]},
            "only apply to type=tmpfs",
        ),
        ({"type": "tmpfs", "target": "/x", "tmpfs_options": ["size=1m"]}, "'size' has its own field"),
        ({"type": "tmpfs", "target": "/x", "tmpfs_options": [1]}, "expected a list of mount options"),
    ],
)
def test_a_service_specs_tmpfs_options_are_checked(mount: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_mount(mount, fieldname="m")
    assert message in info.value.message


def test_the_samples_shapes_map_as_compose_reads_them() -> None:
    # JaneJeon's Makefile: -f docker-compose.base.yml (no services) -f services/*/docker-compose.*.yml
    base = CORPUS / "multi-file-base-only"
    files = [str(base / line) for line in (base / "files.txt").read_text().split()]
    by_short = {s.short_name: s.spec for s in stack_source(files, environ={}).load("jj").services}
    assert list(by_short)[0] == "mysql"  # the ghosts wait for its health check
    # `public: {}` in the ghost file, `public: {external: true}` in the later whoami file: external wins
    assert by_short["devblog"]["networks"][0] == {"target": "public", "aliases": ["ghost-devblog"]}
    assert by_short["whoami"]["networks"] == [{"target": "public", "aliases": []}]
    # relative paths are the base file's directory's (the project directory), not each file's
    assert by_short["devblog"]["mounts"][1]["source"] == str(base / "services/blog/config.json")
    assert by_short["devblog"]["env"]["mail__from"] == "blog@example.com"  # the .env beside the base file
    # Panzer1119's services extend `logging-gelf` of ../../common/docker-compose.yml
    paperless = CORPUS / "extends-common-logging" / "compose/content/paperless-ngx/docker-compose.yml"
    by_short = {
        s.short_name: s.spec
        for s in stack_source([str(paperless)], environ={"PWD": "/srv/pl"}).load("p").services
    }
    for spec in by_short.values():
        assert spec["container"]["log_driver"] == "gelf"
        assert spec["container"]["log_opts"]["tag"] == "{{.FullID}}"  # the log driver's template, kept
    assert by_short["webserver"]["mounts"][-1]["source"] == "/srv/pl/scripts"  # "${PWD}/scripts:/scripts:ro"
    # n8n's starter kit: anchors merged under profiles; volumes that bind a host path through driver_opts
    starter = CORPUS / "n8n-starter-profiles" / "docker-compose.yml"
    definition = stack_source([str(starter)], environ={}, profiles=["gpu-nvidia"]).load("ai")
    by_short = {s.short_name: s.spec for s in definition.services}
    assert "ollama-cpu" not in by_short and by_short["ollama-gpu"]["publish"][0]["published"] == 11434
    assert by_short["ollama-gpu"]["mounts"][0]["volume_options"] == {
        "type": "none",
        "device": "/storage/models",
        "o": "bind",
    }
    assert by_short["n8n"]["env"]["DB_POSTGRESDB_USER"] == "root"  # the anchor's list, from the .env
    assert by_short["n8n-import"]["restart"]["condition"] == "on-failure"  # service_completed_successfully
    # alsd4git's monitoring stack: netalertx's tmpfs, read-only root, capabilities
    monitoring = CORPUS / "tmpfs-options-monitoring" / "compose.yaml"
    netalertx = {
        s.short_name: s.spec for s in stack_source([str(monitoring)], environ={}).load("m").services
    }["netalertx"]
    assert netalertx["mounts"][-1]["tmpfs_options"][:2] == ["uid=0", "gid=0"]
    assert netalertx["container"]["read_only"] is True and netalertx["container"]["cap_drop"] == ["ALL"]


# hotyue's Matomo and Vaultwarden stacks: a one-shot `*-db-init` (`restart: "no"`) the app depends on with
# the short syntax (service_started). Compose waits for nothing once it started the container; p2porch
# waited for a running task, so an init job that was done already held the deploy until --wait-timeout.
def test_service_started_holds_for_a_one_shot_job_that_already_ran_to_completion() -> None:
    done = {"service": "m-db-init", "desired_state": "shutdown", "state": "complete", "exit_code": 0}
    assert dependency_ready("m-db-init", "service_started", [done], 1)
    failed = {**done, "state": "failed", "exit_code": 127}
    assert not dependency_ready("m-db-init", "service_started", [failed], 1)  # it never ran: still waited for
    definition = load(
        """
        services:
          matomo: {image: matomo, depends_on: [matomo-db-init]}
          matomo-db-init: {image: mariadb:11, restart: "no", command: [bash, /init/10-init-matomo-db.sh]}
        """
    )
    assert deploy_waves(definition)[1].wait_for == (("app-matomo-db-init", "service_started"),)
    assert spec_of(definition, "matomo-db-init")["restart"]["condition"] == "none"
