"""Issue 13 C: bytes a user controls never reach a terminal or a log line raw.

A user writes their own device file (or picks their login name, as sshd and pamtester pass any name
through): names with ESC, OSC title sequences, CR/LF and forged table columns must not forge rows in
root's `engage2fa-admin status`, retitle a terminal, or forge a second line in the module's syslog."""

import json
import os
import time
import re
import shutil
import subprocess

import pytest

from conftest import ENROLL, DeviceSet, code, run_admin, run_enroll, settle

# What must never appear raw: C0 (but the newline between lines), DEL, C1, bidi and zero-width marks,
# the line and paragraph separators: the scalars isUnsafeForDisplay names.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
UNSAFE_IN_A_VALUE = re.compile(UNSAFE.pattern.replace("\x0b", "\x0a\x0b", 1))


def assert_clean(text, where=""):
    found = UNSAFE.search(text)
    assert found is None, f"raw U+{ord(found.group()):04X} in {where}: {text!r}"


def assert_values_clean(value, where="JSON"):
    """Every string in a parsed JSON document, newlines included: `jq -r` prints them raw."""
    if isinstance(value, str):
        found = UNSAFE_IN_A_VALUE.search(value)
        assert found is None, f"U+{ord(found.group()):04X} in a {where} value: {value!r}"
    elif isinstance(value, dict):
        for item in value.values():
            assert_values_clean(item, where)
    elif isinstance(value, list):
        for item in value:
            assert_values_clean(item, where)


def hostile_name(victim):
    """Sets the window title, erases the line, then forges a row of `status` for another user and hides what follows."""
    return f"Phone\x1b]0;owned\x07\x1b[2K\r\n{victim.pw_name}  1: Phone  10  -  enforced\x1b[8m"


def written(user, *names):
    devices = DeviceSet(user)
    made = [devices.add(name) for name in names]
    devices.write()
    return devices, made


# --- device names in the user's own file --------------------------------------------------------------

def test_status_table_and_json_show_no_raw_byte_and_no_forged_row(host, users):
    attacker, victim = users[0], users[1]
    host.activate()
    devices, _ = written(attacker, "Phone", hostile_name(victim))

    table = run_admin("status", "--config", host.config_path, attacker.pw_name, victim.pw_name)
    assert table.returncode == 0, table.stderr
    assert_clean(table.stdout, "status")
    lines = table.stdout.splitlines()
    assert len(lines) == 4, lines  # header, two rows, summary
    assert [line.split()[0] for line in lines[1:3]] == [attacker.pw_name, victim.pw_name], lines
    row = lines[1]
    # The file is refused as a whole (the module would refuse it too), at the line of the bad name.
    assert f"device file unreadable: {devices.path}:3: " in row, row
    assert "\\x1b]0;owned\\x07" in row, row
    assert lines[-1] == "2 users: 0 ready, 0 pending, 2 overdue", lines

    report = run_admin("status", "--json", "--config", host.config_path, attacker.pw_name, victim.pw_name)
    assert report.returncode == 0, report.stderr
    assert_clean(report.stdout, "status --json")
    parsed = json.loads(report.stdout)
    assert_values_clean(parsed)
    rows = parsed["users"]
    assert [r["user"] for r in rows] == [attacker.pw_name, victim.pw_name]
    assert rows[0]["devices"] == [] and rows[0]["readiness"] == "overdue", rows[0]
    assert rows[0]["state"].startswith(f"device file unreadable: {devices.path}:3: "), rows[0]


def test_enroll_list_refuses_the_file_and_says_how_to_fix_it(host, users, enroll_config):
    attacker = users[0]
    devices, _ = written(attacker, "Phone", hostile_name(users[1]))
    for arguments in [(), ("--json",)]:
        result = run_enroll(attacker, "list", "--config", enroll_config, *arguments)
        assert_clean(result.stdout, "list")
        assert_clean(result.stderr, "list's errors")
        assert result.returncode == 1, result
        assert f"{devices.path}:3: " in result.stderr, result.stderr
        assert "\\x1b]0;owned" in result.stderr, result.stderr
        # How to fix it: edit the name, or move the file aside and link again.
        assert "name=" in result.stderr and f"mv {devices.path} {devices.path}.bad" in result.stderr, result.stderr


