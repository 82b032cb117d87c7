"""Milestones for benchmarks/benchmark.py, printed only when it sets FRACTURE_APP_TIMING."""
from __future__ import annotations

import os
import sys
import time

TIMING = os.environ.get("FRACTURE_APP_TIMING")


def milestone(name: str):
    print(f"milestone {name} {time.time():.3f}", file=sys.stderr, flush=True)
