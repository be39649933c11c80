"""API keys: named, stored only as SHA-256 hashes, compared in constant time.

A key is 32 random bytes (256 bits), so a plain SHA-256 is enough to store it: there is
nothing to brute-force that a slow password hash would protect. The name is the owner
of everything sent with the key (status records, MessageGroupIds, idempotency keys).
Several entries may share a name, so a key can be rotated without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from limbo_shared.config import ConfigError
from limbo_shared.logs import get_logger

from .settings import ApiSettings

__all__ = [
    "KEY_PREFIX",
    "ApiKeys",
    "ReloadingApiKeys",
    "StoredKey",
    "hash_key",
    "load_api_keys",
    "mint_key",
]

log = get_logger("limbo.api")
# How often, at most, a request looks at API_KEYS_FILE (one stat call).
RELOAD_CHECK_SECONDS = 1.0
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


class ReloadingApiKeys(ApiKeys):
    """API_KEYS plus API_KEYS_FILE, the file read again when it changes, so a key is
    revoked or added without a restart.

    At most once a second, a request stats the file (following symlinks: a mounted
    Kubernetes Secret changes by swapping one); a new inode, size or mtime means a
    re-read. A file that cannot be read or parsed leaves the keys as they were, with
    one warning; a file with no entries revokes all of its keys.
    """

    def __init__(self, fixed: list[StoredKey], path: Path) -> None:
        self._fixed = fixed
        self._path = path
        self._seen = self._stat()
        self._checked_at = time.monotonic()
        super().__init__(fixed + ApiKeys.parse(_read(path), "API_KEYS_FILE"))

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self._path)
        except OSError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def identify(self, presented: str) -> str | None:
        now = time.monotonic()
        if now - self._checked_at >= RELOAD_CHECK_SECONDS:
            self._checked_at = now
            self._reload_if_changed()
        return super().identify(presented)

    def _reload_if_changed(self) -> None:
        seen = self._stat()
        if seen == self._seen:
            return
        self._seen = seen
        try:
            keys = self._fixed + ApiKeys.parse(_read(self._path), "API_KEYS_FILE")
        except ValueError as error:
            log.warning("API_KEYS_FILE not reloaded; the previous keys stay", error=str(error))
            return
        self._keys = tuple(keys)
        log.info("API keys reloaded", names=self.names)


def load_api_keys(settings: ApiSettings) -> ApiKeys | None:
    """The configured keys; None when AUTH=disabled. Raises ConfigError naming the variable."""
    if settings.auth == "disabled":
        return None
    fixed: list[StoredKey] = []
    try:
        if settings.api_keys:
            fixed += ApiKeys.parse(settings.api_keys, "API_KEYS")
        keys = (
            ReloadingApiKeys(fixed, settings.api_keys_file)
            if settings.api_keys_file is not None
            else ApiKeys(fixed)
            if fixed
            else None
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if keys is None or not keys.names:
        raise ConfigError(
            "API_KEYS is not set: configure API_KEYS or API_KEYS_FILE (limbo-api-key mints a key), "
            "or set AUTH=disabled to run the API open"
        )
    return keys


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise ValueError(f"API_KEYS_FILE cannot be read: {error.strerror}: {path}") from None
