"""The thread pool that encodes and decodes chunks.

Why not :class:`concurrent.futures.ThreadPoolExecutor`: its shutdown and
the interpreter's exit both wait for running work, and one chunk can take
seconds (16 MiB through lzma: about 7 s here), so Ctrl-C during a dump took
effect only once every in-flight chunk was done.  This pool's workers are
daemon threads and :meth:`ChunkPool.shutdown` with ``wait=False`` returns at
once: after an error or Ctrl-C the caller gets control back immediately,
pending chunks are cancelled, and chunks already running finish in the
background (their results are dropped) or are dropped with the process.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class ChunkPool(Executor):
    """A fixed set of daemon worker threads taking work from one queue."""

    def __init__(self, workers: int, name: str = "codecpickle") -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("cannot submit work to a pool that was shut down")
        future: Future[Any] = Future()
        self._queue.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once the queue is empty; with ``cancel_futures``
        work not yet started is cancelled; with ``wait`` return only once
        running work is done."""
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
                    del result
            # Drop references to chunk memory before waiting for more work.
            del future, fn, args, kwargs
