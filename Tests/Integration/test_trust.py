"""Issue 13: the ratchet cannot be found through the file it protects (A), one per-user store
transaction for the module and both commands (B), user names as NSS has them and state keyed by uid (D),
unprivileged PAM callers (F), recovery codes on the lost-phone path (G), hostile numbers in the state
file (I), and reset's confirmation (J). Each test is an attack the hostile review reproduced."""

import fcntl
import os
import pwd
import random
import shutil
import signal
import subprocess
import time

import pexpect
import pytest

from conftest import ADMIN, ENROLL, MODULE, USER_PREFIX, DeviceSet, code, run_admin, run_enroll, settle


def enrolled(user, *names, recovery=False):
    devices = DeviceSet(user)
    made = [devices.add(name) for name in (names or ("Phone",))]
    codes = devices.add_recovery_codes() if recovery else None
    devices.write()
    return devices, made, codes


def activate_with(host, alice, phone):
    """2FA active and recorded: a first login at or after start_date writes the record."""
    host.activate()
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"
    assert os.path.exists(host.activation_path), host.activation_path


# --- A. the ratchet is not found through the policy file --------------------------------------------

def damage_policy(host, damage, other_user):
    path = host.config_path
    if damage == "deleted":
        os.unlink(path)
    elif damage == "mode-664":
        os.chmod(path, 0o664)
    elif damage == "non-root-owner":
        os.chown(path, other_user.pw_uid, other_user.pw_gid)
    elif damage == "too-large":
        with open(path, "a") as handle:
            handle.write("# " + "x" * (300 * 1024) + "\n")
    elif damage == "latin-1-comment":
        with open(path, "ab") as handle:
            handle.write(b"# caf\xe9\n")
    elif damage == "state-dir-typo":
        with open(path, "w") as handle:
            handle.write("start_date = 2020-01-01\nstate_dir = var/lib/engage2fa-typo\n")
    elif damage == "state-dir-moved-no-start":
        with open(path, "w") as handle:
            handle.write(f"state_dir = {host.directory}/elsewhere\n")
    else:
        raise AssertionError(damage)


@pytest.mark.parametrize("damage", ["deleted", "mode-664", "non-root-owner", "too-large", "latin-1-comment",
                                    "state-dir-typo", "state-dir-moved-no-start"])
def test_after_activation_a_damaged_policy_file_never_switches_2fa_off(host, users, syslog, damage):
    alice, bob = users[0], users[1]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    damage_policy(host, damage, bob)
    mark = syslog.mark()
    outcome = host.authenticate(alice, "")
    assert outcome.prompted and outcome.result == "auth_err", outcome
    assert host.authenticate(bob).result == "auth_err"  # no device: refused, not ignored
    assert host.authenticate(alice, code(phone, 1)).result == "success"
    if damage not in ("deleted", "state-dir-moved-no-start"):
        logged = "\n".join(syslog.since(mark))
        assert host.config_path in logged, logged


def test_a_world_writable_state_dir_cannot_be_used_to_drop_the_record(host, users):
    alice, bob = users[0], users[1]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    os.chmod(host.state_dir, 0o777)
    # What a local user does with a world-writable state_dir: remove whatever is there.
    subprocess.run(["runuser", "-u", bob.pw_name, "--", "find", host.state_dir, "-mindepth", "1", "-delete"],
                   capture_output=True)
    with open(host.config_path, "w") as handle:
        handle.write(f"state_dir = {host.state_dir}\n")  # start_date removed as well
    outcome = host.authenticate(alice, "")
    assert outcome.prompted and outcome.result == "auth_err", outcome


def test_an_untrusted_activation_record_enforces(host, users, syslog):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    os.chmod(host.activation_path, 0o666)
    with open(host.config_path, "w") as handle:
        handle.write(f"state_dir = {host.state_dir}\n")
    mark = syslog.mark()
    outcome = host.authenticate(alice, "")
    assert outcome.prompted and outcome.result == "auth_err", outcome
    assert host.activation_path in "\n".join(syslog.since(mark))


