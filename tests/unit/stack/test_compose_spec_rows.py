"""The Compose specification row by row (docs/stack.md, "The specification, attribute by attribute"):
the rows no other test pinned, each a small file through the real loader. Where p2porch differed from
Compose (compose-go, which docker compose runs) the row says what Compose does; the rows other tests
already pin are named in the table, not repeated here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from p2porch.errors import ConfigError
from p2porch.stack import ComposeFile, keys, load_stack, parse_dotenv
from p2porch.stack.source import stack_source

from .compose_text import load, refusal, spec_of

# ------------------------------------------------------------------------------ .env and env_file


@pytest.mark.parametrize(
    ("line", "value"),
    [
        # double quotes: Go's escapes as compose-go's dotenv reads them, then interpolation
        (r'A="x\$HOME"', "x$HOME"),  # \$ is a literal $: before, $HOME was interpolated
        (r'A="a\tb\nc"', "a\tb\nc"),
        (r'A="\a\b\f\v"', "\a\b\f\v"),  # before: kept as written
        (r'A="\0101\0777"', "A\\0777"),  # octal \0NNN up to 255 (Go's \NNN), a larger one as written
        (r'A="it\'s"', "it\\'s"),  # \' is no escape between double quotes: before, the backslash went
        (r'A="say \"hi\""', 'say "hi"'),
        (r'A="a\\"', "a\\"),  # \\ is a pair (then \), so the quote closes: refused in session 52
        (r'A="\q"', "\\q"),  # an unknown escape keeps its backslash
        # single quotes: literal, but \' is the quote and any other backslash keeps the next character
        (r"A='it\'s $HOME'", "it's $HOME"),  # session 52 read it\'s
        (r"A='a\\'", "a\\\\"),  # the pair stays as written and the quote closes: refused in session 52
        (r"A='a\\b'", "a\\\\b"),
        # unquoted: a comment starts at " #", not at a tab or a bare #
        ("A=abc#def", "abc#def"),
        ("A=a\t#c", "a\t#c"),  # before: the tab started a comment
        ("A=a #c", "a"),
        ("A= #c", "#c"),
        ("export A=1", "1"),
        ("A: yaml style", "yaml style"),
    ],
)
def test_a_dotenv_value_reads_as_compose_reads_it(line: str, value: str) -> None:
    assert parse_dotenv(line + "\n", "x.env", {"HOME": "/root"})["A"] == value


def test_a_backslash_takes_the_next_character_in_a_quoted_dotenv_value() -> None:
    """compose-go v2's dotenv (extractVarValue since its PR #511, the parser docker/cli vendors): a
    backslash takes the next character, so a quote after ``\\\\`` closes the value and ``\\'`` is a
    quote; session 52 refused the first two ("not closed") and kept the backslash of the third."""
    text = 'DB_PASSWORD="s3cret\\\\"\nROOT="C:\\\\data\\\\"\nNEXT="x"\nMSG=\'Let\\\'s go!\'\n'
    assert parse_dotenv(text, "x.env") == {
        "DB_PASSWORD": "s3cret\\",
        "ROOT": "C:\\data\\",
        "NEXT": "x",
        "MSG": "Let's go!",
    }


@pytest.mark.parametrize("line", [r"A='a\'", r'A="a\"', r'A="a\\\"'])
def test_a_quote_a_backslash_takes_does_not_close_a_dotenv_value(line: str) -> None:
    with pytest.raises(ConfigError, match="x.env line 1: a (double|single)-quoted value is not closed"):
        parse_dotenv(line + "\n", "x.env")


def test_text_after_a_closing_quote_is_the_next_dotenv_statement() -> None:
    """compose-go reads on after the closing quote: ``B=2`` is a statement, ``C`` a bare key; before,
    the line was refused ("unexpected ... after the closing quote")."""
    text = 'A="x" B=2\nD=\'y\' C\nE="z" # c\n'
    assert parse_dotenv(text, "x.env", {"C": "c"}) == {"A": "x", "B": "2", "D": "y", "C": "c", "E": "z"}


@pytest.mark.parametrize("key", ["9X", "A[0]", "a.b-c", "ÉTÉ"])
def test_a_dotenv_key_takes_compose_gos_characters(key: str) -> None:
    """Letters, digits (a leading one too), ``_ . - [ ]``; before, ``9X`` and ``A[0]`` were refused."""
    assert parse_dotenv(f"{key}=1\n", "x.env") == {key: "1"}


def test_a_dotenv_variable_reads_the_environment_before_the_files_earlier_keys() -> None:
    """compose-go's dotenv looks a variable up in the environment first: ``B=${A}`` is the shell's A
    when it sets one (the A the project gets too); before, the file's own A."""
    assert parse_dotenv("A=1\nB=${A}\n", "x.env", {"A": "2"}) == {"A": "1", "B": "2"}
    assert parse_dotenv("A=1\nB=${A}\n", "x.env", {}) == {"A": "1", "B": "1"}


