"""The cluster CA of the remote API: its key, its certificate and the server certificates it issues (pure).

The CA key of a key epoch is *derived* (an ECDSA P-256 scalar from 48 bytes of HKDF output of that
epoch's cluster key, so nothing is stored and every member computes the same CA), and its certificate
is built deterministically (fixed serial, validity and RFC 6979 signature): every member prints the
same PEM. A new key epoch (``cluster rotate-keys``, ``node rm``) is a new CA, so the certificates of a
removed node stop verifying for clients that hold the current CA. Never does I/O; ``now`` is passed in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ConfigError

CA_SEED_BYTES = 48  # > 256 bits reduced modulo the P-256 order: negligible bias
CA_NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
CA_NOT_AFTER = dt.datetime(2124, 1, 1, tzinfo=dt.UTC)
SERVER_CERT_DAYS = 90  # reissued long before: at every daemon start and key epoch
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


@dataclass(frozen=True)
class ClusterCA:
    """The CA of one key epoch: its private key (never in a repr) and its certificate."""

    cluster_id: str
    epoch: int
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the certificate's DER form."""
        return "sha256:" + self.certificate.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate and its fresh private key, both PEM; the key never shows in a repr."""

    cert_pem: str
    key_pem: str = field(repr=False)
    serial: int = 0
    not_after: float = 0.0


def cluster_ca(cluster_id: str, epoch: int, seed: bytes) -> ClusterCA:
    """The CA of ``epoch`` from ``seed`` (``ClusterKeys.derive("api-ca", 48)`` of that epoch)."""
    if len(seed) < CA_SEED_BYTES:
        raise ConfigError("the API CA seed must be at least 48 bytes", field="seed")
    scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "p2porch"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"p2porch cluster {cluster_id} CA epoch {epoch}"),
        ]
    )
    public = key.public_key()
    serial = int.from_bytes(hashlib.sha256(f"{cluster_id}/{epoch}".encode()).digest()[:16], "big") >> 1
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial or 1)
        .not_valid_before(CA_NOT_BEFORE)
        .not_valid_after(CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return ClusterCA(cluster_id, epoch, key, certificate)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_server_certificate(
    ca: ClusterCA, node_name: str, hosts: list[str], now: dt.datetime
) -> ServerCertificate:
    """A server certificate for ``hosts`` (IP addresses or DNS names, the SANs) with a fresh key."""
    names = list(dict.fromkeys(h for h in hosts if h))
    if not names:
        raise ConfigError("a server certificate needs at least one address or name", field="api.addr")
    key = ec.generate_private_key(ec.SECP256R1())
    serial = secrets.randbits(127) | 1
    not_after = now + dt.timedelta(days=SERVER_CERT_DAYS)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"p2porch node {node_name}")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return ServerCertificate(
        certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem,
        serial,
        not_after.timestamp(),
    )


def verify_server_certificate(ca_pem: str, cert_pem: str, host: str, now: dt.datetime) -> None:
    """Check ``cert_pem`` chains to ``ca_pem`` and is valid for ``host`` at ``now`` (raises ConfigError).

    The same check a TLS client makes (cryptography's RFC 5280 path validation)."""
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    leaf = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        subject: x509.verification.Subject
        try:
            subject = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            subject = x509.DNSName(host)
        verifier = PolicyBuilder().store(Store([ca])).time(now).build_server_verifier(subject)
        verifier.verify(leaf, [])
    except VerificationError as exc:
        raise ConfigError(f"certificate does not verify for {host}: {exc}", field="certificate") from exc
