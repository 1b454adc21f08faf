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
from pathlib import Path

from pipeline import objectstore
from pipeline.owner import Owner

log = logging.getLogger("rnnflow.lock")
LOCKS = ".locks"  # under the data root; no reader globs it
LEASE_SECONDS = 60.0  # S3: a holder that stops renewing loses its lock after this long


class LockTimeout(TimeoutError):
    """The lock stayed held by another run for longer than the caller would wait."""


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


def _precondition_failed(err: Exception) -> bool:
    response = getattr(err, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409") or status in (409, 412)


def _not_found(err: Exception) -> bool:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404")


@contextlib.contextmanager
def _remote(path, name: str, timeout: float | None) -> Iterator[None]:
    from botocore.exceptions import ClientError

    s3 = objectstore.client()
    bucket, key = path.path.split("/", 1)
    info = _info()

    def body() -> bytes:
        return json.dumps(info | {"expires": time.time() + LEASE_SECONDS}).encode()

    etag, started, said = None, time.monotonic(), []
    while etag is None:
        try:
            etag = s3.put_object(Bucket=bucket, Key=key, Body=body(), IfNoneMatch="*")["ETag"]
            break
        except ClientError as err:
            if not _precondition_failed(err):
                raise
        try:
            held = s3.get_object(Bucket=bucket, Key=key)
            current, held_etag = json.loads(held["Body"].read() or b"{}"), held["ETag"]
        except ClientError as err:
            if _not_found(err):
                continue  # released meanwhile
            raise
        except ValueError:
            current, held_etag = {}, held["ETag"]
        owner = Owner.parse(str(current.get("owner", "")))
        if current.get("expires", 0) < time.time() or (owner is not None and owner.alive() is False):
            try:  # its holder is gone: take it over, unless someone else did first
                etag = s3.put_object(Bucket=bucket, Key=key, Body=body(), IfMatch=held_etag)["ETag"]
                log.info("took over the lock %s from %s (gone)", name, _describe(current))
                break
            except ClientError as err:
                if not _precondition_failed(err) and not _not_found(err):
                    raise
                continue
        _waited(name, started, timeout, _describe(current), said)
        time.sleep(0.5)

    stop, tag = threading.Event(), [etag]

    def renew() -> None:
        while not stop.wait(LEASE_SECONDS / 4):
            try:
                tag[0] = s3.put_object(Bucket=bucket, Key=key, Body=body(), IfMatch=tag[0])["ETag"]
            except Exception as err:  # a network blip: the next renewal may still make it
                log.warning("could not renew the lock %s: %s", name, err)

    thread = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(ClientError):
            s3.delete_object(Bucket=bucket, Key=key, IfMatch=tag[0])
