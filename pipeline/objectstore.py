"""Data roots on S3-compatible object storage (s3://bucket/prefix), configured the way AWS tools are
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION): paths, the one-line
errors for a bad configuration, and the few operations that differ from a local disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SCHEMES = ("s3://",)
CHECKED: set[tuple[str, str, str]] = set()  # (endpoint, key id, bucket) this process has reached


class StorageError(OSError):
    """The object store cannot be used as configured (credentials, bucket, endpoint)."""


def is_url(value: str | os.PathLike) -> bool:
    return "://" in str(value)


def is_remote(path: object) -> bool:
    """A path on object storage (a universal-pathlib UPath), not the local disk."""
    return not isinstance(path, Path) and hasattr(path, "fs")


def open_path(url: str):
    """s3://bucket/prefix -> a UPath; other schemes are refused with the fix."""
    if not url.startswith(SCHEMES):
        scheme = url.split("://", 1)[0]
        raise StorageError(
            f"data root {url!r}: scheme {scheme!r} is not supported; use a local path or s3://bucket/prefix"
        )
    from upath import UPath  # with s3fs, a dependency of rnnflow

    if not url.removeprefix("s3://").split("/", 1)[0]:
        raise StorageError(f"data root {url!r} names no bucket; use s3://bucket/prefix")
    # no listing cache: other processes (ranks, workers) write here too, and a stale listing would hide it
    return UPath(url.rstrip("/"), use_listings_cache=False)


def as_path(value: str | os.PathLike):
    """A user's path or s3:// address -> Path or UPath (the same path API)."""
    return open_path(str(value)) if is_url(value) else Path(value)


def no_sqlite(root) -> str:
    """The one error for an s3:// data root without an MLflow server to log to."""
    return (
        f"the data root {root} is on object storage, which cannot hold MLflow's SQLite store; "
        "set MLFLOW_TRACKING_URI to an MLflow server (`make stack` starts one)"
    )


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3") or None


def endpoint() -> str:
    return endpoint_url() or "AWS S3"


def check(root) -> None:
    """Reach the root's bucket once per process; a bad configuration becomes one line naming the fix."""
    if not is_remote(root):
        return
    bucket = str(root).removeprefix("s3://").split("/", 1)[0]
    reached = (endpoint(), os.environ.get("AWS_ACCESS_KEY_ID", ""), bucket)
    if reached in CHECKED:
        return
    try:
        root.fs.ls(bucket, refresh=True)
    except PermissionError as err:
        raise StorageError(
            f"S3 at {endpoint()} refused the credentials for bucket {bucket!r} ({err}); "
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except FileNotFoundError:
        raise StorageError(
            f"S3 bucket {bucket!r} does not exist at {endpoint()}; create it or fix the data root {root}"
        ) from None
    except Exception as err:  # botocore's connection errors are not OSErrors
        if "connect" not in type(err).__name__.lower() and "connect" not in str(err).lower():
            raise
        raise StorageError(
            f"S3 endpoint {endpoint()} is unreachable ({type(err).__name__}); "
            "start it or fix AWS_ENDPOINT_URL"
        ) from None
    CHECKED.add(reached)


def put_bytes(path, data: bytes) -> None:
    """One object, one PUT: readers see the old object or the new one, never a part."""
    path.fs.pipe_file(path.path, data)


def put_file(path, local: Path) -> None:
    """A local file as one object (s3fs uploads it in parts, completed at once: never seen half)."""
    path.fs.put_file(str(local), path.path)


def client():
    """A boto3 S3 client with the same AWS_* settings, for what s3fs does not offer (conditional PUTs)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url())


def copy(source, target) -> None:
    """One object copied inside the store (CopyObject: the target appears whole)."""
    source.fs.copy(source.path, target.path)


def remove_tree(path) -> None:
    if is_remote(path):
        with contextlib.suppress(FileNotFoundError):
            path.fs.rm(path.path, recursive=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def local_copy(url: str) -> Iterator[Path]:
    """A source file or folder on S3, downloaded to a temporary folder for the readers (not the data root)."""
    remote = open_path(url)
    check(remote)
    if not remote.exists():
        raise FileNotFoundError(f"{url}: no such object or prefix")
    with tempfile.TemporaryDirectory(prefix="rnnflow-source-") as tmp:
        local = Path(tmp) / remote.name
        if remote.is_dir():
            remote.fs.get(remote.path + "/", str(local), recursive=True)
        else:
            remote.fs.get(remote.path, str(local))
        yield local
