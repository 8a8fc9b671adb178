"""Nesting depth as the parsers see it, measured without recursion.

Counting brackets in the text is fooled by brackets inside strings; these walk what the parser
built (a JSON value, or a Python expression's syntax tree) with an explicit stack.
"""

import ast
import json


def json_depth(value) -> int:
    """Containers nested in a parsed JSON value: 0 for a scalar, 1 for a flat object or list."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


_CONTAINERS = (ast.Dict, ast.List, ast.Tuple, ast.Set, ast.Call)


def literal_depth(tree: ast.AST) -> int:
    """Containers nested in a Python expression's syntax tree (a dict of flags: 1)."""
    deepest = 0
    stack = [(tree, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, _CONTAINERS):
            level += 1
            deepest = max(deepest, level)
        stack.extend((child, level) for child in ast.iter_child_nodes(node))
    return deepest


class TooDeep(ValueError):
    pass


def loads(text: str | bytes, max_depth: int):
    """json.loads (ValueError when it is not JSON), then TooDeep when the value nests deeper than
    max_depth. The caller bounds the size first; the C parser itself stops at the interpreter's
    recursion limit, which is TooDeep too."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"nests deeper than {max_depth} levels") from None
    if json_depth(value) > max_depth:
        raise TooDeep(f"nests deeper than {max_depth} levels")
    return value


def node_depth(tree: ast.AST) -> int:
    """Levels of the syntax tree itself (`- - - 1` is four): ast.literal_eval recurses over them."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest
