from contextvars import ContextVar
from types import MethodType
from typing import Any, Literal

class Dispatch:
    """Base of the elementwise ops: the call of a small ndarray in C, else ``_call``."""

    _shortcuts: dict[str, Any]
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

class Entry:
    """``op.grad``, ``op.value_and_grad`` or ``op.backward``: small calls in C, else the method."""

    def __init__(self, method: MethodType, kind: Literal["grad", "value_and_grad", "backward"]) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

def configure(override: ContextVar[str | None], backend_globals: dict[str, Any], /) -> None: ...
