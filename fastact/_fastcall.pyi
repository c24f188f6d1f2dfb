from contextvars import ContextVar
from typing import Any

class Dispatch:
    """Base of the elementwise ops: the call of a small ndarray in C, else ``_call``."""

    _shortcuts: dict[str, Any]
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

def configure(override: ContextVar[str | None], backend_globals: dict[str, Any], /) -> None: ...
