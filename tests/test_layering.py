"""The core never depends on what is built on it: the adapters and the demo.

``langchain_phospho``, ``llama_index_phospho`` (and its ``llama_index.embeddings.phospho``
re-export) and ``phospho_embed_demo`` import ``phospho_embed``; an import the other way would
make the core need the frameworks, or load a package that imports it back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import phospho_embed

BUILT_ON_THE_CORE = (
    "langchain_phospho",
    "llama_index_phospho",
    "llama_index.embeddings.phospho",
    "phospho_embed_demo",
)
# `phospho-embed demo` runs the demo: it imports it inside its handler, only when invoked.
LAZY_IMPORTS_ALLOWED = {("phospho_embed.cli.demo", "phospho_embed_demo")}

CORE = Path(phospho_embed.__file__).parent


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """Every absolute import in ``tree``: the names it imports, and whether it runs only when
    a function is called."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                # `from llama_index.embeddings import phospho` imports a module too.
                found.append((child.module, in_function))
                found.extend((f"{child.module}.{alias.name}", in_function) for alias in child.names)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, in_function=False)
    return found


def _core_imports() -> list[tuple[str, str, bool]]:
    """(module, imported name, lazily) for every absolute import in ``phospho_embed``."""
    found: list[tuple[str, str, bool]] = []
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.extend((module, name, lazy) for name, lazy in _imports(tree))
    return found


def _built_on_the_core(name: str) -> str | None:
    return next(
        (top for top in BUILT_ON_THE_CORE if name == top or name.startswith(f"{top}.")), None
    )


def test_the_core_imports_neither_the_adapters_nor_the_demo() -> None:
    imports = _core_imports()
    offending = [
        (module, name, "lazily" if lazy else "at import")
        for module, name, lazy in imports
        if (target := _built_on_the_core(name))
        and not (lazy and (module, target) in LAZY_IMPORTS_ALLOWED)
    ]

    assert offending == []
    # The walk sees imports inside functions, and the one allowed is still there.
    assert ("phospho_embed.cli.demo", "phospho_embed_demo", True) in imports


def test_the_walk_finds_every_form_of_import() -> None:
    tree = ast.parse(
        "import langchain_phospho\n"
        "from llama_index.embeddings import phospho\n"
        "if True:\n"
        "    from phospho_embed_demo._screens import run\n"
        "def f():\n"
        "    import llama_index_phospho.x as y\n"
        "from . import sibling\n"
    )

    assert [(_built_on_the_core(name), lazy) for name, lazy in _imports(tree)] == [
        ("langchain_phospho", False),
        (None, False),
        ("llama_index.embeddings.phospho", False),
        ("phospho_embed_demo", False),
        ("phospho_embed_demo", False),
        ("llama_index_phospho", True),
    ]
