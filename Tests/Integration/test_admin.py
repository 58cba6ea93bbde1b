"""engage2fa-admin against throwaway policy files, state directories and real users."""

import concurrent.futures
import json
import os
import socket
import time

import pytest

from conftest import USER_PREFIX, DeviceSet, Enrollment, code, run_admin, settle, date_in


def days_from_now(days):
    return date_in(days)


def status(host, *users):
    result = run_admin("status", "--json", "--config", host.config_path, *[u.pw_name for u in users])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- check ---------------------------------------------------------------------------------------

def test_check_reports_every_problem_with_file_and_line(host):
    host.configure("window = 11\ncolour = red\n[deadlines]\nghost-user-e2fa = 2030-01-01\n", start="2026-02-30")
    result = run_admin("check", "--config", host.config_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{host.config_path}:2: error: start_date: '2026-02-30' names a day or time that does not exist" in lines
    assert any(line.startswith(f"{host.config_path}:3: error: window must be") for line in lines)
    assert any(line.startswith(f"{host.config_path}:4: error: unknown key 'colour'") for line in lines)
    assert f"{host.config_path}:6: warning: [deadlines]: no user 'ghost-user-e2fa' on this host" in lines


def test_check_valid_policy_before_start(host, users):
    start = days_from_now(12)
    host.configure(f"[deadlines]\n{users[1].pw_name} = 2021-01-01\n", start=start)
    result = run_admin("check", "--config", host.config_path)
    assert result.returncode == 0, result.stdout
    assert f"2FA is not active yet: it becomes mandatory on {start} (in 12 days)." in result.stdout
    assert f"{host.config_path}:4: warning: the deadline of {users[1].pw_name} (2021-01-01) has passed" in result.stdout


def test_check_warns_when_the_ratchet_overrides_the_start_date(host, users):
    host.activate()
    devices = DeviceSet(users[0])
    devices.add("Phone")
    devices.write()
    host.authenticate(users[0], "")  # the first decision after start_date records activation
    host.configure("", start="2099-01-01")
    result = run_admin("check", "--config", host.config_path)
    assert result.returncode == 0
    assert "2FA is active since" in result.stdout
    assert "start_date 2099-01-01 is later than the activation; 2FA stays enforced" in result.stdout


def test_check_names_the_apps_that_mishandle_settings_and_shows_the_label(host):
    host.configure("issuer = R&D%\ndigits = 7\nperiod = 45\nalgorithm = SHA256\nlabel = %u at %h\n", start="2099-01-01")
    result = run_admin("check", "--config", host.config_path)
    assert result.returncode == 0, result.stdout  # warnings only
    warnings = {line.split(": warning: ")[1] for line in result.stdout.splitlines() if ": warning: " in line}
    assert any(line.startswith("issuer = R&D%: '&', '%'") and "2FAS" in line for line in warnings), warnings
    assert any(line.startswith("digits = 7: outside the Key Uri Format") and "Google Authenticator" in line for line in warnings)
    assert any(line.startswith("period = 45: Google Authenticator ignores period") and "2FAS accepts only 10, 30, 60 or 90" in line
               for line in warnings)
    assert any(line.startswith("algorithm = SHA256: Google Authenticator on Android and Microsoft Authenticator ignore algorithm")
               for line in warnings)
    assert f"Authenticator apps show new devices as 'R&D%' / 'USER at {socket.gethostname()}' (label = %u at %h)." in result.stdout
    host.configure("digits = 8\n", start="2099-01-01")
    assert ": warning: " not in run_admin("check", "--config", host.config_path).stdout
    host.configure("label = %u:%h\n", start="2099-01-01")
    result = run_admin("check", "--config", host.config_path)
    assert result.returncode == 1
    assert f"{host.config_path}:3: error: label must not contain ':' (apps split issuer and account at ':'), not '%u:%h'" in result.stdout


# --- status ---------------------------------------------------------------------------------------

def test_status_shows_every_state_of_the_policy_table(host, users):
    ready, grace, overdue, passed, locked, unreadable = users[:6]
    start = days_from_now(20)
    host.configure("", start=start)
    devices = DeviceSet(ready)
    devices.add("Phone")
    devices.add("Tablet")
    devices.add_recovery_codes(count=7)
    devices.write()
    before = status(host, ready, overdue)
    assert [u["state"] for u in before["users"]] == ["not active yet", "not active yet"]
    assert [u["readiness"] for u in before["users"]] == ["ready", "pending"]

    deadline = days_from_now(4)
    host.activate(f"max_failures = 2\n[deadlines]\n{grace.pw_name} = {deadline}\n{passed.pw_name} = 2021-01-01\n")
    locked_devices = DeviceSet(locked)
    phone = locked_devices.add("Phone")
    locked_devices.write()
    for _ in range(2):
        assert host.authenticate(locked, "000000" if code(phone) != "000000" else "111111").result == "auth_err"
    bad = DeviceSet(unreadable)
    bad.add("Phone")
    bad.write(mode=0o644)

    report = status(host, ready, grace, overdue, passed, locked, unreadable)
    rows = {row["user"]: row for row in report["users"]}
    assert rows[ready.pw_name] == {"user": ready.pw_name, "devices": ["Phone", "Tablet"], "recovery_codes_left": 7,
                                   "deadline": None, "state": "enforced", "readiness": "ready"}
    assert rows[grace.pw_name]["state"] == f"grace until {deadline} (4 days)"
    assert rows[grace.pw_name]["deadline"] == deadline
    assert rows[overdue.pw_name]["state"] == "refused: no device, no deadline"
    assert rows[passed.pw_name]["state"] == "refused: no device, deadline passed"
    assert rows[locked.pw_name]["state"].startswith("locked out until ")
    assert rows[unreadable.pw_name]["state"].startswith("device file unreadable: ")
    assert "mode 644" in rows[unreadable.pw_name]["state"]
    assert report["summary"] == {"ready": 2, "pending": 1, "overdue": 3}

    table = run_admin("status", "--config", host.config_path, ready.pw_name, grace.pw_name)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["USER", "DEVICES", "RECOVERY", "DEADLINE", "STATE"]
    assert table.stdout.splitlines()[-1] == "2 users: 1 ready, 1 pending, 0 overdue"


def test_status_lists_only_users_with_a_login_shell(host, users):
    host.activate()
    passwd = os.path.join(host.directory, "passwd")
    with open(passwd, "w") as handle:
        for index, shell in enumerate(["/bin/bash", "/usr/sbin/nologin", "/bin/false", "/bin/zsh"]):
            handle.write(f"person{index}:x:{5000 + index}:{5000 + index}::/nonexistent/person{index}:{shell}\n")
    result = run_admin("status", "--json", "--config", host.config_path, "--passwd-file", passwd)
    assert result.returncode == 0, result.stderr
    assert [row["user"] for row in json.loads(result.stdout)["users"]] == ["person0", "person3"]


def test_status_of_an_unknown_user_is_a_clear_error(host):
    host.activate()
    result = run_admin("status", "--config", host.config_path, "no-such-user-e2fa")
    assert result.returncode != 0 and "there is no user 'no-such-user-e2fa'" in result.stderr


# --- extend ---------------------------------------------------------------------------------------

POLICY = """# engage2fa policy — managed by hand
start_date = 2020-01-01    # activated long ago
state_dir = {state}

[deadlines]
# people on leave:
{known} = 2031-01-01   # back in January
"""


def state_deadline(host, user):
    """The deadline line of the user's state file (root's, under state_dir), or None."""
    for line in host.state_file(user).splitlines():
        if line.startswith("deadline date="):
            return line.split("=", 1)[1]
    return None


def test_extend_keeps_the_deadline_in_state_and_never_rewrites_the_policy_file(host, users):
    known, newcomer = users[1], users[2]
    original = POLICY.format(state=host.state_dir, known=known.pw_name)
    with open(host.config_path, "w") as handle:
        handle.write(original)
    os.chmod(host.config_path, 0o640)
    before = os.stat(host.config_path)

    result = run_admin("extend", known.pw_name, "2032-06-30", "--config", host.config_path)
    assert result.returncode == 0, result.stderr
    result = run_admin("extend", newcomer.pw_name, "2031-03-04T09:00:00+01:00", "--config", host.config_path)
    assert result.returncode == 0, result.stderr
    assert open(host.config_path).read() == original
    after = os.stat(host.config_path)
    assert (after.st_ino, after.st_mtime_ns, after.st_mode & 0o777) == (before.st_ino, before.st_mtime_ns, 0o640)
    assert state_deadline(host, known) == "2032-06-30"
    assert state_deadline(host, newcomer) == "2031-03-04T09%3A00%3A00%2B01%3A00"
    status = run_admin("status", known.pw_name, newcomer.pw_name, "--json", "--config", host.config_path)
    rows = {row["user"]: row for row in json.loads(status.stdout)["users"]}
    # The later of the file's entry (2031-01-01) and the state's (2032-06-30) counts.
    assert rows[known.pw_name]["deadline"] == "2032-06-30" and rows[newcomer.pw_name]["deadline"] == "2031-03-04T09:00:00+01:00"
    assert run_admin("check", "--config", host.config_path).returncode == 0


def test_an_earlier_extend_warns_that_the_policy_files_later_entry_still_counts(host, users):
    known = users[1]
    with open(host.config_path, "w") as handle:
        handle.write(POLICY.format(state=host.state_dir, known=known.pw_name))
    result = run_admin("extend", known.pw_name, "2030-01-01", "--config", host.config_path)
    assert result.returncode == 0 and "2031-01-01" in result.stderr and "still counts" in result.stderr, result.stderr


def test_extend_refuses_past_dates_users_with_devices_and_unknown_users(host, users):
    host.activate()
    before = open(host.config_path).read()
    past = run_admin("extend", users[1].pw_name, "2021-01-01", "--config", host.config_path)
    assert past.returncode != 0 and "is in the past" in past.stderr
    devices = DeviceSet(users[0])
    devices.add("Phone")
    devices.write()
    enrolled = run_admin("extend", users[0].pw_name, days_from_now(5), "--config", host.config_path)
    assert enrolled.returncode != 0 and "already has a linked device (Phone)" in enrolled.stderr
    assert "engage2fa-admin reset" in enrolled.stderr
    unknown = run_admin("extend", "no-such-user-e2fa", days_from_now(5), "--config", host.config_path)
    assert unknown.returncode != 0 and "there is no user" in unknown.stderr
    bad = run_admin("extend", users[1].pw_name, "next week", "--config", host.config_path)
    assert bad.returncode != 0 and "is not a date" in bad.stderr
    assert open(host.config_path).read() == before
    assert state_deadline(host, users[0]) is None and state_deadline(host, users[1]) is None


def test_concurrent_extends_keep_every_line(host, users):
    host.activate()
    date = days_from_now(9)
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda user: run_admin("extend", user.pw_name, date, "--config", host.config_path), users[:10]))
    assert all(result.returncode == 0 for result in results), [r.stderr for r in results]
    for user in users[:10]:
        assert state_deadline(host, user) == date
        assert host.authenticate(user).result == "ignored"


