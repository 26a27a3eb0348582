"""tfnlp's imports go one way (`tfnlp._layering.PACKAGE_ORDER`) and no modules import each other in a circle;
in ``pipelines``, no module imports a fit script (benchmarks, serving tools and reports import the library).

The modules are read with `ast`, not imported (no TensorFlow, a fraction of a
second): every ``import x`` and ``from x import y``, absolute or relative, at
module level or inside a function, method or ``if``. ``from package import
name`` counts as an import of the module ``package.name`` when there is one,
else of the package's ``__init__``. Each failure names the file and line of
the import.
"""

import ast
import os

import pytest

from tfnlp._layering import PACKAGE_ORDER

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(REPO, "tfnlp")
PIPELINES_DIR = os.path.join(REPO, "pipelines")
NEVER_IMPORTED = ("pipelines", "tests")  # Above the library: scripts and tests import it, never the reverse.


def package_modules(package_dir):
    """``{module name: file path}`` of every ``.py`` file under ``package_dir`` (``__init__.py`` is the package)."""
    root = os.path.dirname(os.path.abspath(package_dir))
    modules = {}
    for folder, subfolders, files in os.walk(package_dir):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for file in sorted(files):
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _known(name, modules):
    """The longest prefix of the dotted ``name`` that is one of ``modules`` (None if there is none)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def module_imports(name, path, modules):
    """``[(imported name, line)]`` of one module: the modules of ``modules`` it imports, and any other top-level
    name it imports (so that ``pipelines`` and ``tests`` can be refused)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = []

    def add(target, line):
        found.append((_known(target, modules) or target.split(".")[0], line))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}" if source else alias.name
                add(submodule if submodule in modules else source or alias.name, node.lineno)
    return list(dict.fromkeys(found))  # ``from x import a, b`` is one import of x.


def import_graph(package_dir):
    """``(modules, edges)``: ``edges`` maps each module to ``[(imported module, line)]`` (itself left out)."""
    modules = package_modules(package_dir)
    return modules, {name: [(target, line) for target, line in module_imports(name, path, modules) if target != name]
                     for name, path in modules.items()}


def part_of(module, order, package_name):
    """``(tier, part)`` of a module under ``order``: its longest listed name (the package's own name only
    matches the package itself); None if it is not listed."""
    best = None
    for tier, names in enumerate(order):
        for part in names:
            if module == part or (part != package_name and module.startswith(part + ".")):
                if best is None or len(part) > len(best[1]):
                    best = (tier, part)
    return best


def layering_problems(package_dir, order, package_name="tfnlp"):
    """One line per module the order does not place and per import against it, naming file and line."""
    modules, edges = import_graph(package_dir)
    problems = []
    for module, path in modules.items():
        source = part_of(module, order, package_name)
        shown = os.path.relpath(path, os.path.dirname(os.path.abspath(package_dir)))
        if source is None:
            problems.append(f"{shown}: {module} has no place in the package order (add it to a tier)")
            continue
        for target, line in edges[module]:
            if target.split(".")[0] in NEVER_IMPORTED:
                problems.append(f"{shown}:{line}: {module} imports {target} (tfnlp never imports {target})")
                continue
            if target not in modules:
                continue  # Outside the package (the standard library, TensorFlow...).
            destination = part_of(target, order, package_name)
            if destination is None or destination[1] == source[1] or destination[0] < source[0]:
                continue  # Unplaced modules are reported above; same part or a lower tier is allowed.
            where = "the same tier as" if destination[0] == source[0] else "a tier above"
            problems.append(f"{shown}:{line}: {module} imports {target} ({destination[1]} is {where} {source[1]})")
    return problems


def import_cycles(package_dir):
    """The import cycles between modules: for each, its modules and the imports that join them (file:line)."""
    modules, edges = import_graph(package_dir)
    graph = {name: sorted({target for target, _ in targets if target in modules}) for name, targets in edges.items()}
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components.
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    root = os.path.dirname(os.path.abspath(package_dir))
    cycles = []
    for component in components:
        links = [f"{os.path.relpath(modules[a], root)}:{line}: {a} imports {b}"
                 for a in component for b, line in edges[a] if b in component]
        cycles.append(f"cycle between {', '.join(component)}:\n  " + "\n  ".join(links))
    return cycles


def test_every_import_goes_down_the_package_order():
    problems = layering_problems(PACKAGE_DIR, PACKAGE_ORDER)
    assert not problems, "imports against tfnlp._layering.PACKAGE_ORDER:\n" + "\n".join(problems)


def test_no_import_cycle_even_through_imports_inside_functions():
    cycles = import_cycles(PACKAGE_DIR)
    assert not cycles, "\n".join(cycles)


def test_the_order_names_only_packages_and_modules_that_exist():
    modules = package_modules(PACKAGE_DIR)
    names = [name for tier in PACKAGE_ORDER for name in tier]
    assert len(names) == len(set(names))
    assert [name for name in names if name not in modules] == []


def write_package(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root / "pkg")


