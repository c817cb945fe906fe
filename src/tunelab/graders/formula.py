"""The `calculate_output` formula of a multi grader, evaluated by walking its syntax tree (never eval()).

A formula may hold numbers, the sub-graders' names, + - * / ** and parentheses, and the functions
in FUNCTIONS; anything else (attributes, subscripts, lambdas, strings) is refused when the grader is
validated, so a grader file cannot run code in the process that scores with it.
"""

import ast
import math
import operator

from tunelab.errors import ConfigError

FUNCTIONS = {
    "min": min,
    "max": max,
    "abs": abs,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
    "floor": math.floor,
    "ceil": math.ceil,
}
BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def parse_formula(text: str, names: set[str], where: str) -> ast.Expression:
    """The checked tree of a formula over `names`; a ConfigError names what is wrong in it."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(
            f"{where}: {text!r} is not a formula ({exc.msg})", "e.g. 0.5 * exact + 0.5 * valid_json"
        ) from None
    for node in ast.walk(tree):
        check_node(node, names, where)
    return tree


def check_node(node: ast.AST, names: set[str], where: str) -> None:
    if isinstance(node, ast.Name) and node.id not in names and node.id not in FUNCTIONS:
        known = ", ".join(sorted(names)) or "none"
        raise ConfigError(f"{where}: unknown name {node.id!r}", f"use the graders' names ({known}) or a function")
    if isinstance(node, ast.Call) and (
        not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords
    ):
        raise ConfigError(f"{where}: only {', '.join(FUNCTIONS)} can be called", "call them with plain arguments")
    if isinstance(node, ast.Constant) and (not isinstance(node.value, int | float) or isinstance(node.value, bool)):
        raise ConfigError(f"{where}: {node.value!r} is not a number", "a formula holds numbers and graders' names")
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load, *BINARY, *UNARY)
    if not isinstance(node, allowed):
        raise ConfigError(f"{where}: {type(node).__name__} is not allowed", "use numbers, names, + - * / and functions")


def evaluate(tree: ast.AST, values: dict[str, float]) -> float:
    """The formula's value for one sample (ZeroDivisionError, ValueError and OverflowError propagate)."""
    if isinstance(tree, ast.Expression):
        return float(evaluate(tree.body, values))
    if isinstance(tree, ast.Constant):
        return float(tree.value)  # float powers overflow (an error) where integer ones would run for hours
    if isinstance(tree, ast.Name):
        return values[tree.id]
    if isinstance(tree, ast.UnaryOp):
        return UNARY[type(tree.op)](evaluate(tree.operand, values))
    if isinstance(tree, ast.BinOp):
        return BINARY[type(tree.op)](evaluate(tree.left, values), evaluate(tree.right, values))
    return FUNCTIONS[tree.func.id](*(evaluate(argument, values) for argument in tree.args))
