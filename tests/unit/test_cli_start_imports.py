"""``p2porch join`` and ``init`` start light (issue 19, "The thirty-second round: the `p2porch join` CLI's
start"): the real entry point, in a child process, sends its request to a unix socket that answers with
an error; by then neither the Go template engine, the model, the Docker paths nor the nouns' refusals
are loaded, and OpenSSL (``ssl``, which ``http.client`` imports) is registered but never run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from p2porch.testing.fake_api import serve_unix_api

#: modules a join or an init never uses: loaded only by --format, --filter, `status` or a noun's command
HEAVY = (
    "p2porch.model",
    "p2porch.model.gotemplate",
    "p2porch.cli.goformat",
    "p2porch.cli.docker_paths",
    "p2porch.cli.service_rows",
    "p2porch.cli.refusals",
    "_ssl",
    "_bz2",
    "_lzma",
)
ERROR = {"error": "P2POrchError", "message": "refused by the test"}


@pytest.mark.parametrize("words", [["join", "10.0.0.1", "--token", "P2PT-x"], ["init"]])
def test_join_and_init_send_their_request_without_the_heavy_modules(tmp_path: Path, words: list[str]) -> None:
    sock = tmp_path / "api.sock"
    seen = serve_unix_api(str(sock), lambda method, path: (400, ERROR))  # answers an error at once
    code = (
        "import json, sys\n"
        "from p2porch.cli.main import main\n"
        f"rc = main(['-H', 'unix://{sock}', *{words!r}])\n"
        "print(json.dumps({'rc': rc, 'modules': sorted(sys.modules)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rc"] == 1 and "refused by the test" in done.stderr  # the request was answered
    assert seen == [("POST", f"/v1/cluster/{words[0]}")]
    loaded = set(result["modules"])
    assert "p2porch.cli.cluster" in loaded and "http.client" in loaded  # the check can fail
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_ssl_registered_by_the_cli_runs_on_first_use() -> None:
    # a tcp:// host's client (httpx) and anything else asking ssl for a name get the real module
    code = (
        "import sys\n"
        "from p2porch.lazyimport import defer_cli_modules\n"
        "assert 'ssl' in defer_cli_modules() and '_ssl' not in sys.modules\n"
        "import http.client, ssl\n"
        "assert '_ssl' not in sys.modules and hasattr(http.client, 'HTTPSConnection')\n"
        "context = ssl.create_default_context()\n"
        "assert isinstance(context, ssl.SSLContext) and '_ssl' in sys.modules\n"
        "assert ssl is sys.modules['ssl']\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
