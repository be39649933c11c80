"""API keys: named, stored only as SHA-256 hashes, compared in constant time.

A key is 32 random bytes (256 bits), so a plain SHA-256 is enough to store it: there is
nothing to brute-force that a slow password hash would protect. The name is the owner
of everything sent with the key (status records, MessageGroupIds, idempotency keys).
Several entries may share a name, so a key can be rotated without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from limbo_shared.config import ConfigError

from .settings import ApiSettings

__all__ = ["KEY_PREFIX", "ApiKeys", "StoredKey", "hash_key", "load_api_keys", "mint_key"]

KEY_PREFIX = "limbo_"
# The name becomes part of the SQS MessageGroupId (`<name>.<lane>`, ≤ 128 characters).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HASH_PATTERN = re.compile(r"^sha256:([0-9a-f]{64})$")


def mint_key() -> str:
    # The prefix lets secret scanners and people recognise a limbo key.
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class StoredKey:
    name: str
    digest: bytes


class ApiKeys:
    def __init__(self, keys: list[StoredKey]) -> None:
        if not keys:
            raise ValueError("no API keys")
        self._keys = tuple(keys)

    @property
    def names(self) -> list[str]:
        return sorted({key.name for key in self._keys})

    @classmethod
    def parse(cls, text: str, source: str) -> list[StoredKey]:
        """Entries ``name=sha256:<hex>``, one a line or comma-separated; ``#`` comments."""
        keys = []
        for number, line in enumerate(text.replace(",", "\n").splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            name, _, stored = entry.partition("=")
            name, stored = name.strip(), stored.strip()
            if not NAME_PATTERN.match(name):
                raise ValueError(
                    f"{source} entry {number}: the name must be 1-64 of A-Z a-z 0-9 _ -"
                )
            match = _HASH_PATTERN.match(stored)
            if match is None:
                # Never echo the value: it might be a key pasted in by mistake.
                raise ValueError(
                    f"{source} entry {number} ({name}): expected sha256:<64 hex digits>, "
                    "as printed by limbo-api-key"
                )
            keys.append(StoredKey(name, bytes.fromhex(match.group(1))))
        return keys

    def identify(self, presented: str) -> str | None:
        """The name of the key, or None. Every stored hash is compared, match or not,
        each in constant time, so the time taken says nothing about which keys exist."""
        digest = hashlib.sha256(presented.encode()).digest()
        found: str | None = None
        for key in self._keys:
            if hmac.compare_digest(key.digest, digest):
                found = key.name
        return found


def load_api_keys(settings: ApiSettings) -> ApiKeys | None:
    """The configured keys; None when AUTH=disabled. Raises ConfigError naming the variable."""
    if settings.auth == "disabled":
        return None
    keys: list[StoredKey] = []
    try:
        if settings.api_keys:
            keys += ApiKeys.parse(settings.api_keys, "API_KEYS")
        if settings.api_keys_file is not None:
            keys += ApiKeys.parse(_read(settings.api_keys_file), "API_KEYS_FILE")
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if not keys:
        raise ConfigError(
            "API_KEYS is not set: configure API_KEYS or API_KEYS_FILE (limbo-api-key mints a key), "
            "or set AUTH=disabled to run the API open"
        )
    return ApiKeys(keys)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise ValueError(f"API_KEYS_FILE cannot be read: {error.strerror}: {path}") from None
