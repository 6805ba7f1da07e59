"""Formulas over series (`A / B * 100`): letters name the series in order, with numbers, + - * / and
parentheses. Parsed with Python's own parser and walked with an allow-list, never evaluated as code."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
LETTERS = "ABCDEFGHIJ"


class FormulaError(ValueError):
    pass


def parse(text: str, series: int) -> ast.expr:
    """The syntax tree of a formula over `series` series; FormulaError says what is wrong."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise FormulaError(f"formula {text!r} is not an arithmetic expression like A / B * 100") from None
    allowed = set(LETTERS[:series])
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in allowed:
                raise FormulaError(f"formula {text!r}: {node.id} is not a series; use "
                                   f"{', '.join(sorted(allowed))}")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise FormulaError(f"formula {text!r}: only numbers and series letters are allowed")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _OPERATORS:
                raise FormulaError(f"formula {text!r}: only + - * / are allowed")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise FormulaError(f"formula {text!r}: only + - * / are allowed")
        elif not isinstance(node, ast.operator | ast.unaryop | ast.Load):
            raise FormulaError(f"formula {text!r}: only numbers, series letters, + - * / and parentheses")
    return tree


def evaluate(tree: ast.expr, values: Mapping[str, float]) -> float | None:
    """The formula's value; None where it divides by zero."""

    def walk(node: ast.expr) -> float:
        if isinstance(node, ast.Name):
            return float(values.get(node.id, 0.0))
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float)
            return float(node.value)
        if isinstance(node, ast.UnaryOp):
            inner = walk(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        assert isinstance(node, ast.BinOp)
        return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))

    try:
        result = walk(tree)
    except ZeroDivisionError:
        return None
    return int(result) if result.is_integer() else result
