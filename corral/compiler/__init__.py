"""Constraint -> :class:`~corral.CompiledGrammar`: vocabularies, regexes, automata, mask store."""
