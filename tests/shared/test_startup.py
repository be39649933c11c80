"""settle_heap: what start-up dropped is collected, what it kept is frozen.

Run in a child interpreter: freezing the test process's own heap would keep every later
test's start-up garbage out of reach of the collector.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import gc, weakref
    from limbo_shared.startup import settle_heap

    class Node:
        pass

    gc.disable()  # only settle_heap may collect here
    dropped = Node()
    dropped.self = dropped  # a cycle, as a discarded boto3 client leaves
    gone = weakref.ref(dropped)
    del dropped
    kept = Node()
    assert gone() is not None and gc.get_freeze_count() == 0
    settle_heap()
    print(gone() is None, gc.get_freeze_count() > 0, gc.is_tracked(kept))
    """
)


def test_start_up_garbage_is_collected_and_the_rest_frozen() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]
