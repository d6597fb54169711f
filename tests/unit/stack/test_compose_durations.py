"""Compose durations as compose-go reads them: a string in Go's grammar plus days and weeks (str2duration
v2), a lone ``0`` included; a YAML number is refused as compose-go's schema refuses it (``type: string``),
a bare-number string (what ``${DELAY:-10}`` gives) in Go's words."""

from __future__ import annotations

import pytest

from .compose_text import load, refusal, spec_of

FILE = """
services:
  web:
    image: nginx
    stop_grace_period: {grace}
    healthcheck:
      test: ["CMD", "true"]
      interval: {interval}
    deploy:
      update_config:
        delay: {delay}
      restart_policy:
        window: {window}
"""


def text(**values: str) -> str:
    return FILE.format(**{"grace": "10s", "interval": "30s", "delay": "0s", "window": "2m", **values})


def test_go_durations_and_days_and_weeks_are_read():
    spec = spec_of(load(text(grace="1m30s", interval=".5s", delay="1d", window="1w")), "web")
    assert spec["stop_grace_period_s"] == 90.0
    assert spec["health"]["interval_s"] == 0.5
    assert spec["update"]["delay_s"] == 86400.0
    assert spec["restart"]["window_s"] == 7 * 86400.0
    assert spec_of(load(text(delay="'0'")), "web")["update"]["delay_s"] == 0.0  # a lone 0 needs no unit


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("grace", "services.web.stop_grace_period"),
        ("interval", "services.web.healthcheck.interval"),
        ("delay", "services.web.deploy.update_config.delay"),
        ("window", "services.web.deploy.restart_policy.window"),
    ],
)
def test_a_yaml_number_is_refused_as_compose_go_s_schema_does(key, path):
    assert refusal(text(**{key: "10"})).startswith(f"{path}: must be a string: a duration with a unit")
    assert "'10s'" in refusal(text(**{key: "10"}))
    assert refusal(text(**{key: "0"})).startswith(f"{path}: must be a string")  # 0 too: not a string


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("'10'", 'time: missing unit in duration "10"'),
        ("${DELAY:-10}", 'time: missing unit in duration "10"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("soon", 'time: invalid duration "soon"'),
    ],
)
def test_a_string_go_does_not_read_is_refused_in_its_words(value, words):
    message = refusal(text(delay=value))
    assert message.startswith(f"services.web.deploy.update_config.delay: {words}"), message


def test_an_interpolated_duration_with_its_unit_is_read():
    spec = spec_of(load(text(delay="${DELAY:-10}s")), "web")
    assert spec["update"]["delay_s"] == 10.0
