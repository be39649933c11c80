"""Schemathesis hooks for the fuzz test: the rules of the API JSON Schema cannot state.

The API refuses more than 50 recipients across to, cc and bcc together (SES's limit);
the schema can only cap each list. And `scheduled_at` must be at most
MAX_SCHEDULE_HOURS ahead (a rule of the clock, not of the text). A generated
schema-valid body over either is brought within it, so the positive-data check tests
the rules the schema does state. Batches get the same per email.
Loaded through SCHEMATHESIS_HOOKS by tests/hostile/test_fuzz.py.
"""

from __future__ import annotations

import time
from typing import Any

import schemathesis

from limbo_shared.scheduling import parse_rfc3339
from limbo_shared.schema import MAX_RECIPIENTS

MAX_SCHEDULE_HOURS = 72  # the API's default, which the fuzzed API runs with


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: Any) -> Any:
    # map_case (unlike map_body) also reaches the coverage phase's cases.
    if isinstance(case.body, list):
        case.body = [_within_schedule_window(_within_recipient_limit(b)) for b in case.body]
    else:
        case.body = _within_schedule_window(_within_recipient_limit(case.body))
    return case


def _within_schedule_window(body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("scheduled_at"), str):
        return body
    try:
        due = parse_rfc3339(body["scheduled_at"]).timestamp()
    except ValueError:
        return body  # the API refuses it, as the schema's date-time format does
    # A minute of margin for the time between generating and sending the case.
    if due - time.time() <= MAX_SCHEDULE_HOURS * 3600 - 60:
        return body
    return {**body, "scheduled_at": None}


def _within_recipient_limit(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    lists = [key for key in ("to", "cc", "bcc") if isinstance(body.get(key), list)]
    total = sum(len(body[key]) for key in lists)
    if total <= MAX_RECIPIENTS:
        return body
    trimmed = dict(body)
    excess = total - MAX_RECIPIENTS
    for key in reversed(lists):  # bcc first, then cc: `to` keeps its required minimum
        keep = max(len(trimmed[key]) - excess, 1 if key == "to" else 0)
        excess -= len(trimmed[key]) - keep
        trimmed[key] = trimmed[key][:keep]
    return trimmed
