"""Optional dependencies, imported when a helper needs them.

corral compiles and masks with numpy and numba alone; torch and transformers are needed only by
the integrations (``pip install 'corral[transformers]'``). :func:`require` imports one of them, or
raises :class:`~corral.errors.MissingDependencyError` naming the extra that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from corral.errors import MissingDependencyError

__all__ = ["EXTRAS", "require"]

EXTRAS = {"torch": "transformers", "transformers": "transformers", "vllm": "vllm"}
"""The extra that installs each optional module."""


def require(module: str, user: str) -> ModuleType:
    """Import ``module``, or explain which extra installs it.

    Parameters
    ----------
    module:
        The module's import name (``"torch"``, ``"transformers"``).
    user:
        What needs it, for the message (``"corral.generate"``).

    Returns
    -------
    ModuleType
        The imported module.

    Raises
    ------
    MissingDependencyError
        When the module cannot be imported.

    Examples
    --------
    >>> require("json", "an example").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = EXTRAS.get(module)
        how = f"pip install 'corral[{extra}]'" if extra else f"pip install {module}"
        raise MissingDependencyError(f"{user} needs {module}, which is not installed; install it with: {how}") from e
