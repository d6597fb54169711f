"""The spec's ``autoscale`` section and its CLI: validation names the field, round trip, exit 2."""

import pytest

from p2porch.cli import main
from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec


def spec(autoscale, mode="replicated"):
    return ServiceSpec.from_dict({"name": "web", "image": "img", "mode": mode, "autoscale": autoscale})


def test_compose_and_cli_spellings_round_trip():
    s = spec({"min": 1, "max": 4, "cpu-percent": 50, "memory_percent": 80, "scale-down-delay": "30s"})
    assert s.autoscale is not None
    assert (s.autoscale.min_replicas, s.autoscale.max_replicas, s.autoscale.scale_down_delay_s) == (
        1,
        4,
        30.0,
    )
    assert ServiceSpec.from_dict(s.to_dict()) == s
    assert spec(None).autoscale is None and spec({"off": True}).autoscale is None


def test_autoscale_does_not_change_the_task_template():
    assert spec({"min": 1, "max": 4, "cpu_percent": 50}).template_hash() == spec(None).template_hash()


@pytest.mark.parametrize(
    ("autoscale", "field"),
    [
        ({"min": 5, "max": 2, "cpu_percent": 50}, "autoscale.min"),
        ({"min": 1, "max": 2, "cpu_percent": 0}, "autoscale.cpu_percent"),
        ({"min": 1, "max": 2, "memory_percent": 101}, "autoscale.memory_percent"),
        ({"min": 1, "max": 2}, "autoscale.cpu_percent"),
        ({"max": 2, "cpu_percent": 50}, "autoscale.min"),
        ({"min": 1, "max": 2, "cpu_percent": 50, "bogus": 1}, "autoscale.bogus"),
        ({"min": -1, "max": 2, "cpu_percent": 50}, "autoscale.min"),
        ("on", "autoscale"),
    ],
)
def test_bad_autoscale_names_the_field(autoscale, field):
    with pytest.raises(ConfigError) as info:
        spec(autoscale)
    assert info.value.field == field


def test_a_global_service_cannot_autoscale():
    with pytest.raises(ConfigError) as info:
        spec({"min": 1, "max": 2, "cpu_percent": 50}, mode="global")
    assert info.value.field == "autoscale" and "global" in str(info.value)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["service", "autoscale", "web", "--min", "5", "--max", "2", "--cpu-percent", "50"], "--min"),
        (
            ["service", "autoscale", "web", "--min", "1", "--max", "2", "--cpu-percent", "500"],
            "--cpu-percent",
        ),
        (["service", "autoscale", "web", "--off", "--max", "2"], "--off"),
        (["service", "autoscale", "web"], "--min"),
        (
            [
                "service",
                "create",
                "--name",
                "w",
                "--autoscale-min",
                "3",
                "--autoscale-max",
                "1",
                "--cpu-percent",
                "9",
                "i",
            ],
            "--autoscale-min",
        ),
        (
            [
                "service",
                "create",
                "--name",
                "w",
                "--mode",
                "global",
                "--autoscale-min",
                "1",
                "--autoscale-max",
                "2",
                "--cpu-percent",
                "50",
                "i",
            ],
            "global",
        ),
    ],
)
def test_bad_autoscale_flags_exit_2_before_contacting_a_daemon(capsys, argv, flag):
    code = main(["--host", "unix:///nonexistent/p2porch.sock", *argv])
    assert code == 2
    assert flag in capsys.readouterr().err


def test_compose_x_p2porch_autoscale_maps_to_the_spec_and_errors_name_the_compose_path():
    from p2porch.stack import load_stack

    text = (
        "services:\n  web:\n    image: img\n    x-p2porch-autoscale:\n"
        "      min: 1\n      max: 5\n      cpu_percent: 50\n      scale_down_delay: 1m\n"
    )
    (web,) = load_stack("shop", text, lambda p: "", base_dir="/srv").services
    assert web.spec["autoscale"]["max_replicas"] == 5 and web.spec["autoscale"]["scale_down_delay_s"] == 60.0
    with pytest.raises(ConfigError) as info:
        load_stack("shop", text.replace("min: 1", "min: 9"), lambda p: "", base_dir="/srv")
    assert "services.web.x-p2porch-autoscale.min" in str(info.value)
