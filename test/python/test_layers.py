"""The layering src/lib.rs declares holds in the code: no module imports a
module of a higher layer, and no two files import each other, directly or
around a circle.

The layer map is read from the crate comment of src/lib.rs (one table row per
module, lowest layer first), so the map and its check cannot drift apart.
A module belongs to the longest module path declared in the map (`als::solver`
before `als`); it may import only modules declared above its own row. Inside
one module, files must not form a cycle; a file's imports from its own parent
module (`super::X` defined in a `mod.rs`) do not count, since the parent
declares its children and the types they share.

A test-only module (declared `#[cfg(test)] mod x;`) may import any layer:
tests check across layers; its imports still count for cycles.

Imports are read from the source text: every `use` tree (braces expanded) and
every `crate::`, `super::` and `self::` path, including test modules; a path
through a `pub use` re-export counts as an import of the module that defines
the name.
"""
import collections
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src")


def module_files(src):
    """{module path tuple: file} for every .rs file under src."""
    out = {}
    for folder, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, src)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib"):
                    parts = parts[:-1]
                out[tuple(parts)] = path
    return out


def code_of(text):
    """The text without comments and string contents (paths inside either
    are not imports)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#"(?:.|\n)*?"#', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def expand(tree):
    """The paths of one `use` tree: `a::{b, c::{d, e}}` -> a::b, a::c::d, a::c::e
    (an alias kept after `@`: `a::b as c` -> a::b@c)."""
    tree = re.sub(r"\s", "", re.sub(r"\s+as\s+", "@", tree))
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, body = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    parts, depth, current = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    parts.append(current)
    out = []
    for part in filter(None, parts):
        for path in expand(part):
            out.append(prefix.rstrip(":") if path == "self" else prefix + path)
    return out


def inline_modules(code):
    """(start, end) of every inline `mod name { ... }` body."""
    spans = []
    for m in re.finditer(r"\bmod\s+\w+\s*\{", code):
        depth, i = 0, m.end() - 1
        while i < len(code):
            depth += code[i] == "{"
            depth -= code[i] == "}"
            if depth == 0:
                break
            i += 1
        spans.append((m.end(), i))
    return spans


class Crate:
    def __init__(self, src):
        self.files = module_files(src)
        self.code = {m: code_of(open(p, encoding="utf-8").read()) for m, p in self.files.items()}
        self.defined = {
            m: set(re.findall(r"\b(?:fn|struct|enum|trait|const|static|type|union|macro_rules!)\s+(\w+)", c))
            for m, c in self.code.items()
        }
        self.reexports = {}
        for m, c in self.code.items():
            names = {}
            for u in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", c):
                for path in expand(u.group(1)):
                    alias = path.split("@")
                    name = alias[-1] if len(alias) > 1 else path.split("::")[-1]
                    if name != "*":
                        names[name] = alias[0]
            self.reexports[m] = names

    def resolve(self, module, path, inline=0, hops=0):
        """The module (file) a path names, or None for outside the crate."""
        segs = [s for s in path.split("@")[0].split("::") if s]
        if not segs:
            return None
        if inline:
            supers = 0
            while supers < len(segs) and segs[supers] == "super":
                supers += 1
            if segs[0] == "self" or 0 < supers <= inline:
                return None  # inside the same file
            segs = segs[inline:]
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] in ("super", "self"):
            base = list(module)
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
        elif tuple(module) + (segs[0],) in self.files:
            base = list(module)
        else:
            return None
        full = base + segs
        for n in range(len(full), -1, -1):
            target = tuple(full[:n])
            if target in self.files:
                rest = full[n:]
                if rest and hops < 8 and rest[0] not in self.defined[target]:
                    via = self.reexports[target].get(rest[0])
                    if via is not None:
                        followed = self.resolve(target, "::".join([via] + rest[1:]), 0, hops + 1)
                        if followed is not None:
                            return followed
                return target
        return None

    def test_modules(self):
        """Modules declared only for tests: `#[cfg(test)] mod x;`."""
        out = set()
        for module, code in self.code.items():
            for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code):
                out.add(tuple(module) + (m.group(1),))
        return out

    def imports(self):
        """{module: {imported module: a path that shows it}}."""
        out = collections.defaultdict(dict)
        for module, code in self.code.items():
            spans = inline_modules(code)
            paths = []
            for u in re.finditer(r"\buse\s+([^;]+);", code):
                paths += [(p, u.start()) for p in expand(u.group(1))]
            for p in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", code):
                paths.append((p.group(1), p.start()))
            for path, at in paths:
                inline = sum(1 for a, b in spans if a < at < b)
                target = self.resolve(module, path, inline)
                if target not in (None, (), module):
                    out[module].setdefault(target, path)
        return out


def declared_layers(lib_rs):
    """[(layer, module path tuple)] from the table in lib.rs' crate comment."""
    rows = re.findall(r"^//! \| ([\w ]+?) \| \[`([\w:]+)`\]", open(lib_rs, encoding="utf-8").read(), re.M)
    return [(layer, tuple(module.split("::"))) for layer, module in rows]