@pytest.fixture
def bad_package(tmp_path):
    """A package with an upward import inside a function, a sibling import, a relative import that closes a cycle,
    an import of the scripts above it and a module the order does not place."""
    return write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "def f():\n    from pkg.high import b\n",
        "pkg/high/__init__.py": "from pkg.high.b import g\n",
        "pkg/high/b.py": "import os\nfrom pkg.low import a\nfrom . import c\n",
        "pkg/high/c.py": "class C:\n    def m(self):\n        import pkg.high.b\n        from pkg.side import d\n",
        "pkg/side/__init__.py": "",
        "pkg/side/d.py": "from pipelines import fit\n",
        "pkg/stray.py": "",
    })


ORDER = (("pkg",), ("pkg.low",), ("pkg.high", "pkg.side"))


def test_the_check_names_each_bad_import_by_file_and_line(bad_package):
    problems = layering_problems(bad_package, ORDER, package_name="pkg")
    assert sorted(problems) == sorted([
        "pkg/low/a.py:2: pkg.low.a imports pkg.high.b (pkg.high is a tier above pkg.low)",
        "pkg/high/c.py:4: pkg.high.c imports pkg.side.d (pkg.side is the same tier as pkg.high)",
        "pkg/side/d.py:1: pkg.side.d imports pipelines (tfnlp never imports pipelines)",
        "pkg/stray.py: pkg.stray has no place in the package order (add it to a tier)",
    ])


def test_the_check_finds_cycles_through_relative_and_function_level_imports(bad_package):
    cycles = import_cycles(bad_package)
    assert cycles == [
        "cycle between pkg.high.b, pkg.high.c, pkg.low.a:\n"
        "  pkg/high/b.py:2: pkg.high.b imports pkg.low.a\n"
        "  pkg/high/b.py:3: pkg.high.b imports pkg.high.c\n"
        "  pkg/high/c.py:3: pkg.high.c imports pkg.high.b\n"
        "  pkg/low/a.py:2: pkg.low.a imports pkg.high.b"]


def test_from_package_import_name_is_the_package_unless_name_is_a_module(tmp_path):
    package = write_package(tmp_path, {
        "pkg/__init__.py": "from pkg.mod import X\n",
        "pkg/mod.py": "X = 1\n",
        "pkg/user.py": "from pkg import mod, X\n",
        "pkg/sub/__init__.py": "from . import deep\n",
        "pkg/sub/deep.py": "def f():\n    from .. import mod\n    from ..mod import X\n    import pkg.sub\n",
    })
    modules, edges = import_graph(package)
    assert edges["pkg.user"] == [("pkg.mod", 1), ("pkg", 1)]
    assert edges["pkg"] == [("pkg.mod", 1)]
    assert edges["pkg.sub"] == [("pkg.sub.deep", 1)]
    assert sorted(edges["pkg.sub.deep"]) == [("pkg.mod", 2), ("pkg.mod", 3), ("pkg.sub", 4)]


# pipelines: the fit scripts are the modules directly in pipelines/; its sub-packages (bench/, serving/, reports/)
# hold the other commands. Nothing imports a fit script: what two commands share belongs in the library.

def fit_script_imports(pipelines_dir):
    """One line per import of a fit script (a module directly in ``pipelines_dir``) by any module of the package,
    naming file and line."""
    modules, edges = import_graph(pipelines_dir)
    scripts = {name for name, path in modules.items()
               if name.count(".") == 1 and os.path.dirname(path) == os.path.abspath(pipelines_dir)}
    root = os.path.dirname(os.path.abspath(pipelines_dir))
    return [f"{os.path.relpath(modules[module], root)}:{line}: {module} imports the fit script {target}"
            for module, targets in sorted(edges.items()) for target, line in targets if target in scripts]


def test_no_pipelines_module_imports_a_fit_script():
    modules = package_modules(PIPELINES_DIR)
    assert {"pipelines.agnews_transformer", "pipelines.bench.agnews_transformer", "pipelines.serving.predict",
            "pipelines.reports.compare"} <= set(modules)
    problems = fit_script_imports(PIPELINES_DIR)
    assert not problems, "pipelines modules importing a fit script (import the library instead):\n" + "\n".join(
        problems)


def test_the_fit_script_check_names_each_import_of_one(tmp_path):
    write_package(tmp_path, {
        "pipelines/__init__.py": "",
        "pipelines/fit.py": "from tfnlp.tasks import recipe\n",
        "pipelines/other_fit.py": "def main():\n    from pipelines.fit import main as fit_main\n",
        "pipelines/bench/__init__.py": "",
        "pipelines/bench/speed.py": "from pipelines import fit\nfrom pipelines.bench import helper\n",
        "pipelines/bench/helper.py": "import pipelines.fit as recipe\n",
    })
    assert fit_script_imports(str(tmp_path / "pipelines")) == [
        "pipelines/bench/helper.py:1: pipelines.bench.helper imports the fit script pipelines.fit",
        "pipelines/bench/speed.py:1: pipelines.bench.speed imports the fit script pipelines.fit",
        "pipelines/other_fit.py:2: pipelines.other_fit imports the fit script pipelines.fit"]
