"""The course's layers point one way: the library (`llmcourse`) imports nothing of the grader,
the checks or the instructor material (it reaches the chapters' own code, a model class say,
through `previous_chapters` only), and no module imports itself through a circle."""

from __future__ import annotations

import ast
from pathlib import Path

from autograder import paths

ROOT = paths.course_root()
PACKAGES = ("llmcourse", "autograder", "previous_chapters")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path) -> set[str]:
    """The modules `path` imports anywhere in its code (functions included), except for type checking only."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from package import module` depends on the module; the package's own code is what
            # `from package import name` and a bare `import package` depend on.
            found |= {f"{base}.{alias.name}" for alias in node.names} | {f"{base}:"}
    return found


def course_modules() -> dict[str, set[str]]:
    """Every module of the course's packages -> the course modules it imports."""
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    names = {module_name(p) for p in files}
    graph = {}
    for path in files:
        imported = imports_of(path)
        submodules = {m for m in imported if m in names}
        packages = {
            m[:-1] for m in imported if m.endswith(":") and not any(s.startswith(m[:-1] + ".") for s in submodules)
        }
        graph[module_name(path)] = {m for m in submodules | packages if m in names and m != module_name(path)}
    return graph


def test_the_library_imports_nothing_of_the_grader_or_the_instructor_material():
    for path in (ROOT / "llmcourse").rglob("*.py"):
        outside = {
            m.rstrip(":")
            for m in imports_of(path)
            if m.rstrip(":").split(".")[0] in ("autograder", "instructor", "tests")
        }
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


def test_the_grader_reaches_the_checks_and_instructor_material_only_by_name():
    """The engine loads check modules and instructor modules by name at run time, never by an import statement."""
    for path in (ROOT / "autograder").rglob("*.py"):
        if (ROOT / "autograder" / "checks") in path.parents:
            continue
        reached = {m.rstrip(":") for m in imports_of(path) if m.startswith(("autograder.checks", "instructor"))}
        assert not reached, f"{path.relative_to(ROOT)} imports {sorted(reached)}"


def test_no_module_imports_itself_through_a_circle():
    graph = course_modules()
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            circle = trail[trail.index(module) :] + [module]
            raise AssertionError("import circle: " + " -> ".join(circle))
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, trail + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_import_check_sees_a_circle():
    """The walk above is not vacuous: the grader's modules do import each other."""
    graph = course_modules()
    assert "autograder.runner" in graph["autograder.checking"]
    assert "llmcourse.data" in graph["llmcourse.pretrained"]
