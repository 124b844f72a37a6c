"""The package stays readable in one look (issue 12): no file over 400 lines, no function over 50, no import
cycle (imports inside functions count), few comparisons against string literals (dispatch goes through
registries and strategy objects, not `if name == "..."` chains)."""
from __future__ import annotations

import ast
from pathlib import Path

import gankit

ROOT = Path(gankit.__file__).parent
FILES = sorted(ROOT.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in FILES}


def imports_of(path: Path) -> set[str]:
    """The gankit modules a file imports, anywhere in it (inside functions too)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in MODULES and m != me}


def string_comparisons(tree: ast.AST) -> int:
    def is_str(node) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str)
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and bool(node.elts) and all(map(is_str, node.elts))

    return sum(any(is_str(o) for o in [n.left, *n.comparators]) for n in ast.walk(tree) if isinstance(n, ast.Compare))


def test_files_and_functions_stay_short():
    long_files = [(str(p.relative_to(ROOT)), n) for p in FILES if (n := len(p.read_text().splitlines())) > 400]
    long_functions = [(f"{p.relative_to(ROOT)}:{f.name}", f.end_lineno - f.lineno + 1) for p in FILES
                      for f in ast.walk(ast.parse(p.read_text()))
                      if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.end_lineno - f.lineno >= 50]
    assert not long_files and not long_functions, (long_files, long_functions)


def test_no_import_cycles():
    graph = {m: imports_of(p) for m, p in MODULES.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph[m])
        return False

    cycles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if reaches(b, a)})
    assert not cycles, cycles


def test_few_comparisons_against_string_literals():
    counts = {str(p.relative_to(ROOT)): string_comparisons(ast.parse(p.read_text())) for p in FILES}
    assert sum(counts.values()) <= 60, sorted(counts.items(), key=lambda kv: -kv[1])[:10]


def test_the_layout_checks_can_fail(tmp_path):
    """The checks above see what they claim to: a cycle, and comparisons."""
    assert string_comparisons(ast.parse("if a == 'x' or b in ('y', 'z'): pass")) == 2
    assert string_comparisons(ast.parse("if a == 1: pass")) == 0
