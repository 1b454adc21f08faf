"""Exclusive locks on a data root, local or s3://: one ingest of a kind at a time, one commit of a day.

Locally: an flock on <root>/.locks/<name>.lock, which the kernel drops when its holder dies (kill -9
included). On S3: an object created by a conditional PUT (If-None-Match: *), kept alive by a lease the
holder renews; the next taker replaces it (If-Match) once its holder is gone or its lease ran out.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

from pipeline import objectstore
from pipeline.owner import Owner

log = logging.getLogger("rnnflow.lock")
LOCKS = ".locks"  # under the data root; no reader globs it
LEASE_SECONDS = 60.0  # S3: a holder that stops renewing loses its lock after this long


class LockTimeout(TimeoutError):
    """The lock stayed held by another run for longer than the caller would wait."""


class LockLost(OSError):
    """This run's lease on an S3 lock ran out (renewals failed), so another run may hold it now."""


class LockUnsupported(ValueError):
    """The object store cannot do what a lock needs (conditional writes) or refuses this client."""


_LOST: set[str] = set()  # S3 locks (by path) whose lease this process lost


def check_held(root, name: str) -> None:
    """Before publishing under a lock: LockLost if this process's lease on it ran out meanwhile."""
    path = str(root / LOCKS / f"{name}.lock")
    if path in _LOST:
        raise LockLost(f"lost the lock {name!r} (its lease could not be renewed); nothing was published")


def _describe(info: dict) -> str:
    return f"{info.get('owner', '?')} since {info.get('since', '?')}"


@contextlib.contextmanager
def hold(root, name: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock `name` of the data root `root` for the block; waits (and says so) while another
    run holds it; LockTimeout after `timeout` seconds (None: wait as long as it takes)."""
    path = root / LOCKS / f"{name}.lock"
    holder = _remote if objectstore.is_remote(root) else _local
    with holder(path, name, timeout):
        yield


def _info() -> dict:
    return {"owner": Owner.me().token, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _waited(name: str, started: float, timeout: float | None, held_by: str, said: list) -> None:
    if not said:
        log.info("waiting for the lock %s, held by %s", name, held_by)
        said.append(True)
    if timeout is not None and time.monotonic() - started > timeout:
        raise LockTimeout(f"lock {name!r} is still held by {held_by} after {timeout:.0f} s; try again later")


@contextlib.contextmanager
def _local(path: Path, name: str, timeout: float | None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started, said, pause = time.monotonic(), [], 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                try:
                    held_by = _describe(json.loads(os.pread(fd, 4096, 0) or b"{}"))
                except ValueError:
                    held_by = "another run"
                _waited(name, started, timeout, held_by, said)
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_info()).encode(), 0)  # who holds it, for whoever waits
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(response.get("Error", {}).get("Code", "") or status)


def _precondition_failed(err: Exception) -> bool:
    return _code(err) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def _not_found(err: Exception) -> bool:
    return _code(err) in ("NoSuchKey", "404")


def _refused(err: Exception, path) -> Exception:
    """An S3 answer that is not about the lock itself, as one line naming the fix."""
    code = _code(err)
    if code in ("NotImplemented", "501", "InvalidRequest", "400"):
        return LockUnsupported(
            f"the S3 store at {objectstore.endpoint()} refused a conditional write to {path} ({code}); "
            "rnnflow's locks need If-None-Match/If-Match on PUT (AWS S3, SeaweedFS and MinIO have them)"
        )
    if code in ("AccessDenied", "403"):
        return PermissionError(f"S3 at {objectstore.endpoint()} denied writing the lock {path} ({code})")
    return objectstore.StorageError(f"S3 at {objectstore.endpoint()}: the lock {path} failed ({code})")


def _age(held: dict) -> float:
    """Seconds since a lock object was last written, by the server's clock (no host clocks compared)."""
    now = parsedate_to_datetime(held["ResponseMetadata"]["HTTPHeaders"]["date"])
    return (now - held["LastModified"]).total_seconds()


@contextlib.contextmanager
def _remote(path, name: str, timeout: float | None) -> Iterator[None]:
    from botocore.exceptions import ClientError

    s3 = objectstore.client()
    bucket, key = path.path.split("/", 1)
    body = json.dumps(_info()).encode()  # who holds it; its age is the object's own (server time)

    def put(**condition) -> str:
        try:
            return s3.put_object(Bucket=bucket, Key=key, Body=body, **condition)["ETag"]
        except ClientError as err:
            if _precondition_failed(err) or _not_found(err):
                raise
            raise _refused(err, path) from None

    etag, started, said = None, time.monotonic(), []
    while etag is None:
        try:
            etag = put(IfNoneMatch="*")
            break
        except ClientError:
            pass
        try:
            held = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if _not_found(err):
                continue  # released meanwhile
            raise _refused(err, path) from None
        try:
            current = json.loads(held["Body"].read() or b"{}")
        except ValueError:
            current = {}
        owner = Owner.parse(str(current.get("owner", "")))
        if _age(held) > LEASE_SECONDS or (owner is not None and owner.alive() is False):
            try:  # its holder is gone: take it over, unless someone else did first
                etag = put(IfMatch=held["ETag"])
                log.info("took over the lock %s from %s (gone)", name, _describe(current))
                break
            except ClientError:
                continue
        _waited(name, started, timeout, _describe(current), said)
        time.sleep(0.5)

    stop, tag = threading.Event(), [etag]

    def renew() -> None:
        while not stop.wait(LEASE_SECONDS / 4):
            try:
                tag[0] = put(IfMatch=tag[0])
            except ClientError:  # a renewal whose answer was lost moved the ETag: still ours?
                try:
                    held = s3.get_object(Bucket=bucket, Key=key)
                    if held["Body"].read() == body:
                        tag[0] = held["ETag"]
                        continue
                except ClientError:
                    pass
                _LOST.add(str(path))
                log.error("lost the lock %s: another run took it over", name)
                return
            except Exception as err:  # a network blip: the next renewal may still make it
                log.warning("could not renew the lock %s: %s", name, err)

    thread = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        _LOST.discard(str(path))
        with contextlib.suppress(ClientError):
            s3.delete_object(Bucket=bucket, Key=key, IfMatch=tag[0])
