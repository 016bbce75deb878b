"""Bundled grammars (JSON, SQL, ...), loadable by name once context-free grammar support lands."""
