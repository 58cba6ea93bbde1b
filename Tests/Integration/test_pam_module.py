"""pam_engage2fa.so through real libpam (pamtester), with codes from oathtool."""

import concurrent.futures
import os
import subprocess
import time

import pytest

from conftest import MODULE, DeviceSet, code, settle, date_in


def enrolled(host, user, *names, **parameters):
    devices = DeviceSet(user)
    made = [devices.add(name, **parameters) for name in (names or ("Phone",))]
    devices.write()
    return devices, made


# --- the artefact ---------------------------------------------------------------------------------

def test_exports_only_pam_entry_points():
    output = subprocess.run(["nm", "-D", "--defined-only", MODULE], check=True, capture_output=True, text=True).stdout
    exported = sorted(line.split()[-1] for line in output.splitlines() if line.split()[1].isupper())
    assert exported == ["pam_sm_authenticate", "pam_sm_setcred"]


def test_needs_no_swift_runtime_foundation_or_libcrypto():
    output = subprocess.run(["ldd", MODULE], check=True, capture_output=True, text=True).stdout
    libraries = [line.split()[0] for line in output.splitlines() if line.strip()]
    assert libraries, output
    for line in output.splitlines():
        assert "swift" not in line.lower(), line
        assert "/opt/" not in line, line
        assert "libcrypto" not in line and "libssl" not in line, line
        assert "Foundation" not in line and "dispatch" not in line.lower(), line
        assert "not found" not in line, line
        # Each of these would add thousands of symbol lookups to every sshd connection (bench/results.md).
        assert "libstdc++" not in line and "libgcc_s" not in line and "libm.so" not in line, line
    dynamic = subprocess.run(["readelf", "-d", MODULE], check=True, capture_output=True, text=True).stdout
    assert "RPATH" not in dynamic and "RUNPATH" not in dynamic, dynamic


