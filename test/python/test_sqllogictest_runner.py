"""The SQL test runner refuses tests that would pass too easily: a
`statement error` without its expected message, and an error whose message is
not the expected one."""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "test", "sqllogictest.py")
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")


def run(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "case.test")
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run([sys.executable, RUNNER, EXT, path], capture_output=True, text=True, timeout=120)


def test_statement_error_without_message_is_refused():
    out = run("statement error\nSELECT 1/'x'\n")
    assert out.returncode != 0
    assert "'statement error' needs '----' and the expected message" in out.stdout + out.stderr


def test_another_error_message_fails():
    out = run("statement error\nSELECT ecoreco.no_such_function()\n----\nthe message we expect\n")
    assert out.returncode == 1
    assert "error did not contain 'the message we expect'" in out.stdout


def test_the_expected_message_passes():
    out = run("statement error\nSELECT CAST('x' AS INTEGER)\n----\nCould not convert string\n")
    assert out.returncode == 0, out.stdout
    assert "sqllogictest: 1 passed, 0 failed" in out.stdout
