"""The README's tables of ops, generated from the definitions.

``python -m fastact._docs`` rewrites the blocks of README.md between
``<!-- generated: NAME -->`` and ``<!-- end generated -->``; ``--check`` exits
non-zero where they differ from what the definitions give (the tests run it).
ACCURACY.md and BENCHMARKS.md are the reports of ``python -m fastact.accuracy
--report`` and ``python -m fastact bench --report``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from . import _activations, _rowops

README = Path(__file__).resolve().parent.parent / "README.md"


def _params(act: _activations.Activation, variants: list[_activations.Activation]) -> str:
    parts = [(f"**{p.name}**" if p.name in act.grad_params else p.name) + f"={p.default!r}"
             + (f" ({p.note})" if p.note else "") for p in act.params]
    if act.variant:
        others = [v.variant[2] for v in variants if v is not act and v.variant]
        parts.append(f"{act.variant[1]}={act.variant[2]!r}" + "".join(f" (or {o!r})" for o in others))
    return ", ".join(parts) or "-"


def _from_y(act: _activations.Activation) -> str:
    if act.df_from_y is None:
        return "no"
    return f"yes ({act.y_condition})" if act.y_condition else "yes"


def elementwise_table() -> list[str]:
    """One row per public elementwise op (variants of one op in one row)."""
    lines = ["| op | parameters (defaults) | f and f' | backward from y |", "|---|---|---|---|"]
    groups: dict[str, list[_activations.Activation]] = {}
    for act in _activations.ELEMENTWISE.values():
        groups.setdefault(act.variant[0] if act.variant else act.name, []).append(act)
    for name, acts in groups.items():
        act = acts[0]
        label = f"`{name}`" + "".join(f" (`{alias}`)" for alias in act.aliases)
        formula = ". ".join((f"{v.variant[2]!r}: " if v.variant and v is not act else "") + v.formula for v in acts)
        lines.append(f"| {label} | {_params(act, acts)} | {_cell(formula)} | {_from_y(act)} |")
    return lines


def row_table() -> list[str]:
    lines = ["| call | result |", "|---|---|"]
    for name, definition in _rowops.ROW_OPS.items():
        forward, backward = definition.formula.split("; backward ")
        lines.append(f"| `fastact.{name}(x, axis=-1, out=None)` | {forward} |")
        lines.append(f"| `fastact.{name}.backward(grad_out, y, axis=-1, out=None)` | {backward} |")
    for name, reduction in _rowops.ROW_REDUCTIONS.items():
        value, gradient = reduction.formula.split("; gradient ")
        lines.append(f"| `fastact.{name}(x, axis=-1, keepdims=False, out=None)` | {value} |")
        lines.append(f"| `fastact.{name}.backward(grad_out, x, axis=-1, keepdims=False, out=None)` "
                     f"| grad_out {gradient} |")
    return lines


def gated_table() -> list[str]:
    """The gated units: x split into halves a, b along axis, or given as two arrays."""
    from ._gatedops import GATED_OPS

    lines = ["| op | y | parameters | PyTorch |", "|---|---|---|---|"]
    for name, d in GATED_OPS.items():
        group = [a for a in _activations.ELEMENTWISE.values() if (a.variant[0] if a.variant else a.name) == d.activation]
        params = _params(group[0], group)
        lines.append(f"| `{name}` | {d.formula} | {params} | `{_cell(d.torch)}` |")
    return lines


def entry_points_table() -> list[str]:
    lines = ["| call | result |", "|---|---|"]
    return lines + [f"| `{kind.call}` | {kind.result} |" for kind in _activations.KINDS.values()]


def loss_table() -> list[str]:
    """The losses' calls and formulas, from their docstrings (call line, then formula paragraph)."""
    from . import _losses

    lines = ["| call | loss |", "|---|---|"]
    for loss in (_losses.softmax_cross_entropy, _losses.binary_cross_entropy_with_logits):
        call, text = (loss.__doc__ or "").split("\n\n")[:2]
        lines.append(f"| `fastact.{' '.join(call.split()).rstrip('.')}` | "
                     f"{_cell(' '.join(text.split()).replace('``', '`'))} |")
    return lines


def layout_table() -> list[str]:
    """Every module of the package with the first sentence of its docstring."""
    lines = ["| module | what |", "|---|---|"]
    for path in sorted(Path(__file__).parent.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        first = " ".join(doc.split("\n\n")[0].split())
        first = first.split(". ")[0].rstrip(".")
        lines.append(f"| `{path.name}` | {_cell(first.replace('``', '`'))} |")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


BLOCKS = {"entry-points": entry_points_table, "elementwise-ops": elementwise_table, "row-ops": row_table,
          "gated-ops": gated_table,
          "losses": loss_table, "layout": layout_table}
_BLOCK = re.compile(r"(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def render(text: str) -> str:
    """``text`` with every generated block replaced by what the definitions give."""
    return _BLOCK.sub(lambda m: m.group(1) + "\n".join(BLOCKS[m.group(2)]()) + "\n" + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = README.read_text()
    new = render(text)
    if "--check" in args:
        if new != text:
            print("README.md's generated tables differ from the definitions: run python -m fastact._docs",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
