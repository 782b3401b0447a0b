"""The code's layout rules (issue 23): modules of at most 400 lines, no import cycle in ``ffcvx``.

**Module size.** Every hand-written source file under ``ffcvx/`` and
``backends/`` (``.py``, ``.pyx``, ``.pxd``, ``.c``, ``.h``) has at most
:data:`MAX_LINES` lines. Hand-written means tracked by git: what Cython
generates next to a ``.pyx`` (its ``.c`` and ``*_api.h``) is untracked.

**Import cycles.** The graph has one node per module of ``ffcvx`` (a
package is its ``__init__``) and an edge ``a -> b`` for every import of
``b`` written in ``a``, read with :mod:`ast` (nothing is imported):

- at module level *and* inside functions and methods: an import deferred
  into a function still ties the two modules together (the function cannot
  run without the other module), and the cycle this test was written for,
  between ``ffcvx.fields`` and ``ffcvx.decoders``, went only through such
  imports;
- importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so it
  adds an edge to each such package, except to a package that contains the
  importing module (Python has already started it); a name taken from a
  package itself (``from . import name``) is an edge to that package;
- not counted: imports under ``if TYPE_CHECKING:`` (never run), and imports
  inside a module-level ``__getattr__`` (PEP 562): those serve a name under
  a second, FFCV-compatible path on first attribute access, after both
  modules are loaded, and add no dependency of the module's own code
  (``ffcvx.types.TYPE_ID_HANDLER``, FFCV's ``ffcv.types`` path).

A cycle is reported as the modules on it, in import order.
"""
import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Most lines a module may have (issue 23).
MAX_LINES = 400
#: Suffixes of the source files whose length is checked.
SOURCE_SUFFIXES = ('.py', '.pyx', '.pxd', '.c', '.h')


def _tracked(*folders):
    """Paths (relative to the repository root) git tracks under ``folders``."""
    try:
        listing = subprocess.run(['git', 'ls-files', '-z', '--', *folders], cwd=ROOT,
                                 capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: which files are hand-written is git's to say")
    return [name for name in listing.stdout.decode().split('\0') if name]


def test_no_module_over_400_lines():
    long = {}
    for name in _tracked('ffcvx', 'backends'):
        if not name.endswith(SOURCE_SUFFIXES) or not (ROOT / name).is_file():
            continue
        with open(ROOT / name, 'rb') as handle:
            count = sum(1 for _ in handle)
        if count > MAX_LINES:
            long[name] = count
    assert not long, (f"modules over {MAX_LINES} lines (split them into modules with one job "
                      f"each): " + ', '.join(f"{name} ({count})" for name, count in sorted(long.items())))


# -- import graph ---------------------------------------------------------------------

def _modules():
    """Dotted name of every module of ``ffcvx`` -> (path, whether it is a package)."""
    modules = {}
    for path in sorted((ROOT / 'ffcvx').rglob('*.py')):
        parts = list(path.relative_to(ROOT).with_suffix('').parts)
        package = parts[-1] == '__init__'
        if package:
            parts.pop()
        modules['.'.join(parts)] = (path, package)
    return modules


def _imported_names(tree):
    """``(level, module, names)`` of every counted import statement of a module's ``tree``."""
    found = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if (isinstance(child, ast.If) and isinstance(child.test, ast.Name)
                    and child.test.id == 'TYPE_CHECKING'):
                continue
            if node is tree and isinstance(child, ast.FunctionDef) and child.name == '__getattr__':
                continue
            if isinstance(child, ast.Import):
                found.extend((0, alias.name, ()) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.append((child.level, child.module, tuple(a.name for a in child.names)))
            visit(child)

    visit(tree)
    return found


def import_graph():
    """``{module: set of modules it imports}`` for ``ffcvx``, as the module docstring counts."""
    modules = _modules()

    def known(name):
        while name and name not in modules:
            name = name.rpartition('.')[0]
        return name or None

    graph = {}
    for module, (path, package) in modules.items():
        base = module if package else module.rpartition('.')[0]
        targets = set()
        for level, name, names in _imported_names(ast.parse(path.read_text(), str(path))):
            if level:
                anchor = base.split('.')[:len(base.split('.')) - (level - 1)]
                name = '.'.join(anchor + ([name] if name else []))
            if not name or not (name == 'ffcvx' or name.startswith('ffcvx.')):
                continue
            # ``from package import submodule`` imports the submodule; any other name, the package
            hits = [f"{name}.{n}" for n in names if f"{name}.{n}" in modules]
            if len(hits) < len(names) or not names:
                hits.append(known(name))
            for target in hits:
                targets.add(target)
                parts = target.split('.')
                # the packages above the target run first, unless one contains ``module``
                for depth in range(1, len(parts)):
                    above = '.'.join(parts[:depth])
                    if above in modules and not (module + '.').startswith(above + '.'):
                        targets.add(above)
        targets.discard(module)
        graph[module] = targets
    return graph


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state = {}                      # absent: not seen; 1: on the current path; 2: done
    path = []

    def walk(node):
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = walk(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = walk(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_reports_the_modules_on_it():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']


def test_graph_counts_function_level_imports_and_parent_packages():
    graph = import_graph()
    # a function-level import (Field.get_decoder_class's) is an edge
    assert 'ffcvx.decoders' in graph['ffcvx.fields.base']
    # importing ffcvx.types from ffcvx.decoders.image does not make ffcvx (its own
    # ancestor) a target; importing ffcvx.fields.x from outside makes ffcvx.fields one
    assert 'ffcvx' not in graph['ffcvx.decoders.image']
    # ``from . import main`` takes a name of the package itself: an edge to it;
    # ``from .. import status`` takes a submodule: an edge to it, not to ffcvx
    assert 'ffcvx.cli' in graph['ffcvx.cli.__main__']
    assert 'ffcvx.status' in graph['ffcvx.decoders.image']
    assert 'ffcvx.fields' in graph['ffcvx.writer.dataset_writer']


def test_no_import_cycle_in_ffcvx():
    cycle = find_cycle(import_graph())
    assert cycle is None, ("import cycle inside ffcvx/ (module-level and function-level imports, "
                           "see this file's docstring): " + ' -> '.join(cycle))