def test_activation_record_is_readable_by_users_and_enroll_status_tells_the_truth(host, users):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    assert os.stat(host.activation_path).st_mode & 0o777 == 0o644
    with open(host.config_path, "w") as handle:
        handle.write(f"state_dir = {host.state_dir}\n")  # start_date removed after activation
    result = run_enroll(alice, "status", "--config", host.config_path)
    assert result.returncode == 0, result.stderr
    assert "not enabled" not in result.stdout and "active" in result.stdout, result.stdout


def test_a_record_in_the_old_place_still_enforces_and_check_reports_where_it_is(host, users):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    host.configure("")  # no start_date
    os.makedirs(host.state_dir, mode=0o700, exist_ok=True)
    legacy = os.path.join(host.state_dir, "activation")
    with open(legacy, "w") as handle:
        handle.write("engage2fa-activation 1\nactivated-at=1577836800 recorded-at=1577836800\n")
    outcome = host.authenticate(alice, "")
    assert outcome.prompted and outcome.result == "auth_err", outcome
    check = run_admin("check", "--config", host.config_path)
    assert legacy in check.stdout and host.activation_path in check.stdout, check.stdout


# --- B. one store transaction -------------------------------------------------------------------------

def login_at_prompt(host, user):
    child = pexpect.spawn("pamtester", ["-v", host.service, user.pw_name, "authenticate"], timeout=30, encoding="utf-8")
    child.expect("Verification code:")
    return child


def finish(child, answer):
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def test_a_device_removed_while_a_login_waits_at_the_prompt_is_refused(host, users):
    alice = users[0]
    _, (phone, stolen), _ = enrolled(alice, "Phone", "Stolen")
    activate_with(host, alice, phone)
    child = login_at_prompt(host, alice)
    removed = run_enroll(alice, "remove", "Stolen", "--yes", "--config", host.config_path)
    assert removed.returncode == 0, removed.stderr
    settle(margin=3)
    status, output = finish(child, code(stolen))
    assert status != 0, output


def test_a_reset_while_a_login_waits_at_the_prompt_refuses_the_old_device(host, users):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    child = login_at_prompt(host, alice)
    reset = run_admin("reset", alice.pw_name, "--yes", "--config", host.config_path)
    assert reset.returncode == 0, reset.stderr
    status, output = finish(child, code(phone, 1))
    assert status != 0, output


def test_confirming_remove_after_a_recovery_login_does_not_bring_the_code_back(host, users):
    alice = users[0]
    _, (phone, spare), codes = enrolled(alice, "Phone", "Spare", recovery=True)
    activate_with(host, alice, phone)
    remove = pexpect.spawn("runuser", ["-u", alice.pw_name, "--", ENROLL, "remove", "Spare", "--config", host.config_path],
                           timeout=30, encoding="utf-8")
    remove.expect(r"\[y/N\]")
    assert host.authenticate(alice, codes[0]).result == "success"
    remove.sendline("y")
    remove.expect(pexpect.EOF)
    remove.close()
    assert remove.exitstatus == 0, remove.before
    assert host.authenticate(alice, codes[0]).result == "auth_err"
    assert host.authenticate(alice, codes[1]).result == "success"


def test_a_reset_during_a_recovery_login_removes_the_codes_for_good(host, users):
    alice = users[0]
    devices, (phone,), codes = enrolled(alice, recovery=True)
    activate_with(host, alice, phone)
    child = login_at_prompt(host, alice)
    reset = run_admin("reset", alice.pw_name, "--yes", "--config", host.config_path)
    assert reset.returncode == 0, reset.stderr
    status, output = finish(child, codes[0])
    assert status != 0, output
    assert host.authenticate(alice, codes[1]).result == "auth_err"
    status = run_admin("status", alice.pw_name, "--json", "--config", host.config_path)
    assert '"devices":[]' in status.stdout, status.stdout


