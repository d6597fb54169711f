"""Docker's Swarm tutorials ("Getting started with Swarm mode", the `service create`/`update` reference)
typed with `p2porch` for `docker`: each command that failed on main (h45swarmtut's walk, see the report)
and how it reads now. Each test failed on 4a03367: `--detach=false` ("ignored explicit argument"),
`service update redis` ("nothing to change", exit 2), `--args "ping docker.com" redis2` (SERVICE
missing), `node update --label-add foo` ("not of the form key=value"), `node.platform.os==linux`
("unknown attribute"), `--mount ...,volume-label=color=red` ("unknown mount option"), `p2porch swarm
join-token worker` / `p2porch info` (argparse's "invalid choice")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2porch.agent.dockerspec import create_request
from p2porch.cli import node as cli_node
from p2porch.cli import service as cli_service
from p2porch.cli.main import build_parser, main
from p2porch.errors import ConfigError
from p2porch.member.views import task_assignment
from p2porch.model import Node, ServiceSpec, parse_constraint, parse_mount
from p2porch.scheduler.filters import constraint_matches
from p2porch.scheduler.nodeinfo import build_node_infos


class Api:
    """The control API as the CLI sees it: records what is posted, answers a service or node view."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, Any]] = []

    def get(self, path: str, **_: Any) -> Any:
        return {"name": "redis", "version": 3, "spec": {}}

    def post(self, path: str, body: Any = None) -> Any:
        self.posted.append((path, body))
        return {"id": "0123456789abcdef", "name": "redis", "version": 4, "changed": []}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    fake = Api()
    monkeypatch.setattr(cli_service, "client_for", lambda args: fake)
    monkeypatch.setattr(cli_node, "client_for", lambda args: fake)
    return fake


def parsed(*argv: str) -> Any:
    return build_parser(argv[0]).parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "detach"),
    [
        (("--detach=false",), False),
        (("--detach=true",), True),
        (("-d=1",), True),
        (("--detach=F",), False),
        ((), False),
    ],
)
def test_a_boolean_flag_takes_gos_true_or_false_after_an_equals_sign(argv, detach):
    assert parsed("service", "update", *argv, "redis", "--image", "redis:3.0.7").detach is detach


@pytest.mark.parametrize(
    ("argv", "no_prune"),
    [(("--prune=false",), True), (("--prune=true",), False), (("--prune",), False), ((), False)],
)
def test_stack_deploy_prune_false_keeps_the_services_as_dockers_does(argv, no_prune):
    # Docker's `--prune=false` (its default: keep services the file no longer has) is `--no-prune` here
    # (pruning is the default); before explicit_bools the `=false` was dropped and the deploy pruned
    args = parsed("stack", "deploy", *argv, "-c", "stack.yml", "shop")
    assert args.no_prune is no_prune


def test_other_words_after_a_boolean_flag_and_anything_after_the_separator_stay_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["service", "update", "--detach=maybe", "redis"])
    assert info.value.code == 2
    assert "--detach" in capsys.readouterr().err
    args = parsed("service", "create", "--read-only=true", "--name", "x", "busybox", "sh", "--init=false")
    assert args.read_only is True and args.cmd == ["sh", "--init=false"]  # the command's words, as given


def test_service_update_without_flags_resubmits_the_service_as_docker_to_resume_a_paused_update(api, capsys):
    assert main(["service", "update", "redis"]) == 0  # the tutorial's "restart a paused update"
    assert api.posted == [("/services/redis/update", {})]
    out, err = capsys.readouterr()
    assert out == "redis\n"  # as `docker service update` prints the service given
    assert "nothing changed" in err


def test_args_is_one_word_split_as_a_shell_does_with_the_service_after_it(api):
    assert main(["service", "update", "-d", "--args", "ping docker.com", "redis"]) == 0
    assert main(["service", "update", "-d", "redis", "--args", "sh -c 'exit 3'"]) == 0
    assert [body["command"] for _, body in api.posted] == [["ping", "docker.com"], ["sh", "-c", "exit 3"]]


def test_an_unclosed_quote_in_args_is_exit_2_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["service", "update", "redis", "--args", "sh -c 'x"])
    assert info.value.code == 2 and "--args" in capsys.readouterr().err


