"""A compiled grammar or JSON Schema as bytes: arrays and JSON, validated before use.

:meth:`CompiledGrammar.to_bytes <corral.CompiledGrammar.to_bytes>`, pickling, and the disk cache
(:mod:`corral.compiler.cache`) of grammars and schemas all go through :func:`program_members` and
:func:`program_from_members`. What is saved is the :class:`~corral.compiler.program.EarleyProgram`'s
parser tables (productions, the stacked terminal automata, FOLLOW sets, the follow-filter automata)
and its IR without automata (names, patterns, positions: what messages need). Runtime state (the
recognizer's signatures, the lazy mask caches) is not saved: the runtime builds it afresh from the
tables. Loading never recompiles.

Every member is a ``.npy`` array written with ``allow_pickle=False``; the container is an
uncompressed zip whose members have a fixed timestamp, so the bytes of one compiled grammar are the
same on every call. Loading checks each array's dtype and shape and every index range before any
numba kernel sees it (see :func:`program_from_members`).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from corral.compiler.automaton import DEFAULT_MAX_STATES, ByteDFA
from corral.compiler.diagnostics import Diagnostic
from corral.compiler.grammar_ir import Guard, ObjectKeys, UniqueItems
from corral.compiler.limits import Limits
from corral.compiler.vocabulary import Vocabulary
from corral.errors import CorralError

if TYPE_CHECKING:
    from corral.compiler.compiled import CompiledGrammar

__all__ = ["PROGRAM_ARRAYS", "BadArtifact", "program_members", "program_from_members", "pack", "unpack",
           "to_bytes", "from_bytes"]

_FORMAT = 3  # 2: warnings are Diagnostic records; 3: the IR's run-time checks (uniqueItems)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

PROGRAM_ARRAYS: dict[str, tuple[np.dtype[Any], int]] = {
    "key": (np.dtype(np.uint8), 1),
    "meta": (np.dtype(np.uint8), 1),
    "info": (np.dtype(np.uint8), 1),
    "lhs": (np.dtype(np.int32), 1),
    "rhs": (np.dtype(np.int32), 1),
    "rhs_ptr": (np.dtype(np.int64), 1),
    "nullable": (np.dtype(np.bool_), 1),
    "trans": (np.dtype(np.int32), 2),
    "accepting": (np.dtype(np.bool_), 1),
    "term_of_state": (np.dtype(np.int32), 1),
    "term_start": (np.dtype(np.int64), 1),
    "follow": (np.dtype(np.int64), 1),
    "follow_ptr": (np.dtype(np.int64), 1),
    "filter_trans": (np.dtype(np.int32), 2),
    "filter_accepting": (np.dtype(np.bool_), 1),
    "filter_ptr": (np.dtype(np.int64), 1),
    "filter_start": (np.dtype(np.int64), 1),
}
"""Member name -> (dtype, rank) of a serialised grammar program."""


class BadArtifact(Exception):
    """Serialised grammar data that does not check out; the message says why."""


def _json_array(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, sort_keys=True, ensure_ascii=False).encode(), dtype=np.uint8)


def _options_json(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, Limits):
            out[k] = {"__limits__": asdict(v)}
        elif v is None or isinstance(v, (str, int, float, bool)):
            out[k] = v
    return out


def _options_from_json(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, dict) and set(v) == {"__limits__"} and isinstance(v["__limits__"], dict):
            try:
                out[k] = Limits(**v["__limits__"])
            except (TypeError, CorralError) as e:
                raise BadArtifact(f"its option {k!r} is not a valid Limits ({e})") from e
        else:
            out[k] = v
    return out


def _flat(lists: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in lists]) if lists else []
    flat = [v for x in lists for v in x]
    return np.asarray(flat, dtype=np.int64), ptr


def program_members(grammar: CompiledGrammar, key_payload: str) -> dict[str, np.ndarray]:
    """The arrays of a grammar-kind :class:`~corral.CompiledGrammar` (``key`` holds ``key_payload``).

    Parameters
    ----------
    grammar:
        A compiled grammar or JSON Schema (holding an :class:`~corral.compiler.program.EarleyProgram`).
    key_payload:
        Text stored as the ``key`` member (a cache key, or the header of :func:`to_bytes`).

    Returns
    -------
    dict
        Member name -> array, as described by :data:`PROGRAM_ARRAYS`.

    Raises
    ------
    CorralError
        When ``grammar`` is a regex (it has no parser tables).
    """
    from corral.compiler.program import EarleyProgram

    cfg = grammar.program
    if not isinstance(cfg, EarleyProgram):
        raise CorralError("only grammars and JSON Schemas have parser tables to serialise")
    tb, ir = cfg.tables, cfg.ir
    rhs, rhs_ptr = tb.rhs_flat, tb.rhs_ptr
    follow, follow_ptr = _flat([sorted(f) for f in tb.follow])
    blocks: list[ByteDFA] = []
    filter_ptr = [0]
    filter_start: list[int] = []
    for d, f in zip(tb.term_dfas, tb.term_filters):
        if f is d:  # most terminals filter with their own automaton: stored once, as an empty range
            filter_start.append(-1)
        else:
            blocks.append(f)
            filter_start.append(int(f.start))
        filter_ptr.append(filter_ptr[-1] + (0 if f is d else f.n_states))
    info = {
        "kind": grammar.kind,
        "source": grammar.source,
        "options": _options_json(grammar.options),
        "warnings": [asdict(w) for w in grammar.warnings],
        "nonterminals": tb.nonterminals,
        "terminals": tb.terminals,
        "start_prod": tb.start_prod,
        "seconds": tb.seconds,
        "mask_cache_bytes": int(cfg.mask_cache_bytes),
        "max_states": int(cfg.limits.max_states or DEFAULT_MAX_STATES),
        "ir": {
            "start": ir.start,
            "rules": {name: [list(alt) for alt in alts] for name, alts in ir.rules.items()},
            "terminals": [[t.name, t.pattern, t.line, t.column] for t in ir.terminals.values()],
            "ignore": list(ir.ignore),
            "source": ir.source,
            "rule_positions": {k: list(v) for k, v in ir.rule_positions.items()},
            "guards": {k: _guard_json(g) for k, g in ir.guards.items()},
        },
    }
    return {
        "key": np.frombuffer(key_payload.encode(), dtype=np.uint8),
        "meta": _json_array(asdict(grammar.stats)),
        "info": _json_array(info),
        "lhs": np.asarray(tb.lhs, dtype=np.int32),
        "rhs": rhs.astype(np.int32),
        "rhs_ptr": rhs_ptr,
        "nullable": np.asarray(tb.nullable, dtype=np.bool_),
        "trans": tb.trans.astype(np.int32, copy=False),
        "accepting": tb.accepting.astype(np.bool_, copy=False),
        "term_of_state": tb.term_of_state.astype(np.int32, copy=False),
        "term_start": np.asarray(tb.term_start, dtype=np.int64),
        "follow": follow,
        "follow_ptr": follow_ptr,
        "filter_trans": (np.concatenate([b.trans.astype(np.int32) for b in blocks]) if blocks
                         else np.zeros((0, 256), dtype=np.int32)),
        "filter_accepting": (np.concatenate([b.accepting.astype(np.bool_) for b in blocks]) if blocks
                             else np.zeros(0, dtype=np.bool_)),
        "filter_ptr": np.asarray(filter_ptr, dtype=np.int64),
        "filter_start": np.asarray(filter_start, dtype=np.int64),
    }


def _loads(a: np.ndarray, what: str) -> Any:
    try:
        return json.loads(a.tobytes().decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise BadArtifact(f"its {what} is not JSON") from e


def _check_ptr(ptr: np.ndarray, n: int, total: int, what: str) -> None:
    if ptr.shape != (n + 1,) or int(ptr[0]) != 0 or int(ptr[-1]) != total or (np.diff(ptr) < 0).any():
        raise BadArtifact(f"its {what} offsets are inconsistent")


def _guard_json(g: Guard) -> dict[str, Any]:
    if isinstance(g, ObjectKeys):
        return {"kind": "keys", "keys": list(g.keys), "must": list(g.must), "closed": g.closed,
                "spellings": [[s.hex(), k] for s, k in g.spellings]}
    return {"kind": "unique", "strings": None if g.strings is None else [s.hex() for s in g.strings], "n_values": g.n_values,
            "literals": g.literals, "numbers": g.numbers, "strings_any": g.strings_any, "containers": g.containers}


def _guard_of_json(d: Any) -> Guard:
    assert isinstance(d, dict)
    if d["kind"] == "keys":
        keys, must, sp = d["keys"], d["must"], d["spellings"]
        assert all(isinstance(x, str) for x in [*keys, *must]) and isinstance(d["closed"], bool)
        assert all(isinstance(a, str) and isinstance(b, str) for a, b in sp)
        return ObjectKeys(tuple(keys), tuple(must), tuple((bytes.fromhex(a), b) for a, b in sp), d["closed"])
    assert d["kind"] == "unique"
    strings = d["strings"]
    assert strings is None or (isinstance(strings, list) and all(isinstance(x, str) for x in strings))
    n = d["n_values"]
    assert n is None or (isinstance(n, int) and n >= 0)
    flags = [d[k] for k in ("literals", "numbers", "strings_any", "containers")]
    assert all(isinstance(x, bool) for x in flags)
    return UniqueItems(None if strings is None else tuple(bytes.fromhex(x) for x in strings), n, *flags)


def _is_diagnostic_list(x: Any) -> bool:
    fields = {"location", "keyword", "severity", "message", "code"}
    return isinstance(x, list) and all(
        isinstance(w, dict) and w.keys() == fields and isinstance(w["severity"], str) and isinstance(w["message"], str)
        and isinstance(w["code"], str) and all(w[k] is None or isinstance(w[k], str) for k in ("location", "keyword"))
        for w in x
    )


def _is_str_list(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(s, str) for s in x)


def program_from_members(a: dict[str, np.ndarray], vocab: Vocabulary) -> CompiledGrammar:
    """Rebuild a compiled grammar from :func:`program_members`'s arrays, after checking them.

    Checked before anything is built: every array's length agrees with the counts it implies;
    transitions lie in ``[-1, n)`` and each terminal's block of the stacked table only reaches its
    own states; terminal ids in bodies, FOLLOW sets and state owners are in range; every offset
    array starts at 0, never decreases and ends at its array's length; start states are inside
    their automata; the IR and stats have the expected fields and types.

    Parameters
    ----------
    a:
        Member name -> array, dtypes and ranks already checked against :data:`PROGRAM_ARRAYS`.
    vocab:
        The vocabulary the grammar is compiled against.

    Returns
    -------
    CompiledGrammar

    Raises
    ------
    BadArtifact
        When any check fails.
    """
    from corral.compiler.cache import _check_meta, _Rejected
    from corral.compiler.compiled import CompiledGrammar, CompileStats
    from corral.compiler.earley_tables import EarleyTables
    from corral.compiler.grammar_ir import GrammarIR, TerminalDef
    from corral.compiler.program import EarleyProgram
    from corral.compiler.regex import RegexLimits

    if set(a) != set(PROGRAM_ARRAYS):
        raise BadArtifact(f"it holds the arrays {sorted(a)}")
    info = _loads(a["info"], "description")
    meta = _loads(a["meta"], "stats")
    if not isinstance(info, dict):
        raise BadArtifact("its description is not an object")
    nts: list[str] = info.get("nonterminals")  # type: ignore[assignment]
    terms: list[str] = info.get("terminals")  # type: ignore[assignment]
    if not (_is_str_list(nts) and _is_str_list(terms) and nts):
        raise BadArtifact("its symbol names are malformed")
    n_nt, n_t = len(nts), len(terms)
    trans, acc, owner, tstart = a["trans"], a["accepting"], a["term_of_state"], a["term_start"]
    n = trans.shape[0]
    if trans.shape[1] != 256 or acc.shape != (n,) or owner.shape != (n,) or tstart.shape != (n_t,):
        raise BadArtifact("its terminal automata have inconsistent shapes")
    if n and (int(trans.min()) < -1 or int(trans.max()) >= n):
        raise BadArtifact("its terminal automata have transitions to states that do not exist")
    # each terminal owns one contiguous block, in order, holding its start state and closed under transitions
    if n_t:
        if n == 0 or int(owner[0]) != 0 or int(owner[-1]) != n_t - 1 or not (np.diff(owner.astype(np.int64)) >= 0).all() \
                or not (np.diff(owner.astype(np.int64)) <= 1).all():
            raise BadArtifact("its terminal automata are not stacked block by block")
    elif n:
        raise BadArtifact("its automata have states but no terminals")
    bounds = np.searchsorted(owner, np.arange(n_t + 1), side="left").astype(np.int64)
    if n_t and ((tstart < bounds[:-1]) | (tstart >= bounds[1:])).any():
        raise BadArtifact("its terminals' start states are outside their automata")
    if n:
        lo, hi = bounds[owner], bounds[owner + 1]
        if ((trans >= 0) & ((trans < lo[:, None]) | (trans >= hi[:, None]))).any():
            raise BadArtifact("its terminal automata have transitions into other terminals")
    lhs, rhs, rhs_ptr, nullable = a["lhs"], a["rhs"], a["rhs_ptr"], a["nullable"]
    n_p = lhs.shape[0]
    _check_ptr(rhs_ptr, n_p, rhs.shape[0], "production")
    if nullable.shape != (n_nt,) or (n_p and (int(lhs.min()) < 0 or int(lhs.max()) >= n_nt)):
        raise BadArtifact("its productions name nonterminals that do not exist")
    if rhs.shape[0] and (int(rhs.max()) >= n_nt or int(rhs.min()) < -1 - n_t or (rhs == -1).any()):
        raise BadArtifact("its production bodies name symbols that do not exist")
    start_prod = info.get("start_prod")
    if not (isinstance(start_prod, int) and 0 <= start_prod < n_p and int(lhs[start_prod]) == 0):
        raise BadArtifact("its start production is not a production of $start")
    follow, follow_ptr = a["follow"], a["follow_ptr"]
    _check_ptr(follow_ptr, n_t, follow.shape[0], "FOLLOW")
    if follow.shape[0] and (int(follow.min()) < 0 or int(follow.max()) >= n_t):
        raise BadArtifact("its FOLLOW sets name terminals that do not exist")
    ftrans, facc, fptr, fstart = a["filter_trans"], a["filter_accepting"], a["filter_ptr"], a["filter_start"]
    if ftrans.shape[1] != 256 or facc.shape != (ftrans.shape[0],) or fstart.shape != (n_t,):
        raise BadArtifact("its filter automata have inconsistent shapes")
    _check_ptr(fptr, n_t, ftrans.shape[0], "filter automaton")
    try:
        meta = _check_meta(meta, n)
    except _Rejected as e:
        raise BadArtifact(str(e)) from e
    ir_d = info.get("ir")
    try:
        assert isinstance(ir_d, dict) and isinstance(info["kind"], str) and isinstance(info["source"], str)
        assert isinstance(info["options"], dict) and _is_diagnostic_list(info["warnings"])
        assert isinstance(info["seconds"], (int, float)) and isinstance(info["mask_cache_bytes"], int)
        assert isinstance(info["max_states"], int) and info["max_states"] > 0 and info["mask_cache_bytes"] >= 0
        ir = GrammarIR(
            start=str(ir_d["start"]),
            rules={str(k): [tuple(str(s) for s in alt) for alt in alts] for k, alts in ir_d["rules"].items()},
            terminals={str(t[0]): TerminalDef(str(t[0]), str(t[1]), t[2], t[3]) for t in ir_d["terminals"]},
            ignore=tuple(str(s) for s in ir_d["ignore"]),
            source=str(ir_d["source"]),
            rule_positions={str(k): (int(v[0]), int(v[1])) for k, v in ir_d["rule_positions"].items()},
            guards={str(k): _guard_of_json(v) for k, v in ir_d["guards"].items()},
        )
    except (AssertionError, KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise BadArtifact("its description lacks fields or has fields of the wrong type") from e
    options = _options_from_json(info["options"])

    # -- build (no compiling: only views and lists of the checked arrays) -----------------------------
    rp = rhs_ptr.tolist()
    rhs_l = rhs.tolist()
    bodies = [tuple(rhs_l[rp[i]:rp[i + 1]]) for i in range(n_p)]
    lhs_l = lhs.tolist()
    prods_of: list[list[int]] = [[] for _ in range(n_nt)]
    for p, x in enumerate(lhs_l):
        prods_of[x].append(p)
    bl = bounds.tolist()
    term_dfas: list[ByteDFA] = []
    filters: list[ByteDFA] = []
    fp = fptr.tolist()
    for t in range(n_t):
        lo_t, hi_t = bl[t], bl[t + 1]
        block = trans[lo_t:hi_t]
        d = ByteDFA(np.where(block >= 0, block - lo_t, -1).astype(block.dtype), acc[lo_t:hi_t].copy(),
                    int(tstart[t]) - lo_t)
        term_dfas.append(d)
        if fp[t] == fp[t + 1]:
            filters.append(d)
            continue
        ft = ftrans[fp[t]:fp[t + 1]]
        k = ft.shape[0]
        if int(ft.min()) < -1 or int(ft.max()) >= k or not 0 <= int(fstart[t]) < k:
            raise BadArtifact("its filter automata have states that do not exist")
        filters.append(ByteDFA(ft.copy(), facc[fp[t]:fp[t + 1]].copy(), int(fstart[t])))
    fl = follow.tolist()
    ffp = follow_ptr.tolist()
    tables = EarleyTables(
        nonterminals=list(nts), terminals=list(terms), lhs=lhs_l, rhs=bodies, prods_of=prods_of,
        nullable=nullable.tolist(), start_prod=start_prod, trans=trans, accepting=acc,
        accepting_list=acc.tolist(), term_start=tstart.tolist(),
        term_nullable=[bool(acc[s]) for s in tstart.tolist()], term_of_state=owner, term_dfas=term_dfas,
        term_filters=filters, follow=[frozenset(fl[ffp[t]:ffp[t + 1]]) for t in range(n_t)],
        seconds=float(info["seconds"]), rhs_flat=rhs.astype(np.int32), rhs_ptr=rhs_ptr.astype(np.int64),
    )
    if info["kind"] == "regex":
        raise BadArtifact("it holds parser tables for a regex")
    program = EarleyProgram(ir, tables, info["mask_cache_bytes"], RegexLimits(max_states=info["max_states"]))
    return CompiledGrammar(kind=info["kind"], source=info["source"], vocab=vocab, program=program,
                           stats=CompileStats(**meta), options=options,
                           warnings=[Diagnostic(**w) for w in info["warnings"]])


def pack(members: dict[str, bytes]) -> bytes:
    """Members (``.npy`` bytes) as an uncompressed zip with fixed timestamps, in name order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name in sorted(members):
            z.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), members[name])
    return buf.getvalue()