def test_a_double_quoted_value_spans_lines_and_a_single_quoted_one_too() -> None:
    assert parse_dotenv("A=\"one\ntwo\"\nB='x\ny'\n", "x.env") == {"A": "one\ntwo", "B": "x\ny"}


def test_an_env_file_value_with_a_literal_dollar_reaches_the_container() -> None:
    text = "services:\n  web:\n    image: x\n    env_file: [app.env]\n"
    definition = load_stack(
        "app", text, {"/srv/app/app.env": 'PASS="pa\\$word"\n'}.__getitem__, base_dir="/srv/app", environ={}
    )
    assert spec_of(definition, "web")["env"] == {"PASS": "pa$word"}


# ------------------------------------------------------------------------------------ interpolation


def test_a_required_variable_s_message_is_interpolated_too() -> None:
    message = refusal("services:\n  web:\n    image: ${TAG?$HINT}\n", {"HINT": "set TAG"})
    assert "services.web.image: required variable TAG is not set: set TAG" in message


def test_a_key_is_not_interpolated_but_the_list_form_s_entry_is() -> None:
    text = 'services:\n  web:\n    image: x\n    labels: ["$$K=1", "${K}=2"]\n'
    labels = spec_of(load(text, {"K": "k"}), "web")["labels"]
    assert labels["$K"] == "1" and labels["k"] == "2"


def test_a_service_of_an_inactive_profile_is_interpolated_too() -> None:
    """Interpolation comes before profiles, so a required variable of a skipped service is still
    required, as in Compose."""
    text = "services:\n  web:\n    image: x\n  debug:\n    image: ${T:?need T}\n    profiles: [d]\n"
    assert "services.debug.image: required variable T is not set: need T" in refusal(text)


# -------------------------------------------------------------------------------------------- merge

BASE = """
services:
  web:
    image: nginx
    command: [serve]
    logging: {driver: syslog, options: {syslog-address: "udp://10.0.0.1:514", tag: web}}
    tmpfs: /tmp
    extra_hosts: ["a:10.0.0.1"]
    ulimits: {nofile: {soft: 10, hard: 20}, nproc: 100}
    ports: ["80:80"]
    volumes: ["/srv/data:/data"]
    environment: {A: "1"}
"""


def _merged(override: str) -> dict:
    files = [ComposeFile("base.yml", BASE, "/p"), ComposeFile("over.yml", textwrap.dedent(override), "/p")]
    return spec_of(load_stack("app", files, environ={}), "web")


def test_logging_naming_another_driver_replaces_the_earlier_options() -> None:
    """compose-go's mergeLogging: before, json-file got syslog-address, which Docker refuses."""
    spec = _merged("services:\n  web:\n    logging: {driver: json-file, options: {max-size: 10m}}\n")
    assert (spec["container"]["log_driver"], spec["container"]["log_opts"]) == (
        "json-file",
        {"max-size": "10m"},
    )


@pytest.mark.parametrize(
    "logging", ["{driver: syslog, options: {tag: api}}", "{options: {tag: api}}"], ids=["same", "none"]
)
def test_logging_of_the_same_driver_or_none_merges_the_options(logging: str) -> None:
    spec = _merged(f"services:\n  web:\n    logging: {logging}\n")
    assert spec["container"]["log_driver"] == "syslog"
    assert spec["container"]["log_opts"] == {"syslog-address": "udp://10.0.0.1:514", "tag": "api"}


