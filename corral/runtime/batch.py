"""Masks for many sequences at once: :func:`fill_next_token_bitmask`.

A serving loop needs one mask per sequence of its batch before every forward step, and the
slowest sequence stalls all the others. Rows whose mask is already known (an eager regex table,
a grammar mask cached for that chart set, a finished sequence) are copied in the calling thread;
the rest are computed there too for the fill's first ``PARALLEL_AFTER_S`` (most fills end within
it), then, when some are left, in a persistent pool of worker threads with the calling one. The
mask kernels are numba functions compiled with ``nogil=True``, so the threads run them on several
cores at once; the Python parts of a miss (the Earley closure, cache bookkeeping) still hold the
GIL, and the misses of one grammar share that grammar's mask-store lock (see
``docs/performance.md``).
"""

from __future__ import annotations

import operator
import os
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from corral.errors import CorralError
from corral.runtime.matcher import Matcher

__all__ = ["default_threads", "fill_next_token_bitmask"]

#: Seconds a fill computes rows in the calling thread before worker threads join it (see
#: :func:`fill_next_token_bitmask`): below this, hand-offs cost more than the threads save.
PARALLEL_AFTER_S = 0.001

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def default_threads() -> int:
    """The number of threads :func:`fill_next_token_bitmask` uses when ``threads`` is ``None``:
    the CPUs this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _pool(workers: int) -> ThreadPoolExecutor:
    """The shared pool, with at least ``workers`` threads (idle when unused). A bigger request
    replaces it; the old pool is not shut down (a fill running in another thread may still be
    submitting to it) and its threads end once it is no longer referenced."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < workers:
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="corral-mask")
            _POOL_SIZE = workers
        return _POOL


def _as_rows(bitmask: Any) -> np.ndarray:
    """``bitmask`` as a writable ``uint32[batch, words]`` NumPy view (a CPU torch tensor's memory
    is shared, not copied)."""
    arr = bitmask
    if not isinstance(arr, np.ndarray):
        to_numpy = getattr(arr, "numpy", None)
        if to_numpy is None:
            raise CorralError(
                f"bitmask must be a uint32 NumPy array from corral.allocate_token_bitmask (or a CPU "
                f"int32 tensor), got {type(bitmask).__name__}")
        try:
            arr = to_numpy()
        except Exception as e:  # e.g. a CUDA tensor
            raise CorralError(f"bitmask must live in host memory: {e}") from e
    if arr.dtype == np.int32:
        arr = arr.view(np.uint32)
    if arr.dtype != np.uint32:
        raise CorralError(f"bitmask must have dtype uint32 (or int32), got {arr.dtype}")
    if arr.ndim != 2:
        raise CorralError(f"bitmask must have shape (batch, words), got shape {tuple(arr.shape)}")
    if not arr.flags.writeable:
        raise CorralError("bitmask is read-only; allocate one with corral.allocate_token_bitmask")
    return arr


