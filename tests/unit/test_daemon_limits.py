import resource
import subprocess
import sys

CHILD = """
import resource
from p2porch.daemon import raise_open_file_limit
before, after = raise_open_file_limit()
print(before, after, *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def _lower_soft_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def test_the_daemon_raises_its_open_file_soft_limit_to_the_hard_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        preexec_fn=_lower_soft_limit,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    before, after, soft_now, hard_now = (int(v) for v in out)
    assert before == 256
    assert after == soft_now == hard_now == hard
