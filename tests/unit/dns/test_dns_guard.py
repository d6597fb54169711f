import dns.flags
import dns.message
import pytest

from p2porch.dns.guard import (
    ALLOW,
    DROP,
    SLIP,
    ClientPolicy,
    ResponseRateLimiter,
    source_key,
    truncated_reply,
)


def test_clients_are_loopback_given_networks_and_members():
    policy = ClientPolicy(["10.240.3.0/24", "10.240.0.0/16", ""], ["192.168.1.12"])
    assert policy.is_client("127.0.0.1") and policy.is_client("::1") and policy.is_client("::ffff:127.0.0.1")
    assert policy.is_client("10.240.3.7") and policy.is_client("10.240.99.1")
    assert policy.is_client("192.168.1.12") and not policy.is_client("192.168.1.13")
    assert not policy.is_client("8.8.8.8") and not policy.is_client("not an address")
    policy.set_members(["192.168.1.13", "bogus"])
    assert policy.is_client("192.168.1.13") and not policy.is_client("192.168.1.12")
    assert policy.is_client_prefix(source_key("10.240.3.7"))
    assert not policy.is_client_prefix(source_key("192.168.1.13"))  # a member, but not its whole /24
    assert not ClientPolicy(loopback=False).is_client("127.0.0.1")


def test_source_keys_are_the_slash_24_or_slash_56():
    assert source_key("10.1.2.3") == source_key("10.1.2.200") == bytes([10, 1, 2])
    assert source_key("::ffff:10.1.2.3") == bytes([10, 1, 2])
    assert (
        source_key("2001:db8:0:1::1") == source_key("2001:db8:0:1:ffff::9") != source_key("2001:db8:0:100::1")
    )


def test_rrl_token_bucket_with_slip_and_client_exemption():
    rrl = ResponseRateLimiter(ClientPolicy(["10.0.0.0/8"]), rate=2.0, burst=3, slip=2)
    stranger = source_key("192.0.2.1")
    verdicts = [rrl.check(stranger, 0.0) for _ in range(7)]
    assert verdicts == [ALLOW, ALLOW, ALLOW, DROP, SLIP, DROP, SLIP]
    assert rrl.check(stranger, 0.5) == ALLOW and rrl.check(stranger, 0.5) != ALLOW
    assert all(rrl.check(source_key("10.9.9.9"), 0.0) == ALLOW for _ in range(100))
    assert rrl.tracked() == 1  # clients never get a bucket
    with pytest.raises(ValueError):
        ResponseRateLimiter(ClientPolicy(), rate=0)


def test_truncated_reply_echoes_the_question_with_tc_and_no_records():
    query = dns.message.make_query("web.p2p", "A", use_edns=0)
    reply = dns.message.from_wire(truncated_reply(query.to_wire()))
    assert reply.id == query.id and reply.flags & dns.flags.TC and reply.flags & dns.flags.QR
    assert reply.question == query.question and not reply.answer and reply.edns < 0
    assert truncated_reply(b"\x00\x01") is None
    assert truncated_reply(dns.message.make_response(query).to_wire()) is None
    assert truncated_reply(query.to_wire()[:15]) is None  # cut inside the question
