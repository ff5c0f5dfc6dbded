"""The store as the asyncio server sees it: one writer thread, a few reader threads.

    astore = AsyncStore(store)
    rows = await astore.read(store.list_reports, None, 50)
    await astore.write(store.add_token, record)

SQLite allows one writer at a time, and the group-commit writer wants its batches to
follow each other without interleaving: so every write goes through one thread, in
order. Reads run beside it (WAL lets them), on a small pool so a slow read never
delays a commit.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from probelink.server.store.base import Store

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    def __init__(self, store: Store, readers: int = 4) -> None:
        self.store = store
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="store-reader")

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a write on the writer thread, after every write submitted before it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Finish what was submitted, then close the database."""
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.store.close()
