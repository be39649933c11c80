"""The tests' one HTTP client for probes and single requests to the servers they start.

httpx's module functions (``httpx.get``...) build a client per call, and each client
loads the CA bundle into a new SSL context: about 25 ms of CPU per request, which polling
loops (a sink's messages, a worker's readiness) paid several times a second. This client
keeps no connection alive, so like the module functions every request opens its own:
no test talks to a server over a connection an earlier test left open.
"""

from __future__ import annotations

import httpx

HTTP = httpx.Client(timeout=5.0, limits=httpx.Limits(max_keepalive_connections=0))
