"""A :class:`logging.Handler` that ships records to Vigil's ``POST /api/v1/ingest``.

Delivery, in the order of what can go wrong:

* ``emit`` never blocks on the network and never raises: it turns the record into an ECS
  event (one JSON line) and queues it in memory (``queue_capacity`` events at most).
* A background thread takes up to ``batch_size`` events (or what came within
  ``flush_interval``) and posts them as NDJSON with ``Authorization: Bearer TOKEN`` and an
  ``Idempotency-Key`` that is a hash of the batch's bytes. Every event carries an ``event.id``
  unique to this process (host, process id, start time, counter), so two batches never share a
  key. Vigil answers a key it has stored with its first answer instead of storing the batch
  again, and remembers keys across its restarts.
* A batch that fails (Vigil down, a lost answer, 429/5xx) is sent again **as the same bytes**
  (so under the same key) with exponential backoff and jitter, honouring ``Retry-After``.
* With a ``spool_dir``, every batch is written to a file in it before it is posted and removed
  once Vigil acknowledged it: a batch survives a crash or restart of the application and goes
  again, unchanged, from the next process on the spool. While Vigil is unreachable, events
  beyond the memory queue are written to the spool as further batches, up to
  ``spool_max_bytes``. Without a spool, or beyond its limit, events are dropped and counted
  (:attr:`VigilHandler.stats`): the application is never blocked by its logging.
* A batch Vigil refuses as malformed (a 4xx other than 401/403/408/429) is sent again one event
  at a time, and only the events refused alone are dropped (counted as ``rejected``).
* ``close()`` (also called by :func:`logging.shutdown` at exit) delivers what it can within
  ``close_timeout`` seconds; the rest stays in the spool when there is one.
"""

from __future__ import annotations

import collections
import datetime
import errno
import hashlib
import http.client
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
import traceback
import urllib.error
import urllib.request
from typing import Any, Deque, Dict, List, Optional

from .owasp import EXTRA_KEY

# Attributes every LogRecord has; the others came from ``extra=``.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
) | {"message", "asctime", "taskName", EXTRA_KEY}

_BATCH_SUFFIX = ".ndjson"


class Stats:
    """What the handler did, counted since it started."""

    def __init__(self) -> None:
        self.sent = 0
        self.dropped = 0
        self.rejected = 0
        self.spooled = 0
        self.failures = 0

    def __repr__(self) -> str:
        return "Stats(sent=%d, dropped=%d, rejected=%d, spooled=%d, failures=%d)" % (
            self.sent,
            self.dropped,
            self.rejected,
            self.spooled,
            self.failures,
        )


class _Refused(Exception):
    """Vigil refused a batch as such (a 4xx that retrying will not change)."""


class _Retry(Exception):
    """A failure worth retrying, with the delay Vigil asked for, if any."""

    def __init__(self, why: str, after: Optional[float] = None) -> None:
        super().__init__(why)
        self.after = after