def unit_of(module, units):
    for n in range(len(module), 0, -1):
        if module[:n] in units:
            return module[:n]
    return None


def problems(src):
    """Every breach of the declared layering, as readable lines."""
    crate = Crate(src)
    layers = declared_layers(os.path.join(src, "lib.rs"))
    order = {module: i for i, (_, module) in enumerate(layers)}
    out = []
    declared_top = set(re.findall(r"^\s*(?:pub\s+)?mod\s+(\w+)\s*;", crate.code[()], re.M))
    for name in sorted(declared_top - {m[0] for m in order if len(m) == 1}):
        out.append(f"module {name} is not in the layer table of src/lib.rs")
    for module in sorted(order):
        if module not in crate.files:
            out.append(f"the layer table names {'::'.join(module)}, which is no module file")
    imports = crate.imports()
    tests = crate.test_modules()
    for module, targets in sorted(imports.items()):
        if any(module[: len(t)] == t for t in tests):
            continue  # a test-only module may use any layer
        a = unit_of(module, order)
        for target, path in sorted(targets.items()):
            b = unit_of(target, order)
            if a is None or b is None or a == b:
                continue
            if order[b] > order[a]:
                out.append(
                    f"{'::'.join(module)} imports {path}: {'::'.join(b)} ({layers[order[b]][0]}) "
                    f"is listed below {'::'.join(a)} ({layers[order[a]][0]})"
                )
    # Cycles between files, a file's imports of its own ancestors left out.
    graph = {
        m: {t for t in targets if t != m[: len(t)]} for m, targets in imports.items()
    }
    index, low, stack, on, counter = {}, {}, [], set(), [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                names = sorted("::".join(c) for c in component)
                edges = sorted(
                    f"{'::'.join(x)} -> {'::'.join(y)}" for x in component for y in graph.get(x, ()) if y in component
                )
                out.append(f"import cycle among {', '.join(names)} ({'; '.join(edges)})")

    for v in sorted(crate.files):
        if v not in index:
            connect(v)
    return out


def test_the_code_keeps_the_declared_layers():
    found = problems(SRC)
    assert found == [], "\n".join(found)


def test_every_layer_row_names_a_module_and_every_module_has_a_row():
    layers = declared_layers(os.path.join(SRC, "lib.rs"))
    modules = [m for _, m in layers]
    assert len(modules) == len(set(modules)) and len(modules) >= 20
    assert {layer for layer, _ in layers} >= {"foundation", "kernel", "model", "binding", "stage", "glue"}


LIB = """//! Test crate.
//!
//! | layer | module | holds |
//! |---|---|---|
//! | foundation | [`low`] | x |
//! | kernel | [`mid`] | y |
//! | stage | [`high`] | z |

mod high;
mod low;
mod mid;
"""


def plant(tmp_path, files):
    src = tmp_path / "src"
    for name, text in {"lib.rs": LIB, **files}.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(src)


def test_the_check_finds_an_upward_import(tmp_path):
    src = plant(
        tmp_path,
        {
            "low.rs": "use crate::mid::thing;\npub fn base() {}\n",
            "mid.rs": "pub fn thing() { crate::low::base() }\n",
            "high.rs": "use crate::{low::base, mid::thing};\n",
        },
    )
    found = problems(src)
    assert any(p.startswith("low imports crate::mid::thing: mid (kernel) is listed below low") for p in found), found


def test_the_check_finds_a_cycle_between_sibling_files(tmp_path):
    src = plant(
        tmp_path,
        {
            "low.rs": "pub fn base() {}\n",
            "mid/mod.rs": "mod a;\nmod b;\npub use a::A;\n",
            "mid/a.rs": "use super::b::B;\npub struct A;\n",
            "mid/b.rs": "pub struct B;\n#[cfg(test)]\nmod tests {\n    use super::super::A;\n}\n",
            "high.rs": "use crate::mid::A;\n",
        },
    )
    found = problems(src)
    assert found == ["import cycle among mid::a, mid::b (mid::a -> mid::b; mid::b -> mid::a)"], found


def test_the_check_finds_a_module_missing_from_the_table(tmp_path):
    src = plant(tmp_path, {"low.rs": "", "mid.rs": "", "high.rs": "", "extra.rs": ""})
    (tmp_path / "src" / "lib.rs").write_text(LIB + "mod extra;\n")
    assert problems(src) == ["module extra is not in the layer table of src/lib.rs"]


@pytest.mark.parametrize(
    "tree, paths",
    [
        ("crate::a::{b, c::{d, e}}", ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]),
        ("super::{self, x::Y}", ["super", "super::x::Y"]),
    ],
)
def test_use_trees_expand(tree, paths):
    assert expand(tree) == paths
