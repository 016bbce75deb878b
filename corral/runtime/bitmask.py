"""Packed token bitmasks: allocation, conversion to booleans, application to logits.

A mask over ``V`` tokens is ``uint32[ceil(V / 32)]`` (or ``[batch, ceil(V / 32)]``); bit ``t & 31``
of word ``t >> 5`` is token ``t``. torch is imported only by :func:`apply_token_bitmask_`.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numba import njit

__all__ = ["allocate_token_bitmask", "bitmask_to_bool", "apply_token_bitmask_"]


def allocate_token_bitmask(batch_size: int, vocab_size: int) -> np.ndarray:
    """A zeroed ``uint32[batch_size, ceil(vocab_size / 32)]`` bitmask (nothing allowed).

    Examples
    --------
    >>> allocate_token_bitmask(2, 100).shape
    (2, 4)
    """
    return np.zeros((batch_size, (vocab_size + 31) // 32), dtype=np.uint32)


def bitmask_to_bool(mask: np.ndarray, vocab_size: int) -> np.ndarray:
    """Unpack a bitmask into ``bool[..., vocab_size]``.

    Plain-Python equivalent: ``[(mask[t >> 5] >> (t & 31)) & 1 == 1 for t in range(vocab_size)]``.

    Examples
    --------
    >>> bitmask_to_bool(np.array([0b101], dtype=np.uint32), 4).tolist()
    [True, False, True, False]
    """
    m = np.ascontiguousarray(mask, dtype="<u4")
    bits = np.unpackbits(m.view(np.uint8), axis=-1, bitorder="little")
    if bits.shape[-1] < vocab_size:
        pad = np.zeros(bits.shape[:-1] + (vocab_size - bits.shape[-1],), dtype=np.uint8)
        bits = np.concatenate([bits, pad], axis=-1)
    return bits[..., :vocab_size].astype(bool)


@njit(cache=True, nogil=True)
def apply_bitmask_rows(logits, masks):  # type: ignore[no-untyped-def]
    """Set ``logits[r, t] = -inf`` for every token ``t`` not allowed by ``masks[r]``, in place.

    Plain-Python equivalent::

        for r in range(logits.shape[0]):
            for t in range(logits.shape[1]):
                w = t >> 5
                if w >= masks.shape[1] or not (masks[r, w] >> (t & 31)) & 1:
                    logits[r, t] = -inf

    Whole words of allowed tokens are skipped, so a permissive mask costs little.
    """
    ninf = -np.inf
    v = logits.shape[1]
    for r in range(logits.shape[0]):
        row = logits[r]
        m = masks[r]
        words = min(m.shape[0], (v + 31) // 32)
        for w in range(words):
            word = m[w]
            if word == 0xFFFFFFFF:
                continue
            base = w * 32
            for j in range(32):
                i = base + j
                if i >= v:
                    break
                if not (word >> j) & 1:
                    row[i] = ninf
        for i in range(words * 32, v):
            row[i] = ninf


def apply_token_bitmask_(logits: Any, mask: Any) -> Any:
    """Set disallowed logits to ``-inf`` in place, on the logits' own device.

    Parameters
    ----------
    logits:
        ``torch.Tensor`` of shape ``[V]`` or ``[batch, V]`` (CPU or CUDA). ``V`` may differ from
        the mask's width: tokens past the mask are disallowed.
    mask:
        The bitmask (numpy or torch ``uint32``/``int32``), ``[W]`` or ``[batch, W]``. Only the mask
        (``V/8`` bytes) is moved to the device, never the logits to the host.

    Returns
    -------
    torch.Tensor
        ``logits``, modified.

    Raises
    ------
    ValueError
        If the batch dimensions do not match.
    """
    import torch

    if (
        logits.device.type == "cpu"
        and logits.dtype in (torch.float32, torch.float64)
        and logits.is_contiguous()
        and logits.dim() in (1, 2)
    ):
        # CPU: one pass of a numba kernel over the logits' own memory (no unpacked bool array).
        m_np = mask.cpu().numpy() if not isinstance(mask, np.ndarray) else mask
        m_np = np.ascontiguousarray(m_np).view(np.uint32) if m_np.dtype == np.int32 else np.ascontiguousarray(m_np, dtype=np.uint32)
        lg = logits.detach().numpy()
        if lg.ndim == 1:
            lg = lg.reshape(1, -1)
        if m_np.ndim == 1:
            m_np = m_np.reshape(1, -1)
        if m_np.ndim != 2 or m_np.shape[0] != lg.shape[0]:
            raise ValueError(f"mask shape {tuple(m_np.shape)} does not fit logits shape {tuple(logits.shape)}")
        apply_bitmask_rows(lg, m_np)
        return logits
    if isinstance(mask, np.ndarray):
        arr = np.ascontiguousarray(mask, dtype=np.uint32)
        if sys.byteorder != "little":  # pragma: no cover
            arr = arr.astype("<u4")
        if not arr.flags.writeable:  # torch cannot wrap read-only memory; a mask is V/8 bytes
            arr = arr.copy()
        m = torch.from_numpy(arr.view(np.int32))
    else:
        m = mask.to(torch.int32) if mask.dtype != torch.int32 else mask
    if m.device != logits.device:
        m = m.to(logits.device, non_blocking=True)
    if m.dim() != logits.dim():
        raise ValueError(f"mask has {m.dim()} dimensions but logits have {logits.dim()}")
    if m.dim() == 2 and m.shape[0] != logits.shape[0]:
        raise ValueError(f"mask batch {m.shape[0]} != logits batch {logits.shape[0]}")
    v = logits.shape[-1]
    shifts = torch.arange(32, device=logits.device, dtype=torch.int32)
    bits = ((m.unsqueeze(-1) >> shifts) & 1).flatten(-2)  # [..., W * 32]
    width = bits.shape[-1]
    if width >= v:
        allowed = bits[..., :v].bool()
    else:
        allowed = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
        allowed[..., :width] = bits.bool()
    logits.masked_fill_(~allowed, float("-inf"))
    return logits
