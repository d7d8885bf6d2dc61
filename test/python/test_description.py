"""description.yml, the community-extensions description of ecoreco: its
version is Cargo.toml's, its build and C API version are the ones the Makefile
uses, and its docs.hello_world runs as printed after LOAD (in this test's
DuckDB version)."""
import os
import re

import duckdb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")


def read(name):
    return open(os.path.join(ROOT, name), encoding="utf-8").read()


def block(text, key):
    """The indented lines of a YAML block scalar `key: |`."""
    m = re.search(rf"^(\s*){key}: \|\n((?:\1  .*\n|\s*\n)+)", text, re.M)
    assert m, key
    indent = len(m.group(1)) + 2
    return "\n".join(line[indent:] for line in m.group(2).splitlines())


def scalar(text, key):
    m = re.search(rf"^\s*{key}: (.+)$", text, re.M)
    assert m, key
    return m.group(1).strip().strip('"')


def test_description_matches_the_build():
    text = read("description.yml")
    cargo = read("Cargo.toml")
    makefile = read("Makefile")
    assert scalar(text, "name") == "ecoreco"
    assert scalar(text, "version") == re.search(r'^version = "(.+)"', cargo, re.M).group(1)
    assert scalar(text, "license") == re.search(r'^license = "(.+)"', cargo, re.M).group(1)
    assert scalar(text, "language") == "Rust" and scalar(text, "build") == "cargo"
    c_api = re.search(r"^MIN_C_API\s*:= (v[0-9.]+)", makefile, re.M).group(1)
    assert f"C API {c_api}" in text, c_api
    excluded = scalar(text, "excluded_platforms").split(";")
    assert "linux_amd64" not in excluded and all(p.startswith(("wasm", "windows", "linux")) for p in excluded)


def test_hello_world_runs():
    sql = block(read("description.yml"), "hello_world")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    results = [con.execute(s).fetchall() for s in duckdb.extract_statements(sql)]
    assert len(results) == 5
    assert results[2][0][0] > 0  # funnel: views
    assert len(results[4]) == 6  # two users' top 3
