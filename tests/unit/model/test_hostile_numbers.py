"""Numbers no parser may turn into a crash (h46 pass): digits ``int`` refuses (``²`` passes
``str.isdigit``), numbers past an int64 (a Raft entry cannot encode them, Docker refuses them) and past
4300 digits (``int``/``str`` refuse them), exponents that overflow a float or the decimal context. Each is
the field's ConfigError, or a template's ParseError, never ValueError/OverflowError/decimal.Overflow."""

from __future__ import annotations

import pytest

from p2porch.config import load_config
from p2porch.errors import ConfigError
from p2porch.gossip.config import parse_addr
from p2porch.membership.join_service import split_target
from p2porch.membership.peer import split_peer
from p2porch.model.container_opts import parse_size
from p2porch.model.filerefs import parse_file_ref
from p2porch.model.gotemplate import ParseError, parse, render
from p2porch.model.units import MAX_INT64, parse_cpu_nanos, parse_memory_bytes
from p2porch.raft.store_config import split_addr

HUGE = "9" * 5000


@pytest.mark.parametrize("value", ["1e99999999", HUGE, "1e30", 10**30])
def test_cpus_past_the_bound(value):
    with pytest.raises(ConfigError, match="at most 1000000 CPUs") as info:
        parse_cpu_nanos(value, fieldname="limit_cpu")
    assert info.value.field == "limit_cpu"


@pytest.mark.parametrize("value", [HUGE, "9" * 30, "9999999999G", 2**63, 10**30])
def test_sizes_past_an_int64(value):
    with pytest.raises(ConfigError, match="at most") as info:
        parse_memory_bytes(value, fieldname="limit_memory")
    assert info.value.field == "limit_memory"
    assert parse_memory_bytes(MAX_INT64) == MAX_INT64


@pytest.mark.parametrize("value", ["9" * 400, "9" * 30, 2**63])
def test_container_sizes_past_an_int64(value):
    with pytest.raises(ConfigError, match="shm_size"):
        parse_size(value, "shm_size")


@pytest.mark.parametrize("field", ["uid", "gid"])
@pytest.mark.parametrize("value", ["²", "4294967296", HUGE])
def test_file_owner_ids_are_ascii_32_bit(field, value):
    """The node's ``fchown(int(uid))`` would raise on each of them, on the node, at task start."""
    with pytest.raises(ConfigError, match=f"secrets\\[0\\].{field}"):
        parse_file_ref({"source": "s", field: value}, kind="secret", fieldname="secrets[0]")


def test_file_ref_version_digits_int_refuses():
    with pytest.raises(ConfigError, match="version"):
        parse_file_ref({"source": "s", "version": "²"}, kind="secret", fieldname="secrets[0]")


@pytest.mark.parametrize(
    "text",
    ["{{ 0x" + "f" * 5000 + " }}", "{{ 0b1" + "0" * 5000 + " }}", "{{ 18446744073709551616 }}",
     "{{ -9223372036854775809 }}", "{{ 1e999 }}", "{{ 1" + "0" * 400 + ".5 }}"],
)  # fmt: skip
def test_template_number_constants_as_gos_parser_takes_them(text):
    """Go refuses integer constants past 64 bits and out-of-range floats; here a hex constant of 5000
    digits parsed, then printing it raised ValueError (str() refuses past 4300 digits)."""
    with pytest.raises(ParseError, match="malformed number syntax"):
        parse(text)


def test_template_constants_at_the_64_bit_edges_still_print():
    assert render("{{ 18446744073709551615 }} {{ -9223372036854775808 }} {{ 0x10 }} {{ 1e308 }}", None) == (
        "18446744073709551615 -9223372036854775808 16 1e+308"
    )


@pytest.mark.parametrize("port", ["²", "٣", HUGE])
def test_addresses_with_ports_int_refuses(port):
    with pytest.raises(ConfigError, match="PEER"):
        split_peer(f"10.0.0.1:{port}", 7948)
    with pytest.raises(ConfigError, match="expected ip:port"):
        split_addr(f"10.0.0.1:{port}", "raft.addr")
    with pytest.raises(ConfigError, match="gossip address"):
        parse_addr(f"10.0.0.1:{port}")
    with pytest.raises(ConfigError, match="api.addr"):
        load_config(overrides={"api.addr": f"10.0.0.1:{port}"})
    assert split_target(f"10.0.0.1:{port}", 7948) == (f"10.0.0.1:{port}", 7948)
