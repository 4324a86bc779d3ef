"""The library's layers import only downward: model <- methods <- io / train / measure <- pipeline <- cli.

Checked two ways: statically (every ``from .x import`` / ``import baa_core.x`` in every module,
function-level ones included) and at run time (importing the model alone loads nothing above it).
"""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "baa_core"
LAYERS = {"model": 0, "methods": 1, "io": 2, "train": 2, "measure": 2, "paper": 2, "pipeline": 3, "protocol": 3, "cli": 4,
          "__main__": 4, "__init__": 0}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return LAYERS[top]


def _imports(path: Path) -> list[str]:
    """Every baa_core module a file imports, anywhere in the file."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            found += [n for n in names if n.startswith("baa_core")]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("baa_core")]
        elif isinstance(node, ast.Name) and node.id == "app":
            pass
    return found


def test_every_import_goes_down_or_sideways_and_never_into_the_app():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _module_name(path)
        text = path.read_text()
        assert "from app" not in text and "import app" not in text, f"{me} imports the app"
        for target in _imports(path):
            if target == "baa_core":
                continue
            if _layer(target) > _layer(me):
                bad.append(f"{me} -> {target}")
    assert not bad, "imports from a lower layer to a higher one: " + ", ".join(bad)


def test_the_model_imports_alone():
    code = ("import sys, baa_core.model.encoder, baa_core.model.surgery, baa_core.model.structural; "
            "print(sorted(m for m in sys.modules if m.startswith(('baa_core', 'app'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    loaded = eval(out)  # noqa: S307 - our own printed list
    above = [m for m in loaded if not m.startswith("baa_core.model") and m != "baa_core"]
    assert not above, f"importing the model loaded {above}"


def test_each_method_is_one_registered_file():
    from baa_core.methods import METHODS

    files = {p.stem for p in (PACKAGE / "methods").glob("*.py")} - {"__init__", "base"}
    modules = {m.plan.__module__.rsplit(".", 1)[-1] for m in METHODS.values() if m.plan is not None}
    assert modules <= files
    assert {m.name for m in METHODS.values()} >= {"dense", "baa", "static", "posthoc", "recovery", "budgetformer"}
    labels = [m.label for m in METHODS.values()]
    colors = [m.color for m in METHODS.values()]
    assert len(set(labels)) == len(labels) and len(set(colors)) == len(colors)


def test_no_app_page_compares_method_or_gating_strings():
    import re

    pattern = re.compile(r"""(gating|method)["')\]]*\s*(==|!=|in)\s*[("'\[]""")
    offenders = [f"{p.name}: {line.strip()}" for p in sorted((ROOT / "app").rglob("*.py"))
                 for line in p.read_text().splitlines() if pattern.search(line)]
    assert not offenders, offenders


def test_no_import_cycle_inside_the_library():
    """Within a layer too (function-level imports included): a cycle is how tangles start."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(target: str) -> str | None:
        while target and target not in modules:  # "baa_core.io.data.TASKS" -> "baa_core.io.data"
            target = target.rpartition(".")[0]
        return target or None

    graph = {m: {t for t in (resolve(x) for x in _imports(p)) if t and t != m and not modules[t].name == "__init__.py"}
             for m, p in modules.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in graph[m]:
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles
