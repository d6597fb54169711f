"""Join tokens and the join handshake (pure)."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2porch.errors import AuthError
from p2porch.membership.handshake import JoinerHandshake, MemberHandshake
from p2porch.membership.token import JoinToken, new_token, parse_token


def test_token_round_trip_and_secret_is_hidden():
    token = new_token()
    assert parse_token(str(token)) == token
    assert str(token).startswith(f"P2PT-1-{token.cluster_id}-")
    # the whole encoded secret (it may itself hold '-': urlsafe base64), not its last '-' piece
    encoded = str(token).removeprefix(f"P2PT-1-{token.cluster_id}-")
    assert "secret=<hidden>" in repr(token) and encoded not in repr(token)


def test_derived_keys_differ_per_purpose_and_cluster():
    token = new_token()
    keys = {token.gossip_key, token.join_key, token.derive("raft")}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
    same_secret_other_cluster = JoinToken(cluster_id="0" * 16, secret=token.secret)
    assert same_secret_other_cluster.gossip_key != token.gossip_key
    assert parse_token(str(token)).raft_password() == token.raft_password()
    assert token.raft_password(1) != token.raft_password(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must start with 'P2PT-'"),
        ("SWMTKN-1-abc", "must start with 'P2PT-'"),
        ("P2PT-1-xyz-abc", "expected P2PT-1-"),
        ("P2PT-2-0123456789abcdef-" + "A" * 43, "version 2 is not supported"),
        ("P2PT-1-0123456789ABCDEF-" + "A" * 43, "expected P2PT-1-"),
    ],
)
def test_malformed_tokens_are_refused_clearly(text, message):
    with pytest.raises(AuthError, match=message) as info:
        parse_token(text)
    assert info.value.field == "--token"


def run_handshake(joiner_token: JoinToken, member_token: JoinToken, request: dict):
    joiner = JoinerHandshake(joiner_token, os.urandom(32), os.urandom(12))
    member = MemberHandshake(member_token, os.urandom(32), os.urandom(12))
    challenge = member.on_hello(joiner.hello())
    sealed_request = joiner.on_challenge(challenge, request)
    received = member.on_request(sealed_request)
    reply = joiner.open_reply(member.seal_reply({"echo": received}))
    return received, reply


def test_handshake_with_the_right_token_exchanges_request_and_reply():
    token = new_token()
    received, reply = run_handshake(token, token, {"name": "n2"})
    assert received == {"name": "n2"}
    assert reply == {"echo": {"name": "n2"}}


def test_wrong_secret_is_detected_by_the_joiner_before_it_sends_anything():
    token = new_token()
    wrong = JoinToken(cluster_id=token.cluster_id, secret=os.urandom(32))
    with pytest.raises(AuthError, match="wrong join token") as info:
        run_handshake(wrong, token, {"name": "n2"})
    # an old token after `token --rotate` fails the same way: the message says so, and what to do
    assert "token --rotate" in info.value.message and "`p2porch token` on a member" in info.value.message


def test_member_refuses_a_joiner_that_cannot_prove_the_token():
    token = new_token()
    member = MemberHandshake(token, os.urandom(32), os.urandom(12))
    challenge = member.on_hello({"cluster_id": token.cluster_id, "nonce_j": os.urandom(32)})
    assert "proof_s" in challenge
    with pytest.raises(AuthError, match="wrong join token"):
        member.on_request({"proof_j": os.urandom(32), "sealed": os.urandom(64)})


def test_other_cluster_is_named():
    member = MemberHandshake(new_token(), os.urandom(32), os.urandom(12))
    with pytest.raises(AuthError, match="belongs to cluster"):
        member.on_hello({"cluster_id": "f" * 16, "nonce_j": os.urandom(32)})


def test_tampered_request_is_refused():
    token = new_token()
    joiner = JoinerHandshake(token, os.urandom(32), os.urandom(12))
    member = MemberHandshake(token, os.urandom(32), os.urandom(12))
    message = joiner.on_challenge(member.on_hello(joiner.hello()), {"name": "n2"})
    tampered = {**message, "sealed": message["sealed"][:-1] + bytes([message["sealed"][-1] ^ 1])}
    with pytest.raises(AuthError, match="failed authentication"):
        member.on_request(tampered)


@given(st.one_of(st.none(), st.integers(), st.binary(), st.dictionaries(st.text(), st.binary() | st.text())))
def test_garbage_messages_raise_only_auth_errors(message):
    token = new_token()
    member = MemberHandshake(token, os.urandom(32), os.urandom(12))
    with pytest.raises(AuthError):
        member.on_hello(message)
    joiner = JoinerHandshake(token, os.urandom(32), os.urandom(12))
    with pytest.raises(AuthError):
        joiner.on_challenge(message, {})


def test_member_sessions_are_keyed_with_the_cluster_keys_of_one_epoch():
    from p2porch.membership.handshake import hello_epoch
    from p2porch.membership.keys import new_cluster_keys

    keys = new_cluster_keys("ab" * 8, epoch=3)
    joiner = JoinerHandshake(keys, os.urandom(32), os.urandom(12), member=True)
    hello = joiner.hello()
    assert hello_epoch(hello) == 3 and hello["as"] == "member"
    member = MemberHandshake(keys, os.urandom(32), os.urandom(12))
    sealed = joiner.on_challenge(member.on_hello(hello), {"op": "membership"})
    assert member.on_request(sealed) == {"op": "membership"}
    # a peer still on the previous epoch's key cannot run the handshake
    old = new_cluster_keys("ab" * 8, epoch=2)
    stale = JoinerHandshake(old, os.urandom(32), os.urandom(12), member=True)
    with pytest.raises(AuthError):
        stale.on_challenge(MemberHandshake(keys, os.urandom(32), os.urandom(12)).on_hello(stale.hello()), {})
    assert hello_epoch({"epoch": True}) == -1 and hello_epoch({}) == 0
