from __future__ import annotations

import subprocess
import sys
import threading
import time

from limbo_shared.worker.threads import DaemonThreadPool


def test_submitted_calls_answer_their_futures() -> None:
    pool = DaemonThreadPool(2, "t")
    futures = [pool.submit(pow, 2, n) for n in range(10)]
    assert [f.result(timeout=5) for f in futures] == [2**n for n in range(10)]
    failing = pool.submit(int, "x")
    assert isinstance(failing.exception(timeout=5), ValueError)
    pool.shutdown()


def test_no_more_threads_run_than_allowed() -> None:
    pool = DaemonThreadPool(3, "t")
    gate = threading.Event()
    running: set[str] = set()

    def block() -> None:
        running.add(threading.current_thread().name)
        gate.wait(5)

    futures = [pool.submit(block) for _ in range(8)]
    time.sleep(0.2)
    assert len(running) == 3
    gate.set()
    for future in futures:
        future.result(timeout=5)
    pool.shutdown()


def test_a_blocked_call_does_not_hold_up_the_process_exit() -> None:
    # With ThreadPoolExecutor the interpreter would wait the hour out at exit.
    script = (
        "import time\n"
        "from limbo_shared.worker.threads import DaemonThreadPool\n"
        "DaemonThreadPool(1, 't').submit(time.sleep, 3600)\n"
        "time.sleep(0.1)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
