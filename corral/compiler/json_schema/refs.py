"""``$id``/``$anchor``/``$dynamicAnchor`` index, ``$ref``/``$dynamicRef`` resolution and the dynamic scope.

The functions taking ``self`` are methods of :class:`~corral.compiler.json_schema.compiler._Compiler`,
which binds them; a location's identity is its schema, base URI, pointer and dynamic scope (the
resources entered on the way), which ``$dynamicRef`` is resolved against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin


from corral.compiler.json_schema.algebra import (
    Expr, Node,
)
from corral.errors import GrammarError
from corral.compiler.json_schema.keywords import _SUBSCHEMA, _SUBSCHEMA_LISTS, _SUBSCHEMA_MAPS
from corral.compiler.json_schema.common import _escape_pointer

if TYPE_CHECKING:
    from corral.compiler.json_schema.compiler import _Compiler


ROOT_URI = "https://corral.invalid/root.json"  # base URI of a schema without $id


@dataclass
class _Resource:
    schema: Any
    pointer: str


def _join(base: str, ref: str) -> str:
    """``ref`` resolved against ``base`` (also for URNs, which :func:`urljoin` leaves alone)."""
    if ref.startswith("#"):
        return urldefrag(base)[0] + ref
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", ref):
        return ref
    return urljoin(base, ref)


def _index(self: _Compiler, schema: Any, base: str, pointer: str, top: bool = False) -> None:
    if isinstance(schema, dict):
        sid = schema.get("$id") if self.draft != "7" or "$ref" not in schema else None
        if isinstance(sid, str):
            base = _join(base, sid)
            self._ids[urldefrag(base)[0]] = _Resource(schema, pointer)
            frag = urldefrag(base)[1]
            if frag and not frag.startswith("/"):  # draft 7 "$id": "#foo" is an anchor
                self._ids[urldefrag(base)[0] + "#" + frag] = _Resource(schema, pointer)
        elif top:
            self._ids[base] = _Resource(schema, pointer)
        doc = urldefrag(base)[0]
        anchor = schema.get("$anchor")
        if isinstance(anchor, str):
            self._ids[doc + "#" + anchor] = _Resource(schema, pointer)
        dyn = schema.get("$dynamicAnchor")
        if isinstance(dyn, str) and self.draft != "7":
            self._ids.setdefault(doc + "#" + dyn, _Resource(schema, pointer))
            self._dyn.setdefault(doc, {})[dyn] = _Resource(schema, pointer)
        for k, v in schema.items():
            at = f"{pointer}/{_escape_pointer(k)}"
            if k in _SUBSCHEMA or (k == "items" and isinstance(v, dict)):
                self._index(v, doc, at)
            elif k in _SUBSCHEMA_LISTS or (k == "items" and isinstance(v, list)):
                for i, x in enumerate(v if isinstance(v, list) else []):
                    self._index(x, doc, f"{at}/{i}")
            elif k in _SUBSCHEMA_MAPS and isinstance(v, dict):
                for name, x in v.items():
                    self._index(x, doc, f"{at}/{_escape_pointer(name)}")


def resolve(self: _Compiler, ref: str, base: str, pointer: str, keyword: str = "$ref") -> tuple[Any, str, str] | None:
    uri = _join(base, ref)
    doc, frag = urldefrag(uri)
    res = self._ids.get(uri) if frag and not frag.startswith("/") else None
    if res is not None:
        return res.schema, doc, res.pointer
    res = self._ids.get(doc)
    if res is None:
        self.problem(pointer, keyword, f"cannot resolve {ref!r} (remote references are not fetched; "
                     "pass the document in registry=)")
        return None
    node: Any = res.schema
    ptr = res.pointer
    if frag:
        for raw in frag.lstrip("/").split("/"):
            if node is not res.schema and isinstance(node, dict) and isinstance(node.get("$id"), str) and (
                    self.draft != "7" or "$ref" not in node):
                doc = urldefrag(_join(doc, node["$id"]))[0]  # the innermost resource holding the target
            part = raw.replace("~1", "/").replace("~0", "~")
            part = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), part)
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                self.problem(pointer, keyword, f"{ref!r} points at nothing")
                return None
            ptr += "/" + _escape_pointer(part)
    return node, doc, ptr


def _enter(self: _Compiler, scope: tuple[str, ...], base: str) -> tuple[str, ...]:
    doc = urldefrag(base)[0]
    if doc in self._dyn and doc not in scope:
        return scope + (doc,)
    return scope


def _dynamic_ref(self: _Compiler, n: Node) -> Expr:
    schema, base, pointer, scope = n.payload
    ref = schema["$dynamicRef"]
    if not isinstance(ref, str):
        raise GrammarError(f"{pointer}/$dynamicRef: must be a string")
    target = self.resolve(ref, base, pointer + "/$dynamicRef", "$dynamicRef")
    if target is None:
        return self.relaxed()
    tschema, tbase, tptr = target
    frag = urldefrag(ref)[1]
    if frag and not frag.startswith("/") and isinstance(tschema, dict) and tschema.get("$dynamicAnchor") == frag:
        for doc in scope:  # outermost first
            res = self._dyn.get(doc, {}).get(frag)
            if res is not None:
                tschema, tbase, tptr = res.schema, doc, res.pointer
                break
    return self._target_node((tschema, tbase, tptr), scope)


def _target_node(self: _Compiler, target: tuple[Any, str, str], scope: tuple[str, ...]) -> Expr:
    """The node a reference leads to; evaluation enters the resource holding it (its own, if
    it has an ``$id``: :meth:`node` enters that one)."""
    tschema, tbase, tptr = target
    own = isinstance(tschema, dict) and isinstance(tschema.get("$id"), str)
    return self.node(tschema, tbase, tptr, scope if own else self._enter(scope, tbase))


def expand_ref_target(self: _Compiler, n: Node, kw: str) -> Expr:
    schema, base, pointer, scope = n.payload
    target = self.resolve(schema[kw], base, pointer + "/" + kw)
    if target is None:
        return self.relaxed()
    return self._target_node(target, scope)
