"""The SNS envelope around a notification: its topic checked, its signature verified.

SNS signs every message it delivers with an RSA key whose certificate it serves from
``https://sns.<region>.amazonaws.com/...pem``: SignatureVersion 1 is SHA1withRSA, 2 is
SHA256withRSA. The certificate is fetched once per URL and only from an SNS host, so a
forged envelope cannot bring its own key.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .model import EventRejected

__all__ = ["SnsEnvelope", "SnsVerifier", "fetch_certificate", "signed_text"]

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_SIGNED_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")

CertificateFetcher = Callable[[str], bytes]


def fetch_certificate(url: str) -> bytes:
    import httpx

    response = httpx.get(url, timeout=5.0, follow_redirects=False)
    response.raise_for_status()
    return response.content


def signed_text(envelope: dict[str, Any]) -> bytes:
    """The string SNS signs for a Notification: name, newline, value, newline, sorted."""
    parts = []
    for name in _SIGNED_FIELDS:
        if name == "Subject" and envelope.get("Subject") is None:
            continue
        parts.append(f"{name}\n{envelope[name]}\n")
    return "".join(parts).encode()


class SnsEnvelope:
    """A parsed envelope; only Notifications carry events."""

    def __init__(self, body: str) -> None:
        try:
            envelope = json.loads(body)
        except ValueError:
            raise EventRejected("not an SNS envelope: the body is not JSON") from None
        if not isinstance(envelope, dict) or not all(
            isinstance(envelope.get(name), str) for name in ("Type", "TopicArn", "Message")
        ):
            raise EventRejected("not an SNS envelope: Type, TopicArn or Message missing")
        self.fields: dict[str, Any] = envelope

    @property
    def topic_arn(self) -> str:
        return str(self.fields["TopicArn"])

    @property
    def message(self) -> str:
        return str(self.fields["Message"])

    @property
    def is_notification(self) -> bool:
        return bool(self.fields["Type"] == "Notification")


class SnsVerifier:
    """Checks the topic, and the signature when ``verify_signatures`` is on."""

    def __init__(
        self,
        topic_arn: str,
        *,
        verify_signatures: bool = True,
        fetch: CertificateFetcher = fetch_certificate,
    ) -> None:
        self.topic_arn = topic_arn
        self.verify_signatures = verify_signatures
        self._fetch = fetch
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    def verify(self, envelope: SnsEnvelope) -> None:
        if envelope.topic_arn != self.topic_arn:
            # Never echo the whole ARN back into logs as a hint; the account part suffices.
            raise EventRejected("SNS message from an unexpected topic")
        if self.verify_signatures:
            self._verify_signature(envelope.fields)

    def _verify_signature(self, fields: dict[str, Any]) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        version = fields.get("SignatureVersion")
        algorithms: dict[str, hashes.HashAlgorithm] = {"1": hashes.SHA1(), "2": hashes.SHA256()}
        if version not in algorithms:
            raise EventRejected(f"SNS SignatureVersion {version!r} is not supported")
        url = fields.get("SigningCertURL")
        if not isinstance(url, str):
            raise EventRejected("SNS message without SigningCertURL")
        parts = urlsplit(url)
        if parts.scheme != "https" or not _SNS_HOST.match(parts.hostname or ""):
            raise EventRejected("SNS SigningCertURL is not an SNS host")
        try:
            signature = base64.b64decode(str(fields.get("Signature", "")), validate=True)
            text = signed_text(fields)
        except (ValueError, KeyError):
            raise EventRejected("SNS signature is missing or malformed") from None
        key = self._key(url)
        try:
            key.verify(signature, text, padding.PKCS1v15(), algorithms[version])
        except InvalidSignature:
            raise EventRejected("SNS signature does not match") from None

    def _key(self, url: str) -> Any:
        from cryptography import x509

        with self._lock:
            key = self._keys.get(url)
        if key is None:
            try:
                certificate = x509.load_pem_x509_certificate(self._fetch(url))
            except Exception as error:  # network, HTTP status, PEM: all "cannot verify"
                raise EventRejected(
                    f"SNS signing certificate unavailable: {type(error).__name__}", status=503
                ) from None
            key = certificate.public_key()
            with self._lock:
                self._keys[url] = key
        return key
