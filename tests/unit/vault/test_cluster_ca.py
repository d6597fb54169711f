"""The remote API's cluster CA: derived per key epoch, deterministic, issues server certificates that
verify only for their addresses and only against the CA of their epoch."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from cryptography import x509

from p2porch.errors import ConfigError
from p2porch.membership.keys import new_cluster_keys
from p2porch.vault.cluster_ca import (
    CA_SEED_BYTES,
    cluster_ca,
    issue_server_certificate,
    verify_server_certificate,
)

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def ca_for(keys):
    return cluster_ca(keys.cluster_id, keys.epoch, keys.derive("api-ca", CA_SEED_BYTES))


def test_every_member_derives_the_same_ca_certificate_from_the_epoch_key():
    keys = new_cluster_keys("0123456789abcdef", epoch=3)
    one, two = ca_for(keys), ca_for(keys)
    assert one.pem == two.pem  # deterministic: same key, same serial, RFC 6979 signature
    assert one.fingerprint.startswith("sha256:") and len(one.fingerprint) == 7 + 64
    cert = x509.load_pem_x509_certificate(one.pem.encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert "epoch 3" in cert.subject.rfc4514_string()
    assert "ClusterCA" in repr(one) and "PRIVATE" not in repr(one)


def test_a_new_key_epoch_is_a_new_ca():
    old = new_cluster_keys("0123456789abcdef", epoch=0)
    new = new_cluster_keys("0123456789abcdef", epoch=1)
    assert ca_for(old).pem != ca_for(new).pem


def test_server_certificate_verifies_for_its_addresses_only_and_against_its_ca_only():
    keys = new_cluster_keys("0123456789abcdef")
    ca = ca_for(keys)
    issued = issue_server_certificate(ca, "n1", ["10.51.0.1", "10.51.0.1", "api.example"], NOW)
    verify_server_certificate(ca.pem, issued.cert_pem, "10.51.0.1", NOW)
    verify_server_certificate(ca.pem, issued.cert_pem, "api.example", NOW)
    with pytest.raises(ConfigError, match="subjectAltName"):
        verify_server_certificate(ca.pem, issued.cert_pem, "10.51.0.2", NOW)
    rotated = ca_for(new_cluster_keys("0123456789abcdef", epoch=1))
    with pytest.raises(ConfigError, match="does not verify"):
        verify_server_certificate(rotated.pem, issued.cert_pem, "10.51.0.1", NOW)
    with pytest.raises(ConfigError, match="does not verify"):
        verify_server_certificate(ca.pem, issued.cert_pem, "10.51.0.1", NOW + dt.timedelta(days=91))
    assert "PRIVATE KEY" not in repr(issued)


def test_each_issue_has_a_fresh_key_and_serial():
    ca = cluster_ca("0123456789abcdef", 0, os.urandom(CA_SEED_BYTES))
    a = issue_server_certificate(ca, "n1", ["10.0.0.1"], NOW)
    b = issue_server_certificate(ca, "n1", ["10.0.0.1"], NOW)
    assert a.serial != b.serial and a.key_pem != b.key_pem


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError):
        cluster_ca("0123456789abcdef", 0, b"short")
    ca = cluster_ca("0123456789abcdef", 0, os.urandom(CA_SEED_BYTES))
    with pytest.raises(ConfigError):
        issue_server_certificate(ca, "n1", ["", ""], NOW)
