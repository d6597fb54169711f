"""Compose fidelity (issue 15): interpolation, merge of several files, extends, include, profiles, the
mapped and ignored keys, collected errors, YAML limits and the deploy waves of depends_on."""

from __future__ import annotations

import textwrap

import pytest

from p2porch.errors import ConfigError
from p2porch.stack import ComposeError, ComposeFile, load_stack, parse_yaml, substitute
from p2porch.stack.rollout import dependency_ready, deploy_waves
from p2porch.stack.source import read_text, stack_source

ENV = {"SET": "value", "EMPTY": "", "FALLBACK": "fallback"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a-${SET}-b", "a-value-b"),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SET:?err}", "value"),
        ("${UNSET:-${FALLBACK}}", "fallback"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-a $SET b}", "a value b"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("cost: $$5", "cost: $5"),
        ("50$", "50$"),
        ("$1", "$1"),
        ("${UNSET}", ""),
        ("$SET.x", "value.x"),
    ],
)
def test_interpolation_forms(text, expected):
    assert substitute(text, ENV, "f") == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${UNSET:?please set it}", "required variable UNSET is not set: please set it"),
        ("${EMPTY:?}", "required variable EMPTY is empty"),
        ("${UNSET?}", "required variable UNSET is not set"),
        ("${SET", "closing"),
        ("${1X}", "variable name"),
        ("${SET/a/b}", "only :- - :? ? :+ + are supported"),
    ],
)
def test_interpolation_errors_name_the_field(text, fragment):
    with pytest.raises(ConfigError) as info:
        substitute(text, ENV, "services.web.image")
    assert info.value.field == "services.web.image"
    assert fragment in info.value.message


def test_deeply_nested_interpolation_is_an_error_not_a_recursion_error():
    text = "${A:-" * 5000 + "x" + "}" * 5000
    with pytest.raises(ConfigError) as info:
        substitute(text, {}, "f")
    assert "nested deeper" in info.value.message
    assert substitute("${A:-" * 10 + "x" + "}" * 10, {}, "f") == "x"


def test_unset_variables_warn_once_and_keys_are_not_interpolated():
    stack = load_stack(
        "s",
        "services:\n  web:\n    image: x${NOPE}\n    labels:\n      $$KEY: ${NOPE}\n      b: ${NOPE}\n",
        environ={},
    )
    assert stack.services[0].spec["image"] == "x"
    assert stack.warnings.count("variable NOPE is not set: a blank string is used") == 1
    labels = stack.services[0].spec["labels"]
    assert labels["$$KEY"] == "" and labels["b"] == ""  # keys are never interpolated: "$$KEY" stays


def test_every_error_of_a_file_is_reported_in_one_run():
    text = textwrap.dedent(
        """
        services:
          a:
            image: ${A:?}
            ports: [nope, "80:80"]
            volumes: ["undeclared:/x"]
          b:
            image: x
            deploy: {replicas: many, mode: sometimes}
            cap_add: ["bad cap"]
          c:
            build: .
        """
    )
    with pytest.raises(ComposeError) as info:
        load_stack("s", text)
    fields = [p.field for p in info.value.problems]
    assert fields == [
        "services.a.image",
        "services.a.ports[0]",
        "services.a.volumes[0]",
        "services.b.deploy.mode",
        "services.c.build",
    ] or set(fields) >= {
        "services.a.image",
        "services.a.ports[0]",
        "services.a.volumes[0]",
        "services.c.build",
    }
    assert len(info.value.message.splitlines()) == len(info.value.problems)
    assert isinstance(info.value, ConfigError)


def test_ignored_keys_warn_once_each_naming_the_services():
    text = "services:\n" + "".join(
        f"  {n}:\n    image: x\n    userns_mode: host\n    container_name: {n}\n    dns: 1.1.1.1\n"
        for n in "ab"
    )
    stack = load_stack("s", text)
    assert [w for w in stack.warnings if "userns_mode" in w] == [
        "ignoring userns_mode (services a, b): not applied to cluster tasks "
        "(docker stack deploy ignores it too)"
    ]
    assert len([w for w in stack.warnings if "container_name" in w]) == 1
    assert len([w for w in stack.warnings if w.startswith("ignoring dns ")]) == 1


BASE = """
services:
  web:
    image: web:1
    command: ["serve", "--port", "80"]
    environment: [A=1, B=2]
    labels: {x: "1"}
    ports: ["80:80", "443:443"]
    volumes: ["data:/data", "/etc/a:/etc/a:ro"]
    dns: [1.1.1.1]
  worker:
    image: worker:1
volumes:
  data: {}
"""

OVERRIDE = """
services:
  web:
    image: web:2
    command: ["serve", "--port", "8080"]
    environment: {B: "3", C: "4"}
    labels: [y=2]
    ports: ["8443:443"]
    volumes: ["/srv/data:/data"]
  worker: !reset null
  extra:
    image: extra
"""