def test_module_refuses_a_hostile_name_after_activation_with_one_escaped_log_line(host, users, syslog):
    attacker = users[0]
    forged_log = f"Phone\r\npam_engage2fa({host.service}:auth): user root: code accepted from device 'Key'\x1b[8m"
    devices, (phone, _) = written(attacker, "Phone", forged_log)
    host.activate()
    host.authenticate(users[1])  # records activation, so that only the attacker's lines follow
    time.sleep(0.3)  # let that login's lines reach the capture before the mark
    mark = syslog.mark()
    settle()
    outcome = host.authenticate(attacker, code(phone))
    assert outcome.result == "auth_err", outcome  # fail closed: the file cannot be used
    assert_clean(outcome.output, "pamtester's output")
    logged = syslog.since(mark)
    assert len(logged) == 1, logged
    line = logged[0]
    assert "\n" not in line and "\r" not in line and "\x1b" not in line, line
    assert line.count("pam_engage2fa(") == 2 and f"{devices.path}:3: " in line, line  # the real prefix, the forged one escaped
    assert "Phone\\x0d\\x0apam_engage2fa(" in line, line


def test_parse_errors_quote_escaped_bytes_in_status_and_syslog(host, users, syslog):
    attacker = users[0]
    devices, (phone,) = written(attacker, "Phone")
    with open(devices.path, "ab") as handle:
        # An unknown record with ESC, an OSC title, a C1 CSI (U+009B) and a bidi override in it.
        handle.write("dev\x1b]0;owned\x07ice\u009b2J\u202eetats id=1\n".encode())
    host.activate()
    host.authenticate(users[1])

    table = run_admin("status", "--config", host.config_path, attacker.pw_name)
    assert table.returncode == 0, table.stderr
    assert_clean(table.stdout, "status")
    assert f"{devices.path}:3: unknown record 'dev\\x1b]0;owned\\x07ice\\x9b2J\\u{{202e}}etats'" in table.stdout, table.stdout
    report = run_admin("status", "--json", "--config", host.config_path, attacker.pw_name)
    assert_clean(report.stdout, "status --json")
    assert_values_clean(json.loads(report.stdout))

    mark = syslog.mark()
    settle()
    assert host.authenticate(attacker, code(phone)).result == "auth_err"
    logged = syslog.since(mark)
    assert len(logged) == 1, logged
    assert_clean(logged[0], "syslog")
    assert "unknown record 'dev\\x1b]0;owned\\x07ice" in logged[0], logged

    # A Latin-1 line is named without quoting it.
    with open(devices.path, "wb") as handle:
        handle.write(b"engage2fa-devices 1\ndevice caf\xe9 \x1b[2J\n")
    table = run_admin("status", "--config", host.config_path, attacker.pw_name)
    assert_clean(table.stdout, "status")
    assert f"{devices.path}:2: not valid UTF-8" in table.stdout, table.stdout


def test_user_names_and_homes_from_the_user_database_are_escaped(host, users):
    """Names and paths from NSS (LDAP, sssd) are not checked by this host's useradd."""
    attacker = users[0]
    host.activate()
    home = os.path.join(host.directory, "home\x1b]0;owned\x07\u202e")
    os.mkdir(home)
    DeviceSet(attacker, path=os.path.join(home, ".engage2fa")).write(mode=0o644)  # unreadable: mode 644
    passwd = os.path.join(host.directory, "passwd")
    names = ["evil\x1b[31m", "spoof\u202eresu", "zero\u200bwidth"]
    with open(passwd, "w") as handle:
        for name in names:
            handle.write(f"{name}:x:{attacker.pw_uid}:{attacker.pw_gid}::{home}:/bin/bash\n")

    table = run_admin("status", "--config", host.config_path, "--passwd-file", passwd)
    assert table.returncode == 0, table.stderr
    assert_clean(table.stdout, "status")
    assert "evil\\x1b[31m" in table.stdout and "spoof\\u{202e}resu" in table.stdout, table.stdout
    assert "home\\x1b]0;owned\\x07\\u{202e}/.engage2fa: mode 644" in table.stdout, table.stdout

    report = run_admin("status", "--json", "--config", host.config_path, "--passwd-file", passwd)
    assert report.returncode == 0, report.stderr
    # Raw JSON carries every unsafe scalar as \\uXXXX (bidi marks too), so `cat` and `jq .` are safe;
    # the user names parse back exactly.
    assert_clean(report.stdout, "status --json")
    assert "\\u202e" in report.stdout and "\\u200b" in report.stdout, report.stdout
    assert [row["user"] for row in json.loads(report.stdout)["users"]] == names


