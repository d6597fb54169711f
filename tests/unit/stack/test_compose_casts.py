"""Compose's value forms that a second sample of real files used (docs/stack.md, "Real-world Compose files"):
type casts after interpolation, IEC size units, null logging options, newer mount keys, tmpfs mount
options and the long syntax of ``devices``. Each is a small hand-written file."""

from __future__ import annotations

import pytest

from p2porch.stack.casts import cast_types, to_boolean, to_integer

from .compose_text import load, refusal, spec_of


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("true", True),
        ("Yes", True),
        ("on", True),
        ("y", True),
        ("FALSE", False),
        ("no", False),
        ("off", False),
    ],
)
def test_boolean_words_cast_as_compose_does(word, value):
    assert to_boolean(word) is value


def test_values_that_do_not_cast_are_left_for_validation():
    assert to_boolean("maybe") == "maybe"
    assert to_integer("2x") == "2x"
    assert to_integer("-1") == -1
    assert to_integer(" 3 ") == 3
    doc = {"services": {"web": {"init": "maybe", "x-init": "yes", "deploy": {"replicas": "two"}}}}
    assert cast_types(doc) == doc


def test_interpolated_booleans_and_numbers_are_cast():
    """``disable: ${HC_DISABLED:-true}`` interpolates to the string "true": Compose casts it (and
    ``yes``/``on``, which YAML 1.2 reads as strings) for keys typed boolean or integer."""
    definition = load(
        """
        services:
          worker:
            image: busybox
            init: "yes"
            read_only: "on"
            healthcheck:
              test: ["CMD", "true"]
              disable: ${HC_DISABLED:-true}
          web:
            image: nginx
            healthcheck:
              test: ["CMD", "true"]
              retries: "${RETRIES:-5}"
            ulimits:
              nofile: "${NOFILE:-1024}"
              nproc: {soft: "10", hard: "20"}
            volumes:
              - type: bind
                source: /srv/conf
                target: /conf
                read_only: "true"
            deploy:
              replicas: ${REPLICAS:-2}
              update_config:
                parallelism: "2"
              restart_policy:
                max_attempts: "3"
        networks:
          default:
            attachable: "true"
        """
    )
    worker = spec_of(definition, "worker")
    assert worker["health"]["cmd"] == ["NONE"]
    assert worker["container"]["init"] is True
    assert worker["container"]["read_only"] is True
    web = spec_of(definition, "web")
    assert web["replicas"] == 2
    assert web["health"]["retries"] == 5
    assert web["container"]["ulimits"] == {
        "nofile": {"soft": 1024, "hard": 1024},
        "nproc": {"soft": 10, "hard": 20},
    }
    assert web["mounts"][0]["readonly"] is True
    assert web["update"]["parallelism"] == 2
    assert web["restart"]["max_attempts"] == 3


def test_a_value_that_is_no_boolean_is_refused_naming_the_key():
    message = refusal(
        """
        services:
          web:
            image: nginx
            healthcheck:
              test: ["CMD", "true"]
              disable: ${HC_DISABLED:-maybe}
        """
    )
    assert "services.web.healthcheck.disable: expected true or false" in message


def test_sizes_take_the_units_docker_reads():
    """``shm_size: 1GiB`` and ``mem_limit: 512MB`` are sizes Docker reads (go-units): binary units."""
    definition = load(
        """
        services:
          db:
            image: postgres
            shm_size: 1GiB
            mem_limit: 512MB
            tmpfs:
              - /run:size=64MiB,mode=1777
        """
    )
    spec = spec_of(definition, "db")
    assert spec["container"]["shm_size_bytes"] == 1024**3
    assert spec["limit_memory_bytes"] == 512 * 1024**2
    assert spec["mounts"][0]["tmpfs_size_bytes"] == 64 * 1024**2


def test_a_logging_option_without_a_value_is_not_set():
    """The schema allows ``null`` for a logging option (``compress:`` left empty): it is not passed."""
    definition = load(
        """
        services:
          web:
            image: nginx
            logging:
              driver: json-file
              options:
                max-size: 10m
                max-file: 3
                compress:
        """
    )
    assert spec_of(definition, "web")["container"]["log_opts"] == {"max-size": "10m", "max-file": "3"}


