"""Constructs of the sixteenth real-world sample (docs/stack.md, "Sixteenth sample"), each reproduced by a
minimal hand-written file: the relative paths of a second ``-c`` file in another directory, which are
the first file's directory's in Compose and Swarm (they were read from the second file's own directory,
so marvinsimon's Immich override, ``env_file: [.env]``, was refused); ``network_mode: none`` of a backup
job (faraday's offen/docker-volume-backup services), which was refused and is now accepted with a
warning, as ``docker stack deploy`` accepts it; and the sample's self-hosted shapes, checked right."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from p2porch.stack import load_stack
from p2porch.stack.resolve import ComposeFile
from p2porch.stack.source import stack_source

from .compose_text import load, refusal, spec_of


def _load(files: dict[str, str], texts: dict[str, str]):
    """The stack ``app`` of the Compose ``files`` (path -> text, in -c order); ``texts`` are the other
    files on disk (path -> text)."""

    def read(path: str) -> str:
        if path not in texts:
            raise FileNotFoundError(path)
        return texts[path]

    compose = [ComposeFile(p, textwrap.dedent(t), p.rsplit("/", 1)[0]) for p, t in files.items()]
    return load_stack("app", compose, read, environ={})


# compose-go merges the -c files, then resolves every relative path once against the project directory,
# the first file's (loader.go: paths.ResolveRelativePaths(dict, config.WorkingDir)); the docs: "all
# paths in the files are relative to the first configuration file specified with -f".
BASE = "networks: {entry: {name: Entry}}\n"
IMMICH = """
services:
  immich-server:
    image: ghcr.io/immich-app/immich-server:release
    env_file: [.env]
    volumes: [./library:/usr/src/app/upload, ./immich/hw.yml:/hw.yml:ro]
    label_file: ./immich/extra.labels
    networks: [entry, default]
  ml:
    extends: {file: ./immich/base.yml, service: ml}
"""
ML_BASE = """
services:
  ml:
    image: ghcr.io/immich-app/immich-machine-learning:release
    env_file: ml.env
"""
DISK = {
    "/srv/app/.env": "DB_HOST=database\n",
    "/srv/app/immich/extra.labels": "tier=media\n",
    "/srv/app/immich/base.yml": ML_BASE,
    "/srv/app/immich/ml.env": "MODEL=clip\n",
}


def test_a_second_files_relative_paths_are_the_first_files_directory() -> None:
    definition = _load({"/srv/app/compose.yaml": BASE, "/srv/app/immich/compose.immich.yml": IMMICH}, DISK)
    server = spec_of(definition, "immich-server")
    assert server["env"] == {"DB_HOST": "database"}
    assert [m["source"] for m in server["mounts"]] == ["/srv/app/library", "/srv/app/immich/hw.yml"]
    assert server["labels"]["tier"] == "media"
    # the file an extends names is the project directory's too; its own paths stay its directory's
    assert spec_of(definition, "ml")["env"] == {"MODEL": "clip"}


def test_a_path_only_the_second_files_directory_has_is_refused_naming_the_field() -> None:
    texts = {"/srv/app/immich/.env": "DB_HOST=database\n"}
    text = "services:\n  s:\n    image: nginx\n    env_file: [.env]\n"
    with pytest.raises(Exception) as info:
        _load({"/srv/app/compose.yaml": BASE, "/srv/app/immich/compose.immich.yml": text}, texts)
    assert "services.s.env_file[0]" in str(info.value) and "/srv/app/.env" in str(info.value)


def test_an_included_files_paths_stay_its_own_directorys() -> None:
    main = "include: [./immich/compose.immich.yml]\nservices: {web: {image: nginx}}\n"
    text = "services:\n  s:\n    image: nginx\n    env_file: [.env]\n"
    definition = _load(
        {"/srv/app/compose.yaml": main},
        {"/srv/app/immich/compose.immich.yml": text, "/srv/app/immich/.env": "A=1\n"},
    )
    assert spec_of(definition, "s")["env"] == {"A": "1"}


def test_a_second_files_include_entry_is_the_first_files_directorys() -> None:
    """compose-go loads an include path with the project's resource loader (its working directory)."""
    second = "include: [./extra/compose.extra.yml]\nservices: {web: {image: nginx}}\n"
    extra = "services:\n  s:\n    image: nginx\n    env_file: [.env]\n"
    texts = {"/srv/app/extra/compose.extra.yml": extra, "/srv/app/extra/.env": "A=1\n"}
    definition = _load({"/srv/app/compose.yaml": BASE, "/srv/app/immich/compose.immich.yml": second}, texts)
    assert spec_of(definition, "s")["env"] == {"A": "1"}  # the included file's own paths: its directory's


