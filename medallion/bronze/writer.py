"""The destination's side of an ingest run, on a thread of its own.

The reader (medallion.bronze.ingest) reads and parses the stream while this thread writes what
it handed over (the server decodes, Python parses and the destination writes at the same time).
Work is taken in the order it is handed over: a spill before the batch that holds its commit.
The queue holds at most two items, so a fast source cannot pile up memory: the reader waits. An
error stops the writer and is raised in the reader at its next hand-over.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime
from typing import NamedTuple, Union

from medallion.bronze.destination import Batch, BatchResult, CapturedRow, Destination


class Spill(NamedTuple):
    xid: int | None
    rows: dict[str, list[CapturedRow]]
    early: tuple[int, object] | None = None  # (guessed commit_lsn, commit time): write it now too


class CaughtUp(NamedTuple):
    at: datetime


Work = Union[Spill, CaughtUp, Batch]


class Writer(threading.Thread):
    """Hands each piece of work to the destination; results and the committed position for the reader."""

    def __init__(self, destination: Destination) -> None:
        super().__init__(name="medallion-bronze-writer", daemon=True)
        self.destination = destination
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._results: queue.Queue = queue.Queue()
        self._outstanding = 0  # items handed over and not yet done
        self._lock = threading.Lock()
        self.committed_lsn = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if self.error is None:
                    self._do(item)
            except BaseException as exc:  # handed to the reader, which raises it
                self.error = exc
            finally:
                with self._lock:
                    self._outstanding -= 1

    def _do(self, item: Work) -> None:
        if isinstance(item, Spill):
            self.destination.spill(item.xid, item.rows, item.early)
        elif isinstance(item, CaughtUp):
            self.destination.caught_up(item.at)
        else:
            self._results.put(self.destination.write(item))
            self.committed_lsn = item.transactions[-1].commit_lsn

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, item: Work) -> None:
        self._raise()
        with self._lock:
            self._outstanding += 1
        while True:
            try:
                self._queue.put(item, timeout=1.0)
                return
            except queue.Full:
                self._raise()

    def idle(self) -> bool:
        self._raise()
        with self._lock:
            return self._outstanding == 0

    def results(self) -> list[BatchResult]:
        self._raise()
        done = []
        while not self._results.empty():
            done.append(self._results.get_nowait())
        return done

    def finish(self) -> None:
        """Wait until everything handed over is written."""
        while not self.idle():
            time.sleep(0.01)

    def stop(self) -> None:
        self._queue.put(None)
        self.join(timeout=60)