def test_a_one_string_tmpfs_appends_as_a_sequence() -> None:
    """``tmpfs: /tmp`` then ``tmpfs: /run`` mounts both (compose-go's mergeToSequence); before: /run only."""
    spec = _merged("services:\n  web:\n    tmpfs: /run\n")
    assert [m["target"] for m in spec["mounts"] if m["type"] == "tmpfs"] == ["/tmp", "/run"]


def test_extra_hosts_in_the_list_and_mapping_forms_append() -> None:
    spec = _merged('services:\n  web:\n    extra_hosts: {b: 10.0.0.2, c: ["::1", 10.0.0.3]}\n')
    assert spec["container"]["extra_hosts"] == ["a:10.0.0.1", "b:10.0.0.2", "c:::1", "c:10.0.0.3"]


def test_each_ulimit_is_replaced_whole() -> None:
    """compose-go's mergeUlimit; a partial entry is then refused, as Compose's schema refuses it
    (before: merged with the earlier hard limit)."""
    spec = _merged("services:\n  web:\n    ulimits: {nofile: 30}\n")
    assert spec["container"]["ulimits"] == {
        "nofile": {"soft": 30, "hard": 30},
        "nproc": {"soft": 100, "hard": 100},
    }
    with pytest.raises(ConfigError) as info:
        _merged("services:\n  web:\n    ulimits: {nofile: {soft: 5}}\n")
    assert "services.web.ulimits.nofile: expected soft and hard" in info.value.message


def test_a_null_in_a_later_file_keeps_the_earlier_list_or_mapping() -> None:
    """An override whose ``ports:`` holds only comments keeps the ports (compose-go: a null override
    keeps the base); before, the ports were dropped."""
    spec = _merged("services:\n  web:\n    ports:\n    volumes:\n    logging:\n")
    assert [(p["published"], p["target"]) for p in spec["publish"]] == [(80, 80)]
    assert [m["target"] for m in spec["mounts"] if m["type"] == "bind"] == ["/data"]
    assert spec["container"]["log_driver"] == "syslog"


def test_a_null_command_is_the_image_s_again_and_a_null_environment_keeps_the_earlier_one() -> None:
    """compose-go merges ``environment`` and ``env_file`` with mergeToSequence, which keeps the base
    for a null, and validates the merged model; session 52 refused the override ("got nothing")."""
    assert _merged("services:\n  web:\n    command:\n")["command"] == []
    assert _merged("services:\n  web:\n    environment:\n")["env"] == {"A": "1"}
    base = "services:\n  web:\n    image: x\n    env_file: [app.env]\n"
    files = [
        ComposeFile("base.yml", base, "/p"),
        ComposeFile("over.yml", "services:\n  web:\n    env_file:\n", "/p"),
    ]
    definition = load_stack("app", files, {"/p/app.env": "B=2\n"}.__getitem__, environ={})
    assert spec_of(definition, "web")["env"] == {"B": "2"}


