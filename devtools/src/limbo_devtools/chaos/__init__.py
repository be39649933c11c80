"""Fault-injection run: real processes, a flaky provider, workers killed at random.

``limbo-chaos`` starts the emulator, limbo-moto (or uses ``--endpoint``), a Mailgun sink that
injects failures (HTTP 500, 429 with Retry-After, answers slower than SEND_TIMEOUT,
permanent 400s), the API and several Mailgun workers on one queue. While emails are
submitted through the API, one worker at a time is killed with SIGKILL and restarted.
At the end every accepted email must be delivered, or, for the injected permanent
rejections only, be in the dead-letter queue with its reason. Nothing may be lost.

Duplicates are counted, not forbidden, while tracking is off: SQS is at-least-once
and Mailgun has no idempotency key, so a worker killed between the provider's answer
and the delete, or a provider that accepts after the client timed out, sends twice.
They are bounded by the kills (each kill can repeat at most the sends it had in flight)
plus the injected slow answers. With STATUS_TABLE in the environment (the tracking
store) the run demands zero duplicates.

The same code runs the CI-sized test (tests/reliability/test_faults.py) and the
command; the command prints the figures and exits 1 when an invariant is broken.
Its parts: ``config`` (every default), ``load`` (submission through the API),
``killer`` (SIGKILL and restart), ``report`` (the invariants), ``run`` (one run on the
stack the launcher starts), ``cli`` (the command).
"""

from .cli import main
from .config import ChaosConfig
from .report import ChaosReport
from .run import ChaosRun, run_chaos

__all__ = ["ChaosConfig", "ChaosReport", "ChaosRun", "main", "run_chaos"]
