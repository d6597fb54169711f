"""What an idle daemon loads: the modules it must not import at start (docs/performance.md, "Idle cost").

Each check runs a fresh interpreter, so modules imported by other tests do not hide a regression. Not a
timing or memory test: it asserts module names, which a future top-level import would bring back.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from p2porch import lazyimport

cli_main = importlib.import_module("p2porch.cli.main")  # the package's ``main`` attribute is the function

#: Never in the daemon: the docker SDK with requests/urllib3 (p2porch.engine speaks the Engine API).
#: Loaded only when needed: PyYAML (Compose parsing), croniter (cron jobs), the X.509 half of
#: cryptography (the cluster CA of the TCP API), the parts of pyroute2 beyond rtnetlink (its package
#: __init__ imports all of them), the CLI's other command modules, the Compose model (first deploy),
#: prometheus_client (p2porch.promclient, on the first scrape of /metrics), decimal (sizes and CPUs
#: given as text), zoneinfo (the first cron job), unittest's runner (pyroute2 wants unittest.mock only),
#: html's entity table (starlette's error page escapes only).
NOT_AT_START = (
    "tracemalloc",  # p2porch.memtrace's debug aid imports it only when its variable is set
    "prometheus_client",
    "p2porch.promclient",
    "decimal",
    "zoneinfo",
    "unittest.case",
    "difflib",
    "html.entities",
    "docker",
    "requests",
    "urllib3",
    "yaml",
    "croniter",
    "cryptography.x509",
    "pyroute2.ipdb",
    "pyroute2.ndb",
    "pyroute2.ipset",
    "pyroute2.nftables",
    "pyroute2.plan9",
    "pyroute2.iwutil",
    "pyroute2.netlink.nl80211",
    "pyroute2.netlink.generic.wireguard",
    "p2porch.stack.compose",
    "p2porch.stack.service",
    "p2porch.stack.deploy",
    "p2porch.cli.service",
    "p2porch.cli.service_spec_flags",
    "p2porch.cli.stack",
    "p2porch.cli.sandbox",
    "p2porch.sandbox",
    "cryptography.hazmat.primitives.serialization",  # node keys use raw bytes (issue 19, tenth round)
    "cryptography.hazmat.primitives.serialization.ssh",
    "importlib.resources",  # the web UI's assets, read only when the TLS API port serves them
    # the Go template engine: run by a spec's templated field or a templated secret/config only (issue 19,
    # twenty-ninth round); model.templates and payload_template load it on their first template
    "p2porch.model.gotemplate",
    "p2porch.model.gotemplate_parse",
    "p2porch.model.gotemplate_exec",
    "p2porch.model.gotemplate_values",
    "p2porch.model.gotemplate_json",
    # a stack's Compose networks, object plan and deploy plan: loaded on its first deploy, plan or prune
    "p2porch.control.stack_plan",
    "p2porch.stack.networks",
    "p2porch.stack.object_plan",
    "p2porch.stack.values",
    "p2porch.stack.yamlsafe",
)


def modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_daemon_command_imports_no_heavy_module_it_does_not_use() -> None:
    # what `python -m p2porch daemon ...` imports before and while it wires the daemon
    loaded = modules_after(
        "from p2porch.cli.main import build_parser, command_word\n"
        "build_parser(command_word(['--host', 'unix:///x.sock', 'daemon', '--data-dir', '/d']))\n"
        "import p2porch.daemon, p2porch.member.overlay, p2porch.netoverlay.driver\n"
        "import p2porch.agent.docker_executor, p2porch.netoverlay.dockernet"
    )
    assert "p2porch.daemon" in loaded and "pyroute2.iproute.linux" in loaded  # the check can fail
    assert sorted(m for m in NOT_AT_START if m in loaded) == []


def test_pyroute2_names_still_resolve_after_the_light_import() -> None:
    loaded = modules_after(
        "from p2porch.netoverlay.driver import IPRoute, NetlinkError\n"
        "import pyroute2.iproute, pyroute2.netlink.exceptions\n"
        "assert 'pyroute2.ndb' not in __import__('sys').modules\n"
        "from pyroute2 import IPRoute as FullIPRoute, NetlinkError as FullError, IPSet\n"
        "import pyroute2\n"
        "assert FullIPRoute is IPRoute is pyroute2.iproute.IPRoute and FullError is NetlinkError\n"
        "assert IPSet.__name__ == 'IPSet' and pyroute2.__version__\n"
    )
    assert "pyroute2.ndb" in loaded  # asking for a package-level name ran the real __init__


def test_unittest_names_still_resolve_after_pyroute2s_light_import() -> None:
    loaded = modules_after(
        "import sys\n"
        "from p2porch.netoverlay.driver import IPRoute\n"
        "assert 'unittest.case' not in sys.modules and 'unittest.mock' in sys.modules\n"
        "import unittest.mock\n"
        "assert unittest.mock.Mock()(1) is not None\n"
        "from unittest import TestCase, main\n"
        "import unittest\n"
        "assert TestCase.__name__ == 'TestCase' and main is unittest.TestProgram  # not the submodule\n"
        "assert unittest.mock is sys.modules['unittest.mock']\n"
    )
    assert "unittest.case" in loaded  # asking for a package-level name ran the real __init__


def test_html_escapes_after_the_light_registration() -> None:
    loaded = modules_after(
        "import sys\n"
        "import p2porch.api.server\n"
        "assert 'html.entities' not in sys.modules\n"
        "import html\n"
        "assert html.escape('<a>') == '&lt;a&gt;' and html.unescape('&amp;') == '&'\n"
    )
    assert "html.entities" in loaded


def _executed(name_expr: str) -> str:
    """Child-side expression: True when the module named by ``name_expr`` has run (public names defined;
    a submodule set on its unexecuted package is not one)."""
    return (
        f"any(not k.startswith('__') and not isinstance(v, type(sys)) "
        f"for k, v in vars(sys.modules[{name_expr}]).items())"
    )


def test_the_daemon_entry_point_leaves_the_modules_it_defers_unexecuted() -> None:
    # `p2porch daemon` registers them before its parser, imports the daemon, then stops at the missing config
    code = (
        "import sys\n"
        "from p2porch.cli.main import main\n"
        "from p2porch.lazyimport import DAEMON_UNEXECUTED_MODULES\n"
        "assert 'shutil' not in sys.modules\n"
        "argv = ['--host', 'unix:///nonexistent/x.sock', 'daemon', '--config', '/nonexistent/p2porch.toml']\n"
        "assert main(argv) != 0\n"
        "assert 'p2porch.daemon' in sys.modules and 'hypercorn.config' in sys.modules\n"
        "assert 'starlette.requests' in sys.modules and 'pysyncobj.serializer' in sys.modules\n"
        "for name in DAEMON_UNEXECUTED_MODULES:\n"
        f"    assert name in sys.modules and not {_executed('name')}, name\n"
    )
    loaded = modules_after(code)
    assert {"tomllib", "gzip", "bz2", "lzma", "idna", "http.cookies", "calendar", "h2", "priority"} <= loaded
    assert "logging.handlers" in loaded  # hypercorn's logging.config bound it; not run (checked above)
    assert "tomllib._parser" not in loaded and "_bz2" not in loaded and "_lzma" not in loaded
    # hypercorn's HTTP/2 protocol is imported, the HTTP/2 stack it binds is not run (nor hpack imported)
    assert "hypercorn.protocol.h2" in loaded
    assert sorted(m for m in loaded if m.partition(".")[0] == "hpack") == []
    assert "h2.config" not in loaded and "h2.settings" not in loaded and "priority.priority" not in loaded


def test_the_daemon_runs_without_openssls_hashes_and_hashes_alike() -> None:
    # `p2porch daemon` marks _hashlib absent: hashlib and hmac fall back to CPython's own, same digests
    loaded = modules_after(
        "import sys\n"
        "from p2porch.cli.main import main\n"
        "argv = ['--host', 'unix:///nonexistent/x.sock', 'daemon', '--config', '/nonexistent/p2porch.toml']\n"
        "assert main(argv) != 0 and 'p2porch.daemon' in sys.modules\n"
        "assert sys.modules['_hashlib'] is None  # absent: never run\n"
        "import hashlib, hmac, secrets\n"
        "assert hashlib.sha256(b'abc').hexdigest() == (\n"
        "    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')\n"
        "assert hashlib.blake2b(b'abc', digest_size=8).hexdigest() == 'd8bb14d833d59559'\n"
        "md5 = hashlib.md5(b'abc', usedforsecurity=False).hexdigest()  # starlette's file ETag\n"
        "assert md5 == '900150983cd24fb0d6963f7d28e17f72', md5\n"
        "assert hashlib.sha1(b'abc').hexdigest() == 'a9993e364706816aba3e25717850c26c9cd0d89d'\n"
        "mac = hmac.new(b'key', b'The quick brown fox jumps over the lazy dog', hashlib.sha256).hexdigest()\n"
        "assert mac == 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8', mac\n"
        "assert hmac.digest(b'key', b'x', 'sha256') == hmac.new(b'key', b'x', hashlib.sha256).digest()\n"
        "assert hmac.compare_digest(b'a', b'a') and not secrets.compare_digest('a', 'b')\n"
        "assert hashlib.new('sha256', b'abc').digest() == hashlib.sha256(b'abc').digest()\n"
    )
    assert (
        "_sha256" in loaded or "_sha2" in loaded
    ) and "hashlib" in loaded  # CPython's own SHA-2 (3.12: _sha2)


def test_openssls_hashes_stay_where_this_python_lacks_its_own() -> None:
    # a build with only some builtin hashes (--with-builtin-hashlib-hashes=blake2, RHEL/FIPS) keeps _hashlib
    assert lazyimport.builtin_hashes_present()  # this CPython has them all (_sha2 on 3.12+, else _sha256)
    for missing in ("_md5", "_sha1", "_blake2"):
        assert not lazyimport.builtin_hashes_present(
            lambda name, gone=missing: None if name == gone else name
        )
    without_sha2 = {"_sha2", "_sha256"}
    assert not lazyimport.builtin_hashes_present(lambda name: None if name in without_sha2 else name)
    assert lazyimport.builtin_hashes_present(lambda name: None if name == "_sha256" else name)  # 3.12+
    # 3.11: SHA-512 is its own module: _sha256 alone is no SHA-2 (hashlib.sha512 would be missing)
    only_sha256 = {"_sha2", "_sha512"}
    assert not lazyimport.builtin_hashes_present(lambda name: None if name in only_sha256 else name)
    assert lazyimport.builtin_hashes_present(lambda name: None if name == "_sha2" else name)  # 3.11
    loaded = modules_after(
        "import sys, importlib.util\n"
        "from p2porch import lazyimport\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == '_sha1' else real(name, *a)\n"
        "lazyimport.defer_daemon_modules()\n"
        "assert sys.modules.get('_hashlib', 0) is not None\n"
        "import hashlib\n"
        "assert hashlib.sha256(b'abc').hexdigest().startswith('ba7816bf')\n"
    )
    assert "_hashlib" in loaded


def test_the_template_engine_loads_on_the_first_template_only() -> None:
    loaded = modules_after(
        "import sys\n"
        "from p2porch.model.templates import SAMPLE, TemplateError, check, expand, stored_text\n"
        "from p2porch.model import gotemplate_error\n"
        "from p2porch.model.payload_template import render\n"
        "assert expand('plain', SAMPLE) == 'plain' and check('/srv/a', 'x') == '/srv/a'\n"
        "assert stored_text('no template') == 'no template'\n"
        "assert 'p2porch.model.gotemplate' not in sys.modules  # no '{{': nothing to run\n"
        "assert TemplateError is gotemplate_error.TemplateError\n"
        "assert expand('{{.Node.Hostname}}-{{.Task.Slot}}', SAMPLE) == 'node-1'\n"
        "import p2porch.model.gotemplate as engine\n"
        "assert engine.TemplateError is TemplateError  # one class, caught by the callers as before\n"
        "try:\n"
        "    expand('{{.Nope}}', SAMPLE)\n"
        "except TemplateError as exc:\n"
        "    assert 'can\\'t evaluate field Nope' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no TemplateError')\n"
        "out = render(b'{{join \"-\" .Service.Name (env \"A\")}}', SAMPLE, {'A': 'b'}, lambda k, t: None)\n"
        "assert out == b'service-b', out\n"
    )
    assert "p2porch.model.gotemplate_parse" in loaded


def test_deferred_modules_run_once_on_first_use_from_any_thread() -> None:
    # eight threads ask for names of each deferred module at once: each module runs once, every answer right
    loaded = modules_after(
        "import sys, threading\n"
        "from p2porch.lazyimport import defer_daemon_modules, register_unexecuted_module\n"
        "deferred = ['tomllib', 'http.cookies', 'calendar', 'gzip', 'bz2', 'lzma', 'idna',\n"
        "            'h2', 'h2.connection', 'h2.events', 'h2.exceptions', 'priority', 'logging.handlers']\n"
        "assert defer_daemon_modules() == deferred\n"
        "assert defer_daemon_modules() == []  # registered already: nothing done twice\n"
        "import gzip, bz2, lzma, calendar, tomllib, idna, http.cookies\n"
        "import h2, h2.connection, h2.events, h2.exceptions, priority  # as hypercorn.protocol.h2 does\n"
        "import logging.config  # as hypercorn.logging does: binds logging.handlers\n"
        f"assert not {_executed(repr('logging.handlers'))}\n"
        f"assert not {_executed(repr('gzip'))} and not {_executed(repr('tomllib'))}\n"
        "def checks():\n"
        "    assert gzip.decompress(gzip.compress(b'x' * 100)) == b'x' * 100\n"
        "    assert bz2.decompress(bz2.compress(b'y')) == b'y'\n"
        "    assert lzma.decompress(lzma.compress(b'z')) == b'z'\n"
        "    assert calendar.timegm((1970, 1, 2, 0, 0, 0)) == 86400\n"
        "    assert tomllib.loads('a = 1') == {'a': 1}\n"
        "    assert idna.encode('bücher.de') == b'xn--bcher-kva.de'\n"
        "    assert http.cookies.SimpleCookie('k=v')['k'].value == 'v'\n"
        "    # what H2Protocol does: a server connection, given a client's preface, acknowledges it\n"
        "    server = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))\n"
        "    client = h2.connection.H2Connection()\n"
        "    client.initiate_connection()\n"
        "    server.initiate_connection()\n"
        "    events = server.receive_data(client.data_to_send())\n"
        "    assert isinstance(events[0], h2.events.RemoteSettingsChanged), events\n"
        "    assert issubclass(h2.exceptions.ProtocolError, Exception)\n"
        "    assert priority.PriorityTree().insert_stream(1) is None\n"
        "    assert issubclass(logging.handlers.WatchedFileHandler, logging.StreamHandler)\n"
        "errors = []\n"
        "def run():\n"
        "    try:\n"
        "        checks()\n"
        "    except BaseException as exc:\n"
        "        errors.append(repr(exc))\n"
        "threads = [threading.Thread(target=run) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert errors == [], errors\n"
        "ns = {}\n"
        "exec('from tomllib import *', ns)\n"
        "assert ns['loads'] is tomllib.loads  # a star import runs the module too (__all__)\n"
        "assert register_unexecuted_module('html.parser') is True\n"
        "import html\n"
        "assert html.parser is sys.modules['html.parser']  # a submodule is set on its package\n"
        "assert html.parser.HTMLParser.__name__ == 'HTMLParser'\n"
        "assert register_unexecuted_module('gzip') is False\n"
    )
    assert {"tomllib._parser", "_bz2", "_lzma", "idna.core", "hpack.hpack", "priority.priority"} <= loaded
    assert "logging.handlers" in loaded


def test_parse_yaml_loads_pyyaml_on_first_use() -> None:
    loaded = modules_after(
        "import sys\n"
        "from p2porch.stack import parse_yaml\n"
        "assert 'yaml' not in sys.modules\n"
        "assert parse_yaml('a: 8080:80\\nb: yes\\n') == {'a': '8080:80', 'b': 'yes'}\n"
    )
    assert "yaml" in loaded


def registered_commands(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


@pytest.mark.parametrize("module_name", sorted(cli_main.COMMAND_MODULES))
def test_each_command_word_builds_the_parser_of_its_own_module(module_name: str) -> None:
    names = cli_main.COMMAND_MODULES[module_name]
    for name in names:
        assert registered_commands(cli_main.build_parser(name)) == list(names)


def test_the_full_parser_lists_every_command_of_the_table_in_order() -> None:
    table = [name for names in cli_main.COMMAND_MODULES.values() for name in names]
    assert registered_commands(cli_main.build_parser()) == table


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["daemon", "--data-dir", "/d"], "daemon"),
        (["--host", "unix:///x.sock", "daemon"], "daemon"),
        (["-H", "daemon", "node", "ls"], "node"),  # "daemon" is -H's value here
        (["--ho", "service", "node", "ls"], "node"),  # an abbreviated --host takes its value too
        (["--host=unix:///x.sock", "--json", "stack", "ls"], "stack"),
        (["--tls-ca", "ca.pem", "config", "ls"], "config"),
        (["--json"], None),
        (["-h"], None),
        (["no-such-command"], None),
    ],
)
def test_command_word(argv: list[str], word: str | None) -> None:
    assert cli_main.command_word(argv) == word


def test_an_unknown_command_is_refused_naming_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["no-such-command"])
    assert exited.value.code == 2
    assert "'metrics'" in capsys.readouterr().err


def test_a_scrape_loads_prometheus_client_on_first_use() -> None:
    loaded = modules_after(
        "import sys\n"
        "from p2porch.metrics import Metrics\n"
        "m = Metrics()\n"
        "m.api_requests.labels('/v1/x', 'GET', '200').inc()\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "assert b'p2porch_api_requests_total{' in m.render()\n"
    )
    assert "prometheus_client" in loaded


#: Never in a local command (``p2porch join``, ``status``, ... over the unix socket): httpx and what it
#: pulls in (httpcore imports trio when installed, httpx's own CLI imports rich, click and pygments;
#: h2 for HTTP/2), nor the config's dataclasses (~0.25 s of CPU per command in all, docs/performance.md).
NOT_IN_A_LOCAL_COMMAND = ("httpx", "httpcore", "trio", "rich", "click", "pygments", "h2", "p2porch.config")

#: Never in the command line's own start (``import p2porch.cli`` and any command's parser): the daemon
#: and its subsystems, and the libraries only they use.
NOT_IN_THE_CLI = (
    "p2porch.daemon",
    "p2porch.control",
    "p2porch.membership",
    "p2porch.leader",
    "p2porch.member",
    "p2porch.netoverlay",
    "p2porch.raft",
    "p2porch.gossip",
    "p2porch.dns",
    "p2porch.agent",
    "p2porch.engine",
    "p2porch.api.server",
    "trio",
    "pyroute2",
    "dnslib",
    "pysyncobj",
    "msgpack",
    "hypercorn",
    "yaml",
    "cryptography",
    "httpx",
)


CLI_WORDS = ["join", "init", "status", "daemon", "node", "service", "network", "sandbox"]


@pytest.mark.parametrize("word", CLI_WORDS)
def test_the_cli_and_a_commands_parser_load_no_daemon_package(word: str) -> None:
    loaded = modules_after(f"import p2porch.cli\np2porch.cli.build_parser({word!r})")
    assert "p2porch.cli.main" in loaded  # the check can fail
    assert sorted(m for m in loaded if any(m == x or m.startswith(f"{x}.") for x in NOT_IN_THE_CLI)) == []


def test_a_local_join_command_imports_no_http_library_and_no_trio() -> None:
    # what `p2porch join PEER` loads up to its request: the parser, the body, the client of the socket
    loaded = modules_after(
        "from p2porch.cli.main import build_parser, command_word\n"
        "argv = ['join', '10.0.0.1', '--token', 'P2PT-x']\n"
        "args = build_parser(command_word(argv)).parse_args(argv)\n"
        "from p2porch.cli.cluster import _cluster_body\n"
        "from p2porch.cli.util import local_client_for\n"
        "assert _cluster_body(args)['peer'] == '10.0.0.1'\n"
        "local_client_for(args)\n"
    )
    assert "p2porch.api.unix_http" in loaded  # the check can fail: the client was built
    assert sorted(m for m in NOT_IN_A_LOCAL_COMMAND if m in loaded) == []


def test_pyroute2s_traffic_control_kinds_run_only_when_a_tc_request_needs_them() -> None:
    # the overlay sends no tc request: tcmsg's sched_*/cls_* modules are registered unexecuted (issue 19);
    # IPBatch compiles a tc request of a kind all the same, running that kind's module then
    loaded = modules_after(
        "import sys\n"
        "from p2porch.netoverlay.netlink_classes import load_batch\n"
        "IPBatch, _ = load_batch()\n"
        "import p2porch.daemon\n"
        f"assert not {_executed(repr('pyroute2.netlink.rtnl.tcmsg.sched_htb'))}\n"
        f"assert not {_executed(repr('pyroute2.netlink.rtnl.tcmsg.cls_u32'))}\n"
        f"assert {_executed(repr('pyroute2.netlink.rtnl.tcmsg'))}  # its own classes are used\n"
        "batch = IPBatch()\n"
        "batch.tc('add', 'htb', index=1, handle='1:')\n"
        "batch.tc('add-filter', 'u32', index=1, parent='1:', prio=10, protocol=0x800, target='1:10',\n"
        "         keys=['0x0/0x0+0'])\n"
        "assert len(bytes(batch.batch)) == 164, len(bytes(batch.batch))\n"
        f"assert {_executed(repr('pyroute2.netlink.rtnl.tcmsg.sched_htb'))}\n"
        "from pyroute2.netlink.rtnl.tcmsg import plugins\n"
        "assert plugins['netem'].options.__name__ == 'options'  # any kind runs on its first name\n"
    )
    assert "pyroute2.netlink.rtnl.tcmsg.cls_u32" in loaded
