from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Literal

class Dispatch:
    """Base of the ops (elementwise ops, row ops, softmax_cross_entropy): small calls in C, else ``_call``."""

    _shortcuts: dict[str, Any]
    _small_name: str
    _small_loss: str
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

class Entry:
    """A method of an op (``grad``, ``value_and_grad``, ``backward``, a row op's ``backward``,
    a loss's ``value_and_grad``): small calls in C, else the method."""

    def __init__(self, method: Callable[..., Any],
                 kind: Literal["grad", "value_and_grad", "backward", "row_backward", "loss_value_and_grad"],
                 name: str = ...) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

def configure(override: ContextVar[str | None], backend_globals: dict[str, Any],
              small_rows: dict[str, dict[int, tuple[int, int, Any]]],
              small_losses: dict[str, dict[int, tuple[int, int, bool, Any]]], /) -> None: ...

def small_loss(address: int, x: Any, labels: Any, short: bool, grad: Any, scale: float, /) -> float: ...

def small_rows(address: int, in0: Any, in1: Any, out: Any, /) -> Any: ...
