"""AWS Signature Version 4 for the one request shape the event-loop SQS client sends.

Every call of :class:`~limbo_shared.sqs_http.SqsHttpClient` is a POST of JSON to one
endpoint, with the same four headers; only the target, the body and the time change.
botocore's general signer (``SigV4Auth`` over an ``AWSRequest``) re-derives the URL, the
host and the header set on every call, through its header classes and logging hooks:
about 0.2 ms of CPU per call at a trickle, as much as the rest of the call's Python
work. This signer fixes what is fixed at start-up and computes the rest as botocore
does; ``tests/shared/test_sigv4.py`` checks that its headers are byte for byte
botocore's for the same instant, credentials (with and without a session token),
endpoints and bodies. Credentials themselves (the chain, refreshing) stay botocore's.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from urllib.parse import quote, urlsplit

from botocore.credentials import ReadOnlyCredentials
from botocore.utils import normalize_url_path

__all__ = ["JSON_CONTENT_TYPE", "JsonPostSigner"]

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class JsonPostSigner:
    """Signs ``POST <endpoint>`` with a JSON body and an ``X-Amz-Target``."""

    def __init__(self, endpoint: str, region: str, service: str) -> None:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        self._host = host
        self._path = quote(normalize_url_path(parts.path), safe="/~")
        self._region = region
        self._service = service
        self._scope_tail = f"{region}/{service}/aws4_request"
        self._key_for: tuple[str, str, bytes] | None = None  # (secret, day, signing key)

    def headers(
        self,
        credentials: ReadOnlyCredentials,
        target: str,
        payload: bytes,
        now: datetime.datetime | None = None,
    ) -> dict[str, str]:
        """The request's headers, Authorization included (``now``: UTC, for tests)."""
        moment = now or datetime.datetime.now(datetime.UTC)
        stamp = moment.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": target, "X-Amz-Date": stamp}
        signed = [
            ("content-type", JSON_CONTENT_TYPE),
            ("host", self._host),
            ("x-amz-date", stamp),
        ]
        if credentials.token:
            headers["X-Amz-Security-Token"] = credentials.token
            signed.append(("x-amz-security-token", credentials.token))
        signed.append(("x-amz-target", target))
        names = ";".join(name for name, _ in signed)
        canonical = "\n".join(
            (
                "POST",
                self._path,
                "",  # no query string
                "".join(f"{name}:{' '.join(value.split())}\n" for name, value in signed),
                names,
                hashlib.sha256(payload).hexdigest(),
            )
        )
        scope = f"{day}/{self._scope_tail}"
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = self._signing_key(credentials.secret_key or "", day)
        signature = hmac.new(key, to_sign.encode(), "sha256")
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature.hexdigest()}"
        )
        return headers

    def _signing_key(self, secret: str, day: str) -> bytes:
        # The key changes with the day (and with rotated credentials): keep the last one.
        if self._key_for is not None and self._key_for[:2] == (secret, day):
            return self._key_for[2]
        key = hmac.digest(f"AWS4{secret}".encode(), day.encode(), "sha256")
        for part in (self._region, self._service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        self._key_for = (secret, day, key)
        return key