@pytest.fixture
def read_only_state(host):
    os.makedirs(host.state_dir, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=700", "tmpfs", host.state_dir], check=True)
    yield host.state_dir
    subprocess.run(["umount", "--lazy", host.state_dir])


def test_reset_with_a_deadline_changes_nothing_when_the_state_cannot_be_written(host, users, read_only_state):
    alice = users[0]
    devices, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    before = open(devices.path).read()
    subprocess.run(["mount", "-o", "remount,ro", host.state_dir], check=True)
    reset = run_admin("reset", alice.pw_name, "--deadline", "2099-01-01", "--config", host.config_path)
    assert reset.returncode != 0
    assert "nothing was changed" in reset.stderr, reset.stderr
    assert open(devices.path).read() == before
    subprocess.run(["mount", "-o", "remount,rw", host.state_dir], check=True)
    assert host.authenticate(alice, code(phone, 1)).result == "success"


def test_no_lock_a_user_can_take_blocks_extend_or_reset(host, users):
    alice, bob = users[0], users[1]
    host.activate()
    holders = [subprocess.Popen(["runuser", "-u", bob.pw_name, "--", "flock", "-x", path, "sleep", "60"], start_new_session=True)
               for path in (host.directory, "/etc", os.path.dirname(host.config_path))]
    try:
        time.sleep(0.5)
        started = time.time()
        extend = subprocess.run([ADMIN, "extend", alice.pw_name, "2099-01-01", "--config", host.config_path],
                                capture_output=True, text=True, timeout=30)
        assert extend.returncode == 0, extend.stderr
        reset = subprocess.run([ADMIN, "reset", alice.pw_name, "--deadline", "2099-02-01", "--config", host.config_path],
                               capture_output=True, text=True, timeout=30)
        assert reset.returncode == 0, reset.stderr
        assert time.time() - started < 10
    finally:
        for holder in holders:
            os.killpg(holder.pid, signal.SIGKILL)  # runuser, flock and sleep alike
            holder.wait()
    assert host.authenticate(alice).result == "ignored"  # the deadline took effect


# --- D. user names ------------------------------------------------------------------------------------

@pytest.fixture
def odd_users(users):
    """Users whose names today's rule refused: '@' (sssd/AD), '.', '-', a 64-byte name; and a second
    name for one uid. Written with the shadow suite's lock, as useradd does."""
    base = users[10]
    names = [f"{USER_PREFIX}aud5@corp", f"{USER_PREFIX}.dot-ted", (USER_PREFIX + "long" + "x" * 64)[:64]]
    twin = f"{USER_PREFIX}1x"
    homes = []
    with open("/etc/.pwd.lock", "w") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        with open("/etc/passwd", "a") as passwd:
            for index, name in enumerate(names):
                home = f"/home/{USER_PREFIX}odd{index}"
                homes.append(home)
                passwd.write(f"{name}:x:{base.pw_uid + 100 + index}:{base.pw_gid}::{home}:/bin/bash\n")
            passwd.write(f"{twin}:x:{users[0].pw_uid}:{users[0].pw_gid}::{users[0].pw_dir}:/bin/bash\n")
    for index, home in enumerate(homes):
        os.makedirs(home, exist_ok=True)
        os.chown(home, base.pw_uid + 100 + index, base.pw_gid)
    yield [pwd.getpwnam(name) for name in names], twin
    with open("/etc/.pwd.lock", "w") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        lines = open("/etc/passwd").read().splitlines(keepends=True)
        drop = set(names) | {twin}
        with open("/etc/passwd.e2fa-new", "w") as new:
            new.writelines(line for line in lines if line.split(":")[0] not in drop)
        shutil.copymode("/etc/passwd", "/etc/passwd.e2fa-new")
        os.rename("/etc/passwd.e2fa-new", "/etc/passwd")
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)