def test_override_files_merge_as_the_compose_specification_says():
    stack = load_stack(
        "s", [ComposeFile("base.yml", BASE, "/p"), ComposeFile("override.yml", OVERRIDE, "/p")]
    )
    web = stack.by_name()["s-web"].spec
    assert web["image"] == "web:2"
    assert web["command"] == ["serve", "--port", "8080"]  # replaced, not appended
    assert web["env"] == {"A": "1", "B": "3", "C": "4"}  # merged by variable across syntaxes
    assert {k: v for k, v in web["labels"].items() if not k.startswith("p2porch")} == {"x": "1", "y": "2"}
    assert [(p["published"], p["target"]) for p in web["publish"]] == [(80, 80), (443, 443), (8443, 443)]
    assert [(m["type"], m["source"], m["target"]) for m in web["mounts"]] == [
        ("bind", "/srv/data", "/data"),  # same target: the later file's entry wins
        ("bind", "/etc/a", "/etc/a"),
    ] or sorted((m["source"], m["target"]) for m in web["mounts"]) == [
        ("/etc/a", "/etc/a"),
        ("/srv/data", "/data"),
    ]
    assert sorted(s.short_name for s in stack.services) == ["extra", "web"]  # worker removed by !reset


def test_override_tag_replaces_a_sequence():
    over = "services:\n  web:\n    ports: !override ['9000:80']\n"
    stack = load_stack("s", [ComposeFile("a", BASE, "/p"), ComposeFile("b", over, "/p")])
    assert [(p["published"], p["target"]) for p in stack.by_name()["s-web"].spec["publish"]] == [(9000, 80)]


def test_extends_in_the_same_file_and_from_another_file():
    common = (
        "services:\n  base:\n    image: base:1\n    environment: {FROM: common, LEVEL: '1'}\n    user: '7'\n"
    )
    text = textwrap.dedent(
        """
        services:
          mid:
            extends: {service: base, file: common.yml}
            environment: {LEVEL: '2'}
          top:
            extends: mid
            working_dir: /w
        """
    )
    stack = load_stack("s", text, {"/p/common.yml": common}.__getitem__, base_dir="/p")
    top = stack.by_name()["s-top"].spec
    assert (top["image"], top["user"], top["workdir"]) == ("base:1", "7", "/w")
    assert top["env"] == {"FROM": "common", "LEVEL": "2"}
    with pytest.raises(ComposeError) as info:
        load_stack("s", "services:\n  a:\n    extends: b\n  b:\n    extends: a\n    image: x\n")
    assert "circular extends" in info.value.message


def test_include_loads_other_files():
    included = "services:\n  db:\n    image: postgres\n"
    text = "include: [db.yml]\nservices:\n  web:\n    image: x\n    depends_on: [db]\n"
    stack = load_stack("s", text, {"/p/db.yml": included}.__getitem__, base_dir="/p")
    assert [s.short_name for s in stack.services] == ["db", "web"]


def test_profiles_select_services():
    text = "services:\n  web:\n    image: x\n  debug:\n    image: y\n    profiles: [debug]\n"
    assert [s.short_name for s in load_stack("s", text).services] == ["web"]
    assert [s.short_name for s in load_stack("s", text, profiles=["debug"]).services] == ["web", "debug"]
    assert len(load_stack("s", text, profiles=["*"]).services) == 2


@pytest.mark.parametrize(
    ("value", "condition", "attempts"),
    [
        ("no", "none", 0),
        ("always", "any", 0),
        ("unless-stopped", "any", 0),
        ("on-failure", "on-failure", 0),
        ("on-failure:3", "on-failure", 3),
    ],
)
def test_restart_maps_onto_the_restart_policy(value, condition, attempts):
    spec = load_stack("s", f"services:\n  web:\n    image: x\n    restart: {value}\n").services[0].spec
    assert (spec["restart"]["condition"], spec["restart"]["max_attempts"]) == (condition, attempts)
    both = (
        "services:\n  web:\n    image: x\n    restart: 'no'\n    deploy: {restart_policy: {condition: any}}\n"
    )
    assert load_stack("s", both).services[0].spec["restart"]["condition"] == "any"  # deploy wins


