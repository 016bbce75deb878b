"""CompiledGrammar -> tokens: the per-sequence :class:`~corral.Matcher`, the per-grammar runtime
state (recognizer, mask caches) and bitmask helpers.

Importing this package registers :func:`new_matcher` as what
:meth:`CompiledGrammar.matcher <corral.CompiledGrammar.matcher>` calls (the compiler never imports
the runtime).
"""

from __future__ import annotations

from corral.compiler.compiled import CompiledGrammar, register_matcher_factory
from corral.compiler.program import DFAProgram
from corral.runtime.cfg_matcher import CFGMatcher
from corral.runtime.guards import UniqueCFGMatcher, guards_of
from corral.runtime.matcher import Matcher, RegexMatcher

__all__ = ["new_matcher"]


def new_matcher(grammar: CompiledGrammar) -> Matcher:
    """A fresh matcher at the start of ``grammar``: a :class:`~corral.runtime.matcher.RegexMatcher`
    for a regular constraint, a :class:`~corral.runtime.cfg_matcher.CFGMatcher` otherwise (a
    :class:`~corral.runtime.guards.UniqueCFGMatcher` for a JSON Schema with ``uniqueItems``).

    Parameters
    ----------
    grammar:
        A compiled grammar.

    Returns
    -------
    Matcher
    """
    if isinstance(grammar.program, DFAProgram):
        return RegexMatcher(grammar)
    guards = guards_of(grammar)
    if guards is not None:
        return UniqueCFGMatcher(grammar, guards)
    return CFGMatcher(grammar)


register_matcher_factory(new_matcher)
