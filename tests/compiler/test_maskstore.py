"""Token trie and mask-store kernels, each checked against its plain-Python reference."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from corral import Vocabulary, compile_regex
from corral.compiler.maskstore import (
    advance_token,
    n_words,
    token_trie,
    walk_state_mask,
    walk_state_mask_reference,
)
from corral.compiler.regex import regex_to_dfa
from corral.runtime.maskstore import DFAMaskStore

SMALL = Vocabulary(
    [b"a", b"ab", b"abc", b"b", b"ba", b"1", b"12", b"\xc3", b"\xa9", b"\xc3\xa9", b"ab", b" ", None, b"-"],
    eos_token_ids=[12],
)


def _walk(dfa, state, vocab):  # type: ignore[no-untyped-def]
    t = token_trie(vocab)
    out = np.zeros(n_words(vocab.size), dtype=np.uint32)
    walk_state_mask(dfa.trans, state, t.node_byte, t.node_depth, t.node_skip, t.tok_ptr, t.tok_ids, t.max_depth, out)
    return out


def test_trie_preorder_invariants() -> None:
    t = token_trie(SMALL)
    n = t.n_nodes
    for i in range(n):
        assert i < t.node_skip[i] <= n
        # every node inside the subtree is deeper
        assert all(t.node_depth[j] > t.node_depth[i] for j in range(i + 1, t.node_skip[i]))
    ends = sorted(int(x) for x in t.tok_ids)
    assert ends == sorted(i for i, b in enumerate(SMALL.token_bytes) if b)
    # duplicates (ids 1 and 10 are both b"ab") end at the same node
    node_of = {int(t.tok_ids[k]): i for i in range(n) for k in range(t.tok_ptr[i], t.tok_ptr[i + 1])}
    assert node_of[1] == node_of[10]


@pytest.mark.parametrize("pattern", [r"a+b?", r"(ab|ba)*", r"\d+", r"é|-", r"[^a]*", r"a(bc)?|1 2", r".*"])
def test_walk_kernel_equals_reference_small(pattern: str) -> None:
    dfa = regex_to_dfa(pattern)
    for s in range(dfa.n_states):
        assert np.array_equal(_walk(dfa, s, SMALL), walk_state_mask_reference(dfa, s, SMALL)), (pattern, s)


@pytest.mark.parametrize("pattern", [r"[0-9]{1,3}(\.[0-9]{1,3}){3}", r'"([^"\\]|\\["\\/bfnrt])*"', r"(?i)[a-z]+ing"])
def test_walk_kernel_equals_reference_llama3(pattern: str, llama3: tuple) -> None:
    _, vocab = llama3
    dfa = regex_to_dfa(pattern)
    for s in range(min(dfa.n_states, 4)):
        assert np.array_equal(_walk(dfa, s, vocab), walk_state_mask_reference(dfa, s, vocab)), (pattern, s)


def test_advance_token_equals_dfa_run() -> None:
    dfa = regex_to_dfa(r"(ab|ba)*1?")
    t = token_trie(SMALL)
    for s in range(dfa.n_states):
        for tok, b in enumerate(SMALL.token_bytes):
            expected = dfa.run(b, s) if b else -1
            assert advance_token(dfa.trans, s, t.flat, t.offsets, tok) == expected


def test_lazy_store_equals_eager_store() -> None:
    dfa = regex_to_dfa(r"(ab|b)*a?1{0,3}")
    eager = DFAMaskStore.build(dfa, SMALL)
    row = n_words(SMALL.size) * 4
    lazy = DFAMaskStore.build(dfa, SMALL, max_bytes=2 * row)
    assert eager.eager and not lazy.eager
    for s in list(range(dfa.n_states)) * 2:
        assert np.array_equal(eager.mask(s), lazy.mask(s))
        assert eager.count(s) == lazy.count(s)
        assert eager.single_token(s) == lazy.single_token(s)
    assert lazy.cached_states <= 2
    assert lazy.memory_bytes <= 2 * row


def test_store_masks_include_eos_exactly_when_accepting() -> None:
    dfa = regex_to_dfa(r"ab")
    store = DFAMaskStore.build(dfa, SMALL)
    for s in range(dfa.n_states):
        m = store.mask(s)
        has_eos = bool((m[12 >> 5] >> (12 & 31)) & 1)
        assert has_eos == bool(dfa.accepting[s])


def test_masks_are_read_only() -> None:
    g = compile_regex("a+", SMALL)
    with pytest.raises(ValueError):
        g.matcher().next_token_mask()[0] = 0


def _direct(dfa, state, vocab):  # type: ignore[no-untyped-def]
    """A state's own mask, EOS included, computed for that state alone."""
    out = _walk(dfa, state, vocab)
    if dfa.accepting[state]:
        for e in vocab.eos_token_ids:
            out[e >> 5] |= np.uint32(1 << (e & 31))
    return out


@pytest.mark.parametrize("pattern", [r"[a-z]{1,400}", r"(ab){0,300}1", r"[0-9a]{5,200}-", r"(a|b{2,4}){2,60}"])
def test_mask_classes_share_only_equal_masks(pattern: str) -> None:
    dfa = regex_to_dfa(pattern)
    store = DFAMaskStore.build(dfa, SMALL)
    assert store.n_classes < dfa.n_states
    for s in range(dfa.n_states):
        assert np.array_equal(store.mask(s), _direct(dfa, s, SMALL)), (pattern, s)


def test_mask_classes_on_llama3_counted_repetition(llama3: tuple) -> None:
    _, vocab = llama3
    dfa = regex_to_dfa(r"[^\"\\]{0,2000}")
    store = DFAMaskStore.build(dfa, vocab)
    # Tokens are at most 128 bytes, so states more than 128 bytes from the bound share masks:
    # about 128 positions times the UTF-8 sub-states, instead of 2001 times them.
    assert dfa.n_states > 16000 and store.n_classes < 1100
    for s in list(range(0, dfa.n_states, 97)) + list(range(dfa.n_states - 140, dfa.n_states)):
        assert np.array_equal(store.mask(s), _direct(dfa, s, vocab)), s


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_process_forked_after_compiling_can_compile_and_mask() -> None:
    vocab = Vocabulary([bytes([b]) for b in range(256)] + [b"ab", b"12", None], eos_token_ids=[258])
    parent = compile_regex(r"[a-z]{1,20}-\d{1,5}", vocab)  # eager, many classes: the parallel kernel ran
    assert parent.stats.eager and parent.stats.mask_classes > 1
    expected = compile_regex(r"(ab|12){1,9}x", vocab).matcher().next_token_mask().copy()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            import corral

            g = corral.compile_regex(r"(ab|12){1,9}x", vocab)
            same = np.array_equal(g.matcher().next_token_mask(), expected)
            s = corral.compile_json_schema({"type": "object", "properties": {"n": {"type": "integer"}}}, vocab)
            m = s.matcher()
            eos = (int(m.next_token_mask()[258 >> 5]) >> (258 & 31)) & 1 if m.accept_bytes(b'{"n": 12}') else 0
            ok = m.is_accepting() and eos == 1
            code = 0 if same and ok else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 300
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0


def test_threads_compiling_at_once_take_turns_on_the_parallel_kernel() -> None:
    # The fork-safe "workqueue" layer aborts the process when entered by two threads at once.
    vocab = Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256])
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(3):
                g = compile_regex("[a-%s]{1,%d}x" % ("abcdef"[i], 20 + j), vocab)
                assert g.stats.eager and g.stats.mask_classes > 1
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
