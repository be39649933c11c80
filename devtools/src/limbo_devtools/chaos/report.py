"""What a fault-injection run found, and the invariants it must hold."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import INJECTED_400, ChaosConfig

if TYPE_CHECKING:
    from types_boto3_sqs.type_defs import MessageTypeDef

__all__ = ["ChaosReport", "build_report"]


@dataclass
class ChaosReport:
    emails: int
    accepted: int
    refused: int
    delivered: int
    deliveries: int
    dead_lettered: int
    duplicated: int
    lost: int
    kills: int
    injected: dict[str, int]
    duplicate_bound: int
    # Duplicates explained by an injected slow answer the client had given up on.
    slow_duplicates: int
    delivered_and_dead_lettered: int
    unaccepted_deliveries: int
    unexpected_dead_letters: list[str]
    left_on_queue: int
    failed_restarts: int
    tracking: bool
    seconds: float
    lost_ids: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Broken invariants; empty when the run proves what it should."""
        found = []
        if self.lost:
            found.append(f"{self.lost} accepted emails were lost: {self.lost_ids[:5]}")
        if self.unexpected_dead_letters:
            found.append(
                f"{len(self.unexpected_dead_letters)} dead letters were not injected "
                f"400s: {self.unexpected_dead_letters[:3]}"
            )
        if self.dead_lettered > self.injected.get("400", 0):
            found.append(
                f"{self.dead_lettered} dead letters for {self.injected.get('400', 0)} injected 400s"
            )
        if self.failed_restarts:
            found.append(f"{self.failed_restarts} worker restarts failed")
        if self.left_on_queue:
            found.append(f"{self.left_on_queue} messages still on the queue")
        if self.tracking and (self.duplicated or self.delivered_and_dead_lettered):
            found.append(f"tracking is on but {self.duplicated} duplicates were delivered")
        if not self.tracking and self.duplicated > self.duplicate_bound:
            found.append(f"{self.duplicated} duplicates exceed the bound {self.duplicate_bound}")
        if self.unaccepted_deliveries:
            found.append(
                f"{self.unaccepted_deliveries} emails were delivered although the "
                "API had refused them (a client retry would send them twice)"
            )
        if self.refused > self.emails // 100:
            found.append(f"the API refused {self.refused} of {self.emails} emails")
        return found

    def render(self) -> str:
        injected = ", ".join(f"{k}: {v}" for k, v in sorted(self.injected.items())) or "none"
        rows = [
            ("emails submitted", self.emails),
            ("accepted (200)", self.accepted),
            ("refused by the API", self.refused),
            ("delivered", self.delivered),
            ("dead-lettered (injected 400)", self.dead_lettered),
            (
                "duplicated",
                f"{self.duplicated} (bound {self.duplicate_bound}; "
                f"{self.slow_duplicates} after an injected slow answer)",
            ),
            ("delivered and dead-lettered", self.delivered_and_dead_lettered),
            ("lost", self.lost),
            ("workers killed (SIGKILL)", self.kills),
            ("provider failures injected", injected),
            ("tracking (STATUS_TABLE)", "on" if self.tracking else "off"),
            ("seconds", f"{self.seconds:.1f} ({self.accepted / max(self.seconds, 1e-9):.0f}/s)"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
        problems = self.problems()
        lines.append("result".ljust(width) + "  " + ("OK" if not problems else "FAILED"))
        lines += [f"  - {problem}" for problem in problems]
        return "\n".join(lines)


def build_report(
    config: ChaosConfig,
    *,
    sink: dict[str, Any],
    dead_letters: Sequence[MessageTypeDef],
    accepted: set[str],
    refused: int,
    kills: int,
    failed_restarts: int,
    left: int,
    seconds: float,
) -> ChaosReport:
    """The report from what the sink received and what the dead-letter queue holds."""
    deliveries: Counter[str] = Counter()
    slow: Counter[str] = Counter()
    for message in sink["messages"]:
        message_id = message["fields"].get("h:X-Limbo-Message-Id", ["?"])[0]
        deliveries[message_id] += 1
        if message.get("injected") == "slow":
            slow[message_id] += 1
    dead: dict[str, str] = {}
    unexpected = []
    for letter in dead_letters:
        attribute = letter.get("MessageAttributes", {}).get("limbo-reason")
        reason = attribute.get("StringValue", "(no reason)") if attribute else "(no reason)"
        try:
            message_id = str(json.loads(letter["Body"])["id"])
        except (ValueError, KeyError, TypeError):
            message_id = "(unparseable)"
        dead[message_id] = reason
        if INJECTED_400 not in reason:
            unexpected.append(f"{message_id}: {reason}")
    duplicated = sum(count - 1 for count in deliveries.values() if count > 1)
    slow_duplicates = sum(min(slow[i], deliveries[i] - 1) for i in slow if deliveries[i] > 1)
    lost = sorted(accepted - set(deliveries) - set(dead))
    return ChaosReport(
        emails=config.emails,
        accepted=len(accepted),
        refused=refused,
        delivered=len(accepted & set(deliveries)),
        deliveries=sum(deliveries.values()),
        dead_lettered=len(accepted & set(dead)),
        duplicated=duplicated,
        lost=len(lost),
        kills=kills,
        injected=dict(sink.get("failures", {})),
        # A killed worker can have sent at most its in-flight messages without
        # deleting them; an injected slow answer is accepted after the timeout.
        duplicate_bound=kills * config.concurrency + int(sink.get("failures", {}).get("slow", 0)),
        slow_duplicates=slow_duplicates,
        delivered_and_dead_lettered=len(set(deliveries) & set(dead)),
        unaccepted_deliveries=len(set(deliveries) - accepted),
        unexpected_dead_letters=unexpected,
        left_on_queue=left,
        failed_restarts=failed_restarts,
        tracking=config.tracking,
        seconds=seconds,
        lost_ids=lost,
    )
