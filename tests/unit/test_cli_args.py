"""CLI usage errors: exit code 2 and a message that names the flag."""

import pytest

from p2porch.cli import build_parser, load_daemon_config, main


def run_cli(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["sandbox", "up", "--nodes", "x"], "--nodes"),
        (["sandbox", "up", "--nodes", "0"], "--nodes"),
        (["sandbox", "up", "--raft-rtt-ms", "-5"], "--raft-rtt-ms"),
        (["sandbox", "up", "--raft-rtt-ms", "fast"], "--raft-rtt-ms"),
        (["sandbox", "up", "--raft-rtt-ms", "1001"], "--raft-rtt-ms"),
        (["daemon", "--log-format", "xml"], "--log-format"),
        (["status", "--bogus"], "--bogus"),
        (["status", "--watch", "--interval", "-1"], "--interval"),  # was time.sleep's ValueError traceback
        (["status", "--watch", "--interval", "0"], "--interval"),
        (["service", "stats", "--watch", "--interval", "nan"], "--interval"),
        (["node", "stats", "--watch", "--interval", "-2"], "--interval"),
        (["service", "logs", "web", "--tail", "-5"], "--tail"),
        (["service", "scale", "web=2", "--converge-timeout", "-1"], "--converge-timeout"),
        (["service", "scale", "web=2", "--converge-timeout", "20x"], "--converge-timeout"),
        (
            ["stack", "deploy", "-c", "x.yml", "s", "--wait-timeout", "inf"],
            "--wait-timeout",
        ),  # was sent: the daemon sliced lines[5:]
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(capsys, argv, flag):
    code, err = run_cli(capsys, argv)
    assert code == 2
    assert flag in err


def test_a_usage_error_ends_with_where_to_read_the_help_not_a_page_of_usage(capsys):
    """service create's usage is ~70 lines: printed before the error, it buried it (Docker prints the
    error and "See 'docker service create --help'.")."""
    code, err = run_cli(capsys, ["service", "create", "--name", "x", "--mode", "bogus", "img"])
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2, err
    assert "--mode" in lines[0] and lines[1] == "See 'p2porch service create --help'."
    code, err = run_cli(capsys, ["nosuchcommand"])  # a short usage is still shown
    assert code == 2 and err.startswith("usage: p2porch") and err.endswith("See 'p2porch --help'.\n")


def test_missing_command_exits_2(capsys):
    code, err = run_cli(capsys, [])
    assert code == 2
    assert "COMMAND" in err or "required" in err