def test_extended_user_logs_in_with_a_nudge(host, users):
    host.activate()
    assert host.authenticate(users[1]).result == "auth_err"
    deadline = days_from_now(6)
    assert run_admin("extend", users[1].pw_name, deadline, "--config", host.config_path).returncode == 0
    outcome = host.authenticate(users[1])
    assert outcome.result == "ignored", outcome
    assert f"Your personal deadline is {deadline} (in 6 days)" in outcome.output


# --- reset and unlock -----------------------------------------------------------------------------

def test_reset_with_deadline_lets_a_user_who_lost_the_phone_back_in(host, users, syslog):
    alice = users[0]
    host.activate("max_failures = 2\n")
    devices = DeviceSet(alice)
    devices.add("Lost phone")
    devices.add_recovery_codes()
    devices.write()
    for _ in range(2):
        host.authenticate(alice, "000000")
    assert host.authenticate(alice, "000000").result == "maxtries"

    mark = syslog.mark()
    deadline = days_from_now(3)
    result = run_admin("reset", alice.pw_name, "--deadline", deadline, "--config", host.config_path)
    assert result.returncode == 0, result.stderr
    assert not os.path.exists(devices.path)
    outcome = host.authenticate(alice)
    assert outcome.result == "ignored" and f"Your personal deadline is {deadline}" in outcome.output, outcome
    audit = [m for m in syslog.messages[mark:] if "engage2fa-admin" in m]
    assert any(f"root: reset {alice.pw_name}: removed all devices and recovery codes, cleared lockout; personal deadline {deadline}" in m
               for m in audit), audit

    # The user links a new phone and from then on needs its codes.
    settle()
    enrollment = Enrollment(alice, "--name", "New phone", "--config", host.config_path)
    assert enrollment.answer(code(enrollment.device)) == 0, enrollment.errors
    time.sleep(30 - time.time() % 30 + 0.5)
    assert host.authenticate(alice, code(enrollment.device)).result == "success"