def test_check_escapes_what_it_quotes_from_the_policy(host, users):
    host.activate("colour\u009b2J = red\u202e\nwindow = 1\u200b\n[dead\u202elines]\n")
    result = run_admin("check", "--config", host.config_path)
    assert result.returncode == 1
    assert_clean(result.stdout, "check")
    assert "unknown key 'colour\\x9b2j'" in result.stdout, result.stdout
    assert "not '1\\u{200b}'" in result.stdout, result.stdout
    assert "unknown section [dead\\u{202e}lines]" in result.stdout, result.stdout
    status = run_admin("status", "--config", host.config_path, users[0].pw_name)
    assert status.returncode == 1
    assert_clean(status.stderr, "status's errors")
    assert "unknown key 'colour\\x9b2j'" in status.stderr, status.stderr


def test_enroll_remove_escapes_the_name_it_was_given(host, users, enroll_config):
    alice = users[0]
    written(alice, "Phone")
    result = run_enroll(alice, "remove", "\x1b]0;owned\x07\u202e", "--yes", "--config", enroll_config)
    assert result.returncode == 1
    assert_clean(result.stderr, "remove's errors")
    assert "there is no device named '\\x1b]0;owned\\x07\\u{202e}' (linked: 'Phone')" in result.stderr, result.stderr


# --- PAM_USER ---------------------------------------------------------------------------------------

def hostile_users(host):
    return {
        "newline": f"evil\npam_engage2fa({host.service}:auth): user root: code accepted from device 'Phone'",
        "escape": "evil\x1b]0;owned\x07\x1b[2J\x1b[8m",
        "long": "a" * 5000,
    }


@pytest.mark.parametrize("kind", ["newline", "escape", "long"])
def test_hostile_pam_user_gives_single_escaped_bounded_log_lines(host, users, syslog, kind):
    host.activate()
    host.authenticate(users[1])  # records activation first
    name = hostile_users(host)[kind]
    mark = syslog.mark()
    outcome = host.authenticate(name, "123456")
    assert outcome.result == "auth_err", outcome
    # pamtester echoes the name itself in "invoking pam_start(...)": everything else is the module's.
    shown = "\n".join(line for line in outcome.output.splitlines() if not line.startswith("pamtester: invoking pam_start("))
    assert_clean(shown, "pamtester's output")
    logged = syslog.since(mark)
    assert logged, "nothing logged"
    for line in logged:
        assert_clean(line, "syslog")
        assert "\n" not in line.rstrip("\n"), line
        assert len(line.encode()) <= 1200, len(line.encode())
    if kind == "newline":
        assert any("user evil\\x0apam_engage2fa(" in line for line in logged), logged


# --- enrollment -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mark", ["\u202e", "\u200b", "\u2066", "\u00ad", "\u0085"])
def test_enrollment_refuses_invisible_and_bidi_marks_and_saves_nothing(host, users, enroll_config, mark):
    alice = users[0]
    path = os.path.join(alice.pw_dir, ".engage2fa")
    result = run_enroll(alice, "add", "--name", f"Pho{mark}ne", "--qr", "none", "--config", enroll_config, stdin="000000\n")
    assert result.returncode == 1, result
    assert "otpauth://" not in result.stdout, result.stdout  # refused before a secret is made
    assert_clean(result.stdout + result.stderr, "add's output")
    assert f"U+{ord(mark):04X}" in result.stderr and "control or invisible formatting character" in result.stderr, result.stderr
    assert not os.path.exists(path)


# --- status without root (issue 13 J) -------------------------------------------------------------------

def test_status_without_root_refuses_unless_it_is_only_about_the_caller(host, users):
    alice = users[0]
    host.activate()
    written(alice, "Phone")
    everyone = run_admin("status", "--config", host.config_path, user=alice)
    assert everyone.returncode == 1, everyone
    assert "status needs root to read every user's devices: run it with sudo" in everyone.stderr, everyone.stderr
    assert everyone.stdout == ""
    other = run_admin("status", "--config", host.config_path, alice.pw_name, users[1].pw_name, user=alice)
    assert other.returncode == 1 and "needs root" in other.stderr, other
    alone = run_admin("status", "--json", "--config", host.config_path, alice.pw_name, user=alice)
    assert alone.returncode == 0, alone
    (row,) = json.loads(alone.stdout)["users"]
    assert row["user"] == alice.pw_name and row["devices"] == ["Phone"], row
