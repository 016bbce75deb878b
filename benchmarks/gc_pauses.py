"""Time spent in Python's garbage collector, for the benchmarks' per-step cause labels.

Importing this module registers one ``gc.callbacks`` hook for the process; ``GC_PAUSE_NS[0]``
is the total time the collector has run since. A step whose timing window saw it grow ran a
collection (a full one walks every tracked object: ~100 ms with torch and transformers loaded).
"""

from __future__ import annotations

import gc
import time
from typing import Any

GC_PAUSE_NS = [0]  # total time spent in Python's garbage collector
_start = [0]


def _callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _start[0] = time.perf_counter_ns()
    else:
        GC_PAUSE_NS[0] += time.perf_counter_ns() - _start[0]


gc.callbacks.append(_callback)
