"""Grammar-aligned sampling: :class:`ASAp` (adaptive sampling with approximate expected futures).

Masked decoding draws each token from ``p(t | w)`` restricted to the allowed tokens. The
distribution we want is the model conditioned on the whole output being valid, which draws ``t``
with probability proportional to ``p(t | w) · EFG(wt)``, where the *expected future
grammaticality* ``EFG(w)`` is the probability that the model, continuing from ``w``, produces a
valid complete output. ASAp (Park et al., "Grammar-Aligned Decoding", NeurIPS 2024) keeps an
estimate of ``EFG`` for every prefix it has sampled, in a trie:

* an unvisited prefix starts at 1 when the mask allows its last token (0 when it does not: those
  are never drawn);
* a visited prefix ``w`` has ``EFG(w) = Σ_t p(t | w) · EFG(wt)``, summed over the allowed
  tokens, with the estimates of its children; EOS children are complete outputs (``EFG = 1``);
* after each sample the estimates along its path are recomputed from their children, so the
  model's mass that was found to lead outside the constraint is taken away.

Each estimate only decreases, toward the true value, and the samples' distribution converges to
the conditional one. Estimates are kept as logarithms and recomputed from the children (a
running difference would cancel once they fall below the rounding error of the allowed mass,
and long prefixes' estimates underflow a float). Per prefix the trie keeps a few numbers (the
allowed masses of EOS and of the other tokens, their number); the allowed tokens'
log-probabilities, needed to draw at a prefix again without a forward pass, sit in a cache
bounded by ``max_memory_bytes``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from corral.errors import CorralError
from corral.runtime.arguments import token_list
from corral.runtime.bitmask import bitmask_to_bool
from corral.runtime.lm import LanguageModel
from corral.runtime.sampling import (
    Sample,
    Samples,
    _check_temperature,
    _Counter,
    _positive_int,
    _sample_from,
    check_model,
)

if TYPE_CHECKING:
    from corral.compiler.compiled import CompiledGrammar
    from corral.runtime.matcher import Matcher

__all__ = ["ASAp", "grammar_fingerprint"]

#: Version of the files :meth:`ASAp.save` writes.
ASAP_FORMAT = 1

#: Default bound on the trie and its cached distributions (bytes). A prefix inside a JSON string
#: allows most of a vocabulary: about 20 bytes per allowed token, 1 MB for SmolLM2's 49,152.
#: With SmolLM2 (0.5 GB) and HFLanguageModel's default cache (0.5 GB) the process stays under 2 GB.
DEFAULT_MAX_MEMORY = 256 << 20

_NODE_BYTES = 200  # a node's own bookkeeping (object, slots, dict entry), estimated

_ARRAYS = ("parent", "token", "log_p", "log_open", "log_eos", "n_open", "log_value", "dead")  # per node, in a saved file


def grammar_fingerprint(grammar: CompiledGrammar) -> str:
    """A SHA-256 of what defines ``grammar``'s language: kind, source, options and vocabulary."""
    h = hashlib.sha256()
    h.update(b"corral-grammar-v1|")
    h.update(grammar.kind.encode())
    h.update(b"|")
    h.update(grammar.source.encode("utf-8", errors="surrogatepass"))
    h.update(b"|")
    h.update(json.dumps(dict(grammar.options), sort_keys=True, default=repr).encode())
    h.update(b"|")
    h.update(grammar.vocab.hash.encode())
    return h.hexdigest()


