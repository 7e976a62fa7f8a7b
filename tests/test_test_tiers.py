"""The two test tiers: `make test` leaves out the tests marked `slow` on every backend, `make test-all` runs every
test and is what CI runs. Read from `make --dry-run`, which prints the commands of a target without running them."""

import pathlib
import shlex
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs `make`")


def pytest_commands(target):
    """The pytest command lines `make <target>` runs, in order, as argument lists (the environment assignments
    that start them included)."""
    done = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "-C", str(ROOT), target],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    commands = [line.split("|")[0] for line in done.stdout.splitlines() if " -m pytest " in line]
    return [shlex.split(command) for command in commands]


def backend_of(command):
    """The Keras backend a command runs on: its KERAS_BACKEND assignment, else TensorFlow (tests/conftest.py)."""
    assignments = dict(word.split("=", 1) for word in command if "=" in word and not word.startswith("-"))
    return assignments.get("KERAS_BACKEND", "tensorflow")


def selection(command):
    """The tests a command names (none: the whole suite) and its marker expression (None without ``-m``)."""
    arguments = command[command.index("pytest") + 1 :]
    marker = arguments[arguments.index("-m") + 1] if "-m" in arguments else None
    paths = [word for word in arguments if word.startswith("tests")]
    return paths, marker


def test_make_test_runs_every_backend_without_the_slow_tests():
    commands = pytest_commands("test")
    assert [backend_of(command) for command in commands] == ["tensorflow", "jax", "torch"]
    for command in commands:
        assert selection(command)[1] == "not slow", shlex.join(command)
    assert selection(commands[0])[0] == [], "TensorFlow runs the whole suite"


def test_make_test_all_runs_every_test_of_make_test_slow_ones_included():
    fast, every = pytest_commands("test"), pytest_commands("test-all")
    assert [backend_of(command) for command in every] == ["tensorflow", "jax", "torch"]
    for quick, full in zip(fast, every, strict=True):
        paths, marker = selection(full)
        assert marker is None, shlex.join(full)
        assert paths == selection(quick)[0], "both tiers run the same tests on each backend"


def test_ci_runs_the_full_tier():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert "make test-all" in commands
    assert "make test" not in commands
