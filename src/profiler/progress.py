"""Progress of long scoring passes: a tqdm bar (total, rate, ETA) for the terminal, plus a log line
at each quarter, since run logs (Hydra's <run>/<tool>.log) never see the bar."""

from __future__ import annotations

import logging
import time

from tqdm.auto import tqdm

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, desc: str | None, total: int, unit: str = "turn", log_steps: int = 4):
        # desc None: a silent pass (training-time evaluation, the service's requests, small calls)
        self.desc, self.total, self.unit, self.done = desc, total, unit, 0
        self.enabled = desc is not None and total > 0
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not self.enabled, mininterval=1.0)
        self.marks = [round(total * (i + 1) / log_steps) for i in range(log_steps)]
        self.started = time.perf_counter()
        if self.enabled:
            log.info("%s: %d %ss", desc, total, unit)

    def update(self, n: int) -> None:
        self.bar.update(n)
        before, self.done = self.done, self.done + n
        if self.enabled and any(before < m <= self.done for m in self.marks):
            elapsed = time.perf_counter() - self.started
            left = elapsed / self.done * (self.total - self.done)
            log.info("%s: %d/%d %ss (%.0f%%), %.1f s elapsed, about %.1f s left", self.desc, self.done, self.total,
                     self.unit, 100 * self.done / self.total, elapsed, left)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
