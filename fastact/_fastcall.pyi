from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Literal

class Dispatch:
    """Base of the ops (elementwise and row ops): small calls in C, else ``_call``."""

    _shortcuts: dict[str, Any]
    _small_name: str
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

class Entry:
    """A method of an op (``grad``, ``value_and_grad``, ``backward``, a row op's ``backward``):
    small calls in C, else the method."""

    def __init__(self, method: Callable[..., Any], kind: Literal["grad", "value_and_grad", "backward", "row_backward"],
                 name: str = ...) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

def configure(override: ContextVar[str | None], backend_globals: dict[str, Any],
              small_rows: dict[tuple[str, int], tuple[Any, int]], /) -> None: ...