def test_newer_mount_keys_load_with_a_warning_and_image_mounts_are_refused():
    definition = load(
        """
        services:
          web:
            image: nginx
            volumes:
              - type: volume
                source: data
                target: /data
                volume:
                  labels: {backup: "daily"}
              - type: bind
                source: /srv/site
                target: /site
                bind:
                  recursive: readonly
              - type: bind
                source: /srv/other
                target: /other
                bind:
                  recursive: enabled
        volumes:
          data:
        """
    )
    assert [m["target"] for m in spec_of(definition, "web")["mounts"]] == ["/data", "/site", "/other"]
    warnings = "\n".join(definition.warnings)
    assert "volumes volume.labels" in warnings
    assert warnings.count("bind.recursive") == 1  # "enabled" is what a bind mount does anyway
    message = refusal(
        """
        services:
          web:
            image: nginx
            volumes:
              - type: image
                source: alpine
                target: /img
                image:
                  subpath: /etc
        """
    )
    assert "services.web.volumes[0].type: 'image' is not supported" in message


def test_tmpfs_options_other_than_size_and_mode_reach_the_mount():
    """As Compose passes a short tmpfs entry to ``--tmpfs`` (the eighteenth sample: these were warned and
    dropped, test_compose_eighteenth_sample.py)."""
    definition = load(
        """
        services:
          web:
            image: nginx
            tmpfs:
              - /tmp:size=100m,mode=755,noexec
              - /run:uid=1000,gid=1000
        """
    )
    mounts = spec_of(definition, "web")["mounts"]
    assert (mounts[0]["tmpfs_size_bytes"], mounts[0]["tmpfs_mode"]) == (100 * 1024**2, 0o755)
    assert [m.get("tmpfs_options") for m in mounts] == [["noexec"], ["uid=1000", "gid=1000"]]
    assert not definition.warnings
    assert "services.web.tmpfs[0]: invalid tmpfs option 'x y=1'" in refusal(
        "services:\n  web:\n    image: nginx\n    tmpfs: ['/run:x y=1']\n"
    )


def test_devices_take_the_long_syntax():
    definition = load(
        """
        services:
          app:
            image: busybox
            devices:
              - /dev/ttyUSB0
              - source: /dev/fuse
                target: /dev/fuse
                permissions: rwm
              - source: /dev/snd
        """
    )
    assert spec_of(definition, "app")["container"]["devices"] == [
        "/dev/ttyUSB0:/dev/ttyUSB0:rwm",
        "/dev/fuse:/dev/fuse:rwm",
        "/dev/snd:/dev/snd:rwm",
    ]
    message = refusal("services:\n  app:\n    image: busybox\n    devices: [{target: /dev/x}]\n")
    assert "services.app.devices[0].source: is required" in message


def test_a_port_bound_to_an_address_without_a_host_port_keeps_the_address():
    """``127.0.0.1::8080`` publishes on a free host port of loopback only: the address is kept (it was
    dropped, which published the port on every address)."""
    definition = load("services:\n  web:\n    image: nginx\n    ports: ['127.0.0.1::8080', '9000']\n")
    publish = spec_of(definition, "web")["publish"]
    assert [(p.get("host_ip", ""), p["published"], p["target"]) for p in publish] == [
        ("127.0.0.1", None, 8080),
        ("", None, 9000),
    ]


def test_pull_refresh_after_is_a_known_key_ignored_with_a_warning():
    definition = load("services:\n  web:\n    image: nginx\n    pull_refresh_after: 1h\n")
    assert any("ignoring pull_refresh_after (service web)" in w for w in definition.warnings)


@pytest.mark.parametrize(
    ("word", "condition"), [("unless-stopped", "any"), ("always", "any"), ("no", "none")]
)
def test_a_restart_word_as_restart_policy_condition_is_read_with_a_warning(word, condition):
    """Swarm's conditions are none | on-failure | any; stacks also write the service-level ``restart``
    words there (``condition: unless-stopped``): read with their meaning and a warning."""
    definition = load(
        f"""
        services:
          web:
            image: nginx
            deploy:
              restart_policy:
                condition: {word}
                max_attempts: 3
        """
    )
    restart = spec_of(definition, "web")["restart"]
    assert (restart["condition"], restart["max_attempts"]) == (condition, 3)
    assert any(f"{word!r} is read as {condition!r}" in w for w in definition.warnings)
    message = refusal(
        "services:\n  web:\n    image: nginx\n    deploy:\n      restart_policy: {condition: sometimes}\n"
    )
    assert "services.web.deploy.restart_policy.condition" in message
