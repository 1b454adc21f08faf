"""`python -m flows.preflight`: refuse to start a Prefect server on a known-broken set of packages.

`make server` runs it first: Prefect 3.8's server starts and looks "Ready" on these, while its scheduler
service fails on every loop, so no scheduled run is ever created (seen in the server log only).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

# (package, first bad version, what breaks, the fix)
KNOWN_BAD = [
    ("sqlalchemy", (2, 1), "the scheduler service fails (Can't evaluate bulk DML statement)", "<2.1"),
    ("fastapi", (0, 155), "the server does not import (Body(min_items=...))", "<0.155"),
]


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def problems() -> list[str]:
    found = []
    for package, bad, what, fix in KNOWN_BAD:
        try:
            installed = version(package)
        except PackageNotFoundError:
            continue
        if _release(installed) >= bad:
            found.append(f"{package} {installed}: {what}; pip install '{package}{fix}' (see constraints.txt)")
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(f"preflight: error: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
