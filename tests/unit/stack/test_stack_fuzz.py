"""Fuzzing the Compose loader: whatever the input, the only exception is ConfigError (no traceback)."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2porch.errors import ConfigError
from p2porch.stack import keys, load_stack, parse_dotenv, substitute

KEYS = sorted(
    {*keys.SERVICE_MAPPED, *keys.SERVICE_IGNORED, *keys.DEPLOY_MAPPED, *keys.PORT_KEYS, *keys.HEALTH_KEYS,
     *keys.VOLUME_MOUNT_KEYS, *keys.TOP_MAPPED, *keys.PLACEMENT_KEYS, *keys.RESOURCES_KEYS, "limits",
     "cpus", "memory", "condition", "source", "target", "file", "external", "driver", "options", "x-a"}
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["80:80", "127.0.0.1:80:80/udp", "8000-8010:80", "${A:-b}", "${A:?}", "$$", "/x:/y:ro",
                     "node.role==manager", "1g", "5s", "CMD", "web", "a=b", "~/x", "./x"]),
    st.text(max_size=12),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=5),
    ),
    max_leaves=40,
)


def _load(text: str) -> None:
    try:
        load_stack("s", text, lambda path: "A=1\n", base_dir="/p", environ={"A": "1"})
    except ConfigError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(["web", "db", "Bad_1", "x"]), st.integers(0, 3)), VALUES, max_size=3
    ),
    VALUES,
)
def test_random_services_only_raise_config_error(services, top):
    doc = {"services": services, "volumes": top if isinstance(top, dict) else None}
    _load(yaml.safe_dump(doc))


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_random_text_only_raises_config_error(text):
    _load(text)
    try:
        parse_dotenv(text, "f.env", {"A": "1"})
    except ConfigError:
        pass
    try:
        substitute(text, {"A": "1"}, "f")
    except ConfigError:
        pass


VALID = """services:
  web:
    image: nginx:${TAG:-1}
    ports: ["127.0.0.1:80:80"]
    volumes: [data:/d, ./x:/x:ro]
    depends_on: {db: {condition: service_healthy}}
    deploy: {replicas: 2, placement: {constraints: [node.role==manager]}}
  db:
    image: postgres
    healthcheck: {test: [CMD, pg_isready], interval: 5s}
volumes:
  data: {}
"""


@settings(max_examples=400, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(VALID)), st.text(max_size=8), st.integers(min_value=0, max_value=6)
)
def test_mutated_valid_files_only_raise_config_error(position, insert, delete):
    _load(VALID[:position] + insert + VALID[position + delete :])
