"""``python -m corral.cli``: the ``corral`` command."""

from corral.cli import console_main

console_main()
