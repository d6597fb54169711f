"""Secrets and configs: names, size limits and the sealing of values (pure leaf).

Owns the rules a secret or config must satisfy (``validate``) and its authenticated encryption
(``crypto``): a value is sealed with AES-256-GCM under a key derived from the cluster's secret key, the
object's id and its version, so the replicated state only ever holds ciphertext. It never does I/O and
never logs a value.
"""

from .crypto import SealedValue, digest_of, open_value, seal_value
from .validate import KINDS, MAX_VALUE_BYTES, validate_name, validate_value

__all__ = [
    "KINDS",
    "MAX_VALUE_BYTES",
    "SealedValue",
    "digest_of",
    "open_value",
    "seal_value",
    "validate_name",
    "validate_value",
]
