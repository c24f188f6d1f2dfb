"""What the command-line tools share: integer options with bounds, and progress.

Progress of the long runs (bench, the accuracy sweep) goes to stderr: a rich
progress bar where rich is installed and stderr is a terminal; otherwise one line
per step, so that a run in a log or CI shows where it is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def int_between(low: int, high: float = float("inf")) -> Callable[..., Any]:
    """An argparse type: an integer from ``low`` to ``high``, else a clear error (no traceback)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            bound = f"between {low} and {high}" if high != float("inf") else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is not {bound}")
        return value

    return parse


def track(jobs: Sequence[T], description: str, label: Any = str) -> Iterable[T]:
    """``jobs``, reporting each as it starts (``label(job)`` names it)."""
    if len(jobs) < 2:
        return jobs
    if sys.stderr.isatty():
        try:
            # (optional: rich is in the bench extra; without it, mypy finds no module)
            from rich.console import Console  # type: ignore[import-not-found, unused-ignore]
            from rich.progress import track as rich_track  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            pass
        else:
            tracked: Iterable[T] = rich_track(jobs, description=description, console=Console(stderr=True),
                                              transient=True)
            return tracked
    return _lines(jobs, description, label)


def _lines(jobs: Sequence[T], description: str, label: Any) -> Iterator[T]:
    for i, job in enumerate(jobs, 1):
        print(f"{description} [{i}/{len(jobs)}] {label(job)}", file=sys.stderr, flush=True)
        yield job