def test_names_nss_resolves_are_users_and_logins_work(host, users, odd_users):
    odd, _ = odd_users
    host.activate()
    for user in odd:
        _, (phone,), _ = enrolled(user)
        settle()
        assert host.authenticate(user, code(phone)).result == "success", user.pw_name
        status = run_admin("status", user.pw_name, "--config", host.config_path)
        assert status.returncode == 0 and "enforced" in status.stdout, status.stdout + status.stderr
    unenrolled = odd[0]
    os.unlink(os.path.join(unenrolled.pw_dir, ".engage2fa"))
    extend = run_admin("extend", unenrolled.pw_name, "2099-01-01", "--config", host.config_path)
    assert extend.returncode == 0, extend.stderr
    assert host.authenticate(unenrolled).result == "ignored"
    reset = run_admin("reset", unenrolled.pw_name, "--deadline", "2099-01-02", "--config", host.config_path)
    assert reset.returncode == 0, reset.stderr


def test_two_names_of_one_uid_share_replay_and_lockout(host, users, odd_users):
    _, twin = odd_users
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    host.activate("max_failures = 3\n")
    settle()
    used = code(phone)
    assert host.authenticate(alice, used).result == "success"
    assert host.authenticate(twin, used).result == "auth_err"
    for _ in range(2):
        host.authenticate(alice, "000000")
    host.authenticate(twin, "000000")
    assert host.authenticate(alice, code(phone, 1)).result == "maxtries"


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../../etc/x", "tab\tname"])
def test_names_unsafe_in_a_path_are_unknown_users(host, users, name):
    host.activate()
    outcome = host.authenticate(name, "123456")
    assert outcome.result == "auth_err" and outcome.prompted, outcome
    assert not os.path.exists(os.path.join(host.state_dir, "users", name))


# --- F. unprivileged callers ----------------------------------------------------------------------------

def authenticate_as(user, host, target, answer=""):
    result = subprocess.run(["runuser", "-u", user.pw_name, "--", "pamtester", "-v", host.service, target, "authenticate"],
                            input=answer + "\n", capture_output=True, text=True, timeout=30)
    from conftest import Outcome
    return Outcome(result)


def test_before_activation_an_unprivileged_caller_is_never_refused(host, users):
    alice, bob = users[0], users[1]
    enrolled(alice)
    host.configure("", start="2030-01-01")
    for user in (alice, bob):
        outcome = authenticate_as(user, host, user.pw_name)
        assert outcome.result == "ignored", outcome
        assert "mandatory since" not in outcome.output and "system problem" not in outcome.output, outcome


def test_after_activation_an_unprivileged_caller_may_only_reauthenticate_its_own_user(host, users, syslog):
    alice, bob = users[0], users[1]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    mark = syslog.mark()
    assert authenticate_as(alice, host, alice.pw_name).result == "ignored"
    assert "unprivileged" in "\n".join(syslog.since(mark))
    assert authenticate_as(alice, host, bob.pw_name).result == "auth_err"
    host.activate("unprivileged = deny\n")
    assert authenticate_as(alice, host, alice.pw_name).result == "auth_err"


# --- G. recovery codes, the lost-phone path ----------------------------------------------------------------

def test_a_user_whose_last_device_is_gone_can_still_use_a_recovery_code(host, users):
    alice = users[0]
    _, (phone,), codes = enrolled(alice, recovery=True)
    activate_with(host, alice, phone)
    assert run_enroll(alice, "remove", "Phone", "--yes", "--config", host.config_path).returncode == 0
    outcome = host.authenticate(alice, codes[0])
    assert outcome.prompted and outcome.result == "success", outcome
    assert host.authenticate(alice, codes[0]).result == "auth_err"


