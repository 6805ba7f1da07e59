"""Which process does a piece of work, as a row records it (host, process id and the process's start time), and
whether that process has ended: a run left "running" by a process killed with SIGKILL is then known to be over.

Only a process of this host can be known gone; the start time tells a later process that got the same id apart
(without /proc the id alone is checked)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

SEPARATOR = "|"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "" where /proc does not say."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_of(pid: int) -> str:
    """A process of this host, as a row records it."""
    return SEPARATOR.join((socket.gethostname(), str(pid), _start_time(pid)))


def this_process() -> str:
    return owner_of(os.getpid())


def gone(owner: str) -> bool:
    """Whether the process `owner` names (this_process() of it) has ended; False when it cannot be known."""
    host, _, rest = owner.partition(SEPARATOR)
    pid_text, _, started = rest.partition(SEPARATOR)
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if started and Path("/proc/self/stat").exists():
        return _start_time(pid) != started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
