"""Access tokens: format, digest-only storage, constant-time verification, roles."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError
from p2porch.vault.access import Role, new_token, parse_token, validate_token_name, verify_token


def test_a_new_token_verifies_and_only_its_digest_is_kept():
    token = new_token()
    assert token.text.startswith(f"p2pat_{token.token_id}_")
    assert len(token.digest) == 64 and token.text not in token.digest
    secret = token.text.removeprefix(f"p2pat_{token.token_id}_")  # the secret may hold "_" itself
    assert secret not in token.digest and token.text not in repr(token)
    assert verify_token(token.text, {token.token_id: token.digest}) == token.token_id
    assert verify_token(token.text + "\n", {token.token_id: token.digest}) == token.token_id


def test_wrong_revoked_and_malformed_tokens_do_not_verify():
    token, other = new_token(), new_token()
    digests = {token.token_id: token.digest}
    assert verify_token(other.text, digests) is None  # unknown id (e.g. revoked: removed from the map)
    other_secret = other.text.removeprefix(f"p2pat_{other.token_id}_")
    forged = f"p2pat_{token.token_id}_{other_secret}"  # right id, wrong secret
    assert verify_token(forged, digests) is None
    for bad in ("", "p2pat_", "Bearer x", token.text[:-1], token.text + "x", "p2pat_zz_" + "a" * 43):
        assert verify_token(bad, digests) is None
        assert parse_token(bad) is None
    assert verify_token(token.text, {}) is None


def test_roles_are_ordered_and_parsed_strictly():
    assert Role.READ < Role.OPERATE < Role.ADMIN
    assert Role.parse("operate") is Role.OPERATE and Role.parse("ADMIN") is Role.ADMIN
    for bad in ("root", "", None, 3):
        with pytest.raises(ConfigError):
            Role.parse(bad)


def test_token_names_are_checked():
    assert validate_token_name("ci-deploy.1") == "ci-deploy.1"
    for bad in ("", "-x", "a b", "x" * 65, None):
        with pytest.raises(ConfigError):
            validate_token_name(bad)
