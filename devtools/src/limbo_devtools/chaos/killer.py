"""The killer: N worker processes, one killed with SIGKILL at random and restarted."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from ..processes import Process

__all__ = ["Killer"]


class Killer:
    """N worker processes; one killed with SIGKILL at random intervals and restarted.

    Restarts run on threads of their own, so the kill rhythm does not wait for a new
    process to import and answer its health check; only running workers are chosen.
    """

    def __init__(
        self,
        start_worker: Callable[[], Process],
        *,
        workers: int,
        kill_every: tuple[float, float],
        seed: int | None,
        say: Callable[[str], None],
    ) -> None:
        self._start_worker = start_worker
        self._workers = workers
        self._kill_every = kill_every
        self._say = say
        self._rng = random.Random(seed)
        self.slots: list[Process | None] = []
        self.everyone: list[Process] = []
        self.kills = 0
        self.failed_restarts: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._restarts: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._kill_loop, name="chaos-killer", daemon=True)

    def start(self) -> None:
        for _ in range(self._workers):
            process = self._start_worker()
            self.slots.append(process)
            self.everyone.append(process)
        self._thread.start()

    def _restart(self, index: int) -> None:
        try:
            process = self._start_worker()
        except Exception as error:  # reported; the other workers go on
            self.failed_restarts.append(str(error))
            self._say(f"restart of worker {index} failed: {error}")
            return
        with self._lock:
            self.everyone.append(process)
            if self._stop.is_set():
                process.stop(timeout=40)
                return
            self.slots[index] = process

    def _kill_loop(self) -> None:
        low, high = self._kill_every
        while not self._stop.wait(self._rng.uniform(low, high)):
            with self._lock:
                running = [i for i, p in enumerate(self.slots) if p is not None]
                if len(running) < 2:
                    continue  # never kill the last one standing: the run must progress
                index = self._rng.choice(running)
                victim = self.slots[index]
                assert victim is not None
                victim.kill()
                self.slots[index] = None
                self.kills += 1
            self._say(f"killed worker {index} (pid {victim.pid}), kill #{self.kills}")
            thread = threading.Thread(target=self._restart, args=(index,), daemon=True)
            thread.start()
            self._restarts.append(thread)

    def stop_killing(self) -> None:
        """No more kills; wait for pending restarts so every slot is running again."""
        self._stop.set()
        self._thread.join(timeout=60)
        for thread in self._restarts:
            thread.join(timeout=90)

    def stop(self) -> None:
        self.stop_killing()
        with self._lock:
            processes = list(self.everyone)
        for process in processes:
            process.stop(timeout=40)