def test_a_recovery_login_needs_no_write_to_a_full_home(host, users):
    alice = users[5]
    host.activate()
    home = alice.pw_dir
    saved = home + ".saved"
    shutil.copytree(home, saved, symlinks=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=64k,mode=755,uid={alice.pw_uid},gid={alice.pw_gid}", "tmpfs", home], check=True)
    try:
        devices, (phone,), codes = enrolled(alice, recovery=True)
        with open(os.path.join(home, "filler"), "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
        before = open(devices.path).read()
        outcome = host.authenticate(alice, codes[0])
        assert outcome.result == "success", outcome
        assert host.authenticate(alice, codes[0]).result == "auth_err"
        assert open(devices.path).read() == before
    finally:
        subprocess.run(["umount", "--lazy", home])
        shutil.rmtree(saved, ignore_errors=True)


# --- I. numbers in the state file -------------------------------------------------------------------------

@pytest.mark.parametrize("record", [
    "failures count=9223372036854775807 locked-until=0",
    "failures count=0 locked-until=9223372036854775807",
    "failures count=0 locked-until=-9223372036854775808",
])
def test_hostile_numbers_in_the_state_file_never_crash_the_host(host, users, record):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    # Keyed by uid now; by name before (the file an older module read, and the one the review used).
    for name, header in ((f"{alice.pw_uid}.state", "engage2fa-state 2"), (f"{alice.pw_name}.state", "engage2fa-state 1")):
        path = os.path.join(host.state_dir, "users", name)
        with open(path, "w") as handle:
            handle.write(f"{header}\n{record}\n")
        os.chmod(path, 0o644)
    outcome = host.authenticate(alice, "000000")
    assert outcome.returncode == 1, outcome  # pamtester reports the failure; a trap would be a signal (< 0)
    assert outcome.result in ("auth_err", "maxtries"), outcome


# --- J. reset without a deadline asks first ---------------------------------------------------------------

def test_reset_without_a_deadline_after_activation_needs_confirmation(host, users):
    alice = users[0]
    devices, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    reset = run_admin("reset", alice.pw_name, "--config", host.config_path)
    assert reset.returncode != 0 and "--yes" in reset.stderr, reset.stderr
    assert os.path.exists(devices.path)
    child = pexpect.spawn(ADMIN, ["reset", alice.pw_name, "--config", host.config_path], timeout=30, encoding="utf-8")
    child.expect(r"refused at every login")
    child.expect(r"\[y/N\]")
    child.sendline("n")
    child.expect(pexpect.EOF)
    assert os.path.exists(devices.path)
    reset = run_admin("reset", alice.pw_name, "--yes", "--config", host.config_path)
    assert reset.returncode == 0 and "refused" in reset.stdout, reset.stdout


# --- H. unknown users are told what a real user with a wrong code is told ---------------------------------

def test_an_unknown_user_gets_exactly_the_answer_of_a_wrong_code(host, users):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    host.activate()
    real = host.authenticate(alice, "000000" if code(phone) != "000000" else "111111")
    unknown = host.authenticate(f"{USER_PREFIX}nobody", "000000")
    assert real.result == unknown.result == "auth_err"
    assert real.output.replace(alice.pw_name, "NAME") == unknown.output.replace(f"{USER_PREFIX}nobody", "NAME")


# --- found by the hostile review of the fixes above -----------------------------------------------------

@pytest.fixture
def setuid_pamtester():
    """A setuid-root copy of pamtester: a PAM application like su, which a user starts with their own
    resource limits and environment."""
    path = f"/tmp/{USER_PREFIX}-su-like"
    shutil.copy("/usr/bin/pamtester", path)
    os.chmod(path, 0o4755)
    yield path
    os.unlink(path)


def test_a_file_size_limit_cannot_keep_a_lockout_from_being_written(host, users, setuid_pamtester, syslog):
    alice, mallory = users[0], users[1]
    _, (phone,), _ = enrolled(alice)
    host.activate("max_failures = 3\n")
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"  # a state file exists
    size = os.path.getsize(os.path.join(host.state_dir, "users", f"{alice.pw_uid}.state"))

    def limited(answer):
        # A limit just at the state file's size: a failure count fits, a lockout record (longer) would not.
        return subprocess.run(["runuser", "-u", mallory.pw_name, "--", "prlimit", f"--fsize={size}:{size}", setuid_pamtester,
                               host.service, alice.pw_name, "authenticate"], input=answer + "\n", capture_output=True, text=True, timeout=30)

    mark = syslog.mark()
    for _ in range(6):
        limited("000000")
    settle()
    right = limited(code(phone, 1))
    assert right.returncode != 0, right  # no code is checked where the outcome could not be recorded
    # Root could lift the limit (CAP_SYS_RESOURCE), or the module refused to check codes under it: either
    # way no wrong code went uncounted.
    state = host.state_file(alice)
    assert "locked-until=0" not in state or "failures count=0" in state, state
    assert "RLIMIT_FSIZE" in "\n".join(syslog.since(mark)) or "locked-until=0" not in state
    assert not [name for name in os.listdir(os.path.join(host.state_dir, "users")) if ".tmp-" in name]


def test_an_unusable_policy_after_activation_keeps_the_state_where_it_was(host, users):
    alice = users[0]
    _, (phone,), codes = enrolled(alice, recovery=True)
    activate_with(host, alice, phone)
    used = code(phone)  # the step just accepted by activate_with
    assert host.authenticate(alice, codes[0]).result == "success"
    os.chmod(host.config_path, 0o664)
    assert host.authenticate(alice, codes[0]).result == "auth_err"
    assert host.authenticate(alice, used).result == "auth_err"
    assert "recovery-used" in host.state_file(alice)


def test_the_default_policys_record_is_not_the_old_record_of_another_policy(host, users):
    record = "/var/lib/engage2fa/activation"
    if os.path.exists(record) and "config=" not in open(record).read():
        pytest.skip("an activation record of an older version is in /var/lib/engage2fa")
    created = not os.path.exists(record)
    if created:
        os.makedirs("/var/lib/engage2fa", mode=0o755, exist_ok=True)
        with open(record, "w") as handle:
            handle.write("engage2fa-activation 1\nactivated-at=1577836800 recorded-at=1577836800 config=%2Fetc%2Fengage2fa.conf\n")
        os.chmod(record, 0o644)
    try:
        with open(host.config_path, "w") as handle:  # a pilot policy on the default state_dir
            handle.write("start_date = 2030-01-01\n")
        os.chmod(host.config_path, 0o644)
        outcome = host.authenticate(users[1])
        assert outcome.result == "ignored", outcome
        assert not os.path.exists(host.activation_path)
    finally:
        if created:
            os.unlink(record)


def test_a_callers_umask_leaves_the_state_readable_by_its_user(host, users):
    alice = users[0]
    _, (phone,), _ = enrolled(alice, recovery=True)
    host.activate()
    settle()
    result = subprocess.run(["sh", "-c", f"umask 0777; exec pamtester {host.service} {alice.pw_name} authenticate"],
                            input=code(phone) + "\n", capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    for path, mode in ((host.state_dir, 0o755), (os.path.join(host.state_dir, "users"), 0o711)):
        assert os.stat(path).st_mode & 0o777 == mode, path
    listed = run_enroll(alice, "list", "--config", host.config_path)
    assert "Recovery codes left: 10\n" in listed.stdout, listed.stdout


def test_an_activation_record_an_unprivileged_caller_cannot_read_counts_as_active(host, users):
    alice, bob = users[0], users[1]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    with open(host.config_path, "w") as handle:
        handle.write(f"state_dir = {host.state_dir}\nunprivileged = deny\n")  # start_date removed
    os.chmod(host.activation_path, 0o600)
    assert authenticate_as(alice, host, alice.pw_name).result == "auth_err"
    assert authenticate_as(alice, host, bob.pw_name).result == "auth_err"


def test_a_device_file_cannot_ask_for_a_key_derivation_that_holds_the_lock(host, users):
    alice = users[0]
    devices, (phone,), codes = enrolled(alice, recovery=True)
    host.activate()
    text = open(devices.path).read().replace("iterations=1000", "iterations=10000000")
    with open(devices.path, "w") as handle:
        handle.write(text)
    started = time.time()
    outcome = host.authenticate(alice, codes[0])
    assert outcome.result == "auth_err" and time.time() - started < 5, outcome
    assert "could not be read" in outcome.output, outcome


@pytest.mark.parametrize("damage", ["mode-644", "symlink"])
def test_reset_works_on_a_device_file_the_user_made_unusable(host, users, damage):
    alice = users[0]
    devices, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    if damage == "mode-644":
        os.chmod(devices.path, 0o644)
    else:
        real = devices.path + ".real"
        os.rename(devices.path, real)
        os.symlink(real, devices.path)
    reset = run_admin("reset", alice.pw_name, "--deadline", "2099-01-01", "--config", host.config_path)
    assert reset.returncode == 0, reset.stderr
    assert not os.path.lexists(devices.path)  # what could not be read is removed unread
    assert host.authenticate(alice).result == "ignored"  # the deadline took effect: no device counts
    # (A user with a shell can write their own device file back: such a user already passed 2FA.)


def test_the_service_name_is_escaped_in_the_log(users, tmp_path, syslog):
    alice = users[0]
    service = f"e2fa-svc\x1b]0;owned\x07\npam_engage2fa(sshd:auth): user root: code accepted"
    path = os.path.join("/etc/pam.d", service)
    with open(path, "w") as handle:
        handle.write(f"auth required {MODULE} bogus-argument\n")
    try:
        mark = syslog.mark()
        subprocess.run(["pamtester", service, alice.pw_name, "authenticate"], input=b"\n", capture_output=True, timeout=30)
        logged = syslog.since(mark)
        assert logged, "no log line"
        for line in logged:
            assert "\x1b" not in line and "\n" not in line and line.count("pam_engage2fa(") == 2, line
    finally:
        os.unlink(path)


def test_a_device_seen_linked_ends_the_personal_deadline(host, users):
    alice = users[0]
    devices, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    assert run_admin("reset", alice.pw_name, "--deadline", "2099-01-01", "--config", host.config_path).returncode == 0
    fresh = DeviceSet(alice)
    new_phone = fresh.add("New phone")
    fresh.write()
    settle()
    assert host.authenticate(alice, code(new_phone)).result == "success"
    assert run_enroll(alice, "remove", "New phone", "--yes", "--config", host.config_path).returncode == 0
    assert host.authenticate(alice).result == "auth_err"  # refused: the grace ended when a device was linked


def test_a_user_name_that_is_not_utf8_is_an_unknown_user(host, users, syslog):
    host.activate()
    mark = syslog.mark()
    result = subprocess.run([b"pamtester", host.service.encode(), b"\xe9" + users[0].pw_name.encode(), b"authenticate"],
                            input=b"000000\n", capture_output=True, timeout=30)
    assert result.returncode != 0 and b"Verification code:" in result.stdout + result.stderr
    logged = "\n".join(syslog.since(mark))
    assert "\\xe9" in logged and "\ufffd" not in logged, logged


def test_a_lock_held_by_a_stopped_login_names_its_holder_to_the_admin(host, users):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    lock = os.path.join(host.state_dir, "users", f"{alice.pw_uid}.lock")
    # A login the user stopped (SIGSTOP) while it held the lock: flock(1) stands in for it.
    holder = subprocess.Popen(["flock", "--exclusive", "--no-fork", lock, "sleep", "60"])
    try:
        time.sleep(0.5)
        started = time.time()
        unlock = run_admin("unlock", alice.pw_name, "--config", host.config_path)
        assert unlock.returncode == 1 and time.time() - started < 15
        assert f"PID {holder.pid}" in unlock.stderr and "still locked" in unlock.stderr, unlock.stderr
    finally:
        holder.kill()
        holder.wait()
    assert run_admin("unlock", alice.pw_name, "--config", host.config_path).returncode == 0


# --- found by the second hostile review ------------------------------------------------------------------

def test_users_see_only_their_own_state_and_cannot_watch_it_being_written(host, users):
    alice, bob = users[0], users[1]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    users_dir = os.path.join(host.state_dir, "users")
    state = os.path.join(users_dir, f"{alice.pw_uid}.state")
    info = os.stat(state)
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, alice.pw_gid, 0o640)
    assert os.stat(users_dir).st_mode & 0o777 == 0o711
    probe = ("import os, sys\n"
             "try:\n    os.listdir(sys.argv[1]); print('listed')\nexcept PermissionError: print('refused')\n"
             "try:\n    open(sys.argv[2]).read(); print('read')\nexcept PermissionError: print('refused')\n")
    as_alice = subprocess.run(["runuser", "-u", alice.pw_name, "--", "/usr/bin/python3", "-c", probe, users_dir, state],
                              capture_output=True, text=True)
    assert as_alice.stdout.split() == ["refused", "read"], as_alice  # her own file, by name; no listing (or inotify)
    as_bob = subprocess.run(["runuser", "-u", bob.pw_name, "--", "/usr/bin/python3", "-c", probe, users_dir, state],
                            capture_output=True, text=True)
    assert as_bob.stdout.split() == ["refused", "refused"], as_bob
    assert run_enroll(alice, "list", "--config", host.config_path).stdout.count("(could not read") == 0


def test_a_killed_writer_leaves_at_most_one_temporary_file(host, users):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    users_dir = os.path.join(host.state_dir, "users")
    for _ in range(20):
        child = subprocess.Popen(["pamtester", host.service, alice.pw_name, "authenticate"], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            child.stdin.write(b"000000\n")
            child.stdin.flush()
        except BrokenPipeError:
            pass  # the login already ended: nothing to interrupt this round
        time.sleep(random.uniform(0, 0.02))
        child.kill()
        child.wait()
    leftovers = [name for name in os.listdir(users_dir) if ".tmp" in name]
    assert len(leftovers) <= 1, leftovers


def test_a_login_stopped_while_holding_the_lock_does_not_keep_the_admin_out(host, users, syslog):
    alice = users[0]
    _, (phone,), _ = enrolled(alice)
    activate_with(host, alice, phone)
    lock = os.path.join(host.state_dir, "users", f"{alice.pw_uid}.lock")
    holder = subprocess.Popen(["flock", "--exclusive", "--no-fork", lock, "sleep", "60"])
    try:
        time.sleep(0.5)
        os.kill(holder.pid, signal.SIGSTOP)  # what the user does to their own su or sudo
        mark = syslog.mark()
        reset = run_admin("reset", alice.pw_name, "--deadline", "2099-01-01", "--config", host.config_path)
        assert reset.returncode == 0, reset.stderr
        time.sleep(0.3)
        assert any(f"killed stopped process {holder.pid}" in line for line in syslog.messages[mark:]), syslog.messages[mark:]
    finally:
        holder.kill()
        holder.wait()
    assert host.authenticate(alice).result == "ignored"


def test_a_device_file_restored_from_a_backup_does_not_bring_back_a_reset_phone(host, users):
    alice = users[0]
    devices, (phone,), codes = enrolled(alice, recovery=True)
    activate_with(host, alice, phone)
    backup = open(devices.path).read()
    assert run_admin("reset", alice.pw_name, "--deadline", "2099-01-01", "--config", host.config_path).returncode == 0
    fresh = DeviceSet(alice)
    new_phone = fresh.add("New phone")
    fresh.write()
    settle()
    assert host.authenticate(alice, code(new_phone)).result == "success"  # a login that prunes the state
    with open(devices.path, "a") as handle:  # the old phone and codes come back with a backup
        handle.write("".join(line + "\n" for line in backup.splitlines()[1:]))
    assert host.authenticate(alice, code(phone, 1)).result == "auth_err"
    assert host.authenticate(alice, codes[1]).result == "auth_err"
