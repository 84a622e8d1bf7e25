"""The running event loop, found without a system call where possible.

On CPython 3.11, `asyncio.get_running_loop` checks the process id with a
``getpid()`` system call every time: about 0.5 us on a virtual machine,
once per command on the hot path of `Group.execute`. A loop mosaik already
holds is the running one when it runs on this thread: asyncio's own loops
keep that thread's id in ``_thread_id`` while they run, and a thread runs
one loop at a time. Loops without that attribute are asked the usual way.
"""

from __future__ import annotations

import asyncio
import threading


def running_loop(known: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop:
    """``known`` if it is running on this thread, else the running loop
    (`RuntimeError` when none is)."""
    if known is not None and getattr(known, "_thread_id", None) == threading.get_ident():
        return known
    return asyncio.get_running_loop()