def test_invalid_config_value_from_flag_exits_2(capsys, tmp_path):
    code = main(["daemon", "--data-dir", str(tmp_path), "--advertise-addr", "300.1.1.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "node.advertise_addr" in err


def test_bad_label_exits_2(capsys, tmp_path):
    code = main(["daemon", "--data-dir", str(tmp_path), "--label", "novalue"])
    assert code == 2
    assert "--label" in capsys.readouterr().err


def test_host_flag_and_env_reach_daemon_config(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["daemon", "--data-dir", str(tmp_path), "--name", "n7"])
    env = {"P2PORCH_HOST": "unix:///tmp/from-env.sock", "P2PORCH_DNS_PORT": "5353"}
    config = load_daemon_config(args, env=env)
    assert config.api.socket == "/tmp/from-env.sock"
    assert config.node.name == "n7"
    assert config.dns.port == 5353
    args = parser.parse_args(["--host", "unix:///tmp/flag.sock", "daemon", "--data-dir", str(tmp_path)])
    assert load_daemon_config(args, env=env).api.socket == "/tmp/flag.sock"


def test_unreachable_daemon_is_a_clear_failure(capsys, tmp_path):
    code = main(["--host", f"unix://{tmp_path}/none.sock", "status"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot reach the p2porch daemon" in err


def test_a_data_dir_that_cannot_be_made_is_one_line_naming_it_not_a_traceback(capsys, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    host = f"unix://{tmp_path}/none.sock"
    # init with no daemon running makes the data dir before it starts one: it cannot, and nothing starts
    code = main(["init", "--host", host, "--data-dir", str(not_a_dir / "sub")])
    err = capsys.readouterr().err
    assert code == 1 and err == f"p2porch: error: Not a directory: {not_a_dir / 'sub'}\n"
    # the daemon reads its cluster.json there first
    code = main(["daemon", "--host", host, "--data-dir", str(not_a_dir)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("p2porch: error: Not a directory: ") and str(not_a_dir) in err
    assert "Traceback" not in err


def test_a_permission_error_says_root_is_needed():
    from p2porch.cli.main import os_error_text

    text = os_error_text(PermissionError(13, "Permission denied", "/var/lib/p2porch/daemon.log"))
    assert text.startswith("Permission denied: /var/lib/p2porch/daemon.log (") and "root" in text


def test_host_must_be_a_unix_socket_or_tcp(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("P2PORCH_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("P2PORCH_API_TOKEN", raising=False)
    code = main(["--host", "http://1.2.3.4:1", "status"])
    assert code == 2
    assert "--host" in capsys.readouterr().err
    code = main(["--host", "tcp://1.2.3.4", "status"])
    assert code == 2
    assert "tcp://HOST:PORT" in capsys.readouterr().err
    code = main(["--host", "tcp://1.2.3.4:1", "status"])  # a remote host needs an access token
    assert code == 2
    assert "--token-file" in capsys.readouterr().err


def test_the_join_token_comes_from_a_file_or_the_environment_not_only_argv(tmp_path, monkeypatch):
    from p2porch.cli.cluster import TOKEN_ENV, _cluster_body

    token_file = tmp_path / "token"
    token_file.write_text("P2PT-1-from-file\n")
    parser = build_parser()
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    body = _cluster_body(parser.parse_args(["join", "10.0.0.1", "--token-file", str(token_file)]))
    assert body["token"] == "P2PT-1-from-file"
    monkeypatch.setenv(TOKEN_ENV, "P2PT-1-from-env")
    assert _cluster_body(parser.parse_args(["join", "10.0.0.1"]))["token"] == "P2PT-1-from-env"
    assert _cluster_body(parser.parse_args(["join", "10.0.0.1", "--token", "T"]))["token"] == "T"


def test_join_without_any_token_exits_2_naming_the_flag(capsys, monkeypatch, tmp_path):
    from p2porch.cli.cluster import TOKEN_ENV

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    code = main(["--host", f"unix://{tmp_path}/none.sock", "join", "10.0.0.1"])
    assert code == 2 and "--token" in capsys.readouterr().err
    code = main(
        ["--host", f"unix://{tmp_path}/none.sock", "join", "10.0.0.1", "--token-file", "/nonexistent"]
    )
    assert code == 2 and "--token-file" in capsys.readouterr().err


def test_printed_join_command_keeps_the_token_out_of_the_joiners_argv():
    from p2porch.cli.cluster import join_command_text

    command = join_command_text("10.0.0.1:7948", "P2PT-1-x")
    assert command.startswith("P2PORCH_TOKEN=P2PT-1-x ") and "--token" not in command


def test_health_timings_without_a_command_say_what_is_missing(capsys):
    code = main(
        [
            "-H",
            "unix:///nonexistent.sock",
            "service",
            "create",
            "--name",
            "web",
            "--health-interval",
            "5s",
            "img",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--health-cmd" in err and "only tune it" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["join", "10.0.0.1", "--token", "bad"], "must start with 'P2PT-'"),
        (["join", "10.0.0.1", "--token", "P2PT-1-nothex-short"], "expected P2PT-1-"),
        (["join", "10.0.0.1:99999", "--token", "P2PT-1-" + "0" * 16 + "-" + "A" * 43], "1 to 65535"),
        (["join", "10.0.0.1:x", "--token", "P2PT-1-" + "0" * 16 + "-" + "A" * 43], "PEER"),
        (["init", "--token", "P2PT-2"], "expected P2PT-1-"),
        (["init", "--cluster-cidr", "10.0.0.0/33"], "--cluster-cidr"),
        (["init", "--domain", "bad domain"], "--domain"),
    ],
)
def test_a_malformed_token_or_peer_starts_no_daemon(capsys, monkeypatch, tmp_path, argv, named):
    # README: "a wrong or malformed token is refused with a clear message and nothing is written"; on a
    # machine with no daemon yet, init/join start one: not for input the daemon would refuse at once
    from p2porch.cli import cluster

    started: list[object] = []
    monkeypatch.setattr(cluster, "_start_background_daemon", started.append)
    code = main(["--host", f"unix://{tmp_path}/none.sock", *argv, "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert (code, started) == (2, [])
    assert named in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_split_peer_takes_host_and_an_optional_port_in_range():
    from p2porch.errors import ConfigError
    from p2porch.membership.peer import split_peer

    assert split_peer("10.0.0.1", 7948) == ("10.0.0.1", 7948)
    assert split_peer("10.0.0.1:17948", 7948) == ("10.0.0.1", 17948)
    for bad in ("10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:", ":7948", "10.0.0.1:80a"):
        with pytest.raises(ConfigError) as info:
            split_peer(bad, 7948)
        assert info.value.field == "PEER"


@pytest.mark.parametrize(
    "argv",
    [
        ["sandbox", "--name", "p2wq", "down"],
        ["sandbox", "down", "--name", "p2wq"],  # as a user types it: the options after the action too
        ["sandbox", "--name", "other", "down", "--name", "p2wq"],  # the later one wins
    ],
)
def test_the_sandbox_name_goes_before_or_after_the_action(argv):
    args = build_parser().parse_args(argv)
    assert (args.name, args.sandbox_command) == ("p2wq", "down")
    assert build_parser().parse_args(["sandbox", "ls"]).name == "p2s"


def test_an_empty_named_sandbox_says_how_to_create_that_one(capsys):
    assert main(["sandbox", "ls", "--name", "p2wq"]) == 0
    assert "`p2porch sandbox --name p2wq up`" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["global", "global-job"])
def test_replicas_with_a_global_mode_is_refused_not_ignored(capsys, tmp_path, mode):
    argv = ["--host", f"unix://{tmp_path}/none.sock", "service", "create", "--name", "a", "--mode", mode]
    code = main([*argv, "--replicas", "3", "img"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("p2porch: error: --replicas: ") and mode in err
    assert main([*argv, "img"]) == 1  # without --replicas it goes on (to the missing daemon)
    assert "cannot reach the p2porch daemon" in capsys.readouterr().err


def test_service_scale_refuses_a_pair_without_equals_before_sending_any_and_goes_on_past_others(
    capsys, monkeypatch
):
    """As docker/cli's ``service scale``: ``api`` (no ``=``) is refused before anything is sent; a REPLICAS
    that is not a count, a missing or a global service is said after the others are scaled
    (tests/unit/test_cli_errors_at_end.py has the order and the words)."""
    from p2porch.cli import service
    from p2porch.errors import NotAllowedError, NotFoundError

    sent: list[str] = []
    modes = {"web": "replicated", "api": "replicated", "agent": "global"}

    class Client:
        def post(self, path, body):
            name = path.split("/")[2]
            if name not in modes:
                raise NotFoundError(f"No such service: {name}", field="SERVICE")
            if modes[name] == "global":
                raise NotAllowedError("scale can only be used with replicated mode", field="x")
            sent.append(path)
            return {"name": name, "desired": body["replicas"], "version": 1}

    monkeypatch.setattr(service, "client_for", lambda args: Client())
    for bad in ("api", "api=", "=3"):
        assert main(["service", "scale", "web=3", bad]) == 2
        assert f"invalid scale specifier '{bad}'" in capsys.readouterr().err
    assert sent == []  # web was not scaled ahead of the bad pair
    assert main(["service", "scale", "-d", "web=3", "api=-2"]) == 2  # bad input: exit 2, web still scaled
    assert 'api: invalid replicas value -2: strconv.ParseUint: parsing "-2": invalid syntax' in (
        capsys.readouterr().err
    )
    assert main(["service", "scale", "-d", "web=5", "nosuch=2", "agent=3"]) == 1  # refused, as Docker's
    err = capsys.readouterr().err
    assert "nosuch: Error: No such service: nosuch" in err
    assert "agent: scale can only be used with replicated mode" in err
    assert sent == ["/services/web/scale"] * 2
    assert main(["service", "scale", "-d", "web=3", "api=0"]) == 0
    assert sent[2:] == ["/services/web/scale", "/services/api/scale"]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["sandbox", "up", "--name", "BAD_NAME"], "--name"),  # was exit 1 without the flag named
        (["sandbox", "down", "--name", "toolongname"], "--name"),
        (["sandbox", "up", "--name", "p2zz", "--subnet", "10.0.0.0/33"], "--subnet"),
        (["sandbox", "up", "--name", "p2zz", "--subnet", "10.0.0.1/24"], "--subnet"),
    ],
)
def test_bad_sandbox_name_or_subnet_is_usage_naming_the_flag(capsys, argv, flag):
    """Checked before anything on the machine is touched: no namespace, no state file."""
    assert main(argv) == 2
    assert flag in capsys.readouterr().err


def test_publish_without_target_says_it_is_required(capsys):
    """`--publish published=8080` said "publish[0].target: expected an integer, got NoneType"."""
    assert main(["service", "create", "--name", "x", "--publish", "published=8080", "img"]) == 2
    err = capsys.readouterr().err
    assert "--publish: publish[0].target: is required" in err and "NoneType" not in err


def test_service_create_without_an_image_names_only_the_image(capsys):
    with pytest.raises(SystemExit) as info:
        main(["service", "create", "--name", "web"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    required = "p2porch service create: error: the following arguments are required: IMAGE"
    assert err.splitlines()[-2] == required  # then where the help is


def test_service_logs_takes_dockers_n_for_tail():
    args = build_parser().parse_args(["service", "logs", "-n", "5", "web"])
    assert (args.tail, args.service) == (5, "web")


def test_an_unknown_flag_is_reported_by_the_command_it_was_given_to(capsys):
    """``service create --name x --nope IMAGE`` said "p2porch: error: unrecognized arguments" under the
    top-level usage, pointing at ``p2porch --help`` (Docker: the command and its --help)."""
    code, err = run_cli(capsys, ["service", "create", "--name", "x", "--nope", "img"])
    assert code == 2
    assert err.splitlines() == [
        "p2porch service create: error: unrecognized arguments: --nope",
        "See 'p2porch service create --help'.",
    ]
    code, err = run_cli(capsys, ["node", "ls", "--bogus"])
    assert code == 2 and "p2porch node ls: error: unrecognized arguments: --bogus" in err


@pytest.mark.parametrize(("text", "seconds"), [("300", 300.0), ("20s", 20.0), ("5m", 300.0), ("1m30s", 90.0)])
def test_converge_timeout_takes_seconds_or_a_duration_as_every_duration_flag(text, seconds):
    # h51 journey: `service create ... --converge-timeout 20s` was "invalid number of seconds '20s'"
    args = build_parser().parse_args(["service", "scale", "web=2", "--converge-timeout", text])
    assert args.converge_timeout == seconds
