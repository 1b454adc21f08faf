"""`python -m flows.preflight`: refuse to start a Prefect server on a known-broken set of packages.

`make server` runs it first: Prefect 3.8's server started and looked "Ready" on SQLAlchemy 2.1, while its
scheduler service failed on every loop, so no scheduled run was ever created (seen in the server log only).
Prefect 3.9 works on SQLAlchemy 2.1 and pins FastAPI itself.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

# (package, first bad version, what breaks, the fix), on a Prefect older than FIXED_IN
KNOWN_BAD = [
    ("sqlalchemy", (2, 1), "the scheduler service fails (Can't evaluate bulk DML statement)", "<2.1"),
    ("fastapi", (0, 155), "the server does not import (Body(min_items=...))", "<0.155"),
]
FIXED_IN = (3, 9)  # Prefect's release that works with both


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def problems() -> list[str]:
    try:
        if _release(version("prefect")) >= FIXED_IN:
            return []
    except PackageNotFoundError:
        return []
    found = []
    for package, bad, what, fix in KNOWN_BAD:
        try:
            installed = version(package)
        except PackageNotFoundError:
            continue
        if _release(installed) >= bad:
            found.append(
                f"{package} {installed}: {what} on Prefect < 3.9; pip install 'prefect>=3.9' or "
                f"'{package}{fix}' (see constraints.txt)"
            )
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(f"preflight: error: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