def test_swarm_keys_map_onto_the_spec():
    text = textwrap.dedent(
        """
        services:
          web:
            image: x
            ports: ["127.0.0.1:8080:80", "0.0.0.0:81:81", "9000-9002:9000-9002/udp",
                    {target: 443, published: 8443, host_ip: 127.0.0.1, mode: host}]
            expose: ["3000", "4000-4001/udp"]
            mem_limit: 256m
            cpus: 0.5
            scale: 2
            extra_hosts: ["gw:10.0.0.1"]
            logging: {driver: syslog, options: {tag: web}}
            ulimits: {nofile: 1024}
            sysctls: [net.core.somaxconn=1024]
            tmpfs: ["/run:size=16m"]
            read_only: true
            security_opt: [no-new-privileges:true]
            stop_signal: SIGQUIT
            shm_size: 64m
            deploy:
              labels: {traefik.enable: "true"}
              endpoint_mode: vip  # dnsrr would refuse the ingress ports (test_dnsrr_ingress_ports.py)
              placement:
                constraints: ["node.role == worker", "node.role!=manager", "node.platform.os == linux"]
              update_config: {max_failure_ratio: 0.2}
              rollback_config: {parallelism: 0, order: start-first}
        """
    )
    spec = load_stack("s", text).services[0].spec
    assert [
        str(p.get("host_ip", "")) + f":{p['published']}:{p['target']}/{p['protocol']}"
        for p in spec["publish"]
    ] == [
        "127.0.0.1:8080:80/tcp",
        ":81:81/tcp",
        ":9000:9000/udp",
        ":9001:9001/udp",
        ":9002:9002/udp",
        "127.0.0.1:8443:443/tcp",
    ]
    assert spec["limit_memory_bytes"] == 256 * 1024**2 and spec["limit_cpu_nanos"] == 500_000_000
    assert spec["replicas"] == 2
    assert spec["constraints"] == ["node.role==replica", "node.role!=voter"]
    assert spec["service_labels"] == {"traefik.enable": "true"} and spec["endpoint_mode"] == "vip"
    assert spec["update"]["max_failure_ratio"] == 0.2
    assert (spec["rollback"]["parallelism"], spec["rollback"]["order"]) == (0, "start-first")
    assert spec["container"] == {
        "extra_hosts": ["gw:10.0.0.1"],
        "log_driver": "syslog",
        "log_opts": {"tag": "web"},
        "ulimits": {"nofile": {"soft": 1024, "hard": 1024}},
        "sysctls": {"net.core.somaxconn": "1024"},
        "read_only": True,
        "security_opt": ["no-new-privileges:true"],
        "stop_signal": "SIGQUIT",
        "shm_size_bytes": 64 * 1024**2,
    }
    assert spec["mounts"] == [
        {
            "type": "tmpfs",
            "source": "",
            "target": "/run",
            "readonly": False,
            "volume_driver": "",
            "tmpfs_size_bytes": 16 * 1024**2,
        }
    ]


def test_secrets_and_configs_map_to_cluster_objects_and_spec_refs():
    text = textwrap.dedent(
        """
        services:
          db:
            image: x
            secrets: [db_password, {source: other, target: o.pem, uid: "70", mode: 0440}]
          web:
            image: x
            configs: [site, {source: named, target: /etc/n.conf}]
            secrets: [db_password]
        secrets:
          db_password: {file: ./pw.txt}
          other: {external: true}
          unused: {environment: NOPE}
        configs:
          site: {content: "hello"}
          named: {file: ./n.conf, name: shared-conf}
        """
    )
    definition = load_stack("s", text)
    objects = {(o.kind, o.key): (o.name, o.source, o.value) for o in definition.objects}
    assert objects == {
        ("secret", "db_password"): ("s-db_password", "file", "./pw.txt"),
        ("secret", "other"): ("other", "external", ""),
        ("config", "site"): ("s-site", "content", "hello"),
        ("config", "named"): ("shared-conf", "file", "./n.conf"),
    }  # "unused" is not used by any service: not deployed
    db = definition.by_name()["s-db"].spec
    assert [(r["source"], r["target"], r["uid"], r["mode"]) for r in db["secrets"]] == [
        ("s-db_password", "/run/secrets/db_password", "0", 0o444),
        ("other", "/run/secrets/o.pem", "70", 0o440),
    ]
    web = definition.by_name()["s-web"].spec
    assert [(r["source"], r["target"]) for r in web["configs"]] == [
        ("s-site", "/site"),
        ("shared-conf", "/etc/n.conf"),
    ]
    with pytest.raises(ComposeError) as info:
        load_stack("s", "services:\n  a:\n    image: x\n    secrets: [missing]\n")
    assert "secret 'missing' is not declared" in info.value.message