def test_the_corpus_copy_of_the_multi_directory_stack_reads_each_file() -> None:
    app = Path(__file__).parent / "corpus" / "multi-dir-immich-paperless"
    files = [str(app / line) for line in (app / "files.txt").read_text().split()]
    definition = stack_source(files, environ={}).load("home")
    by_short = {s.short_name: s.spec for s in definition.services}
    assert by_short["immich-server"]["env"]["IMMICH_VERSION"] == "release"  # the .env beside the first file
    assert by_short["webserver"]["env"]["PAPERLESS_URL"] == "https://paperless.example"
    assert by_short["db"]["mounts"][0]["source"] == str(app / "paperless" / "postgres")
    assert by_short["immich-server"]["health"] is None  # `disable: false` without a test: the image's
    assert {n["target"] for n in by_short["webserver"]["networks"]} == {"Entry", "paperless"}


# faraday's backup jobs (offen/docker-volume-backup) and Home Assistant's backup: `network_mode: none`.
# docker stack deploy ignores network_mode ("Ignoring unsupported options"); a task has no way to run
# without a network, so the service is on the stack's network and the warning says it is not isolated.
NONE = """
services:
  app: {image: nginx}
  backup:
    image: offen/docker-volume-backup:v2
    network_mode: none
    volumes: [/var/run/docker.sock:/var/run/docker.sock:ro]
"""


def test_network_mode_none_is_accepted_with_a_warning_that_the_tasks_are_not_isolated() -> None:
    definition = load(NONE)
    backup = spec_of(definition, "backup")
    assert [n["target"] for n in backup["networks"]] == ["app_default"]
    warned = [w for w in definition.warnings if "network_mode: none" in w]
    assert len(warned) == 1 and "service backup" in warned[0] and "NOT isolated" in warned[0]


@pytest.mark.parametrize(
    ("mode", "field"),
    [("container:abc", "services.backup.network_mode"), ("nonesuch", "services.backup.network_mode")],
)
def test_other_network_modes_are_still_refused_naming_the_field(mode: str, field: str) -> None:
    assert field in refusal(NONE.replace("network_mode: none", f"network_mode: {mode}"))


# chutch3's backup jobs: a folded `command: >` holding `$(date)`. compose-go's pattern reports an invalid
# template only after `${`, so `$(` is kept as written (Swarm's older loader refuses it).
BACKUP = """
services:
  job:
    image: mariadb:11
    command: >
      bash -c "
      while true; do
          echo '[$(date)] start'; mysqldump -p${PW} db | gzip > /b/db_$(date +%Y%m%d).sql.gz
          sleep 86400
      done
      "
"""


def test_a_shell_command_substitution_is_kept_as_written() -> None:
    command = spec_of(load(BACKUP, environ={"PW": "secret"}), "job")["command"]
    assert command[:2] == ["bash", "-c"]
    assert "echo '[$(date)] start'; mysqldump -psecret db | gzip > /b/db_$(date +%Y%m%d).sql.gz" in command[2]


# Refused rightly, as Compose and Swarm refuse it: hobroker's OpenFaaS stack writes `memory: 1G` directly
# under `deploy.resources` ("Additional property memory is not allowed").
def test_a_resource_outside_limits_and_reservations_is_refused_naming_it() -> None:
    text = "services:\n  gw:\n    image: openfaas/gateway\n    deploy: {resources: {memory: 1G}}\n"
    assert "services.gw.deploy.resources.memory" in refusal(text)


def test_the_samples_self_hosted_shapes_map_as_compose_reads_them() -> None:
    corpus = Path(__file__).parent / "corpus"
    authentik = stack_source([str(corpus / "authentik-profiles" / "compose.yaml")], environ={}).load("au")
    by_short = {s.short_name: s.spec for s in authentik.services}
    # `<<: *authentik` under each service: the anchor's environment and depends_on, their own command
    assert by_short["authentik-worker"]["command"] == ["worker"]
    assert by_short["authentik-server"]["env"]["AUTHENTIK_REDIS__HOST"] == "authentik-redis"
    assert by_short["authentik-postgresql"]["health"]["cmd"] == [
        "CMD-SHELL",
        "pg_isready -d ${POSTGRES_DB} -U ${POSTGRES_USER}",
    ]
    assert [n["target"] for n in by_short["authentik-backup"]["networks"]] == ["au_default"]
    mastodon = stack_source([str(corpus / "mastodon-extends-base" / "docker-compose.yml")], environ={}).load(
        "m"
    )
    web = {s.short_name: s.spec for s in mastodon.services}["mastodon-web"]
    # extends from another file: the base's volume and environment, then the service's own
    assert [m["target"] for m in web["mounts"]] == [
        "/mastodon/config/pg-server-ca-certificate.crt",
        "/usr/local/bin/provision.sh",
    ]
    assert web["env"]["LOCAL_DOMAIN"] == "social.example" and "MASTODON_ADMIN_EMAIL" in web["env"]
    assert web["command"][:2] == ["bash", "-c"]
