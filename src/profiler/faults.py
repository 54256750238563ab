"""Fault injection for tests: stop a run at an exact point instead of racing it with the clock.

``PROFILER_FAULT=kill:N`` ends the process with SIGKILL (as kill -9 would) when point N is reached,
``raise:N`` raises instead. Points: the chunk number just committed by ``profiler-predict``, the
optimizer step just checkpointed by ``profiler-train``. Unset (always, outside tests): a no-op.
"""

from __future__ import annotations

import os
import signal


class InjectedFault(RuntimeError):
    """Raised by ``fault_point`` under PROFILER_FAULT=raise:N."""


def fault_point(point: int) -> None:
    fault = os.environ.get("PROFILER_FAULT")
    if not fault:
        return
    kind, _, at = fault.partition(":")
    if int(at) != point:
        return
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"PROFILER_FAULT={fault}: injected failure at point {point}")
