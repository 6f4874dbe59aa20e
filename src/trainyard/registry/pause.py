"""A test hook for crash safety: `TRAINYARD_PAUSE_AT=NAME` makes the process stop at the moment called NAME
(it says so on stderr and sleeps), so a test can kill -9 it exactly there and check that `resume` finishes.

The moments: `artifact-writing` (files are in the temporary artifact folder, nothing renamed yet) and
`artifact-renamed` (the artifact folder is in place, the store has not recorded its version). Unset (always,
outside tests), `pause_at` is one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time

ENV = "TRAINYARD_PAUSE_AT"


def pause_at(moment: str) -> None:
    if os.environ.get(ENV) != moment:
        return
    print(f"paused at {moment} (pid {os.getpid()})", file=sys.stderr, flush=True)
    time.sleep(3600)
