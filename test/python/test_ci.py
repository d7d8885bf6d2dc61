"""CI runs what a newcomer runs: `.ci/run`, read from a fresh clone of the
committed tree, calls the README's test command and nothing else, and that
command installs the system packages the tests need itself
(test/system_packages.sh), so a green CI cannot hide a missing install step.
"""
import os
import re
import shlex
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "test", "system_packages.sh")
# Lines of a shell script that run no command of their own.
INERT = re.compile(r"^(#.*|set -[a-z]+( pipefail)?|cd \"\$\(dirname \"\$0\"\)/\.\.\")?$")


def readme_test_command(readme):
    """The `make test` line of the README's first sh block, without its comment."""
    block = re.search(r"^```sh\n(.*?)^```", readme, re.S | re.M).group(1)
    lines = [l.split("#")[0].strip() for l in block.splitlines()]
    tests = [l for l in lines if l.startswith("make") and "test" in l.split()[1:]]
    assert len(tests) == 1, block
    return tests[0]


def commands(script):
    return [l.strip() for l in script.splitlines() if not INERT.match(l.strip())]


def test_ci_runs_only_the_readmes_test_command():
    with tempfile.TemporaryDirectory() as tmp:
        clone = os.path.join(tmp, "clone")
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True, capture_output=True)
        readme = open(os.path.join(clone, "README.md"), encoding="utf-8").read()
        ci = open(os.path.join(clone, ".ci", "run"), encoding="utf-8").read()
        makefile = open(os.path.join(clone, "Makefile"), encoding="utf-8").read()
    command = readme_test_command(readme)
    assert command == "make test"
    assert commands(ci) == [command], ci
    # The test target's first step installs what the tests need.
    test_rule = re.search(r"^test:(.*)$", makefile, re.M).group(1).split()
    assert test_rule[0] == "system-test", test_rule
    system_test = re.search(r"^system-test:.*\n\t@\$\(SYSTEM\) (.*)$", makefile, re.M).group(1)
    assert set(system_test.split()) == {"browser", "influx", "spark", "valgrind"}, system_test


def test_the_inert_line_filter_keeps_commands():
    # A second command in .ci/run would be seen (the check above can fail).
    assert commands('set -euo pipefail\ncd "$(dirname "$0")/.."\napt-get update\nmake test\n') == [
        "apt-get update",
        "make test",
    ]


def run_script(*groups, path):
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        ["/bin/bash", SCRIPT, *groups], env=env, capture_output=True, text=True, timeout=60
    )


def test_missing_packages_without_apt_name_the_command_to_run():
    # An empty PATH: neither influxd, java nor apt-get are found, so nothing
    # can be installed and the script says what to run instead.
    with tempfile.TemporaryDirectory() as empty:
        run = run_script("influx", "spark", path=empty)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "missing system packages: influxdb openjdk-17-jre-headless; install them "
        "(Debian: sudo apt-get install -y influxdb openjdk-17-jre-headless) and run make again"
    ), run.stderr


def test_present_packages_need_nothing():
    # Every command of the group found: exit 0, nothing printed, nothing installed.
    with tempfile.TemporaryDirectory() as bindir:
        for name in ("influxd", "java"):
            fake = os.path.join(bindir, name)
            with open(fake, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(fake, 0o755)
        run = run_script("influx", "spark", path=bindir)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_unknown_group_is_refused():
    run = run_script("gpu", path=os.environ["PATH"])
    assert run.returncode == 2
    assert "unknown group 'gpu'" in run.stderr
    assert shlex.split(run.stderr)[0] == "system_packages.sh:"