def test_node_update_label_add_of_a_key_alone_adds_it_with_an_empty_value(api):
    assert main(["node", "update", "--label-add", "foo", "--label-add", "type=queue", "n1"]) == 0
    assert api.posted == [
        (
            "/nodes/n1/update",
            {"availability": None, "label_add": {"foo": "", "type": "queue"}, "label_rm": []},
        )
    ]


def test_node_platform_os_is_linux_on_every_node_and_arch_is_refused_with_what_to_use():
    node = build_node_infos([Node(node_id="a1", name="n1", role="voter")])[0]
    assert constraint_matches(node, parse_constraint("node.platform.os==linux"))
    assert not constraint_matches(node, parse_constraint("node.platform.os==windows"))
    assert ServiceSpec.from_dict({"name": "r", "image": "i", "constraints": ["node.platform.os==linux"]})
    with pytest.raises(ConfigError, match="node.labels.arch") as info:
        parse_constraint("node.platform.arch==x86_64", fieldname="--constraint")
    assert info.value.field == "--constraint"


class _Task:
    task_id, service_id, slot, desired_state, state, spec_version = "t1", "s1", 1, "running", "assigned", 1
    node_id, started_at = "id1", 0.0


def test_volume_labels_of_a_mount_reach_the_engine_and_survive_the_spec_round_trip():
    mount = parse_mount(
        'type=volume,source=my-volume,destination=/path/in/container,volume-label="color=red",'
        "volume-label=shape=round"
    )
    assert dict(mount.volume_labels) == {"color": "red", "shape": "round"}
    spec = ServiceSpec.from_dict({"name": "my-service", "image": "nginx:alpine", "mounts": [mount.to_dict()]})
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    assert "volume_labels" not in parse_mount("type=volume,target=/x").to_dict()  # old specs unchanged
    _, body = create_request(task_assignment(_Task(), spec, "n1", "net", "", "p2p"))
    assert body["HostConfig"]["Mounts"][0]["VolumeOptions"] == {"Labels": {"color": "red", "shape": "round"}}
    with pytest.raises(ConfigError, match="type=volume"):
        parse_mount("type=bind,source=/a,target=/b,volume-label=a=b")


def test_swarm_commands_say_what_to_type_instead_and_info_is_status(capsys):
    assert main(["swarm", "join-token", "worker"]) == 2
    err = capsys.readouterr().err
    assert "docker swarm join-token: p2porch token" in err and "swarm init" not in err
    assert main(["swarm"]) == 2
    assert "docker swarm init: p2porch init" in capsys.readouterr().err
    assert parsed("info").func is parsed("status").func


def test_a_swarm_name_with_an_underscore_is_refused_with_the_dns_name_to_use():
    with pytest.raises(ConfigError, match="use 'redis-2'") as info:
        ServiceSpec.from_dict({"name": "redis_2", "image": "redis:7.4.1"})
    assert info.value.field == "name"
    with pytest.raises(ConfigError) as info:
        ServiceSpec.from_dict({"name": "9lives", "image": "redis:7.4.1"})
    assert "use" not in info.value.message


def test_a_rollback_prints_what_dockers_prints_and_no_field_name(monkeypatch, capsys):
    """`--label-add` then `service rollback` said `rolled back service_labels` (a spec field's name), then
    `labels, container labels`, where Docker prints the SERVICE given and then its progress, from
    `rollback: manually requested rollback`; with `-d` the SERVICE alone; the fields are in `--json`."""

    class Rollback(Api):
        def post(self, path: str, body: Any = None) -> Any:
            return {
                "id": "0123456789abcdef",
                "name": "redis",
                "version": 5,
                "changed": ["service_labels", "labels"],
            }

    monkeypatch.setattr(cli_service, "client_for", lambda args: Rollback())
    monkeypatch.setattr(cli_service, "wait_after", lambda args, client, watches: None)
    assert main(["service", "rollback", "redis"]) == 0
    assert capsys.readouterr() == ("redis\n", "rollback: manually requested rollback\n")
    for argv in (["-d"], ["-q"]):
        assert main(["service", "rollback", *argv, "redis"]) == 0
        assert capsys.readouterr() == ("redis\n", "")
    assert main(["service", "rollback", "--json", "-d", "redis"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == ["service_labels", "labels"]