class VigilHandler(logging.Handler):
    """Ships log records to Vigil. See the module documentation for its guarantees.

    :param url: Vigil's base URL, e.g. ``http://127.0.0.1:8080``.
    :param token: an ingest token (``vigil token create --role ingest``).
    :param service: ``service.name`` of every event (the application's name).
    :param spool_dir: where batches wait until Vigil acknowledged them (created if missing).
    :param ssl_context: for ``https`` URLs with a private CA.
    """

    def __init__(
        self,
        url: str,
        token: str,
        service: Optional[str] = None,
        spool_dir: Optional[str] = None,
        level: int = logging.NOTSET,
        batch_size: int = 200,
        flush_interval: float = 1.0,
        queue_capacity: int = 10_000,
        spool_max_bytes: int = 256 * 1024 * 1024,
        timeout: float = 10.0,
        backoff_base: float = 0.2,
        backoff_max: float = 30.0,
        close_timeout: float = 5.0,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        super().__init__(level)
        self.endpoint = url.rstrip("/") + "/api/v1/ingest"
        self._token = token
        self.service = service
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.queue_capacity = max(1, queue_capacity)
        self.spool_max_bytes = spool_max_bytes
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = max(backoff_base, backoff_max)
        self.close_timeout = close_timeout
        self.ssl_context = ssl_context
        self.stats = Stats()
        self._host = socket.gethostname()
        self._id_prefix = "%s-%d-%d" % (self._host, os.getpid(), time.time_ns())
        self._counter = 0
        self._queue: Deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._idle = True
        self._spool_dir = spool_dir
        self._spool = _Spool(spool_dir) if spool_dir else None
        self._thread = threading.Thread(target=self._run, name="vigil-logging", daemon=True)
        self._thread.start()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """In a forked child (gunicorn, multiprocessing): a sender of its own, ids of its own,
        a spool of its own (a subdirectory named by its pid), and none of the parent's queue."""
        self._cond = threading.Condition()
        self._queue = collections.deque()
        self._idle = True
        self._counter = 0
        self._id_prefix = "%s-%d-%d" % (self._host, os.getpid(), time.time_ns())
        self.stats = Stats()
        if self._spool_dir:
            try:
                self._spool = _Spool(os.path.join(self._spool_dir, "child-%d" % os.getpid()))
            except (OSError, RuntimeError):
                self._spool = None
        self._thread = threading.Thread(target=self._run, name="vigil-logging", daemon=True)
        self._thread.start()

    # ---- the application's side ---------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = _dumps(self.to_event(record))
        except Exception:  # a record that cannot be rendered must not break the application
            self.handleError(record)
            return
        with self._cond:
            if self._closing:
                self.stats.dropped += 1
                return
            if len(self._queue) >= self.queue_capacity and not self._spill_locked():
                self.stats.dropped += 1
                return
            self._queue.append(line)
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def to_event(self, record: logging.LogRecord) -> Dict[str, Any]:
        """The ECS event of ``record`` (what is sent for it)."""
        with self._cond:
            self._counter += 1
            n = self._counter
        created = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        event: Dict[str, Any] = {
            "@timestamp": created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "event.id": "%s-%d" % (self._id_prefix, n),
            "message": record.getMessage(),
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "log.origin.file.name": record.pathname,
            "log.origin.file.line": record.lineno,
            "log.origin.function": record.funcName,
            "process.pid": record.process,
            "process.thread.name": record.threadName,
            "host.name": self._host,
        }
        if self.service:
            event["service.name"] = self.service
        if record.exc_info and record.exc_info[0] is not None:
            event["error.type"] = record.exc_info[0].__name__
            event["error.message"] = str(record.exc_info[1])
            event["error.stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = value
        security = getattr(record, EXTRA_KEY, None)
        if isinstance(security, dict):
            # The vocabulary's fields (its level included) win over the record's.
            event.update(security)
        return event

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until everything queued so far was delivered (or ``timeout`` seconds passed);
        whether it was."""
        deadline = time.monotonic() + (self.close_timeout if timeout is None else timeout)
        with self._cond:
            self._cond.notify_all()
            while self._queue or not self._idle or (self._spool and self._spool.pending()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        """Delivers what it can within ``close_timeout``; what is left stays in the spool (or is
        counted as dropped without one)."""
        if not self._closing:
            self.flush(self.close_timeout)
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(self.close_timeout + self.timeout)
            with self._cond:
                if self._queue:
                    if not self._spill_locked(everything=True):
                        self.stats.dropped += len(self._queue)
                        self._queue.clear()
                if self._spool is not None:
                    self._spool.close()
        super().close()

    # ---- the sender's side --------------------------------------------------------------

    def _spill_locked(self, everything: bool = False) -> bool:
        """Moves the memory queue to the spool as batches; whether it could."""
        if self._spool is None:
            return False
        while self._queue:
            lines = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            if self._spool.size() + sum(len(l) + 1 for l in lines) > self.spool_max_bytes:
                self._queue.extendleft(reversed(lines))
                return False
            try:
                self._spool.write(lines)
            except OSError:
                self._queue.extendleft(reversed(lines))
                return False
            self.stats.spooled += len(lines)
            if not everything:
                return True
        return True

    def _next_batch(self) -> Optional[tuple]:
        """The next batch to deliver: the oldest spooled one, else one from memory (written to
        the spool first when there is one). ``(lines, spool_name)`` or ``None``."""
        with self._cond:
            if self._spool is not None:
                name = self._spool.oldest()
                if name is not None:
                    try:
                        return self._spool.read(name), name
                    except (OSError, ValueError):
                        self._spool.quarantine(name)
                        return None
            if not self._queue:
                return None
            lines = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            self._idle = False
            if self._spool is not None:
                try:
                    return lines, self._spool.write(lines)
                except OSError:
                    pass
            return lines, None

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._cond:
                if not self._queue and not (self._spool and self._spool.pending()):
                    self._idle = True
                    self._cond.notify_all()
                    if self._closing:
                        return
                    self._cond.wait(self.flush_interval)
                    continue
                if len(self._queue) < self.batch_size and not self._closing and not (
                    self._spool and self._spool.pending()
                ):
                    # Give a small batch up to flush_interval to grow.
                    self._cond.wait(self.flush_interval)
            batch = self._next_batch()
            if batch is None:
                continue
            lines, spool_name = batch
            while True:
                try:
                    self._deliver(lines)
                    attempt = 0
                    break
                except _Retry as e:
                    self.stats.failures += 1
                    attempt += 1
                    delay = min(self.backoff_max, self.backoff_base * 2 ** min(attempt, 16))
                    delay = max(delay * random.uniform(0.5, 1.0), e.after or 0.0)
                    with self._cond:
                        if self._closing:
                            # Stops trying: the batch is in the spool, or it is lost.
                            if spool_name is None:
                                self.stats.dropped += len(lines)
                            self._idle = True
                            self._cond.notify_all()
                            return
                        if len(self._queue) >= self.queue_capacity:
                            self._spill_locked()
                        self._cond.wait(delay)
            with self._cond:
                if spool_name is not None and self._spool is not None:
                    self._spool.remove(spool_name)
                self._cond.notify_all()

    def _deliver(self, lines: List[str]) -> None:
        """Posts ``lines``; a refused batch is sent again one event at a time."""
        try:
            self._post(lines)
            self.stats.sent += len(lines)
        except _Refused:
            if len(lines) == 1:
                self.stats.rejected += 1
                return
            for line in lines:
                try:
                    self._post([line])
                    self.stats.sent += 1
                except _Refused:
                    self.stats.rejected += 1

    def _post(self, lines: List[str]) -> None:
        body = ("\n".join(lines) + "\n").encode("utf-8")
        key = "vigil-py-" + hashlib.sha256(body).hexdigest()[:32]
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            method="POST",
            headers={
                "Authorization": "Bearer " + self._token,
                "Content-Type": "application/x-ndjson",
                "Idempotency-Key": key,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.ssl_context) as r:
                r.read()
        except urllib.error.HTTPError as e:
            status = e.code
            after = _retry_after(e.headers.get("Retry-After"))
            e.close()
            if 400 <= status < 500 and status not in (401, 403, 408, 429):
                raise _Refused("HTTP %d" % status)
            raise _Retry("HTTP %d" % status, after)
        except (OSError, ValueError, http.client.HTTPException) as e:
            # URLError, timeouts, resets, a truncated or garbled answer: all worth a retry.
            raise _Retry(str(e))
        except Exception as e:  # the sender thread must never die of an answer
            raise _Retry("unexpected: %r" % (e,))


def _dumps(event: Dict[str, Any]) -> str:
    """One JSON line; NaN and infinities (not JSON) are written as text."""
    try:
        return json.dumps(event, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:
        clean = {k: (repr(v) if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v)
                 for k, v in event.items()}
        return json.dumps(clean, default=str, separators=(",", ":"), allow_nan=False)


def _retry_after(value: Optional[str]) -> Optional[float]:
    try:
        return min(300.0, max(0.0, float(value))) if value else None
    except ValueError:
        return None


class _Spool:
    """Batches waiting for Vigil's acknowledgement: one file per batch, named by a sequence
    number so they are delivered in order. A batch file is written whole (a temporary file,
    fsynced, renamed) and never changed: after a crash it goes again as the same bytes, under
    the same key."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        # One process per spool: two would number their batches alike and send each other's.
        self._lock = open(os.path.join(directory, "lock"), "a+b")
        try:
            import fcntl

            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock
            pass
        except OSError as e:
            self._lock.close()
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RuntimeError(
                    "spool_dir %s is in use by another process; give each process its own" % directory
                ) from None
            raise
        for name in os.listdir(directory):
            if name.endswith(".tmp"):  # a write a crash cut short: never acknowledged, never sent
                try:
                    os.remove(os.path.join(directory, name))
                except OSError:
                    pass
        self._names = sorted(n for n in os.listdir(directory) if n.endswith(_BATCH_SUFFIX))
        self._bytes = sum(os.path.getsize(os.path.join(directory, n)) for n in self._names)
        last = self._names[-1][: -len(_BATCH_SUFFIX)] if self._names else "0"
        self._seq = int(last) if last.isdigit() else 0

    def pending(self) -> bool:
        return bool(self._names)

    def close(self) -> None:
        """Releases the spool for the next process."""
        try:
            self._lock.close()
        except OSError:
            pass

    def size(self) -> int:
        return self._bytes

    def oldest(self) -> Optional[str]:
        return self._names[0] if self._names else None

    def write(self, lines: List[str]) -> str:
        self._seq += 1
        name = "%020d%s" % (self._seq, _BATCH_SUFFIX)
        data = ("\n".join(lines) + "\n").encode("utf-8")
        tmp = os.path.join(self.dir, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(self.dir, name))
        self._names.append(name)
        self._bytes += len(data)
        return name

    def read(self, name: str) -> List[str]:
        with open(os.path.join(self.dir, name), "rb") as f:
            text = f.read().decode("utf-8")
        lines = [l for l in text.split("\n") if l]
        if not lines:
            raise ValueError("empty batch")
        return lines

    def remove(self, name: str) -> None:
        path = os.path.join(self.dir, name)
        try:
            self._bytes -= os.path.getsize(path)
            os.remove(path)
        except OSError:
            pass
        if name in self._names:
            self._names.remove(name)

    def quarantine(self, name: str) -> None:
        """Sets aside a batch file that cannot be read (kept for a human, never resent)."""
        path = os.path.join(self.dir, name)
        try:
            self._bytes -= os.path.getsize(path)
            os.replace(path, path + ".bad")
        except OSError:
            pass
        if name in self._names:
            self._names.remove(name)