CEIL_CHECK = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
double module_ceil(double);
static int same(double a, double b) { return (a != a && b != b) || memcmp(&a, &b, sizeof a) == 0; }
int main(void) {
    /* libm's floor as the reference: ceil(x) == -floor(-x) for every double. */
    const double special[] = {0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 2.5, -2.5, 0x1p52, -0x1p52, 0x1p52 - 0.5,
                              -(0x1p52 - 0.5), 0x1p53 + 2, 1e300, -1e300, 4.9e-324, -4.9e-324, INFINITY, -INFINITY, NAN};
    long checked = 0;
    for (unsigned i = 0; i < sizeof special / sizeof special[0]; i++, checked++)
        if (!same(module_ceil(special[i]), -floor(-special[i]))) { printf("ceil(%a) = %a\n", special[i], module_ceil(special[i])); return 1; }
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (long i = 0; i < 2000000; i++, checked++) {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        double x;
        if (i % 2) { memcpy(&x, &state, sizeof x); }                         /* any bit pattern */
        else { x = (double)(int64_t)(state >> 11) / (double)(1u << (state & 31)) - 1e6; } /* near small integers */
        if (!same(module_ceil(x), -floor(-x))) { printf("ceil(%a) = %a\n", x, module_ceil(x)); return 1; }
    }
    printf("%ld\n", checked);
    return 0;
}
"""


def test_module_ceil_matches_libm(tmp_path):
    # The module defines ceil(3) itself so that it does not load libm (Sources/CEngagePAM/ceil.c).
    source = os.path.join(os.path.dirname(__file__), "..", "..", "Sources", "CEngagePAM", "ceil.c")
    renamed = tmp_path / "ceil.c"
    renamed.write_text(open(source).read().replace("double ceil(double x)", "double module_ceil(double x)"))
    (tmp_path / "check.c").write_text(CEIL_CHECK)
    subprocess.run(["gcc", "-O2", "-o", str(tmp_path / "check"), str(tmp_path / "check.c"), str(renamed), "-lm"], check=True)
    result = subprocess.run([str(tmp_path / "check")], capture_output=True, text=True)
    assert result.returncode == 0 and int(result.stdout) > 2_000_000, result.stdout


# --- codes ------------------------------------------------------------------------------------------

def test_right_code_succeeds_and_wrong_code_fails(host, users):
    alice = users[0]
    host.activate()
    _, (phone,) = enrolled(host, alice)
    settle()
    right = code(phone)
    wrong = f"{(int(right) + 1) % 1000000:06d}"
    outcome = host.authenticate(alice, wrong)
    assert outcome.result == "auth_err" and outcome.prompted, outcome
    assert "Wrong verification code." in outcome.output
    outcome = host.authenticate(alice, right)
    assert outcome.result == "success", outcome


@pytest.mark.parametrize("answer", [
    "12345", "1234567", "12345678", "abcdef", "", " ", "%n%n%n%n%s%s", "1" * 1000, "12 34 56", "-123456",
    "\x1b[2J", "１２３４５６", "123456\x00789",
])
def test_garbage_at_the_prompt_is_denied_without_a_crash(host, users, answer):
    alice = users[0]
    host.activate()
    _, (phone,) = enrolled(host, alice)
    outcome = host.authenticate(alice, answer)
    assert outcome.result == "auth_err", outcome
    assert outcome.prompted
    # The module is still healthy: the right code works afterwards.
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"


def test_whitespace_around_the_code_is_ignored(host, users):
    alice = users[0]
    host.activate()
    _, (phone,) = enrolled(host, alice)
    settle()
    assert host.authenticate(alice, f"  {code(phone)}\t").result == "success"


def test_a_passwd_entry_longer_than_the_first_lookup_buffer_is_found(host, users):
    """getpwnam_r is tried first with 1 KiB on the stack, then with growing buffers (ERANGE): a user whose
    /etc/passwd line is 5 KB long (a long comment field), past two buffer sizes, is still found, and logs in with their code."""
    alice = users[0]
    before = subprocess.run(["getent", "passwd", alice.pw_name], check=True, capture_output=True, text=True).stdout.split(":")[4]
    subprocess.run(["usermod", "--comment", "x" * 5000, alice.pw_name], check=True)
    try:
        assert len(subprocess.run(["getent", "passwd", alice.pw_name], check=True, capture_output=True, text=True).stdout) > 5000
        host.activate()
        _, (phone,) = enrolled(host, alice)
        settle()
        assert host.authenticate(alice, code(phone)).result == "success"
    finally:
        subprocess.run(["usermod", "--comment", before, alice.pw_name], check=True)


@pytest.mark.parametrize("algorithm,digits,period", [("SHA1", 8, 30), ("SHA256", 6, 30), ("SHA512", 7, 60), ("SHA1", 6, 15)])
def test_other_algorithms_digits_and_periods(host, users, algorithm, digits, period):
    alice = users[0]
    host.activate()
    _, (phone,) = enrolled(host, alice, algorithm=algorithm, digits=digits, period=period)
    settle(period, margin=3)
    assert host.authenticate(alice, code(phone)).result == "success"


def test_replay_is_refused_and_previous_step_accepted_within_window(host, users):
    alice = users[0]
    host.activate("window = 1\n")
    _, (phone,) = enrolled(host, alice)
    settle()
    previous = code(phone, -1)
    two_old = code(phone, -2)
    assert host.authenticate(alice, two_old).result == "auth_err"
    assert host.authenticate(alice, previous).result == "success"
    outcome = host.authenticate(alice, previous)
    assert outcome.result == "auth_err" and "already used" in outcome.output, outcome
    # After a newer code, the same code and older ones stay refused.
    assert host.authenticate(alice, code(phone)).result == "success"
    assert host.authenticate(alice, code(phone)).result == "auth_err"


def test_second_of_three_devices_changes_only_its_own_state(host, users):
    alice = users[0]
    host.activate()
    _, (first, second, third) = enrolled(host, alice, "Pixel 8", "iPad", "YubiKey app")
    settle()
    assert host.authenticate(alice, code(second)).result == "success"
    state = host.state_file(alice)
    assert f"id={second['id']}" in state
    assert f"id={first['id']}" not in state and f"id={third['id']}" not in state
    # The first device's current code still works: its replay state was untouched.
    assert host.authenticate(alice, code(first)).result == "success"


def test_recovery_code_works_once(host, users):
    alice = users[0]
    host.activate()
    devices, _ = enrolled(host, alice)
    recovery = devices.add_recovery_codes()
    devices.write()
    written = open(devices.path).read()
    outcome = host.authenticate(alice, recovery[4].upper())
    assert outcome.result == "success", outcome
    assert "9 recovery codes left" in outcome.output
    assert host.authenticate(alice, recovery[4]).result == "auth_err"
    assert host.authenticate(alice, recovery[5]).result == "success"
    # Used codes are recorded in root's state, never by rewriting the user's file (a full home must not
    # block the lost-phone path, and no rewrite of the file can bring a used code back).
    assert open(devices.path).read() == written
    assert host.state_file(alice).count("recovery-used salt=") == 2


def test_lockout_after_max_failures_then_retry_after_lockout_seconds(host, users):
    alice = users[0]
    host.activate("max_failures = 3\nlockout_seconds = 3\n")
    _, (phone,) = enrolled(host, alice)
    for attempt in range(3):
        outcome = host.authenticate(alice, "000000" if code(phone) != "000000" else "111111")
        assert outcome.result == "auth_err", (attempt, outcome)
    assert "Too many wrong verification codes" in outcome.output
    settle()
    locked = host.authenticate(alice, code(phone))
    assert locked.result == "maxtries", locked
    assert not locked.prompted
    time.sleep(3.5)
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"


# --- the policy table ------------------------------------------------------------------------------

def test_not_configured_is_ignored_without_a_prompt(host, users):
    host.configure("")
    _, (phone,) = enrolled(host, users[0])
    outcome = host.authenticate(users[0])
    assert outcome.result == "ignored" and not outcome.prompted, outcome


def test_before_start_nobody_is_asked_and_the_unenrolled_are_nudged(host, users):
    alice, bob = users[0], users[1]
    start = date_in(16)
    host.configure("", start=start)
    enrolled(host, alice)
    outcome = host.authenticate(alice)
    assert outcome.result == "ignored" and not outcome.prompted, outcome
    assert "mandatory" not in outcome.output
    outcome = host.authenticate(bob)
    assert outcome.result == "ignored" and not outcome.prompted, outcome
    assert f"Two-factor authentication becomes mandatory on {start} (in 16 days). Run engage2fa-enroll" in outcome.output
    assert not os.path.exists(host.activation_path)


def test_active_with_device_requires_a_code_and_records_activation(host, users):
    host.activate()
    _, (phone,) = enrolled(host, users[0])
    settle()
    assert host.authenticate(users[0], code(phone)).result == "success"
    record = open(host.activation_path).read()
    assert record.startswith("engage2fa-activation 1\nactivated-at=")
    assert host.config_path in record
    assert not os.path.exists(os.path.join(host.state_dir, "activation"))  # never where the policy file points


def test_personal_deadline_in_the_future_lets_the_user_in_with_a_nudge(host, users):
    bob = users[1]
    deadline = date_in(5)
    host.activate(f"[deadlines]\n{bob.pw_name} = {deadline}\n")
    outcome = host.authenticate(bob)
    assert outcome.result == "ignored" and not outcome.prompted, outcome
    assert f"Your personal deadline is {deadline} (in 5 days)" in outcome.output


def test_unenrolled_without_or_past_deadline_is_refused_with_the_reason(host, users, syslog):
    bob, carol = users[1], users[2]
    host.activate(f"[deadlines]\n{carol.pw_name} = 2021-06-01\n")
    mark = syslog.mark()
    outcome = host.authenticate(bob)
    assert outcome.result == "auth_err" and not outcome.prompted, outcome
    assert "you have not linked an authenticator app" in outcome.output
    assert f"engage2fa-admin extend {bob.pw_name} DATE" in outcome.output
    outcome = host.authenticate(carol)
    assert outcome.result == "auth_err"
    assert "Your deadline to link an authenticator app passed on 2021-06-01." in outcome.output
    logged = "\n".join(syslog.since(mark))
    assert f"user {bob.pw_name}: refused: no device and no personal deadline" in logged


def test_ratchet_keeps_enforcing_after_start_date_moves_or_disappears(host, users):
    alice, bob = users[0], users[1]
    host.activate()
    _, (phone,) = enrolled(host, alice)
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"
    for change in ["start_date = 2099-01-01\n", ""]:
        with open(host.config_path, "w") as handle:
            handle.write(f"state_dir = {host.state_dir}\n" + change)
        outcome = host.authenticate(alice, "")
        assert outcome.prompted and outcome.result == "auth_err", outcome
        assert host.authenticate(bob).result == "auth_err"


# --- files that are not trusted -----------------------------------------------------------------------

BAD_DEVICE_FILES = {
    "symlink": lambda devices, other: (os.unlink(devices.path), os.symlink(other, devices.path)),
    "group-readable": lambda devices, other: os.chmod(devices.path, 0o640),
    "world-readable": lambda devices, other: os.chmod(devices.path, 0o604),
    "owned-by-someone-else": lambda devices, other: os.chown(devices.path, os.stat(other).st_uid, -1),
    "truncated": lambda devices, other: os.truncate(devices.path, 40),
    "garbage": lambda devices, other: open(devices.path, "wb").write(os.urandom(300)),
    "directory": lambda devices, other: (os.unlink(devices.path), os.mkdir(devices.path, 0o700),
                                         os.chown(devices.path, devices.user.pw_uid, -1)),
}


@pytest.mark.parametrize("damage", sorted(BAD_DEVICE_FILES))
def test_untrusted_device_file_refuses_after_activation_and_never_before(host, users, syslog, damage):
    alice, bob = users[0], users[1]
    devices, (phone,) = enrolled(host, alice)
    other = DeviceSet(bob).write()
    BAD_DEVICE_FILES[damage](devices, other.path)

    host.configure("", start=time.strftime("%Y-%m-%d", time.localtime(time.time() + 10 * 86400)))
    before = host.authenticate(alice)
    assert before.result == "ignored" and not before.prompted, before

    host.activate()
    mark = syslog.mark()
    settle()
    after = host.authenticate(alice, code(phone))
    assert after.result == "auth_err", after
    assert "could not be read" in after.output
    logged = "\n".join(syslog.since(mark))
    assert devices.path in logged, logged


def test_unknown_user_gets_the_same_prompt_and_is_refused(host, users):
    host.activate()
    outcome = host.authenticate("no-such-user-e2fa", "123456")
    assert outcome.prompted and outcome.result == "auth_err", outcome


def test_unknown_module_argument_fails_closed_and_is_logged(host, users, syslog):
    host.activate()
    host.write_service(f"config={host.config_path} nullok")
    mark = syslog.mark()
    outcome = host.authenticate(users[0], "123456")
    assert outcome.result == "auth_err" and not outcome.prompted, outcome
    assert "unknown module argument 'nullok'" in "\n".join(syslog.since(mark))


def test_broken_config_after_activation_enforces_and_logs_file_and_line(host, users, syslog):
    alice = users[0]
    host.activate()
    _, (phone, tablet) = enrolled(host, alice, "Phone", "Tablet")
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"
    with open(host.config_path, "a") as handle:
        handle.write("window = lots\n")
    mark = syslog.mark()
    settle()
    assert host.authenticate(alice, code(tablet)).result == "success"
    assert host.authenticate(users[1]).result == "auth_err"
    logged = "\n".join(syslog.since(mark))
    assert f"{host.config_path}:3: error: window must be" in logged, logged


def test_broken_config_before_activation_locks_nobody_out(host, users):
    host.configure("window = lots\n", start="2099-01-01")
    assert host.authenticate(users[1]).result == "ignored"


def test_codes_and_secrets_never_reach_the_log(host, users, syslog):
    alice = users[0]
    host.activate()
    devices, (phone,) = enrolled(host, alice)
    recovery = devices.add_recovery_codes()
    devices.write()
    mark = syslog.mark()
    settle()
    right = code(phone)
    host.authenticate(alice, right)
    host.authenticate(alice, "987654")
    host.authenticate(alice, recovery[0])
    logged = "\n".join(syslog.since(mark))
    assert "code accepted from device 'Phone'" in logged
    for secret in [right, "987654", recovery[0], recovery[0].replace("-", ""), phone["secret"].hex()]:
        assert secret not in logged


# --- concurrency -------------------------------------------------------------------------------------

def test_twenty_processes_same_user_same_code_exactly_one_succeeds(host, users):
    alice = users[0]
    host.activate("max_failures = 100\n")
    _, (phone,) = enrolled(host, alice)
    for round_ in range(3):
        settle(margin=8)
        right = code(phone)
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            outcomes = list(pool.map(lambda _: host.authenticate(alice, right), range(20)))
        results = [outcome.result for outcome in outcomes]
        assert results.count("success") == 1, (round_, results)
        assert results.count("auth_err") == 19, (round_, results)
        time.sleep(30 - time.time() % 30 + 0.2)  # the next round needs a fresh code


def test_twenty_users_at_once_all_succeed(host, users):
    host.activate()
    pairs = []
    for user in users:
        _, (phone,) = enrolled(host, user)
        pairs.append((user, phone))
    settle(margin=10)
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda pair: host.authenticate(pair[0], code(pair[1])), pairs))
    assert [outcome.result for outcome in outcomes] == ["success"] * 20, outcomes
