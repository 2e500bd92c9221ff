"""The structure holds: every module imports on its own, layers import only downward, docs match the code."""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import selfmem
from selfmem import HashEmbedder, Memory
from helpers import hash_cfg

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "selfmem"
README = (ROOT / "README.md").read_text()

# bottom to top; a module may import its own layer and the layers below it
LAYERS = {"": 0, "retrieval": 1, "clustering": 2, "graph": 3, "store": 4, "memory": 5, "solver": 6, "viz": 6, "server": 6, "cli": 7}


def modules() -> list[str]:
    out = ["selfmem"]
    for info in pkgutil.walk_packages([str(PKG)], prefix="selfmem."):
        if not info.name.endswith("__main__"):
            out.append(info.name)
    return sorted(out)


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 and parts[1] in LAYERS else LAYERS[""]


def test_every_module_imports_in_a_fresh_interpreter():
    """Importing any module first must work (an import cycle fails here, not when selfmem.Memory comes first)."""
    procs = {m: subprocess.Popen([sys.executable, "-c", f"import {m}"], stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for m in modules()}
    failed = {m: p.communicate()[1].strip().splitlines()[-1:] for m, p in procs.items() if p.wait() != 0}
    assert not failed, failed


def imports_of(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported selfmem module, line) for every import in a file, at any depth (function-level too)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names] if node.level and not node.module else [target]
            out += [(t, node.lineno) for t in names if t.startswith("selfmem")]
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("selfmem")]
    return out


def test_layers_import_only_downward():
    bad = []
    for module in modules():
        if module == "selfmem":
            continue  # the package root re-exports the public API (Memory lazily)
        spec = importlib.util.find_spec(module)
        for target, line in imports_of(Path(spec.origin), module):
            if target == "selfmem":
                bad.append(f"{module}:{line} imports the package root")
            elif layer_of(target) > layer_of(module):
                bad.append(f"{module}:{line} imports {target} (a higher layer)")
    assert not bad, bad


def test_the_layer_walk_catches_an_upward_import(tmp_path):
    f = tmp_path / "_x.py"
    f.write_text("def f():\n    from ..store._duckdb import DuckDBStore\n")
    assert imports_of(f, "selfmem.retrieval._x") == [("selfmem.store._duckdb", 2)]
    assert layer_of("selfmem.store._duckdb") > layer_of("selfmem.retrieval._x")


class Counting(HashEmbedder):
    texts = 0

    def embed(self, texts, *, progress=False):
        Counting.texts += len(texts)
        return super().embed(texts)


def test_reembed_on_open_then_rebuild_runs_each_model_once(tmp_path):
    """What `memctl rebuild --reembed` does: open with reembed=True, then rebuild(reembed=True)."""
    cfg = hash_cfg()
    with Memory(tmp_path / "m", cfg) as m:
        m.add_many([f"text number {i}" for i in range(30)])
    Counting.texts = 0
    with Memory(tmp_path / "m", cfg, general=Counting(64, seed="changed"), reembed=True) as m:
        m.rebuild(reembed=True)
    assert Counting.texts == 30 + 30  # the texts once, and their sentences (one each) once
    with Memory(tmp_path / "m", cfg, general=Counting(64, seed="changed")) as m:
        Counting.texts = 0
        m.rebuild(reembed=True)  # asked for explicitly on a memory opened without re-embedding: runs once
    assert Counting.texts == 30


def test_doctests_of_every_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures, tried = 0, 0
    for module in modules():
        mod = importlib.import_module(module)
        res = doctest.testmod(mod, extraglobs={"tmp": tmp_path}, optionflags=doctest.ELLIPSIS, verbose=False)
        failures += res.failed
        tried += res.attempted
    assert failures == 0
    assert tried >= 10  # the examples exist


def test_no_docstring_example_is_skipped():
    skipped = [str(p.relative_to(ROOT)) for p in PKG.rglob("*.py") if "+SKIP" in p.read_text()]
    assert not skipped, skipped


def test_public_api_is_what_the_readme_documents():
    documented = set(re.findall(r"`(\w+)`", README))
    missing = [name for name in selfmem.__all__ if name not in documented]
    assert not missing, f"in selfmem.__all__ but not in the README: {missing}"
    undocumented = [name for name in selfmem.__all__
                    if not (getattr(selfmem, name).__doc__ or "").strip()
                    or not getattr(selfmem, name).__module__.startswith("selfmem")]
    assert not undocumented, f"public names without a docstring of their own: {undocumented}"
    listed = re.search(r"## Public API\n\n(.*?)\n\n", README, re.S)
    assert listed, "the README has a 'Public API' section listing selfmem.__all__"
    assert set(re.findall(r"`(\w+)`", listed.group(1))) == set(selfmem.__all__)


def test_every_memctl_command_has_help_and_is_in_the_readme():
    from click.testing import CliRunner

    from selfmem.cli import cli

    block = re.search(r"## memctl\n\n```\n(.*?)```", README, re.S)
    assert block
    in_readme = set(re.findall(r"^memctl (\w+)", block.group(1), re.M))
    assert in_readme == set(cli.commands), (in_readme, set(cli.commands))
    runner = CliRunner()
    for name, cmd in cli.commands.items():
        assert cmd.help and cmd.help.strip(), name
        subs = getattr(cmd, "commands", None)  # a group (memctl export): its subcommands print
        for args, sub in ([([name, s], c) for s, c in subs.items()] if subs else [([name], cmd)]):
            assert sub.help and sub.help.strip(), args
            assert f"memctl {' '.join(args)}" in block.group(1), args
            res = runner.invoke(cli, [*args, "--help"])
            assert res.exit_code == 0 and "Usage:" in res.output and "--json" in res.output, args