class _Node:
    """A sampled prefix, in log space (the estimates of long prefixes underflow floats).

    ``log_p`` = log p(token | parent). Set on the first visit: ``log_open`` (log of the allowed
    mass of non-EOS tokens), ``log_eos`` (log of the allowed EOS mass: complete outputs, whose
    estimate is exactly 1) and ``n_open`` (how many non-EOS tokens are allowed). ``log_value``
    is the log of the EFG estimate (0 until visited: the mask's optimism); ``dead`` marks a
    prefix from which nothing can be drawn."""

    __slots__ = ("children", "dead", "log_eos", "log_open", "log_p", "log_value", "n_open", "parent", "token")

    def __init__(self, parent: _Node | None, token: int, log_p: float) -> None:
        self.parent = parent
        self.token = token
        self.log_p = log_p
        self.log_open: float | None = None
        self.log_eos = -math.inf
        self.n_open = 0
        self.log_value = 0.0
        self.dead = False
        self.children: dict[int, _Node] = {}

    def recompute(self) -> float:
        """``log EFG = log(eos mass + unvisited open mass + Σ_children p(c)·EFG(c))``, from the
        children's current estimates (no running sums: they would cancel catastrophically)."""
        if self.log_open is None:
            return self.log_value
        if self.dead:
            return -math.inf
        terms = [self.log_eos]
        kids = self.children
        if kids:
            lps = np.fromiter((c.log_p for c in kids.values()), dtype=np.float64, count=len(kids))
            vals = np.fromiter((c.log_value for c in kids.values()), dtype=np.float64, count=len(kids))
            terms.extend((lps + vals).tolist())
        else:
            lps = np.empty(0)
        if len(kids) < self.n_open and self.log_open > -math.inf:
            rest = 1.0 - float(np.exp(lps - self.log_open).sum()) if kids else 1.0
            if rest > 0.0:
                terms.append(self.log_open + math.log(rest))
        return _logsumexp(terms)


def _logsumexp(terms: list[float]) -> float:
    m = max(terms)
    if m == -math.inf:
        return -math.inf
    return m + math.log(math.fsum(math.exp(t - m) for t in terms))


class _Dist:
    """A visited prefix's allowed tokens (sorted ids), their log-probabilities, and the logs of
    the current estimates of the children they lead to (0 where unvisited; EOS stays 0)."""

    __slots__ = ("eos", "ids", "log_efg", "logp")

    def __init__(self, ids: np.ndarray, logp: np.ndarray, eos: np.ndarray) -> None:
        self.ids = ids
        self.logp = logp
        self.log_efg = np.zeros(ids.shape[0], dtype=np.float64)
        self.eos = eos  # bool per id: an EOS id

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.logp.nbytes + self.log_efg.nbytes + self.eos.nbytes) + 200

    def index(self, token: int) -> int:
        return int(np.searchsorted(self.ids, token))


class _Walk:
    """One sample in flight."""

    __slots__ = ("logprob", "matcher", "node", "path", "proposal", "tokens")

    def __init__(self, root: _Node, matcher: Matcher) -> None:
        self.node = root
        self.matcher = matcher
        self.tokens: list[int] = []
        self.logprob = 0.0
        self.proposal = 0.0
        self.path: list[_Node] = [root]