def unpack(data: bytes, allowed: set[str]) -> dict[str, bytes]:
    """The members of :func:`pack`'s output; :class:`BadArtifact` when it is not such a zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names) or not set(names) <= allowed:
                raise BadArtifact(f"it holds unexpected members {sorted(names)}")
            if any(i.compress_type != zipfile.ZIP_STORED for i in infos) or sum(i.file_size for i in infos) > len(data):
                raise BadArtifact("its members are compressed or larger than the data")
            return {i.filename: z.read(i) for i in infos}
    except BadArtifact:
        raise
    except Exception as e:  # truncated, garbled or foreign: zipfile raises many kinds
        raise BadArtifact(f"it cannot be read ({type(e).__name__}: {e})") from e


def _header(kind: str, vocab: Vocabulary) -> str:
    from corral import __version__

    return json.dumps({"artifact": _FORMAT, "corral": __version__, "kind": kind, "vocab": vocab.hash}, sort_keys=True)


def to_bytes(grammar: CompiledGrammar) -> bytes:
    """See :meth:`corral.CompiledGrammar.to_bytes`."""
    from corral.compiler.cache import _npy
    from corral.compiler.program import DFAProgram

    program = grammar.program
    if isinstance(program, DFAProgram):
        dfa = program.dfa
        header = {"artifact": _FORMAT, "kind": "regex", "vocab": grammar.vocab.hash, "source": grammar.source,
                  "max_bytes": int(program.mask_cache_bytes)}
        arrays = {
            "key": np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
            "meta": _json_array(asdict(grammar.stats)),
            "trans": dfa.trans.astype(np.int32, copy=False),
            "accepting": dfa.accepting.astype(np.bool_, copy=False),
            "start": np.array(dfa.start, dtype=np.int64),
        }
        return pack({k: _npy(v) for k, v in arrays.items()})
    return pack({k: _npy(v) for k, v in program_members(grammar, _header(grammar.kind, grammar.vocab)).items()})


def from_bytes(data: bytes, vocab: Vocabulary) -> CompiledGrammar:
    """See :meth:`corral.CompiledGrammar.from_bytes`."""
    from corral.compiler.cache import _ARRAYS, _check_arrays, _check_meta, _parse_npy, _Rejected
    from corral.compiler.compiled import CompiledGrammar, CompileStats
    from corral.compiler.program import dfa_program

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CorralError(f"from_bytes needs bytes, not {type(data).__name__}")
    if not isinstance(vocab, Vocabulary):
        raise CorralError(f"vocab must be a corral.Vocabulary, not {type(vocab).__name__}")
    try:
        members = unpack(bytes(data), set(PROGRAM_ARRAYS) | set(_ARRAYS))
        spec = PROGRAM_ARRAYS if "info" in members else _ARRAYS
        a = {name: _parse_npy(name, raw, spec) for name, raw in members.items()}
        header = _loads(a.get("key", np.zeros(0, np.uint8)), "header")
        if not isinstance(header, dict) or header.get("artifact") != _FORMAT:
            raise BadArtifact("it is not a corral compiled grammar of this format")
        if header.get("vocab") != vocab.hash:
            raise CorralError(
                "these bytes were compiled for another vocabulary (its hash differs); "
                "pass the Vocabulary the grammar was compiled with"
            )
        if "info" in members:
            if header != json.loads(_header(str(header.get("kind")), vocab)):
                raise BadArtifact("it was written by another corral version")
            return program_from_members(a, vocab)
        if set(a) != {"key", "meta", "trans", "accepting", "start"}:
            raise BadArtifact(f"it holds the arrays {sorted(a)}")
        _check_arrays(a, vocab)
        meta = _check_meta(_loads(a["meta"], "stats"), a["trans"].shape[0])
        source, max_bytes = header.get("source"), header.get("max_bytes")
        if not isinstance(source, str) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise BadArtifact("its header lacks the pattern or the mask budget")
    except _Rejected as e:
        raise CorralError(f"cannot load the compiled grammar: {e}") from None
    except BadArtifact as e:
        raise CorralError(f"cannot load the compiled grammar: {e}") from None
    dfa = ByteDFA(a["trans"], a["accepting"], int(a["start"]))
    return CompiledGrammar(kind="regex", source=source, vocab=vocab, program=dfa_program(dfa, vocab, max_bytes=max_bytes),
                           stats=CompileStats(**meta))