def fill_next_token_bitmask(
    matchers: Sequence[Matcher],
    bitmask: Any,
    *,
    indices: Iterable[int] | None = None,
    threads: int | None = None,
) -> None:
    """Write each matcher's :meth:`~corral.Matcher.next_token_mask` into its row of ``bitmask``.

    Row ``i`` gets exactly what ``matchers[i].next_token_mask()`` returns: the allowed tokens,
    EOS ids included exactly when the text is complete; a finished matcher (EOS accepted) gets an
    all-zero row. Masks not cached yet are computed in parallel threads once the fill has run
    for ``PARALLEL_AFTER_S`` in the calling thread (shorter fills are faster without them).

    Plain-Python equivalent::

        for i in (range(len(matchers)) if indices is None else indices):
            bitmask[i] = matchers[i].next_token_mask()

    Parameters
    ----------
    matchers:
        One matcher per sequence (regex, grammar or JSON Schema matchers may be mixed), all over
        vocabularies of the same size. Each matcher must not be used by another thread meanwhile.
    bitmask:
        ``uint32[batch, ceil(vocab.size / 32)]`` with ``batch >= len(matchers)``, as made by
        :func:`corral.allocate_token_bitmask` (a CPU ``int32`` torch tensor is also accepted and
        written in place). Rows not filled are left as they are.
    indices:
        The rows to fill (each an index into ``matchers``); all of them by default.
    threads:
        How many threads compute masks, the calling thread included: ``1`` computes everything in
        the calling thread; ``None`` uses every CPU this process may run on (at most one thread
        per mask to compute).

    Raises
    ------
    CorralError
        If an element of ``matchers`` is not a :class:`~corral.Matcher`, the matchers' vocabulary
        sizes differ, ``bitmask`` is not a writable 2-D ``uint32`` array whose width fits that
        vocabulary and whose rows cover every matcher, an index is out of range or not an
        integer, or ``threads`` is not a positive integer.

    Examples
    --------
    >>> import corral
    >>> vocab = corral.Vocabulary([b"a", b"b", b"ab", None], eos_token_ids=[3])
    >>> g = corral.compile_regex("(ab)+", vocab)
    >>> ms = [g.matcher(), g.matcher()]
    >>> ms[1].accept_token(2)
    True
    >>> bm = corral.allocate_token_bitmask(2, vocab.size)
    >>> corral.fill_next_token_bitmask(ms, bm)
    >>> bm[:, 0].tolist()
    [5, 13]
    """
    if isinstance(matchers, Matcher) or not isinstance(matchers, Sequence):
        raise CorralError(f"matchers must be a sequence of corral.Matcher, got {type(matchers).__name__}")
    n = len(matchers)
    size = -1
    for i, m in enumerate(matchers):
        if not isinstance(m, Matcher):
            raise CorralError(f"matchers[{i}] is a {type(m).__name__}, not a corral.Matcher")
        s = m.grammar.vocab.size
        if size < 0:
            size = s
        elif s != size:
            raise CorralError(
                f"matchers[{i}] has a vocabulary of {s} ids but matchers[0] has {size}: one bitmask "
                f"holds masks of one vocabulary size")
    rows = _as_rows(bitmask)
    if rows.shape[0] < n:
        raise CorralError(f"bitmask has {rows.shape[0]} rows for {n} matchers")
    if n and rows.shape[1] != (size + 31) // 32:
        raise CorralError(
            f"bitmask has {rows.shape[1]} words per row but a vocabulary of {size} ids needs "
            f"{(size + 31) // 32}; allocate it with corral.allocate_token_bitmask(batch, {size})")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise CorralError(f"threads must be a positive integer or None, got {threads!r}")
    if indices is None:
        order = list(range(n))
    else:
        order = []
        seen = set()
        for k in indices:
            if isinstance(k, bool):
                raise CorralError(f"an index must be an integer, got {k!r}")
            try:
                i = operator.index(k)
            except TypeError:
                raise CorralError(f"an index must be an integer, got {type(k).__name__} {k!r}") from None
            if not 0 <= i < n:
                raise CorralError(f"index {k!r} is outside 0 .. {n - 1}" if n else "index given for no matchers")
            if i not in seen:
                seen.add(i)
                order.append(i)

    # Cheap rows first, in this thread: a known mask is a copy of V/8 bytes.
    todo: list[int] = []
    for i in order:
        ready = matchers[i]._mask_if_ready()
        if ready is not None:
            rows[i] = ready
        else:
            todo.append(i)
    if not todo:
        return
    want = default_threads() if threads is None else threads
    # Serial first: most fills are short (a warm miss is ~0.1 ms, mostly Python that holds the
    # GIL, so a second thread only adds hand-offs: 8 such rows took 2.3 ms on 2 threads against
    # 1.1 ms on one). The pool joins only a fill still running after PARALLEL_AFTER_S.
    start = time.perf_counter()
    k = 0
    while k < len(todo) and time.perf_counter() - start < PARALLEL_AFTER_S:
        i = todo[k]
        rows[i] = matchers[i].next_token_mask()
        k += 1
    todo = todo[k:]
    workers = min(want, len(todo))
    if workers <= 1:
        for i in todo:
            rows[i] = matchers[i].next_token_mask()
        return
    # Work-sharing: every thread takes the next row until none is left (list iteration is atomic
    # under the GIL), so one slow mask does not leave the other threads idle.
    it = iter(todo)

    def drain() -> None:
        for i in it:
            rows[i] = matchers[i].next_token_mask()

    pool = _pool(workers - 1)
    futures: list[Future[None]] = [pool.submit(drain) for _ in range(workers - 1)]
    err: BaseException | None = None
    try:
        drain()
    except BaseException as e:  # noqa: BLE001 - re-raised after the workers stop
        err = e
    for f in futures:
        try:
            f.result()
        except BaseException as e:  # noqa: BLE001
            if err is None:
                err = e
    if err is not None:
        raise err
