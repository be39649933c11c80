"""The outgoing HTTP proxy the environment names for an endpoint, read once at start.

aiohttp's ``trust_env=True`` reads the same variables, but on every request and in a
worker thread (the proxy, and ``~/.netrc`` for credentials): two thread-pool hops per
SQS call, which were a third of the API's and the workers' CPU per email at a trickle.
An endpoint's proxy does not change while a process runs, so it is looked up once, with
the standard library's reading of the variables, as botocore reads them:
``HTTPS_PROXY`` / ``HTTP_PROXY`` by the endpoint's scheme (either case), and
``NO_PROXY``. Credentials go in the proxy's URL (``http://user:secret@proxy:3128``).
"""

from __future__ import annotations

from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

__all__ = ["proxy_for"]


def proxy_for(url: str) -> str | None:
    """The proxy URL for requests to ``url``, or None to connect directly."""
    parts = urlsplit(url)
    proxy: str | None = getproxies().get(parts.scheme)
    if not proxy or proxy_bypass(parts.netloc):
        return None
    return proxy
