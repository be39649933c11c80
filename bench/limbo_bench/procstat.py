"""CPU time and peak memory of a process, read from /proc (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ProcSample", "cpu_ns", "sample"]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    cpu_seconds: float  # user + system, all threads
    rss_mb: float
    peak_rss_mb: float  # VmHWM: the high-water mark since the process started
    # Time the main thread was runnable but waited for a core (schedstat): when it grows
    # as fast as the wall clock, the process is starved by others, not slow itself.
    runqueue_wait_seconds: float


def sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces; fields are counted after its closing ")".
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    rss = peak = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    with open(f"/proc/{pid}/schedstat") as schedstat:
        waited = int(schedstat.read().split()[1]) / 1e9
    return ProcSample(cpu, rss, peak, waited)


def cpu_ns(pid: int) -> int:
    """CPU time so far of every live thread of ``pid``, in nanoseconds (schedstat): finer
    than ``cpu_seconds``'s clock ticks, for windows of a few seconds at a trickle. A
    thread that ends takes its time with it; limbo's threads live as long as the process."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
            total += int(schedstat.read().split()[0])
    return total