class ASAp:
    """A grammar-aligned sampler whose estimates persist across calls.

    Parameters
    ----------
    lm:
        The :class:`~corral.LanguageModel`.
    grammar:
        The constraint.
    prompt_ids:
        Tokens every context starts with.
    temperature:
        Applied to the model before the constraint.
    max_tokens:
        At most this many tokens besides EOS per sample (longer ones end incomplete).
    max_memory_bytes:
        Bound on the trie plus its cached distributions. Distributions are evicted least
        recently used first (drawing at such a prefix again costs a forward pass); when the
        trie's own nodes pass the bound, :meth:`sample` raises.

    Examples
    --------
    >>> import numpy as np, corral
    >>> class Table:  # after "a", the model ends 90% of the time; the constraint wants "ab"
    ...     vocab_size = 3
    ...     def next_token_logprobs(self, contexts):
    ...         return np.log([[0.5, 0.4, 0.1] if not c else [0.05, 0.05, 0.9] for c in contexts])
    >>> vocab = corral.Vocabulary([b"a", b"b", None], eos_token_ids=[2])
    >>> sampler = ASAp(Table(), corral.compile_regex("ab|b", vocab))
    >>> out = sampler.sample(200, seed=0)
    >>> round(sum(s.text == "b" for s in out) / 200, 1)  # exact conditional 0.94; masked decoding 0.44
    0.9
    """

    def __init__(
        self,
        lm: LanguageModel,
        grammar: CompiledGrammar,
        prompt_ids: Sequence[int] = (),
        *,
        temperature: float = 1.0,
        max_tokens: int = 256,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY,
    ) -> None:
        from corral.compiler.compiled import CompiledGrammar

        if not isinstance(grammar, CompiledGrammar):
            raise CorralError(f"grammar must be a corral.CompiledGrammar, not {type(grammar).__name__}")
        check_model(lm, grammar)
        self.lm = lm
        self.grammar = grammar
        self.prompt_ids: tuple[int, ...] = tuple(token_list(list(prompt_ids)))
        self.temperature = _check_temperature(temperature)
        self.max_tokens = _positive_int("max_tokens", max_tokens, 0)
        self.max_memory_bytes = _positive_int("max_memory_bytes", max_memory_bytes)
        self.root = _Node(None, -1, 1.0)
        self.samples_drawn = 0
        self._nodes = 1
        self._dists: OrderedDict[int, tuple[_Node, _Dist]] = OrderedDict()  # id(node) -> (node, dist)
        self._dist_bytes = 0
        self._eos = np.array(sorted(grammar.vocab.eos_token_ids), dtype=np.int64)

    # -- estimates ---------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        """Prefixes in the trie (the empty one included)."""
        return self._nodes

    @property
    def memory_bytes(self) -> int:
        """The trie's estimated size plus its cached distributions."""
        return self._nodes * _NODE_BYTES + self._dist_bytes

    def estimate(self, token_ids: Sequence[int] = ()) -> float:
        """The current estimate of the expected future grammaticality of a prefix.

        For the empty prefix it estimates the probability that the tempered model's output
        satisfies the constraint. Prefixes never sampled return 1 (the mask's optimism).
        """
        return math.exp(self.log_estimate(token_ids))

    def log_estimate(self, token_ids: Sequence[int] = ()) -> float:
        """The natural log of :meth:`estimate` (exact where the estimate underflows a float)."""
        node = self.root
        for t in token_list(list(token_ids)):
            child = node.children.get(t)
            if child is None:
                return 0.0
            node = child
        return node.log_value

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, n: int = 1, *, seed: int | None = None, batch_size: int = 1) -> Samples:
        """Draw ``n`` samples, updating the estimates after each batch.

        Parameters
        ----------
        n:
            How many samples.
        seed:
            Seeds the generator (same seed and same state: same samples).
        batch_size:
            Samples drawn together with the estimates of the batch's start (one batched model
            call per step for the prefixes not yet computed). 1 follows the paper exactly;
            larger batches converge the same way with fewer, larger model calls.

        Returns
        -------
        Samples
            ``log_weight`` is 0 for every sample.

        Raises
        ------
        CorralError
            If no output satisfying the constraint has positive probability under the model, or
            the trie outgrows ``max_memory_bytes``.
        """
        n = _positive_int("n", n)
        batch_size = _positive_int("batch_size", batch_size)
        rng = np.random.default_rng(seed)
        counter = _Counter(self.lm)
        started = time.perf_counter()
        out: list[Sample] = []
        while len(out) < n:
            got = self._batch(min(batch_size, n - len(out)), rng, counter)
            out.extend(got)
        self.samples_drawn += len(out)
        return Samples(out, "asap", counter.stats(started))

    def _batch(self, b: int, rng: np.random.Generator, counter: _Counter) -> list[Sample]:
        walks = [_Walk(self.root, self.grammar.matcher()) for _ in range(b)]
        done: list[Sample] = []
        while walks:
            self._visit([w for w in walks if self._dist(w.node) is None], counter)
            still: list[_Walk] = []
            for w in walks:
                node = w.node
                dist = self._dist(node)
                assert dist is not None
                lw = dist.logp + dist.log_efg
                top = float(lw.max()) if lw.shape[0] else -math.inf
                if top == -math.inf:
                    node.dead = True
                    self._update(w.path)  # a dead end: its estimate is 0 now, exactly
                    if self.root.log_value == -math.inf:
                        raise CorralError(
                            "no output that satisfies the constraint has positive probability under the model"
                        )
                    continue  # dropped; another walk replaces it
                c = np.cumsum(np.exp(lw - top))
                k = min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), c.shape[0] - 1)
                t = int(dist.ids[k])
                lp = float(dist.logp[k])
                q = float(lw[k]) - top - math.log(float(c[-1]))
                counter.tokens += 1
                if dist.eos[k]:
                    self._update(w.path)
                    done.append(_sample_from(w.tokens, self.grammar, True, w.logprob + lp, 0.0, w.proposal + q))
                    continue
                if len(w.tokens) >= self.max_tokens:
                    self._update(w.path)
                    done.append(_sample_from(w.tokens, self.grammar, False, w.logprob, 0.0, w.proposal))
                    continue
                child = node.children.get(t)
                if child is None:
                    child = node.children[t] = _Node(node, t, lp)
                    self._nodes += 1
                    if self._nodes * _NODE_BYTES > self.max_memory_bytes:
                        raise CorralError(
                            f"the ASAp trie passed max_memory_bytes={self.max_memory_bytes} "
                            f"({self._nodes} prefixes); raise the limit or start a new sampler"
                        )
                if not w.matcher.accept_token(t):  # pragma: no cover - the mask allowed it
                    raise CorralError(f"internal error: the matcher refused allowed token {t}")
                w.tokens.append(t)
                w.logprob += lp
                w.proposal += q
                w.node = child
                w.path.append(child)
                still.append(w)
            walks = still
            if not walks and len(done) < b:
                walks = [_Walk(self.root, self.grammar.matcher()) for _ in range(b - len(done))]
        return done

    def _dist(self, node: _Node) -> _Dist | None:
        got = self._dists.get(id(node))
        if got is None:
            return None
        self._dists.move_to_end(id(node))
        return got[1]

    def _visit(self, walks: list[_Walk], counter: _Counter) -> None:
        """Compute the distributions of the walks' current prefixes (one batched model call)."""
        if not walks:
            return
        unique: dict[int, _Walk] = {}
        for w in walks:
            unique.setdefault(id(w.node), w)
        todo = list(unique.values())
        size = self.grammar.vocab.size
        prompt = list(self.prompt_ids)
        lp = counter.logprobs([prompt + w.tokens for w in todo], self.temperature)
        masks = bitmask_to_bool(np.stack([w.matcher.next_token_mask() for w in todo]), size)
        counter.checks += len(todo)
        for j, w in enumerate(todo):
            ids = np.flatnonzero(masks[j]).astype(np.int32)
            logp = lp[j, ids]
            eos = np.isin(ids, self._eos)
            dist = _Dist(ids, logp, eos)
            node = w.node
            for t, child in node.children.items():
                dist.log_efg[dist.index(t)] = child.log_value
            if node.log_open is None:
                node.log_open = _logsumexp(logp[~eos].tolist() or [-math.inf])
                node.log_eos = _logsumexp(logp[eos].tolist() or [-math.inf])
                node.n_open = int((~eos).sum())
            self._store(node, dist)

    def _store(self, node: _Node, dist: _Dist) -> None:
        self._dists[id(node)] = (node, dist)
        self._dist_bytes += dist.nbytes
        budget = self.max_memory_bytes - self._nodes * _NODE_BYTES
        while self._dist_bytes > budget and len(self._dists) > 1:
            _, (_, old) = self._dists.popitem(last=False)
            self._dist_bytes -= old.nbytes

    def _update(self, path: list[_Node]) -> None:
        """Recompute the estimates along ``path`` (deepest first) from their children."""
        for node in reversed(path):
            if node.log_open is None:
                continue
            new = node.recompute()
            if new == node.log_value:
                continue
            node.log_value = new
            parent = node.parent
            if parent is not None:
                got = self._dists.get(id(parent))
                if got is not None:
                    got[1].log_efg[got[1].index(node.token)] = new

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the estimates (not the cached distributions) to ``path`` (NumPy ``.npz``, no pickle).

        The file records the format version, the grammar's and vocabulary's hashes, the prompt,
        the temperature and ``max_tokens``; :meth:`load` checks them.
        """
        nodes: list[_Node] = [self.root]
        parents = [-1]
        i = 0
        while i < len(nodes):
            for child in nodes[i].children.values():
                nodes.append(child)
                parents.append(i)
            i += 1
        header = {
            "format": ASAP_FORMAT,
            "grammar": grammar_fingerprint(self.grammar),
            "vocab": self.grammar.vocab.hash,
            "prompt_ids": list(self.prompt_ids),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "samples_drawn": self.samples_drawn,
        }
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            parent=np.array(parents, dtype=np.int64),
            token=np.array([nd.token for nd in nodes], dtype=np.int64),
            log_p=np.array([nd.log_p for nd in nodes], dtype=np.float64),
            log_open=np.array([np.nan if nd.log_open is None else nd.log_open for nd in nodes], dtype=np.float64),
            log_eos=np.array([nd.log_eos for nd in nodes], dtype=np.float64),
            n_open=np.array([nd.n_open for nd in nodes], dtype=np.int64),
            log_value=np.array([nd.log_value for nd in nodes], dtype=np.float64),
            dead=np.array([nd.dead for nd in nodes], dtype=np.bool_),
        )
        with open(path, "wb") as f:
            f.write(buf.getvalue())

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], lm: LanguageModel, grammar: CompiledGrammar,
        *, max_memory_bytes: int = DEFAULT_MAX_MEMORY,
    ) -> ASAp:
        """A sampler with the estimates :meth:`save` wrote, for the same grammar and vocabulary.

        Raises
        ------
        CorralError
            If the file is not an ASAp file of this version, or was made for another grammar or
            vocabulary.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("header", *_ARRAYS)}
            header = json.loads(arrays["header"].tobytes().decode())
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
            raise CorralError(f"{os.fspath(path)} is not an ASAp state file: {e}") from None
        if not isinstance(header, dict) or header.get("format") != ASAP_FORMAT:
            got = header.get("format") if isinstance(header, dict) else None
            raise CorralError(f"{os.fspath(path)} has ASAp format {got!r}; this corral reads format {ASAP_FORMAT}")
        if header.get("vocab") != grammar.vocab.hash:
            raise CorralError(f"{os.fspath(path)} was saved for another vocabulary than this grammar's")
        if header.get("grammar") != grammar_fingerprint(grammar):
            raise CorralError(f"{os.fspath(path)} was saved for another grammar; load it with the grammar it was made for")
        self = cls(
            lm, grammar, header["prompt_ids"], temperature=header["temperature"],
            max_tokens=header["max_tokens"], max_memory_bytes=max_memory_bytes,
        )
        self.samples_drawn = int(header.get("samples_drawn", 0))
        parent, token = arrays["parent"], arrays["token"]
        n = parent.shape[0]
        if not (n >= 1 and all(arrays[k].shape == (n,) for k in _ARRAYS)):
            raise CorralError(f"{os.fspath(path)} is damaged (array shapes differ)")
        nodes: list[_Node] = [self.root]
        for i in range(n):
            if i == 0:
                nd = self.root
            else:
                pi = int(parent[i])
                if not 0 <= pi < i:
                    raise CorralError(f"{os.fspath(path)} is damaged (node {i} has parent {pi})")
                nd = _Node(nodes[pi], int(token[i]), float(arrays["log_p"][i]))
                nodes[pi].children[nd.token] = nd
                nodes.append(nd)
            log_open = float(arrays["log_open"][i])
            nd.log_open = None if math.isnan(log_open) else log_open
            nd.log_eos = float(arrays["log_eos"][i])
            nd.n_open = int(arrays["n_open"][i])
            nd.log_value = float(arrays["log_value"][i])
            nd.dead = bool(arrays["dead"][i])
        self._nodes = n
        return self