@pytest.mark.parametrize("key", ["environment", "env_file"])
def test_a_null_environment_in_one_file_is_refused(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_stack("app", f"services:\n  web:\n    image: x\n    {key}:\n", environ={})
    assert f"services.web.{key}: expected" in info.value.message


def test_a_null_scalar_in_a_later_file_keeps_the_earlier_value() -> None:
    """compose-go's mergeYaml returns the base for a null override; before, ``restart:`` and ``image:``
    were refused ("expected a string or number, got nothing") and ``stop_signal`` was dropped."""
    base = "services:\n  web:\n    image: x\n    restart: always\n    stop_signal: SIGINT\n"
    over = "services:\n  web:\n    restart:\n    stop_signal:\n    image:\n"
    files = [ComposeFile("base.yml", base, "/p"), ComposeFile("over.yml", over, "/p")]
    definition = load_stack("app", files, environ={})
    assert {k: definition.model["services"]["web"][k] for k in ("image", "restart", "stop_signal")} == {
        "image": "x",
        "restart": "always",
        "stop_signal": "SIGINT",
    }


def test_a_null_under_a_key_named_like_a_replaced_attribute_keeps_the_earlier_value() -> None:
    """Only the service's own ``command``, ``entrypoint`` (and ``healthcheck.test``) take a null; before,
    a network or volume named ``test`` (or ``command``) lost its aliases, driver and options to a null
    in a later file."""
    base = """
    services:
      a: {image: nginx, networks: {test: {aliases: [foo]}}, volumes: ['test:/data']}
    networks:
      test: {labels: {tier: front}}
    volumes:
      test: {driver_opts: {type: tmpfs, device: tmpfs}}
    """
    override = "services:\n  a:\n    networks: [test]\nnetworks:\n  test:\nvolumes:\n  test:\n"
    files = [ComposeFile("base.yml", textwrap.dedent(base), "/p"), ComposeFile("over.yml", override, "/p")]
    definition = load_stack("app", files, environ={})
    assert spec_of(definition, "a")["networks"][0]["aliases"] == ["foo"]
    assert definition.model["networks"]["test"] == {"labels": {"tier": "front"}}
    assert definition.model["volumes"]["test"] == {"driver_opts": {"type": "tmpfs", "device": "tmpfs"}}


def test_a_null_healthcheck_test_in_a_later_file_is_refused() -> None:
    """compose-go's ``override`` rule sets it to null and its schema refuses the merged model."""
    base = "services:\n  web:\n    image: x\n    healthcheck: {test: [CMD, 'true'], retries: 5}\n"
    over = "services:\n  web:\n    healthcheck: {test: , interval: 10s}\n"
    files = [ComposeFile("base.yml", base, "/p"), ComposeFile("over.yml", over, "/p")]
    with pytest.raises(ConfigError) as info:
        load_stack("app", files, environ={})
    assert "services.web.healthcheck.test: expected a shell command string" in info.value.message


def test_an_extended_service_merges_by_the_same_rules() -> None:
    text = """
    services:
      base:
        image: nginx
        logging: {driver: syslog, options: {syslog-address: "udp://10.0.0.1:514"}}
        tmpfs: /tmp
      web:
        extends: base
        logging: {driver: local}
        tmpfs: /run
    """
    spec = spec_of(load(text), "web")
    assert (spec["container"]["log_driver"], spec["container"].get("log_opts")) == ("local", None)
    assert [m["target"] for m in spec["mounts"]] == ["/tmp", "/run"]


def test_a_service_both_included_and_declared_is_merged_the_including_file_winning() -> None:
    """As current Compose merges it (compose-go's importResource; releases up to 2.38 refused the file
    with "services.web conflicts with imported resource")."""
    included = "services:\n  web:\n    image: httpd\n    ports: ['8080:80']\n    environment: {A: '1'}\n"
    text = "include: [other.yml]\nservices:\n  web:\n    image: nginx\n    environment: {B: '2'}\n"
    definition = load_stack("app", text, {"/p/other.yml": included}.__getitem__, base_dir="/p", environ={})
    spec = spec_of(definition, "web")
    assert (spec["image"], spec["env"]) == ("nginx", {"A": "1", "B": "2"})
    assert [(p["published"], p["target"]) for p in spec["publish"]] == [(8080, 80)]


# ----------------------------------------------------------------------------------------- profiles

PROFILES = """
services:
  foo: {image: foo}
  bar: {image: bar, profiles: [test]}
  zot:
    image: zot
    profiles: [debug]
    depends_on: {bar: {condition: service_started, required: REQUIRED}}
"""


def test_a_dependency_on_a_service_of_an_inactive_profile_is_refused() -> None:
    """The specification's own example: with ``debug`` alone the model is invalid (docker compose:
    "service "zot" depends on undefined service "bar": invalid compose project"); before, zot was
    deployed without bar, with a warning."""
    text = textwrap.dedent(PROFILES.replace("REQUIRED", "true"))
    with pytest.raises(ConfigError) as info:
        load_stack("app", text, profiles=["debug"])
    assert "services.zot.depends_on.bar: service 'bar' is in no active profile" in info.value.message
    assert [s.short_name for s in load_stack("app", text, profiles=["debug", "test"]).services] == [
        "foo",
        "bar",
        "zot",
    ]
    assert [s.short_name for s in load_stack("app", text).services] == ["foo"]


def test_a_dependency_that_is_not_required_may_be_of_an_inactive_profile() -> None:
    definition = load_stack("app", textwrap.dedent(PROFILES.replace("REQUIRED", "false")), profiles=["debug"])
    assert [s.short_name for s in definition.services] == ["foo", "zot"]
    assert any("'bar' is not deployed" in w for w in definition.warnings), definition.warnings


def test_compose_profiles_is_only_the_default_of_profile(tmp_path: Path) -> None:
    """docker compose's WithDefaultProfiles: ``--profile`` replaces ``COMPOSE_PROFILES``; before, both."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a: {image: a, profiles: [dev]}\n  b: {image: b, profiles: [prod]}\n"
    )
    (tmp_path / ".env").write_text("COMPOSE_PROFILES=dev\n")
    source = stack_source([str(tmp_path / "compose.yaml")], environ={})
    assert [s.short_name for s in source.load("app").services] == ["a"]
    source = stack_source([str(tmp_path / "compose.yaml")], profiles=["prod"], environ={})
    assert [s.short_name for s in source.load("app").services] == ["b"]


# ---------------------------------------------------------------------- keys that duplicate deploy's


@pytest.mark.parametrize(
    ("service", "deploy", "field"),
    [
        ("scale: 3", "{replicas: 2}", "scale"),
        ("cpus: 1", "{resources: {limits: {cpus: '0.50'}}}", "cpus"),
        ("mem_limit: 1g", "{resources: {limits: {memory: 512M}}}", "mem_limit"),
        ("mem_reservation: 1g", "{resources: {reservations: {memory: 512M}}}", "mem_reservation"),
        ("pids_limit: 100", "{resources: {limits: {pids: 200}}}", "pids_limit"),
    ],
)
def test_a_key_and_the_deploy_key_it_duplicates_must_agree(service: str, deploy: str, field: str) -> None:
    """compose-go's checkConsistency ("can't set distinct values on 'scale' and 'deploy.replicas'");
    before, the deploy key won silently."""
    text = f"services:\n  web:\n    image: x\n    {service}\n    deploy: {deploy}\n"
    assert f"services.web.{field}: can't set distinct values on '{field}' and 'deploy." in refusal(text)


@pytest.mark.parametrize(
    ("service", "deploy"),
    [
        ("scale: '2'", "{replicas: 2}"),
        ("cpus: 0.5", "{resources: {limits: {cpus: '0.50'}}}"),
        ("mem_limit: 1g", "{resources: {limits: {memory: 1024M}}}"),
        ("pids_limit: 100", "{resources: {limits: {pids: 100}}}"),
    ],
)
def test_a_key_and_the_deploy_key_it_duplicates_may_agree(service: str, deploy: str) -> None:
    spec = spec_of(load(f"services:\n  web:\n    image: x\n    {service}\n    deploy: {deploy}\n"), "web")
    assert spec["name"] == "app-web"


@pytest.mark.parametrize(
    ("service", "deploy", "field", "value"),
    [
        ("mem_limit: ${MEM:-0}", "{resources: {limits: {memory: 1g}}}", "limit_memory_bytes", 1 << 30),
        ("cpus: 0", "{resources: {limits: {cpus: '0.5'}}}", "limit_cpu_nanos", 500_000_000),
        ("mem_reservation: 0", "{resources: {reservations: {memory: 1g}}}", "reserve_memory_bytes", 1 << 30),
        ("pids_limit: 0", "{resources: {limits: {pids: 200}}}", "container", {"pids_limit": 200}),
    ],
)
def test_a_zero_key_next_to_the_deploy_key_it_duplicates_is_not_set(
    service: str, deploy: str, field: str, value: object
) -> None:
    """compose-go compares only a key that is set (``if s.MemLimit != 0 && ...``; ``scale`` alone when
    0) and a 0 ``pids_limit`` takes deploy's; before, "can't set distinct values" refused the file."""
    spec = spec_of(load(f"services:\n  web:\n    image: x\n    {service}\n    deploy: {deploy}\n"), "web")
    assert spec[field] == value


def test_a_zero_scale_next_to_replicas_is_still_compared() -> None:
    text = "services:\n  web:\n    image: x\n    scale: 0\n    deploy: {replicas: 2}\n"
    assert "services.web.scale: can't set distinct values on 'scale'" in refusal(text)


def test_container_name_with_replicas_loads_as_docker_stack_deploy_reads_it() -> None:
    """Compose refuses container_name with more than one replica (a container name is unique); Swarm
    ignores container_name, and p2porch makes it a network alias of the service, so it is kept."""
    text = "services:\n  web:\n    image: x\n    container_name: front\n    deploy: {replicas: 3}\n"
    spec = spec_of(load(text), "web")
    assert spec["replicas"] == 3


# ------------------------------------------------------------------------- the catalogue of keys

#: the properties of compose-spec's schema (compose-spec/compose-spec, schema/compose-spec.json, 2025):
#: every one is catalogued in p2porch/stack/keys.py, mapped or ignored with a warning
SCHEMA = {
    "top": "version name include services models networks volumes secrets configs",
    "service": (
        "develop deploy annotations attach build blkio_config cap_add cap_drop cgroup cgroup_parent command "
        "configs container_name cpu_count cpu_percent cpu_shares cpu_quota cpu_period cpu_rt_period "
        "cpu_rt_runtime cpus cpuset credential_spec depends_on device_cgroup_rules devices dns dns_opt "
        "dns_search domainname entrypoint env_file label_file environment expose extends provider "
        "external_links extra_hosts gpus group_add healthcheck hostname image init ipc isolation labels "
        "links logging mac_address mem_limit mem_reservation mem_swappiness memswap_limit network_mode "
        "models networks oom_kill_disable oom_score_adj pid pids_limit platform ports post_start pre_stop "
        "privileged profiles pull_policy pull_refresh_after read_only restart runtime scale security_opt "
        "shm_size secrets sysctls stdin_open stop_grace_period stop_signal storage_opt tmpfs tty ulimits "
        "use_api_socket user uts userns_mode volumes volumes_from working_dir"
    ),
    "deploy": (
        "mode endpoint_mode replicas labels rollback_config update_config resources restart_policy placement"
    ),
    "update": "parallelism delay failure_action monitor max_failure_ratio order",
    "restart": "condition delay max_attempts window",
    "placement": "constraints preferences max_replicas_per_node",
    "limits": "cpus memory pids",
    "reservations": "cpus memory generic_resources devices",
    "healthcheck": "disable interval retries test timeout start_period start_interval",
    "logging": "driver options",
    "port": "name mode host_ip target published protocol app_protocol",
    "mount": "type source target read_only consistency bind volume tmpfs image",
    "service_network": (
        "aliases interface_name ipv4_address ipv6_address link_local_ips mac_address driver_opts priority "
        "gw_priority"
    ),
    "depends_on": "restart required condition",
    "file_ref": "source target uid gid mode",
    "env_file": "path format required",
    "extends": "service file",
    "network": "name driver driver_opts ipam external internal enable_ipv4 enable_ipv6 attachable labels",
    "volume": "name driver driver_opts external labels",
    "secret": "name environment file external labels driver driver_opts template_driver",
    "config": "name content environment file external labels template_driver",
}


#: each section's names in p2porch/stack/keys.py
CATALOGUE = {
    "top": "TOP_MAPPED TOP_IGNORED",
    "service": "SERVICE_MAPPED SERVICE_IGNORED",
    "deploy": "DEPLOY_MAPPED",
    "update": "UPDATE_KEYS",
    "restart": "RESTART_KEYS",
    "placement": "PLACEMENT_KEYS",
    "limits": "LIMITS_MAPPED LIMITS_IGNORED",
    "reservations": "RESERVATIONS_MAPPED RESERVATIONS_IGNORED",
    "healthcheck": "HEALTH_KEYS",
    "logging": "LOGGING_KEYS",
    "port": "PORT_KEYS",
    "mount": "VOLUME_MOUNT_KEYS",
    "service_network": "SERVICE_NETWORK_KEYS",
    "depends_on": "DEPENDS_KEYS",
    "file_ref": "SERVICE_FILE_REF_KEYS",
    "env_file": "ENV_FILE_KEYS",
    "extends": "EXTENDS_KEYS",
    "network": "TOP_NETWORK_KEYS",
    "volume": "TOP_VOLUME_KEYS",
    "secret": "TOP_SECRET_KEYS",
    "config": "TOP_CONFIG_KEYS",
}


@pytest.mark.parametrize("section", sorted(SCHEMA))
def test_every_key_of_the_schema_is_catalogued(section: str) -> None:
    catalogued = {key for name in CATALOGUE[section].split() for key in getattr(keys, name)}
    assert set(SCHEMA[section].split()) - catalogued == set()


IGNORED_VALUES = {
    "annotations": "{com.example.a: b}",
    "attach": "false",
    "blkio_config": "{weight: 300}",
    "cgroup": "host",
    "cgroup_parent": "m-executor",
    "cpu_count": "1",
    "cpu_percent": "50",
    "cpu_period": "100000",
    "cpu_quota": "50000",
    "cpu_rt_period": "1000",
    "cpu_rt_runtime": "1000",
    "cpu_shares": "512",
    "cpuset": "'0-1'",
    "credential_spec": "{file: spec.json}",
    "develop": "{watch: [{path: ./src, action: rebuild}]}",
    "device_cgroup_rules": "['c 1:3 mr']",
    "dns": "8.8.8.8",
    "dns_search": "example.com",
    "domainname": "example.com",
    "external_links": "[redis]",
    "gpus": "all",
    "isolation": "default",
    "mac_address": "'02:42:ac:11:65:43'",
    "models": "[llm]",
    "oom_kill_disable": "true",
    "oom_score_adj": "500",
    "platform": "linux/amd64",
    "post_start": "[{command: echo hi}]",
    "pre_stop": "[{command: echo bye}]",
    "pull_refresh_after": "1h",
    "runtime": "runc",
    "stdin_open": "true",
    "storage_opt": "{size: 1G}",
    "tty": "true",
    "use_api_socket": "true",
    "userns_mode": "host",
}


@pytest.mark.parametrize("key", sorted(IGNORED_VALUES))
def test_an_ignored_service_key_loads_with_one_warning_naming_it(key: str) -> None:
    assert set(IGNORED_VALUES) == set(keys.SERVICE_IGNORED) - {"provider"}
    definition = load(f"services:\n  web:\n    image: x\n    {key}: {IGNORED_VALUES[key]}\n")
    assert [w for w in definition.warnings if f"ignoring {key} " in w] == [
        f"ignoring {key} (service web): {keys.SERVICE_IGNORED[key]}"
    ], definition.warnings


def test_an_extended_service_s_depends_on_is_inherited() -> None:
    """As compose-go merges it (docker/compose#12360: the Docker docs say it is not shared)."""
    text = """
    services:
      db: {image: postgres}
      base: {image: app, depends_on: [db]}
      web: {extends: base}
    """
    definition = load(text)
    assert [d.service for d in definition.by_name()["app-web"].depends_on] == ["db"]


# ---------------------------------------------------------------------------- include and top level


def test_an_include_entry_s_project_directory_is_where_its_relative_paths_resolve() -> None:
    """14-include.md: ``project_directory`` "defines a base path to resolve relative paths set in the
    Compose file"; before, they resolved against the included file's directory (here: no such file)."""
    files = {
        "/p/sub/a.yml": "services:\n  a:\n    image: a:${TAG}\n    env_file: [x.env]\n",
        "/p/sub/b.yml": "services:\n  a:\n    environment: {B: '1'}\n",
        "/p/envs/inc.env": "TAG=fromenv\n",
        "/p/proj/x.env": "X=1\n",
    }
    text = """
    include:
      - path: [sub/a.yml, sub/b.yml]
        project_directory: proj
        env_file: envs/inc.env
    services:
      web: {image: w}
    """
    definition = load_stack("app", textwrap.dedent(text), files.__getitem__, base_dir="/p", environ={})
    spec = spec_of(definition, "a")
    assert (spec["image"], spec["env"]) == ("a:fromenv", {"B": "1", "X": "1"})
    assert definition.env_files == ("/p/proj/x.env",)


def test_a_nested_include_resolves_from_the_including_entry_s_project_directory() -> None:
    """Compose loads an included file's own includes from its project directory (the resource loader's
    working directory); before, from the included file's directory (here: the wrong image)."""
    files = {
        "/p/sub/compose.yaml": "include: [inner/compose.yaml]\n",
        "/p/other/inner/compose.yaml": "services:\n  inner: {image: right}\n",
        "/p/sub/inner/compose.yaml": "services:\n  inner: {image: wrong}\n",
    }
    text = "include: [{path: sub/compose.yaml, project_directory: other}]\nservices:\n  web: {image: w}\n"
    definition = load_stack("app", text, files.__getitem__, base_dir="/p", environ={})
    assert spec_of(definition, "inner")["image"] == "right"


@pytest.mark.parametrize(
    ("top", "included"),
    [
        (
            "[{path: b/compose.yaml, project_directory: b}]",
            "[{path: ../compose2.yaml, project_directory: .}]",
        ),
        ("[b/compose.yaml]", "[../compose2.yaml]"),
    ],
    ids=["project_directory", "plain"],
)
def test_an_include_cycle_is_refused(top: str, included: str) -> None:
    """Compose: "include cycle detected"; before, the first crashed on Python's recursion limit and the
    second loaded without a word."""
    text = f"include: {top}\nservices:\n  web: {{image: w}}\n"
    files = {"/p/compose2.yaml": text, "/p/b/compose.yaml": f"include: {included}\n"}
    with pytest.raises(ConfigError) as info:
        load_stack("app", [ComposeFile("compose2.yaml", text, "/p")], files.__getitem__, environ={})
    assert "include[0]: include cycle detected: /p/compose2.yaml -> /p/b/compose.yaml -> " in str(info.value)


def test_version_models_and_device_reservations_load_with_a_warning_each() -> None:
    text = """
    version: "2.4"
    name: ignored
    models:
      llm: {model: ai/smollm2}
    x-anything: {a: 1}
    services:
      web:
        image: x
        deploy:
          resources:
            reservations:
              devices: [{capabilities: [gpu], count: 1, driver: nvidia}]
              generic_resources: [{discrete_resource_spec: {kind: gpu, value: 2}}]
    """
    definition = load(text)
    assert definition.warnings == (
        "ignoring models: AI models are not supported",
        "version '2.4' is obsolete: the file is read with the Compose specification",
        "ignoring deploy.resources.reservations.devices (service web): "
        "device reservations (GPUs) are not supported",
        "ignoring deploy.resources.reservations.generic_resources (service web): "
        "generic resources are not supported",
    )
    assert spec_of(definition, "web")["name"] == "app-web"  # the stack's name, not name:


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("links", "[bar]", "links[0]"),
        ("links", "['bar:alias']", "links[0]"),
        ("volumes_from", "[bar]", "volumes_from[0]"),
        ("network_mode", "service:bar", "network_mode"),
        ("pid", "service:bar", "pid"),
        ("ipc", "service:bar", "ipc"),
    ],
)
def test_a_reference_to_a_service_of_an_inactive_profile_is_refused(key: str, value: str, field: str) -> None:
    """15-profiles.md: references (links, service:X, volumes_from) "do not automatically enable a
    component ... Instead Compose returns an error" (compose-go implies a required depends_on on each);
    before, the link or mount was ignored with a warning."""
    text = f"services:\n  zot:\n    image: zot\n    {key}: {value}\n  bar: {{image: bar, profiles: [test]}}\n"
    message = refusal(text)
    assert message.splitlines() == [
        f"services.zot.{field}: service 'bar' is in no active profile: activate one (--profile)"
    ]
    # with the profile active it loads (zot in bar's task for the namespaces: docs/task-groups.md)
    assert "bar" in [s.short_name for s in load_stack("app", text, profiles=["test"]).services]


def test_a_link_to_a_service_of_an_inactive_profile_that_is_not_required_loads() -> None:
    text = """
    services:
      zot: {image: zot, links: [bar], depends_on: {bar: {condition: service_started, required: false}}}
      bar: {image: bar, profiles: [test]}
    """
    assert [s.short_name for s in load(text).services] == ["zot"]


def test_a_link_to_no_service_of_the_file_is_refused() -> None:
    """compose-go implies a required depends_on for every link, so a link to no service is "depends on
    undefined service"; before, it loaded without a word (a container outside the stack is
    ``external_links``, ignored with a warning)."""
    message = refusal(
        "services:\n  web:\n    image: x\n    links: [db, 'cache:c']\n  cache: {image: redis}\n"
    )
    assert message.splitlines() == [
        "services.web.links[0]: service 'db' is not defined (a container outside the stack: external_links)"
    ]