def test_depends_on_orders_creation_and_makes_waves():
    text = textwrap.dedent(
        """
        services:
          web:
            image: x
            depends_on:
              api: {condition: service_healthy}
              cache: {condition: service_started}
          api:
            image: x
            depends_on: [db]
          db:
            image: x
          cache:
            image: x
        """
    )
    stack = load_stack("s", text)
    assert [s.short_name for s in stack.services] == ["db", "api", "cache", "web"]
    waves = deploy_waves(stack)
    assert [[s.short_name for s in w.services] for w in waves] == [
        ["db", "cache"],
        ["db", "api", "cache"],
        ["db", "api", "cache", "web"],
    ]
    assert [w.wait_for for w in waves] == [
        (),
        (("s-db", "service_started"),),
        (("s-api", "service_healthy"), ("s-cache", "service_started")),
    ]
    one = load_stack("s", "services:\n  a:\n    image: x\n  b:\n    image: x\n")
    assert len(deploy_waves(one)) == 1
    with pytest.raises(ComposeError) as info:
        load_stack(
            "s",
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
        )
    assert "circular dependency" in info.value.message


def test_dependency_readiness():
    running = {"service": "s-db", "desired_state": "running", "state": "running", "health": ""}
    assert dependency_ready("s-db", "service_started", [running], 1)
    assert not dependency_ready("s-db", "service_started", [], 1)
    starting = {**running, "health": "starting"}
    assert not dependency_ready("s-db", "service_healthy", [starting], 1)
    assert dependency_ready("s-db", "service_healthy", [{**running, "health": "healthy"}], 1)
    assert not dependency_ready("s-db", "service_healthy", [{**running, "health": "healthy"}], 2)
    assert dependency_ready("s-db", "service_healthy", [], 0)


def test_yaml_limits_and_recursive_aliases():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    for text, fragment in [
        (bomb, "alias expansion"),
        ("a: &a [*a]\n", "recursive alias"),
        ("[" * 100 + "]" * 100, "nested deeper"),
        (
            "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]\n" for i in range(1, 20)),
            "nested deeper",
        ),
        ("a: 1\na: 2\n", "duplicate key"),
        ("a: !!python/object:os.system x\n", "constructor"),
        ("\x00", "special characters"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_yaml(text, "f.yml")
        assert fragment in info.value.message and "f.yml" in info.value.message


def test_files_with_bad_encodings_name_the_file_and_line(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_bytes(b"services:\n  a:\n    image: \xff\n")
    with pytest.raises(ConfigError) as info:
        read_text(str(bad))
    assert f"{bad} line 3" in info.value.message
    good = tmp_path / "ok.yml"
    good.write_text("services:\n  a:\n    image: x\n    env_file: bad.env\n")
    (tmp_path / "bad.env").write_bytes(b"A=1\nB=\xfe\n")
    with pytest.raises(ComposeError) as info:
        stack_source([str(good)], environ={}).load("s")
    assert f"{tmp_path / 'bad.env'} line 2" in info.value.message
    (tmp_path / ".env").write_bytes(b"\xff")
    with pytest.raises(ConfigError) as info:
        stack_source([str(good)], environ={})
    assert ".env line 1" in info.value.message


def test_dotenv_and_process_environment_precedence(tmp_path):
    (tmp_path / "c.yml").write_text("services:\n  a:\n    image: x:${TAG}\n    profiles: [p]\n")
    (tmp_path / ".env").write_text("TAG=dotenv\nCOMPOSE_PROFILES=p\n")
    source = stack_source([str(tmp_path / "c.yml")], environ={})
    assert source.load("s").services[0].spec["image"] == "x:dotenv"
    source = stack_source([str(tmp_path / "c.yml")], environ={"TAG": "shell"})
    assert source.load("s").services[0].spec["image"] == "x:shell"
    (tmp_path / "other.env").write_text("TAG=other\n")
    source = stack_source([str(tmp_path / "c.yml")], str(tmp_path / "other.env"), ["p"], environ={})
    assert source.load("s").services[0].spec["image"] == "x:other"


def test_a_dependency_that_must_complete_runs_once_and_is_waited_for():
    text = textwrap.dedent(
        """
        services:
          migrate:
            image: x
          keeps-policy:
            image: x
            restart: always
          web:
            image: x
            depends_on:
              migrate: {condition: service_completed_successfully}
              keeps-policy: {condition: service_completed_successfully}
        """
    )
    stack = load_stack("s", text)
    by_short = {s.short_name: s.spec for s in stack.services}
    assert by_short["migrate"]["restart"]["condition"] == "on-failure"  # exit 0 completes it
    assert by_short["keeps-policy"]["restart"]["condition"] == "any"  # its own restart wins
    assert deploy_waves(stack)[1].wait_for == (
        ("s-keeps-policy", "service_completed_successfully"),
        ("s-migrate", "service_completed_successfully"),
    )
    done = {"service": "s-migrate", "desired_state": "running", "state": "complete", "exit_code": 0}
    assert dependency_ready("s-migrate", "service_completed_successfully", [done], 1)
    running = {**done, "state": "running"}
    assert not dependency_ready("s-migrate", "service_completed_successfully", [running], 1)
    failed = {**done, "state": "failed", "exit_code": 1}
    assert not dependency_ready("s-migrate", "service_completed_successfully", [failed], 1)
