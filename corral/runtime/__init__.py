"""CompiledGrammar -> tokens: the per-sequence :class:`~corral.Matcher` and bitmask helpers."""