def test_requires_python_matches_what_the_code_uses():
    """Every module parses as the oldest Python that pyproject.toml admits (newer syntax fails here)."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    low = re.fullmatch(r">=3\.(\d+)", meta["project"]["requires-python"])
    assert low, meta["project"]["requires-python"]
    too_new = []
    for path in [*PKG.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        try:
            ast.parse(path.read_text(), feature_version=(3, int(low.group(1))))
        except SyntaxError as exc:
            too_new.append(f"{path.relative_to(ROOT)}:{exc.lineno}")
    assert not too_new, too_new


@pytest.mark.integration
def test_no_other_library_prints_while_loading_models(tmp_path):
    """A memory with the real models, opened in a fresh process, prints nothing of its own libraries."""
    if os.environ.get("SELFMEM_SKIP_MODEL_QUIET"):
        pytest.skip("disabled by SELFMEM_SKIP_MODEL_QUIET")
    code = ("from selfmem import Memory; m = Memory(%r); m.add('a note about grids', kind='note'); "
            "m.search('grids'); m.close()" % str(tmp_path / "m"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout == "" and res.stderr == "", (res.stdout[-500:], res.stderr[-2000:])


@pytest.mark.integration
def test_readme_python_snippets_run_on_the_real_models(tmp_path, monkeypatch):
    """The README's examples use the default (real) models; they run here as written."""
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_sql_lives_only_in_the_store_package():
    """One owner of SQL: no module outside selfmem.store imports a database driver or runs a statement."""
    pattern = re.compile(r"^\s*(import duckdb|from duckdb|import psycopg)|\.execute\(|\.fetch(all|one|many|numpy)\(",
                         re.M)
    outside = [str(p.relative_to(ROOT)) for p in PKG.rglob("*.py")
               if "store" not in p.relative_to(PKG).parts[:1] and pattern.search(p.read_text())]
    assert not outside, outside
    inside = [p for p in (PKG / "store").rglob("*.py") if pattern.search(p.read_text())]
    assert len(inside) >= 3  # the pattern finds the store's own statements


def test_memory_is_a_facade_that_only_delegates():
    """No mixins; every guarded call is one statement, ``return self._<service>.<same name>(...)``; modules stay
    under 800 lines."""
    assert Memory.__bases__ == (object,), Memory.__bases__
    tree = ast.parse((PKG / "memory" / "_memory.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Memory")
    guarded = [f for f in cls.body if isinstance(f, ast.FunctionDef)
               and any("guarded" in ast.unparse(d) for d in f.decorator_list)]
    assert len(guarded) >= 19
    for fn in guarded:
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        call = body[0].value if len(body) == 1 and isinstance(body[0], ast.Return) else None
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute), (fn.name, ast.unparse(fn))
        owner = call.func.value
        assert call.func.attr == fn.name and isinstance(owner, ast.Attribute) and ast.unparse(owner.value) == "self" \
            and owner.attr.startswith("_"), (fn.name, ast.unparse(call))
    long = {p.name: n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 800}
    assert not long, long


def _call_table() -> dict[str, str]:
    """docs/architecture.md's 'Where each public call lives': public name -> module file."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Where each public call lives", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[1].startswith("`selfmem/"):
            continue
        names, module = cells[0], cells[1].strip("`")
        owner = "Memory." if names.startswith("Memory.") else ""
        for name in names.removeprefix("Memory.").split(","):
            out[owner + name.strip()] = module
    return out


def _module_file(obj) -> str:
    obj = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
    return inspect.getsourcefile(obj).replace(str(ROOT) + "/", "")


def _implementation(name: str):
    """The function that implements ``Memory.<name>``: the service method its facade method returns the call of
    (``return self._writer.add_many(...)``; one more step for ``add``, which calls ``self.add_many``), else the
    facade's own."""
    from selfmem.memory import _memory

    tree = ast.parse(inspect.getsource(_memory))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Memory")
    init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    services = {}  # facade attribute -> service class, from "self._x = Service(state)" in __init__
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and ast.unparse(target.value) == "self":
                    services[target.attr] = getattr(_memory, node.value.func.id)
    fn = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == name), None)
    last = fn.body[-1] if fn is not None else None
    if isinstance(last, ast.Return) and isinstance(last.value, ast.Subscript):  # return self.add_many(...)[0]
        last = ast.Return(last.value.value)
    if isinstance(last, ast.Return) and isinstance(last.value, ast.Call) and isinstance(last.value.func, ast.Attribute):
        owner = last.value.func.value
        if isinstance(owner, ast.Attribute) and owner.attr in services:
            return getattr(services[owner.attr], last.value.func.attr)
        if ast.unparse(owner) == "self":
            return _implementation(last.value.func.attr)
    return inspect.getattr_static(_memory.Memory, name)


def test_the_architecture_page_names_the_module_of_every_public_call():
    import selfmem
    from selfmem import Memory

    table = _call_table()
    public = {f"Memory.{n}": _implementation(n) for n in dir(Memory) if not n.startswith("_")}
    public |= {n: getattr(selfmem, n) for n in ("doctor", "memory_map")}
    listed = {k for k in table if not k.startswith("RemoteMemory")}
    assert listed == set(public), listed ^ set(public)
    wrong = {name: (table[name], _module_file(obj)) for name, obj in public.items() if table[name] != _module_file(obj)}
    assert not wrong, wrong
    assert table["RemoteMemory (every call)"] == _module_file(selfmem.RemoteMemory.search)
