"""Hostile days: races between processes, kill -9 in the middle of writes, a clock that goes back,
full and read-only file systems, homes that are gone, policy files that are broken, and memcheck."""

import concurrent.futures
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import ENROLL, MODULE, DeviceSet, code, ensure_user, run_admin, run_enroll, settle

STATE_LINE = re.compile(r"^(failures count=\d+ locked-until=-?\d+|device id=[0-9a-f]{16} last-step=-?\d+ last-used=-?\d+)$")


def assert_state_file_is_whole(path):
    if not os.path.exists(path):
        return
    lines = open(path).read().splitlines()
    assert lines and lines[0] == "engage2fa-state 1", lines
    for line in lines[1:]:
        assert STATE_LINE.match(line), line


def fresh_device(user, name="Phone"):
    devices = DeviceSet(user)
    device = devices.add(name)
    devices.write()
    return devices, device


# --- races between processes ----------------------------------------------------------------------

def test_fifty_processes_one_code_exactly_one_succeeds_for_fifty_rounds(host, users):
    alice = users[0]
    host.activate("max_failures = 100\n")
    for round_ in range(50):
        _, phone = fresh_device(alice)  # a new secret and id each round: no need to wait for the next step
        settle(margin=6)
        shared = code(phone)
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            results = [o.result for o in pool.map(lambda _: host.authenticate(alice, shared), range(50))]
        assert results.count("success") == 1, (round_, results)
        assert results.count("auth_err") == 49, (round_, results)


@pytest.fixture(scope="module")
def fifty_users(users):
    extra = [ensure_user(f"e2fa-m{index}") for index in range(21, 51)]
    yield list(users) + extra
    for entry in extra:
        subprocess.run(["userdel", "--remove", entry.pw_name], stderr=subprocess.DEVNULL)


def test_fifty_users_at_once_all_succeed(host, fifty_users):
    host.activate()
    pairs = [(user, fresh_device(user)[1]) for user in fifty_users]
    settle(margin=12)
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(lambda pair: host.authenticate(pair[0], code(pair[1])), pairs))
    assert [o.result for o in outcomes] == ["success"] * 50, [o.output for o in outcomes if o.result != "success"]
    for user in fifty_users:
        if os.path.isdir(user.pw_dir) and user.pw_name.startswith("e2fa-m"):
            os.unlink(os.path.join(user.pw_dir, ".engage2fa"))


# --- kill -9 in the middle of writing -------------------------------------------------------------

def test_kill_during_state_writes_leaves_a_whole_store_and_no_blocking_leftovers(host, users):
    alice = users[0]
    host.activate("max_failures = 100\nlockout_seconds = 1\n")
    _, phone = fresh_device(alice)
    state = os.path.join(host.state_dir, "users", alice.pw_name + ".state")
    rng = random.Random(4242)
    wrong = b"000000\n" if code(phone) != "000000" else b"111111\n"
    for _ in range(200):
        process = subprocess.Popen(["pamtester", host.service, alice.pw_name, "authenticate"],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.stdin.write(wrong)
            process.stdin.flush()
        except BrokenPipeError:
            pass  # locked out for a second: it never asked
        time.sleep(rng.uniform(0, 0.008))
        process.kill()
        process.wait()
        assert_state_file_is_whole(state)
    time.sleep(1.1)  # a lockout from the last wrong codes (lockout_seconds = 1) is over
    settle()
    outcome = host.authenticate(alice, code(phone))
    assert outcome.result == "success", outcome
    assert_state_file_is_whole(state)


def test_kill_during_device_file_writes_keeps_old_or_new_content(host, users):
    alice = users[0]
    host.activate()
    devices, _ = fresh_device(alice)
    path = devices.path
    rng = random.Random(7)
    kills = 0
    for _ in range(200):
        before = open(path).read()
        # Started as alice directly (not through runuser, which would fork): the kill hits the writer itself.
        process = subprocess.Popen([ENROLL, "recovery-codes", "--config", host.config_path], user=alice.pw_uid,
                                   group=alice.pw_gid, extra_groups=[], env={"PATH": "/usr/bin:/bin", "HOME": alice.pw_dir},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 0.12))
        process.kill()
        process.wait()
        kills += process.returncode == -9
        after = open(path).read()
        listing = run_enroll(alice, "list", "--json", "--config", host.config_path)
        assert listing.returncode == 0, listing.stderr
        assert [d["name"] for d in json.loads(listing.stdout)["devices"]] == ["Phone"]
        if after != before:  # the new content, complete: the device and a full set of ten codes
            assert after.count("recovery hash=") == 10 and before.splitlines()[1] in after
    assert kills > 20  # most runs were really cut short
    settle()
    assert run_enroll(alice, "list", "--config", host.config_path).returncode == 0


