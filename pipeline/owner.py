"""Who wrote a staged file, a journal or a lock: host, pid and the process's start time, so the next run
can tell a crashed writer's leftovers (owner gone) from a live writer's (owner still running)."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from functools import cache


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process (Linux); None: no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().decode(errors="replace").rsplit(")", 1)[-1].split()  # the name may hold spaces
    except OSError:
        return None
    return fields[0], fields[19]  # fields 3 and 22


def _start_ticks(pid: int) -> str:
    """So that a reused pid is not taken for the process that had it ("0": not known here)."""
    stat = _stat(pid)
    return stat[1] if stat else "0"


@cache
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: str

    @classmethod
    def me(cls) -> Owner:
        pid = os.getpid()
        return cls(_host(), pid, _start_ticks(pid))

    @property
    def token(self) -> str:  # file-name safe: <host>-<pid>-<start>
        return f"{self.host}-{self.pid}-{self.start}"

    @classmethod
    def parse(cls, token: str) -> Owner | None:
        parts = token.split("-")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])

    def alive(self) -> bool | None:
        """True/False for a process of this host; None for another host's (it cannot be asked)."""
        if self.host != _host():
            return None
        stat = _stat(self.pid)
        if stat is None:
            if not os.path.isdir("/proc"):  # not Linux: ask the kernel whether the pid exists
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    return False
                except PermissionError:
                    return True
                return True
            return False
        state, start = stat
        return state not in ("Z", "X") and self.start in ("0", start)