def test_unlock_clears_only_the_lockout(host, users):
    alice = users[0]
    host.activate("max_failures = 2\nlockout_seconds = 3600\n")
    devices = DeviceSet(alice)
    phone = devices.add("Phone")
    devices.write()
    for _ in range(2):
        host.authenticate(alice, "000000" if code(phone) != "000000" else "111111")
    settle()
    assert host.authenticate(alice, code(phone)).result == "maxtries"
    result = run_admin("unlock", alice.pw_name, "--config", host.config_path)
    assert result.returncode == 0, result.stderr
    assert host.authenticate(alice, code(phone)).result == "success"
    assert os.path.exists(devices.path)


@pytest.mark.parametrize("arguments", [["extend", f"{USER_PREFIX}2", "2031-01-01"], ["reset", f"{USER_PREFIX}2"], ["unlock", f"{USER_PREFIX}2"]])
def test_changes_need_root(host, users, arguments):
    host.activate()
    result = run_admin(*arguments, "--config", host.config_path, user=users[0])
    assert result.returncode != 0
    assert "needs root: run it with sudo" in result.stderr


def test_admin_help_and_version():
    result = run_admin("--help")
    for sub in ["check", "status", "extend", "reset", "unlock"]:
        assert sub in result.stdout
        assert run_admin(sub, "--help").returncode == 0
    assert run_admin("--version").stdout.strip() == "0.1.0"