# --- a clock that goes back ---------------------------------------------------------------------------

def faketime_authenticate(host, user, answer, offset_seconds):
    environment = dict(os.environ, LD_PRELOAD="/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                       FAKETIME=f"{offset_seconds:+d}s", FAKETIME_DONT_FAKE_MONOTONIC="1")
    result = subprocess.run(["pamtester", "-v", host.service, user.pw_name, "authenticate"], input=answer + "\n",
                            capture_output=True, text=True, env=environment, timeout=30)
    from conftest import Outcome
    return Outcome(result)


def test_clock_going_back_never_reaccepts_a_code_nor_stretches_a_lockout(host, users):
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"):
        pytest.skip("faketime is not installed (scripts/install-deps installs it)")
    alice = users[0]
    host.activate("max_failures = 5\nlockout_seconds = 60\n")
    devices = DeviceSet(alice)
    phone = devices.add("Phone")
    spare = devices.add("Spare")
    devices.write()
    settle(margin=10)
    now = time.time()
    assert host.authenticate(alice, code(phone)).result == "success"
    # The clock is set back 1–5 steps: the codes of those steps were never used, yet they are older
    # than the newest accepted one, so none is accepted.
    for back in (30, 60, 90, 150):
        outcome = faketime_authenticate(host, alice, code(phone, at=now - back), -back)
        assert outcome.result == "auth_err", (back, outcome)

    # Locked out now; then the clock jumps back an hour: the lockout ends lockout_seconds later on the
    # new clock, not an hour and a minute later.
    host.authenticate(alice, "000000" if code(spare) != "000000" else "111111")  # the fifth failure in a row
    assert host.authenticate(alice, code(spare)).result == "maxtries"
    assert faketime_authenticate(host, alice, "", -3600).result == "maxtries"
    later = faketime_authenticate(host, alice, code(spare, at=time.time() - 3600 + 62), -3600 + 62)
    assert later.result == "success", later


# --- faults in the environment ---------------------------------------------------------------------------

@pytest.fixture
def mounts():
    mounted = []

    def mount(path, size="256k", mode="700", owner=None):
        os.makedirs(path, exist_ok=True)
        options = f"size={size},mode={mode}" + (f",uid={owner.pw_uid},gid={owner.pw_gid}" if owner else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], check=True)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "--lazy", path])


