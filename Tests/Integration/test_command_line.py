"""The installed binaries' command lines (issue 14.5): usage errors exit 64 with the usage, runtime errors 1.

The parsing rules themselves are tested in process (Tests/CommandTests); this checks that the release
binaries' entry points use them. Needs no test users and changes nothing."""

import os
import subprocess
import tempfile

import pytest

from conftest import ADMIN, ENROLL


def run(*command):
    return subprocess.run(list(command), capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("binary", [ENROLL, ADMIN])
@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(binary, flag):
    result = run(binary, flag)
    assert (result.returncode, result.stdout.strip()) == (0, "0.1.0"), result


def test_an_unknown_subcommand_is_named_not_taken_for_add():
    result = run(ENROLL, "lsit")
    assert result.returncode == 64, result
    assert "'lsit' is not a subcommand of engage2fa-enroll (the subcommands are: add, list, remove, recovery-codes, status)" in result.stderr
    assert "engage2fa-enroll add" not in result.stderr, result.stderr
    admin = run(ADMIN, "stauts")
    assert admin.returncode == 64 and "'stauts' is not a subcommand of engage2fa-admin" in admin.stderr, admin


@pytest.mark.parametrize("arguments,message", [
    (["extend", "root", "next week"], "'next week' is not a date"),
    (["extend", "root", "2021-01-01"], "2021-01-01 is in the past"),
    (["reset", "root", "--deadline", "2021-01-01", "--yes"], "is in the past"),
    (["unlock", "a/b"], "'a/b' is not a valid user name"),
    (["status", "root", "evil\x1b[31m"], "'evil\\x1b[31m' is not a valid user name"),
    (["extend", "root"], "Missing expected argument"),
])
def test_usage_errors_exit_64_with_the_usage(arguments, message):
    result = run(ADMIN, *arguments)
    assert result.returncode == 64, result
    assert message in result.stderr and "Usage: engage2fa-admin " in result.stderr, result.stderr
    assert "\x1b" not in result.stderr


def test_an_unknown_user_is_a_runtime_error():
    with tempfile.TemporaryDirectory() as directory:
        config = os.path.join(directory, "absent.conf")  # a missing policy file is the default policy
        result = run(ADMIN, "status", "no-such-user-e2fa", "--config", config)
    assert result.returncode == 1, result
    assert "there is no user 'no-such-user-e2fa'" in result.stderr and "Usage:" not in result.stderr, result.stderr


def test_enroll_refuses_an_unsafe_user_before_anything_else():
    result = run(ENROLL, "list", "--user", "../etc")
    assert result.returncode == 64 and "'../etc' is not a valid user name" in result.stderr, result
