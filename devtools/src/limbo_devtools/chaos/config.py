"""What a fault-injection run does, and its defaults: the one place the command and the
CI-sized test both read them from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..mailgun_sink import SinkConfig

__all__ = ["INJECTED_400", "ChaosConfig"]

# The permanent rejection the sink injects; any other dead-letter reason is a failure.
INJECTED_400 = "mailgun answered 400: injected permanent rejection"


def _faults() -> SinkConfig:
    return SinkConfig(fail_500=0.05, fail_429=0.02, fail_slow=0.01, fail_400=0.005)


@dataclass
class ChaosConfig:
    emails: int = 10_000
    workers: int = 3
    # Seconds between two kills, drawn uniformly from this range.
    kill_every: tuple[float, float] = (2.0, 5.0)
    # The provider's failures: shares of answers the sink fails (its key, slow answers'
    # length and seed are the run's own, see sink()).
    faults: SinkConfig = field(default_factory=_faults)
    # The client timeout; the injected slow answers take SEND_TIMEOUT + 2 s.
    send_timeout: float = 2.0
    # Short, so the messages a killed worker held come back within the run.
    visibility_timeout: int = 10
    concurrency: int = 32
    # Parallel HTTP clients submitting through the API.
    clients: int = 16
    # Submission pauses while the queue holds more than this: moto's send and receive
    # walk the whole queue (several times per message), so a bounded backlog keeps the
    # emulator's cost per message flat. This is how 10,000 emails run "in chunks".
    backlog: int = 200
    # After the last submission, how long the queue may take to drain.
    settle_timeout: float = 600.0
    seed: int | None = None
    # An emulator already running (limbo-moto, LocalStack); None starts limbo-moto.
    endpoint: str | None = None
    # Extra environment for the API and the workers (e.g. STATUS_TABLE=... for tracking).
    env: dict[str, str] = field(default_factory=dict)
    logs: Path | None = None
    progress: bool = False

    @property
    def tracking(self) -> bool:
        return bool(self.env.get("STATUS_TABLE"))

    def sink(self, api_key: str) -> SinkConfig:
        """The flaky provider this run's sink plays."""
        return self.faults.model_copy(
            update={"api_key": api_key, "slow_seconds": self.send_timeout + 2, "seed": self.seed}
        )
