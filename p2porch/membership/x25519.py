"""X25519 key pairs without cryptography's OpenSSL backend module (pure; the library's own Rust binding).

cryptography's ``X25519PrivateKey.generate`` and ``from_private_bytes`` and
``X25519PublicKey.from_public_bytes`` first import ``cryptography.hazmat.backends.openssl.backend``
only to ask whether X25519 is available (not in FIPS mode); that module imports RSA, EC, padding and
the OID tables: ~0.7 MB of every daemon's RSS for a yes (issue 19, twenty-second round). These
functions ask the same question of the same binding (``is_fips_enabled``) and call the same Rust
functions the classmethods call, so the keys are the same objects (instances of the public classes)
and a FIPS build still gets ``UnsupportedAlgorithm``. When a cryptography release moves them, the
public classmethods are used (at the old cost). Owns no key.
"""

from __future__ import annotations

from types import ModuleType
from typing import cast

from cryptography.exceptions import UnsupportedAlgorithm, _Reasons
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

__all__ = ["generate_private", "private_from_bytes", "public_from_bytes"]


def _binding() -> ModuleType | None:
    """cryptography's Rust ``openssl`` binding when it has what the classmethods call, else None."""
    try:
        from cryptography.hazmat.bindings._rust import openssl
    except ImportError:
        return None
    if not hasattr(openssl, "is_fips_enabled") or not hasattr(openssl, "x25519"):
        return None
    return cast(ModuleType, openssl)


_OPENSSL = _binding()


def _x25519(openssl: ModuleType) -> ModuleType:
    if openssl.is_fips_enabled():  # what the backend's x25519_supported() answers
        raise UnsupportedAlgorithm(
            "X25519 is not supported by this version of OpenSSL.",
            _Reasons.UNSUPPORTED_EXCHANGE_ALGORITHM,
        )
    return cast(ModuleType, openssl.x25519)


def generate_private() -> X25519PrivateKey:
    """A new private key (``X25519PrivateKey.generate()``)."""
    if _OPENSSL is None:
        return X25519PrivateKey.generate()
    return cast(X25519PrivateKey, _x25519(_OPENSSL).generate_key())


def private_from_bytes(data: bytes) -> X25519PrivateKey:
    """``X25519PrivateKey.from_private_bytes(data)``."""
    if _OPENSSL is None:
        return X25519PrivateKey.from_private_bytes(data)
    return cast(X25519PrivateKey, _x25519(_OPENSSL).from_private_bytes(data))


def public_from_bytes(data: bytes) -> X25519PublicKey:
    """``X25519PublicKey.from_public_bytes(data)``."""
    if _OPENSSL is None:
        return X25519PublicKey.from_public_bytes(data)
    return cast(X25519PublicKey, _x25519(_OPENSSL).from_public_bytes(data))
