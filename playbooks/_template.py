"""Templates in playbook step arguments: ``${expr}`` evaluated safely.

A string that is exactly ``"${expr}"`` renders to the expression's native
value (an int stays an int); any other string has each ``${...}`` part
replaced by its value as text. Expressions are parsed with :mod:`ast` and
walked by a small interpreter that knows only:

- numbers, strings, ``True``/``False``/``None``;
- names and dotted names looked up in the context (``config.batch_size``,
  ``pipeline``, ``dataset``, ``incident.id``, ``attempt``), through nested
  mappings or pydantic models;
- ``+ - * / // %``, unary ``-``/``+``, and comparisons ``== != < <= > >=``;
- calls of ``min``, ``max``, ``int``, ``round`` and ``float``;
- ``a if condition else b`` (only the chosen branch is evaluated), and
  ``and`` / ``or`` / ``not`` over comparisons (evaluated left to right,
  stopping as soon as the result is known).

Anything else (other calls, attribute access on anything but a mapping,
subscripts, lambdas, comprehensions, names starting with ``_``) raises
:class:`PlaybookError` naming the expression. Nothing is ever passed to
``eval``.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from app.errors import PlaybookError

__all__ = ["render", "evaluate"]

_WHOLE = re.compile(r"\$\{([^{}]*)\}")
_MAX_EXPR = 300
_MAX_STR = 10_000

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "int": int, "round": round, "float": float}
_MISSING = object()


class _Refused(Exception):
    """Internal: why an expression cannot be evaluated."""


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render ``value`` recursively: dicts (values only), lists, tuples and
    strings; anything else is returned unchanged."""
    if isinstance(value, str):
        return _render_str(value, context)
    if isinstance(value, Mapping):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, context) for v in value]
    return value


def evaluate(expr: str, context: Mapping[str, Any]) -> Any:
    """The value of one expression (the text between ``${`` and ``}``)."""
    text = expr.strip()
    if not text:
        raise PlaybookError("template ${}: empty expression")
    if len(text) > _MAX_EXPR:
        raise PlaybookError(f"template ${{{text[:40]}...}}: longer than {_MAX_EXPR} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise PlaybookError(f"template ${{{text}}}: not an expression: {exc.msg}") from None
    try:
        return _eval(tree.body, context)
    except _Refused as exc:
        raise PlaybookError(f"template ${{{text}}}: {exc}") from None


def _render_str(text: str, context: Mapping[str, Any]) -> Any:
    whole = _WHOLE.fullmatch(text)
    if whole is not None:
        return evaluate(whole.group(1), context)
    if "${" not in text:
        return text
    if "${" in _WHOLE.sub("", text):
        raise PlaybookError(f"template {text[:80]}: a '${{' is not closed, or its expression holds braces")
    return _WHOLE.sub(lambda m: _as_text(evaluate(m.group(1), context)), text)


def _as_text(value: Any) -> str:
    return "-" if value is None else str(value)


def _eval(node: ast.AST, ctx: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        if node.value is None or isinstance(node.value, bool | int | float | str):
            return node.value
        raise _Refused(f"constant {node.value!r} is not allowed")
    if isinstance(node, ast.Name):
        return _lookup(ctx, node.id, node.id)
    if isinstance(node, ast.Attribute):
        return _attribute(node, ctx)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _truth(_eval(node.operand, ctx), "not")
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        for value in node.values:
            if _truth(_eval(value, ctx), "and" if is_and else "or") != is_and:
                return not is_and
        return is_and
    if isinstance(node, ast.UnaryOp):
        operand = _number(_eval(node.operand, ctx))
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return +operand
        raise _Refused(f"operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.BinOp):
        return _binop(node, ctx)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, ctx)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            fn = _CMPOPS.get(type(op))
            if fn is None:
                raise _Refused(f"comparison {type(op).__name__} is not allowed")
            right = _eval(right_node, ctx)
            try:
                if not fn(left, right):
                    return False
            except TypeError as exc:
                raise _Refused(f"cannot compare: {exc}") from None
            left = right
        return True
    if isinstance(node, ast.Call):
        return _call(node, ctx)
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _truth(_eval(node.test, ctx), "if") else node.orelse, ctx)
    raise _Refused(f"{type(node).__name__} is not allowed")


def _attribute(node: ast.Attribute, ctx: Mapping[str, Any]) -> Any:
    parts = [node.attr]
    base: ast.AST = node.value
    while isinstance(base, ast.Attribute):
        parts.append(base.attr)
        base = base.value
    if not isinstance(base, ast.Name):
        raise _Refused("attribute access is only allowed on dotted names")
    parts.append(base.id)
    parts.reverse()
    value: Any = ctx
    for i, part in enumerate(parts):
        value = _lookup(value, part, ".".join(parts[: i + 1]))
    return value


def _lookup(container: Any, key: str, shown: str) -> Any:
    if key.startswith("_"):
        raise _Refused(f"name {shown!r} is not allowed (names starting with '_' are refused)")
    if isinstance(container, BaseModel):
        container = container.model_dump()
    if not isinstance(container, Mapping):
        raise _Refused(f"{shown!r}: {type(container).__name__} values have no fields")
    value = container.get(key, _MISSING)
    if value is _MISSING:
        known = ", ".join(sorted(str(k) for k in container)) or "none"
        raise _Refused(f"unknown name {shown!r} (known here: {known})")
    return value


def _truth(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Refused(f"{where} takes comparisons (True or False), not {value!r}")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(f"{value!r} is not a number")
    return value


def _binop(node: ast.BinOp, ctx: Mapping[str, Any]) -> Any:
    fn = _BINOPS.get(type(node.op))
    if fn is None:
        raise _Refused(f"operator {type(node.op).__name__} is not allowed")
    left, right = _eval(node.left, ctx), _eval(node.right, ctx)
    if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > _MAX_STR:
            raise _Refused("string result too long")
        return left + right
    a, b = _number(left), _number(right)
    try:
        out = fn(a, b)
    except ZeroDivisionError:
        raise _Refused("division by zero") from None
    except OverflowError:
        raise _Refused("numeric overflow") from None
    if isinstance(out, float) and not math.isfinite(out):
        raise _Refused("result is not a finite number")
    return out


def _call(node: ast.Call, ctx: Mapping[str, Any]) -> Any:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS:
        shown = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
        raise _Refused(f"call of {shown!r} is not allowed (allowed: {', '.join(sorted(_FUNCS))})")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise _Refused(f"{node.func.id}() takes positional arguments only")
    args = [_eval(a, ctx) for a in node.args]
    name = node.func.id
    if name in ("min", "max", "round"):
        args = [_number(a) for a in args]
    elif any(not isinstance(a, int | float | str) or isinstance(a, bool) for a in args):
        raise _Refused(f"{name}() takes a number or a numeric string")
    try:
        return _FUNCS[name](*args)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _Refused(f"{name}(): {exc}") from None
