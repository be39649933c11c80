"""Schemathesis hooks for the fuzz test: the one rule of the API JSON Schema cannot state.

The API refuses more than 50 recipients across to, cc and bcc together (SES's limit);
the schema can only cap each list. A generated schema-valid body over the total is
trimmed to it, so the positive-data check tests the rules the schema does state.
Loaded through SCHEMATHESIS_HOOKS by tests/hostile/test_fuzz.py.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from limbo_shared.schema import MAX_RECIPIENTS


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: Any) -> Any:
    # map_case (unlike map_body) also reaches the coverage phase's cases.
    case.body = _within_recipient_limit(case.body)
    return case


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