def fill(directory):
    """Writes until the file system is full (unbuffered, so the error surfaces at the write)."""
    for name, chunk in (("filler", 65536), ("filler2", 512)):  # tmpfs counts pages: take the last bytes too
        with open(os.path.join(directory, name), "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * chunk)
            except OSError:
                pass


def test_full_state_directory_refuses_after_activation_with_a_clear_log_line(host, users, syslog, mounts):
    alice = users[0]
    mounts(host.state_dir)
    host.activate()
    _, phone = fresh_device(alice)
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"  # activation recorded
    fill(host.state_dir)
    mark = syslog.mark()
    outcome = host.authenticate(alice, code(phone, 1))
    assert outcome.result == "auth_err", outcome
    assert "system problem" in outcome.output
    logged = "\n".join(syslog.since(mark))
    assert "could not check or record the code" in logged and "No space left on device" in logged, logged


def test_read_only_state_directory_refuses_after_activation(host, users, syslog, mounts):
    alice = users[0]
    mounts(host.state_dir)
    host.activate()
    _, phone = fresh_device(alice)
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"
    subprocess.run(["mount", "-o", "remount,ro", host.state_dir], check=True)
    mark = syslog.mark()
    assert host.authenticate(alice, code(phone, 1)).result == "auth_err"
    assert "Read-only file system" in "\n".join(syslog.since(mark))


def test_full_or_read_only_state_before_activation_locks_nobody_out(host, users, mounts):
    mounts(host.state_dir)
    fill(host.state_dir)
    host.configure("", start="2099-01-01")
    fresh_device(users[0])
    assert host.authenticate(users[0]).result == "ignored"
    assert host.authenticate(users[1]).result == "ignored"
    subprocess.run(["mount", "-o", "remount,ro", host.state_dir], check=True)
    assert host.authenticate(users[1]).result == "ignored"


def test_enroll_on_a_full_home_keeps_the_old_device_file(host, users, mounts):
    user = users[6]
    host.activate()
    mounts(user.pw_dir, size="128k", mode="755", owner=user)
    devices, _ = fresh_device(user)
    before = open(devices.path).read()
    fill(user.pw_dir)
    result = run_enroll(user, "recovery-codes", "--config", host.config_path)
    assert result.returncode != 0
    assert "the disk is full" in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert open(devices.path).read() == before
    assert not [name for name in os.listdir(user.pw_dir) if name.startswith(".engage2fa.tmp")]


def test_missing_or_unreadable_home_refuses_with_a_reason_after_activation(host, users, syslog):
    user = users[7]
    home = user.pw_dir
    host.configure("", start="2099-01-01")
    fresh_device(user)
    moved = home + ".away"
    os.rename(home, moved)  # the NFS server is away
    try:
        assert host.authenticate(user).result == "ignored"
        host.activate()
        mark = syslog.mark()
        outcome = host.authenticate(user, "123456")
        assert outcome.result == "auth_err" and "could not be read" in outcome.output, outcome
        assert f"{home}: stat (the directory of the device file)" in "\n".join(syslog.since(mark))
    finally:
        os.rename(moved, home)
    os.chmod(home, 0o000)
    try:
        mark = syslog.mark()
        outcome = host.authenticate(user, "123456")
        assert outcome.result == "auth_err" and "could not be read" in outcome.output, outcome
        assert "Permission denied" in "\n".join(syslog.since(mark))
    finally:
        os.chmod(home, 0o755)


@pytest.fixture
def default_state_dir():
    """The policy file's defaults name /var/lib/engage2fa: these tests use it, and leave it as they found it."""
    path = "/var/lib/engage2fa"
    existed = os.path.exists(path)
    backup = tempfile.mkdtemp(prefix="engage2fa-state-backup-") if existed else None
    if existed:
        shutil.copytree(path, os.path.join(backup, "state"))
        shutil.rmtree(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)
    if existed:
        shutil.copytree(os.path.join(backup, "state"), path)
        shutil.rmtree(backup)


@pytest.mark.parametrize("damage", ["missing", "empty", "symlink", "world-writable", "garbage"])
def test_broken_policy_after_activation_enforces_defaults_and_logs(host, users, syslog, default_state_dir, damage):
    alice, bob = users[0], users[1]
    with open(host.config_path, "w") as handle:
        handle.write("start_date = 2020-01-01\n")
    os.chmod(host.config_path, 0o644)
    _, phone = fresh_device(alice)
    settle()
    assert host.authenticate(alice, code(phone)).result == "success"
    assert os.path.exists(host.activation_path)

    if damage == "missing":
        os.unlink(host.config_path)
    elif damage == "empty":
        open(host.config_path, "w").close()
    elif damage == "symlink":
        target = host.config_path + ".real"
        os.rename(host.config_path, target)
        os.symlink(target, host.config_path)
    elif damage == "world-writable":
        os.chmod(host.config_path, 0o666)
    else:
        with open(host.config_path, "w") as handle:
            handle.write("start_date = 2020-01-01\n\x00\x01garbage ☃ = =\nwindow = -3\n")
    mark = syslog.mark()
    assert host.authenticate(alice, code(phone, 1)).result == "success"
    assert host.authenticate(alice, "").result == "auth_err"
    assert host.authenticate(bob).result == "auth_err"
    logged = "\n".join(syslog.since(mark))
    if damage in ("symlink", "world-writable", "garbage"):
        assert host.config_path in logged, logged
    if damage in ("missing", "empty"):
        assert "no start_date in the policy file; enforcing because 2FA was activated on" in logged, logged
    if damage == "garbage":
        assert f"{host.config_path}:2: error" in logged
        check = run_admin("check", "--config", host.config_path)
        assert check.returncode == 1 and f"{host.config_path}:2: error" in check.stdout and f"{host.config_path}:3: error" in check.stdout


# --- memory safety ----------------------------------------------------------------------------------------

def memcheck(arguments, stdin):
    log = tempfile.mktemp(prefix="engage2fa-memcheck-")
    result = subprocess.run(["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
                             f"--log-file={log}", *arguments], input=stdin, capture_output=True, text=True, timeout=300)
    text = open(log).read()
    os.unlink(log)
    return result, text


@pytest.fixture(scope="module")
def stripped_module():
    # valgrind 3.19 cannot read the DWARF 5 that swiftc writes; the installed module is stripped anyway.
    path = os.path.join(os.path.dirname(MODULE), "pam_engage2fa-stripped.so")
    subprocess.run(["strip", "-o", path, MODULE], check=True)
    os.sync()
    return path


def test_memcheck_finds_no_invalid_access_or_leak_across_scenarios(host, users, stripped_module):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    alice = users[0]
    host.activate("max_failures = 3\n")
    with open(host.service_path) as handle:
        service = handle.read().replace(MODULE, stripped_module)
    with open(host.service_path, "w") as handle:
        handle.write(service)
    devices = DeviceSet(alice)
    phone = devices.add("Phone")
    recovery = devices.add_recovery_codes()
    devices.write()
    settle(margin=20)
    scenarios = [("valid", code(phone)), ("replay", code(phone)), ("wrong", "000001"), ("garbage", "%n%s" * 200),
                 ("recovery", recovery[0]), ("empty", ""), ("second failure", "000002"), ("third failure locks", "000003"),
                 ("locked out, no prompt", "")]
    for name, answer in scenarios:
        result, log = memcheck(["pamtester", host.service, alice.pw_name, "authenticate"], answer + "\n")
        assert result.returncode != 99, (name, log[-3000:])
        assert "Invalid read" not in log and "Invalid write" not in log and "uninitialised" not in log, (name, log[-3000:])
        assert "definitely lost: 0 bytes" in log or "no leaks are possible" in log, (name, log[-3000:])
    # Unenrolled and unknown users take other paths through the module.
    for user in (users[1].pw_name, "no-such-user-e2fa"):
        result, log = memcheck(["pamtester", host.service, user, "authenticate"], "123456\n")
        assert result.returncode != 99 and "Invalid" not in log, log[-3000:]


def test_memory_in_use_does_not_grow_with_the_number_of_logins(host, users, stripped_module):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    driver = os.path.join(os.path.dirname(os.path.dirname(MODULE)), "engage2fa-pam-driver")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run(["gcc", "-O2", "-o", driver, os.path.join(root, "bench", "pam_driver.c"), "-lpam"], check=True)
    alice = users[0]
    host.activate("max_failures = 100\nlockout_seconds = 1\n")
    with open(host.service_path, "w") as handle:
        handle.write(f"auth required {stripped_module} config={host.config_path}\n")
    in_use = {}
    for cycles in (10, 1000):
        prepare = tempfile.mkdtemp(prefix="engage2fa-cycles-")
        for index in range(cycles):  # a wrong code each time: every cycle reads files and writes state
            devices = DeviceSet(alice, os.path.join(prepare, str(index)))
            devices.add("Phone")
            with open(devices.path, "w") as handle:
                handle.write(devices.text())
        codes = os.path.join(prepare, "codes")
        with open(codes, "w") as handle:
            handle.write("000000\n" * cycles)
        fresh_device(alice)
        result, log = memcheck([driver, "loop", host.service, alice.pw_name, codes, prepare, os.path.join(alice.pw_dir, ".engage2fa")], "")
        shutil.rmtree(prepare)
        assert result.returncode == 0 and "ERROR SUMMARY: 0 errors" in log, log[-3000:]
        in_use[cycles] = int(re.search(r"in use at exit: ([\d,]+) bytes", log).group(1).replace(",", ""))
    assert in_use[1000] - in_use[10] < 1024, in_use
