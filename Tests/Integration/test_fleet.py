"""Fleet mode (store = ldap) against Debian's real slapd: the shipped schema and example ACLs, logins on
two simulated hosts (two PAM services with separate state directories and the same directory), races,
lockouts and recovery codes across hosts, and the directory going away."""

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import hashlib

from conftest import ADMIN, BUILT_MODULE, MODULE, DeviceSet, Enrollment, Host, code, settle
from slapd import ADMIN_DN, ADMIN_PASSWORD, ENGAGE, LDAPError, POLICY_DN, Slapd, host_dn, person_dn, user_dn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.path.join(ROOT, ".build", "release", "engage2fad")

PERSON_PASSWORD = "person-password"
HOST_PASSWORDS = {"host-a": "host-a-secret", "host-b": "host-b-secret"}


@pytest.fixture(scope="module")
def directory():
    server = Slapd().start()
    server.populate(people=[("alice", PERSON_PASSWORD), ("bob", PERSON_PASSWORD)], hosts=HOST_PASSWORDS.items())
    yield server
    server.close()


def new_device(name="phone"):
    return {"id": secrets.token_hex(8), "name": name, "secret": os.urandom(20), "algorithm": "SHA1", "digits": 6, "period": 30}


def as_person(name):
    return (person_dn(name), PERSON_PASSWORD)


def as_host(name):
    return (host_dn(name), HOST_PASSWORDS[name])


# --- who can read and write what (the shipped example ACLs) ------------------------------------------

def test_user_cannot_read_any_secret(directory):
    device = new_device()
    directory.add_device("alice", device)
    # Not even the entries are disclosed to the user (the answer is noSuchObject, as for a missing base).
    assert directory.search(user_dn("alice"), "oathSecret", "e2faRecoveryHash", bind=as_person("alice")) == {}
    assert directory.search(f"ou=engage2fa,{POLICY_DN.split(',', 2)[2]}", "oathSecret", bind=as_person("alice")) == {}
    # The host reads it: it checks codes itself.
    seen = directory.search(f"e2faDeviceID={device['id']},{user_dn('alice')}", "oathSecret", bind=as_host("host-a"), scope="base")
    assert list(seen.values())[0]["oathSecret"] == [device["secret"]]


def test_user_cannot_add_a_device_by_binding_directly(directory):
    directory.add_device("alice", new_device())
    device = new_device("attacker")
    with pytest.raises(LDAPError) as refused:
        directory.add_device("alice", device, bind=as_person("alice"))
    assert refused.value.code == 50  # insufficientAccess
    assert not directory.search(user_dn("alice"), filter=f"(e2faDeviceID={device['id']})")


def test_user_cannot_change_policy_deadlines_or_failures(directory):
    directory.ensure_user("bob")
    for dn, attribute, value in [(POLICY_DN, "e2faStartDate", "2099-01-01"), (user_dn("bob"), "e2faDeadline", "2099-01-01"),
                                 (user_dn("bob"), "e2faFailures", "0"), (user_dn("bob"), "e2faLockedUntil", "0")]:
        with pytest.raises(LDAPError) as refused:
            directory.modify(f"dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n", bind=as_person("bob"))
        assert refused.value.code == 50, (attribute, refused.value.output)


def test_host_writes_only_last_steps_failures_recovery_codes_and_device_removal(directory):
    device = new_device()
    directory.add_device("bob", device)
    directory.replace(user_dn("bob"), e2faRecoveryHash="aa" * 32, e2faRecoverySalt="bb" * 16, e2faRecoveryIterations="1000")
    device_dn = f"e2faDeviceID={device['id']},{user_dn('bob')}"
    host = as_host("host-a")
    # Allowed: the compare-and-swap of the last step, the failure count, the lockout, deleting a used hash.
    directory.modify(f"dn: {device_dn}\nchangetype: modify\nadd: oathTOTPLastTimeStep\noathTOTPLastTimeStep: 5\n", bind=host)
    directory.modify(f"dn: {device_dn}\nchangetype: modify\ndelete: oathTOTPLastTimeStep\noathTOTPLastTimeStep: 5\n-\n"
                     "add: oathTOTPLastTimeStep\noathTOTPLastTimeStep: 6\n", bind=host)
    directory.modify(f"dn: {user_dn('bob')}\nchangetype: modify\nreplace: e2faFailures\ne2faFailures: 1\n-\n"
                     "replace: e2faLockedUntil\ne2faLockedUntil: 0\n", bind=host)
    directory.modify(f"dn: {user_dn('bob')}\nchangetype: modify\ndelete: e2faRecoveryHash\ne2faRecoveryHash: {'aa' * 32}\n", bind=host)
    # New recovery codes in one modify (engage2fad makes them only after a code from a device).
    directory.modify(f"dn: {user_dn('bob')}\nchangetype: modify\nreplace: e2faRecoverySalt\ne2faRecoverySalt: {'dd' * 16}\n-\n"
                     f"replace: e2faRecoveryHash\ne2faRecoveryHash: {'cc' * 32}\n", bind=host)
    # Refused: secrets, names, policy, deadlines, deleting a user's entry or the activation.
    refused_changes = [
        (device_dn, "replace: oathSecret\noathSecret: AAAA\n"),
        (device_dn, "replace: e2faDeviceName\ne2faDeviceName: renamed\n"),
        (device_dn, "replace: oathOTPLength\noathOTPLength: 8\n"),
        (POLICY_DN, "replace: e2faStartDate\ne2faStartDate: 2099-01-01\n"),
        (POLICY_DN, "replace: e2faIssuer\ne2faIssuer: Evil\n"),
        (user_dn("bob"), "replace: e2faDeadline\ne2faDeadline: 2099-01-01\n"),
    ]
    for dn, change in refused_changes:
        with pytest.raises(LDAPError) as refused:
            directory.modify(f"dn: {dn}\nchangetype: modify\n{change}", bind=host)
        assert refused.value.code == 50, (change, refused.value.output)
    directory.ensure_user("carol")
    with pytest.raises(LDAPError) as refused:
        directory.run("ldapdelete", bind=host, arguments=[user_dn("carol")])
    assert refused.value.code == 50
    # A device entry may go (engage2fad removes one only after a code from one of the user's devices).
    directory.run("ldapdelete", bind=host, arguments=[device_dn])
    directory.modify(f"dn: {POLICY_DN}\nchangetype: modify\nadd: e2faActivatedAt\ne2faActivatedAt: 1700000000\n", bind=host)
    with pytest.raises(LDAPError) as refused:
        directory.modify(f"dn: {POLICY_DN}\nchangetype: modify\ndelete: e2faActivatedAt\n", bind=host)
    assert refused.value.code == 50
    assert directory.search(POLICY_DN, "e2faActivatedAt", scope="base")[POLICY_DN]["e2faActivatedAt"] == ["1700000000"]


def test_compare_and_swap_of_the_last_step_lets_one_writer_win(directory):
    device = new_device()
    directory.add_device("bob", device)
    device_dn = f"e2faDeviceID={device['id']},{user_dn('bob')}"
    host = as_host("host-b")
    directory.modify(f"dn: {device_dn}\nchangetype: modify\nadd: oathTOTPLastTimeStep\noathTOTPLastTimeStep: 10\n", bind=host)
    # First use adds to a single-valued attribute: a second add fails.
    with pytest.raises(LDAPError) as second:
        directory.modify(f"dn: {device_dn}\nchangetype: modify\nadd: oathTOTPLastTimeStep\noathTOTPLastTimeStep: 11\n", bind=host)
    assert second.value.code in (19, 20)
    swap = f"dn: {device_dn}\nchangetype: modify\ndelete: oathTOTPLastTimeStep\noathTOTPLastTimeStep: 10\n-\nadd: oathTOTPLastTimeStep\noathTOTPLastTimeStep: 11\n"
    directory.modify(swap, bind=host)
    with pytest.raises(LDAPError) as loser:
        directory.modify(swap, bind=as_host("host-a"))
    assert loser.value.code == 16  # noSuchAttribute: the old value is gone


# --- two hosts, one directory ---------------------------------------------------------------------

class FleetHost(Host):
    """A PAM service, state directory and policy file with store = ldap, and its own engage2fad."""

    def __init__(self, directory, users, server, name, uris=None, timeout=3):
        super().__init__(directory, users)
        self.name = name
        self.socket_dir = os.path.join(directory, "run")
        password_file = os.path.join(directory, "bind-password")
        with open(password_file, "w") as handle:
            handle.write(HOST_PASSWORDS[name] + "\n")
        os.chmod(password_file, 0o600)
        self.fleet_keys = (f"store = ldap\nldap_uri = {uris or server.uri}\nldap_base = {ENGAGE}\n"
                           f"ldap_bind_dn = {host_dn(name)}\nldap_bind_password_file = {password_file}\n"
                           f"ldap_timeout = {timeout}\nfleet_socket_dir = {self.socket_dir}\n")
        self.configure("")
        self.daemon = None

    def configure(self, text, start=None):
        super().configure(self.fleet_keys + text, start)

    def start_daemon(self):
        self.daemon = subprocess.Popen([DAEMON, "--config", self.config_path], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(self.socket_dir, "enroll.socket")):
            assert self.daemon.poll() is None, self.daemon.stderr.read()
            assert time.monotonic() < deadline, "engage2fad did not start"
            time.sleep(0.05)
        return self

    def close(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.terminate()
            self.daemon.wait(timeout=10)
        super().close()


@pytest.fixture
def fleet(directory, users):
    """Host A and host B: separate state directories and engage2fad, the same directory; 2FA started centrally."""
    hosts = []
    for name in ("host-a", "host-b"):
        folder = tempfile.mkdtemp(prefix=f"engage2fa-{name}-")
        os.chmod(folder, 0o755)
        hosts.append(FleetHost(folder, users, directory, name).start_daemon())
    directory.set_policy(e2faStartDate="2020-01-01")
    yield hosts
    for host in hosts:
        host.close()
        shutil.rmtree(host.directory, ignore_errors=True)


def test_module_does_not_link_libldap():
    linked = subprocess.run(["ldd", BUILT_MODULE], capture_output=True, text=True, check=True).stdout
    assert "libldap" not in linked and "liblber" not in linked
    assert "libldap" in subprocess.run(["ldd", DAEMON], capture_output=True, text=True, check=True).stdout


def test_device_in_the_directory_logs_in_on_either_host_and_a_code_works_once(directory, users, fleet):
    host_a, host_b = fleet
    user = users[0]
    device = new_device()
    directory.add_device(user.pw_name, device)
    settle()
    typed = code(device)
    first = host_a.authenticate(user, typed)
    assert first.result == "success", first
    again = host_b.authenticate(user, typed)
    assert again.result == "auth_err" and "already used" in again.output, again
    assert host_a.authenticate(user, typed).result == "auth_err"
    # A local record of activation on each host that saw it: sticky, whatever the directory says later.
    assert os.path.exists(host_a.activation_path) and os.path.exists(host_b.activation_path)
    assert "e2faActivatedAt" in directory.search(POLICY_DN, "e2faActivatedAt", scope="base")[POLICY_DN]


def test_central_start_date_ahead_asks_nobody_for_a_code(directory, users, fleet):
    host_a, host_b = fleet
    directory.set_policy(e2faStartDate="2099-01-01", e2faActivatedAt=None)
    device = new_device()
    directory.add_device(users[1].pw_name, device)
    for host in fleet:
        outcome = host.authenticate(users[1], "")
        assert outcome.result == "ignored" and not outcome.prompted, outcome


def test_twenty_parallel_logins_with_one_code_over_both_hosts_one_success_ten_rounds(directory, users, fleet):
    host_a, host_b = fleet
    for host in fleet:
        host.configure("max_failures = 100\n")  # the 19 refused replays of a round do not lock the user out
    for round_number in range(10):
        user = users[round_number]
        device = new_device(f"round{round_number}")
        directory.add_device(user.pw_name, device)
        assert_one_of_twenty_succeeds(fleet, user, device, round_number)


def assert_one_of_twenty_succeeds(hosts, user, device, round_number):
    """Twenty logins at once with the same code, alternating between the hosts."""
    settle(margin=8)
    typed = code(device)
    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda index: hosts[index % 2].authenticate(user, typed), range(20)))
    results = [outcome.result for outcome in outcomes]
    assert results.count("success") == 1, (round_number, results, outcomes)
    assert results.count("auth_err") == 19, (round_number, results)



# --- enrollment through engage2fad ------------------------------------------------------------------------

def devices_of(directory, user):
    return [entry for entry in directory.search(user_dn(user.pw_name), "e2faDeviceName").values() if "e2faDeviceName" in entry]


def enroll(host, user, name, *answers):
    enrollment = Enrollment(user, "--name", name, "--config", host.config_path)
    settle()
    replies = [answer(enrollment.device) if callable(answer) else answer for answer in answers] or [code(enrollment.device)]
    returncode = enrollment.answer("\n".join(replies))
    return enrollment, returncode


def test_enroll_on_host_a_then_log_in_on_host_b(directory, users, fleet):
    host_a, host_b = fleet
    user = users[13]
    enrollment, returncode = enroll(host_a, user, "phone", lambda device: code(device))
    assert returncode == 0, (enrollment.output, enrollment.errors)
    assert "otpauth://totp/Engage:" in enrollment.uri
    assert [entry["e2faDeviceName"] for entry in devices_of(directory, user)] == [["phone"]]
    # The code that confirmed the device is never accepted at a login, on any host.
    replay = host_b.authenticate(user, code(enrollment.device))
    assert replay.result == "auth_err", replay
    fresh = host_b.authenticate(user, code(enrollment.device, offset_steps=1))
    assert fresh.result == "success", fresh


def test_password_only_attacker_cannot_add_a_device_on_another_host(directory, users, fleet):
    """Knowing the password gives a shell as the user on host B: the enroll command there must refuse a
    second device without a current code from the existing one."""
    host_a, host_b = fleet
    user = users[14]
    first, returncode = enroll(host_a, user, "phone")
    assert returncode == 0, (first.output, first.errors)
    attacker, returncode = enroll(host_b, user, "attacker", lambda device: code(device), "")
    assert returncode != 0, attacker.output
    wrong, returncode = enroll(host_b, user, "attacker2", lambda device: code(device), "123456")
    assert returncode != 0, wrong.output
    assert [entry["e2faDeviceName"] for entry in devices_of(directory, user)] == [["phone"]]
    # With a current code from the existing device, the user links a second one.
    second, returncode = enroll(host_b, user, "tablet", lambda device: code(device), code(first.device, offset_steps=1))
    assert returncode == 0, (second.output, second.errors)
    assert sorted(entry["e2faDeviceName"][0] for entry in devices_of(directory, user)) == ["phone", "tablet"]
    # That proof was consumed centrally: it does not log in anywhere afterwards.
    assert host_a.authenticate(user, code(first.device, offset_steps=1)).result == "auth_err"


# --- one lockout, recovery codes once -------------------------------------------------------------------------

def test_failures_split_over_both_hosts_reach_one_lockout(directory, users, fleet):
    host_a, host_b = fleet
    for host in fleet:
        host.configure("max_failures = 4\nlockout_seconds = 600\n")
    user = users[15]
    device = new_device()
    directory.add_device(user.pw_name, device)
    for host in (host_a, host_b, host_a, host_b):
        assert host.authenticate(user, "000000").result == "auth_err"
    settle()
    locked = host_a.authenticate(user, code(device))
    assert locked.result == "maxtries" and not locked.prompted, locked
    assert host_b.authenticate(user, code(device)).result == "maxtries"


def test_a_recovery_code_used_on_host_a_is_refused_on_host_b(directory, users, fleet):
    host_a, host_b = fleet
    user = users[16]
    directory.add_device(user.pw_name, new_device())
    hashes = give_recovery_codes(directory, user, ["abcdefghij", "klmnopqrst"])
    used = host_a.authenticate(user, "abcde-fghij")
    assert used.result == "success" and "1 recovery code left" in used.output, used
    again = host_b.authenticate(user, "abcde-fghij")
    assert again.result == "auth_err", again
    assert directory.search(user_dn(user.pw_name), "e2faRecoveryHash", scope="base")[user_dn(user.pw_name)]["e2faRecoveryHash"] == [hashes[1]]


# --- the directory away: never fail open ------------------------------------------------------------

def test_directory_stopped_denies_required_users_within_the_timeout_and_passes_the_others(users, syslog):
    server = Slapd().start()
    try:
        server.populate(hosts=HOST_PASSWORDS.items())
        server.set_policy(e2faStartDate="2020-01-01")
        required, not_yet = users[10], users[11]
        server.add_device(required.pw_name, new_device())
        server.ensure_user(not_yet.pw_name)
        server.replace(user_dn(not_yet.pw_name), e2faDeadline="2099-01-01")
        folder = tempfile.mkdtemp(prefix="engage2fa-host-a-")
        os.chmod(folder, 0o755)
        host = FleetHost(folder, users, server, "host-a", timeout=2).start_daemon()
        try:
            # Seen once with the directory up: the policy and deadlines are cached root-only in state_dir.
            assert host.authenticate(not_yet, "").result == "ignored"
            assert host.authenticate(required, "000000").result == "auth_err"
            cache = os.path.join(host.state_dir, "fleet")
            assert os.stat(cache).st_mode & 0o077 == 0
            server.stop()
            mark = syslog.mark()
            started = time.monotonic()
            denied = host.authenticate(required, "")
            elapsed = time.monotonic() - started
            assert denied.result == "auth_err" and "directory cannot be reached" in denied.output, denied
            assert elapsed < 2 + 1.5, elapsed
            assert any("directory cannot be reached" in line and server.uri in line for line in syslog.since(mark)), syslog.since(mark)
            passed = host.authenticate(not_yet, "")
            assert passed.result == "ignored", passed
        finally:
            host.close()
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        server.close()


@pytest.mark.parametrize("target", ["silent listener", "unrouted address"])
def test_a_directory_that_never_answers_denies_within_the_timeout(users, directory, target):
    """A listener that accepts connections and never answers (an address that drops packets after the
    handshake), and an address nothing answers for (TEST-NET-3: dropped, or refused at once)."""
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    uri = f"ldap://127.0.0.1:{silent.getsockname()[1]}/" if target == "silent listener" else "ldaps://203.0.113.1/"
    folder = tempfile.mkdtemp(prefix="engage2fa-host-b-")
    os.chmod(folder, 0o755)
    host = FleetHost(folder, users, directory, "host-b", uris=uri, timeout=2).start_daemon()
    try:
        host.activate()
        started = time.monotonic()
        denied = host.authenticate(users[12], "")
        elapsed = time.monotonic() - started
        assert denied.result == "auth_err" and "directory cannot be reached" in denied.output, denied
        assert elapsed < 2 + 1.5, elapsed
    finally:
        host.close()
        shutil.rmtree(folder, ignore_errors=True)
        silent.close()


# --- a replica: reads from a syncrepl consumer, writes chained to the provider -------------------------------

@pytest.fixture(scope="module")
def replica(directory):
    consumer = Slapd(provider=directory).start()
    yield consumer
    consumer.close()


def replicated(replica, dn, attribute, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(attribute in entry for entry in replica.search(dn, attribute, scope="base").values()):
            return True
        time.sleep(0.1)
    return False


def test_one_code_through_the_replica_and_the_provider_is_accepted_once(directory, replica, users):
    folders = [tempfile.mkdtemp(prefix=f"engage2fa-{name}-") for name in ("host-a", "host-b")]
    hosts = []
    try:
        for folder, name, server in zip(folders, ("host-a", "host-b"), (directory, replica)):
            os.chmod(folder, 0o755)
            hosts.append(FleetHost(folder, users, server, name).start_daemon())
            hosts[-1].configure("max_failures = 100\n")
        directory.set_policy(e2faStartDate="2020-01-01")
        for round_number in range(3):
            user = users[17 + round_number]
            device = new_device(f"replica{round_number}")
            directory.add_device(user.pw_name, device)
            assert replicated(replica, f"e2faDeviceID={device['id']},{user_dn(user.pw_name)}", "oathSecret")
            assert_one_of_twenty_succeeds(hosts, user, device, round_number)
            # The accepted step reached the provider, whichever host won.
            device_dn = f"e2faDeviceID={device['id']},{user_dn(user.pw_name)}"
            assert "oathTOTPLastTimeStep" in directory.search(device_dn, "oathTOTPLastTimeStep", scope="base")[device_dn]
    finally:
        for host, folder in zip(hosts, folders):
            host.close()
            shutil.rmtree(folder, ignore_errors=True)


# --- engage2fa-admin against the directory -------------------------------------------------------------------

def run_fleet_admin(host, *arguments):
    password_file = os.path.join(host.directory, "admin-password")
    with open(password_file, "w") as handle:
        handle.write(ADMIN_PASSWORD + "\n")
    os.chmod(password_file, 0o600)
    command = [ADMIN, *arguments, "--config", host.config_path]
    if arguments[0] != "check":
        command += ["--bind-dn", ADMIN_DN, "--bind-password-file", password_file]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_deadline_set_centrally_takes_effect_on_both_hosts(directory, users, fleet):
    host_a, host_b = fleet
    waiting, overdue = users[11], users[12]
    directory.ensure_user(overdue.pw_name)
    result = run_fleet_admin(host_a, "extend", waiting.pw_name, "2099-01-01")
    assert result.returncode == 0, result.stderr
    assert directory.search(user_dn(waiting.pw_name), "e2faDeadline", scope="base")[user_dn(waiting.pw_name)]["e2faDeadline"] == ["2099-01-01"]
    for host in fleet:
        assert host.authenticate(waiting, "").result == "ignored"
        refused = host.authenticate(overdue, "")
        assert refused.result == "auth_err" and not refused.prompted, refused
    # A user with a device cannot be given a deadline (it would change nothing).
    directory.add_device(users[0].pw_name, new_device())
    assert run_fleet_admin(host_b, "extend", users[0].pw_name, "2099-01-01").returncode == 1


def test_admin_unlock_reset_status_and_check_work_on_the_directory(directory, users, fleet):
    host_a, host_b = fleet
    for host in fleet:
        host.configure("max_failures = 2\nlockout_seconds = 600\n")
    user = users[5]  # the refused replays of an earlier race count as failures: start from none
    assert run_fleet_admin(host_a, "unlock", user.pw_name).returncode == 0
    assert directory.search(user_dn(user.pw_name), "e2faFailures", scope="base")[user_dn(user.pw_name)]["e2faFailures"] == ["0"]
    device = new_device()
    directory.add_device(user.pw_name, device)
    assert host_a.authenticate(user, "000000").result == "auth_err"
    assert host_b.authenticate(user, "000000").result == "auth_err"
    settle()
    assert host_a.authenticate(user, code(device)).result == "maxtries"
    status = run_fleet_admin(host_a, "status", "--json", user.pw_name)
    assert status.returncode == 0, status.stderr
    import json
    row = json.loads(status.stdout)["users"][0]
    assert row["user"] == user.pw_name and row["readiness"] == "ready" and "locked" in json.dumps(row).lower(), row
    assert run_fleet_admin(host_a, "unlock", user.pw_name).returncode == 0
    assert host_b.authenticate(user, code(device)).result == "success"
    everyone = run_fleet_admin(host_b, "status")
    assert everyone.returncode == 0 and user.pw_name in everyone.stdout, everyone.stderr
    # reset without --yes or --deadline changes nothing; with --deadline every device goes, fleet-wide.
    assert run_fleet_admin(host_a, "reset", user.pw_name).returncode == 1
    assert devices_of(directory, user)
    reset = run_fleet_admin(host_a, "reset", user.pw_name, "--deadline", "2099-01-01")
    assert reset.returncode == 0, reset.stderr
    assert devices_of(directory, user) == []
    assert host_b.authenticate(user, "").result == "ignored"
    checked = run_fleet_admin(host_b, "check")
    assert checked.returncode == 0 and "answers as" in checked.stdout, (checked.stdout, checked.stderr)


# --- migration of a host's local devices ----------------------------------------------------------------

def test_migrate_copies_local_devices_once_and_keeps_used_codes_used(directory, users, fleet):
    host_a, host_b = fleet
    user = users[10]  # not in this directory yet
    local = DeviceSet(user)
    device = local.add("old phone")
    recovery_codes = local.add_recovery_codes(count=3)
    local.write()
    Host.configure(host_a, "", start="2020-01-01")  # host A still in local mode
    settle()
    used = code(device)
    assert host_a.authenticate(user, used).result == "success"
    host_a.configure("")  # now store = ldap
    dry = run_fleet_admin(host_a, "migrate", "--dry-run", user.pw_name)
    assert dry.returncode == 0 and "would copy 'old phone'" in dry.stdout, (dry.stdout, dry.stderr)
    assert devices_of(directory, user) == []
    first = run_fleet_admin(host_a, "migrate", user.pw_name)
    assert first.returncode == 0 and "1 device copied" in first.stdout, (first.stdout, first.stderr)
    again = run_fleet_admin(host_a, "migrate", user.pw_name)
    assert again.returncode == 0 and "0 devices copied, 1 already in the directory" in again.stdout, again.stdout
    assert [entry["e2faDeviceName"] for entry in devices_of(directory, user)] == [["old phone"]]
    assert os.path.exists(local.path)  # nothing local is deleted
    # The code used on host A before the migration is not accepted on host B after it.
    assert host_b.authenticate(user, used).result == "auth_err"
    assert host_b.authenticate(user, code(device, offset_steps=1)).result == "success"
    assert host_b.authenticate(user, recovery_codes[0]).result == "success"
    assert host_a.authenticate(user, recovery_codes[0]).result == "auth_err"


# --- real ssh logins on two sshd instances -----------------------------------------------------------------

def test_real_ssh_logins_on_two_sshd_instances_share_one_device_and_refuse_a_replay(directory, users, fleet):
    from test_ssh_sudo import SSHServer, ssh_login
    host_a, host_b = fleet
    servers = [SSHServer(users), SSHServer(users)]
    try:
        servers[0].use(host_a)
        servers[1].use(host_b)
        user = users[8]
        device = new_device("ssh phone")
        directory.add_device(user.pw_name, device)
        settle()
        typed = code(device)
        first = ssh_login(servers[0], user, typed)
        assert first.ok and first.output.strip() == user.pw_name, first.text
        replay = ssh_login(servers[1], user, typed)
        assert not replay.ok, replay.text
        fresh = ssh_login(servers[1], user, code(device, offset_steps=1))
        assert fresh.ok, fresh.text
    finally:
        for server in servers:
            server.stop()


def test_plain_ldap_to_a_name_that_is_not_loopback_needs_starttls(users, directory):
    """TLS is required except for ldapi:// and loopback addresses: a host name (even one resolving to
    127.0.0.1) gets StartTLS, which this directory does not offer, so nothing is sent in the clear."""
    import socket as sockets
    name = sockets.gethostname()
    folder = tempfile.mkdtemp(prefix="engage2fa-host-a-")
    os.chmod(folder, 0o755)
    host = FleetHost(folder, users, directory, "host-a", uris=f"ldap://{name}:{directory.port}/", timeout=2).start_daemon()
    try:
        host.activate()
        denied = host.authenticate(users[12], "")
        assert denied.result == "auth_err" and "directory cannot be reached" in denied.output, denied
        # check binds the way engage2fad does, and says why it could not.
        checked = run_fleet_admin(host, "check")
        assert checked.returncode == 1 and "StartTLS" in checked.stdout, (checked.stdout, checked.stderr)
    finally:
        host.close()
        shutil.rmtree(folder, ignore_errors=True)


# --- issue 15's open findings (fleetlogin): first enrollments at once, case twins, combined answers ----------

def test_first_enrollments_confirmed_at_the_same_moment_link_exactly_one_device(directory, users, fleet):
    """Six first enrollments of one user with no device, confirmed at once over both hosts (three each: the
    service's limit per user is four): each read "no device" and added one, so that the password alone then
    added a second device. Exactly one is linked, the others are told to add with a code; five rounds."""
    from concurrent.futures import ThreadPoolExecutor
    wins = []
    for round_number in range(5):
        user = users[18 if round_number % 2 else 19]
        reset = run_fleet_admin(fleet[0], "reset", user.pw_name, "--yes")  # devices of an earlier round or test
        assert reset.returncode == 0, reset.stderr
        assert devices_of(directory, user) == []
        settle(margin=10)
        enrollments = [Enrollment(user, "--name", f"phone{index}", "--config", fleet[index % 2].config_path) for index in range(6)]
        with ThreadPoolExecutor(max_workers=6) as pool:
            codes = [code(enrollment.device) for enrollment in enrollments]
            returncodes = list(pool.map(lambda pair: pair[0].answer(pair[1]), zip(enrollments, codes)))
        linked = devices_of(directory, user)
        wins.append(returncodes.count(0))
        assert returncodes.count(0) == 1 and len(linked) == 1, (round_number, returncodes, [e.errors for e in enrollments], linked)
        losers = [enrollment for enrollment, returned in zip(enrollments, returncodes) if returned != 0]
        assert all("code" in loser.errors and "nothing was saved" in loser.errors for loser in losers), [loser.errors for loser in losers]
    print("first enrollments at once: successes per round", wins)


@pytest.fixture
def case_twins():
    """Two real local accounts whose names differ only in case (useradd allows it): distinct users."""
    from conftest import USER_PREFIX, ensure_user
    lower = ensure_user(f"{USER_PREFIX}twin")
    subprocess.run(["useradd", "--badname", "--create-home", "--shell", "/bin/bash", lower.pw_name.upper()], capture_output=True)
    import pwd
    upper = pwd.getpwnam(lower.pw_name.upper())
    assert upper.pw_uid != lower.pw_uid
    yield lower, upper
    for entry in (lower, upper):
        subprocess.run(["userdel", "--remove", entry.pw_name], capture_output=True)


def test_case_twins_never_share_devices_lockout_or_enrollment(directory, users, fleet, case_twins, syslog_capture):
    """uid matches case-insensitively: the local users x and X (two accounts) were one directory entry, so X
    logged in with x's device, counted toward x's lockout and was told x's devices were X's own."""
    host_a, host_b = fleet
    lower, upper = case_twins
    device = new_device("lower's phone")
    directory.add_device(lower.pw_name, device)
    directory.replace(user_dn(lower.pw_name), e2faFailures="0")
    settle()
    assert host_a.authenticate(lower, code(device)).result == "success"
    mark = syslog_capture.mark()
    twin = host_b.authenticate(upper, code(device, offset_steps=1))
    assert twin.result == "auth_err", twin
    if syslog_capture.socket is not None:  # else another syslog reader holds /dev/log: the rest still runs
        logged = "\n".join(syslog_capture.since(mark))
        assert upper.pw_name in logged and lower.pw_name in logged, logged
    # Nothing of x's counts for X's attempts, and the next code still logs x in.
    entry = directory.search(user_dn(lower.pw_name), "e2faFailures", "uid", scope="base")[user_dn(lower.pw_name)]
    assert entry["e2faFailures"] == ["0"] and entry["uid"] == [lower.pw_name], entry
    assert host_b.authenticate(lower, code(device, offset_steps=1)).result == "success"
    # X cannot link a device into x's entry, and is told why.
    try:
        attempt, returncode = enroll(host_b, upper, "twin phone")
    except AssertionError as refused:
        assert "no URI line" in str(refused) and lower.pw_name in str(refused), refused
    else:
        assert returncode != 0, attempt.output
    assert [entry["e2faDeviceName"] for entry in devices_of(directory, lower)] == [["lower's phone"]]


def give_recovery_codes(directory, user, codes):
    """The user's recovery codes in the directory, as an admin writes them; their hashes, in order."""
    salt = os.urandom(16)
    hashes = [hashlib.pbkdf2_hmac("sha256", c.encode(), salt, 1000, 32).hex() for c in codes]
    directory.modify(f"dn: {user_dn(user.pw_name)}\nchangetype: modify\nreplace: e2faRecoverySalt\ne2faRecoverySalt: {salt.hex()}\n-\n"
                     f"replace: e2faRecoveryIterations\ne2faRecoveryIterations: 1000\n-\n"
                     f"replace: e2faRecoveryHash\n" + "".join(f"e2faRecoveryHash: {h}\n" for h in hashes))
    return hashes


def test_forward_pass_recovery_code_after_the_password_in_fleet_mode(directory, users, fleet):
    """One field for the password and the code (forward_pass): local mode recognises a recovery code at its end,
    fleet mode split the answer at the code's six digits and never found it. The password never goes to
    engage2fad: the module sends the code's end (or the candidates' salted hashes) only."""
    host_a, host_b = fleet
    user = users[17]
    password = "pw-" + user.pw_name + "-Box1"
    subprocess.run(["chpasswd"], input=f"{user.pw_name}:{password}\n", text=True, check=True)
    try:
        reset = run_fleet_admin(host_a, "reset", user.pw_name, "--yes")
        assert reset.returncode == 0, reset.stderr
        device = new_device()
        directory.add_device(user.pw_name, device)
        directory.replace(user_dn(user.pw_name), e2faFailures="0")
        hashes = give_recovery_codes(directory, user, ["abcdefghij", "klmnopqrst"])
        for host in fleet:
            with open(host.service_path, "w") as handle:
                handle.write(f"auth requisite {MODULE} config={host.config_path} forward_pass\n"
                             "auth [success=ok default=die] pam_unix.so try_first_pass nodelay\n"
                             "auth optional pam_echo.so engage2fa-result=success\nauth required pam_permit.so\n"
                             "account required pam_permit.so\n")
        used = host_a.authenticate(user, password + "abcde-fghij")
        assert used.result == "success" and "1 recovery code left" in used.output, used
        again = host_b.authenticate(user, password + "abcdefghij")
        assert again.result == "auth_err", again
        settle()
        assert host_b.authenticate(user, password + code(device)).result == "success"
        assert directory.search(user_dn(user.pw_name), "e2faRecoveryHash", scope="base")[user_dn(user.pw_name)]["e2faRecoveryHash"] == [hashes[1]]
        # As in local mode the code is checked before the password: right code, wrong password, refused.
        wrong_password = host_b.authenticate(user, "not-the-password" + "klmnopqrst")
        assert wrong_password.result == "auth_err", wrong_password
    finally:
        subprocess.run(["passwd", "-d", user.pw_name], capture_output=True)


def test_admin_start_date_sets_the_fleet_start_and_never_turns_an_active_fleet_off(directory, users, fleet):
    host_a, host_b = fleet
    directory.set_policy(e2faStartDate="2099-01-01", e2faActivatedAt=None)
    user = users[16]
    reset = run_fleet_admin(host_a, "reset", user.pw_name, "--yes")
    assert reset.returncode == 0, reset.stderr
    directory.add_device(user.pw_name, new_device())
    policy = lambda: directory.search(POLICY_DN, "e2faStartDate", "e2faActivatedAt", scope="base")[POLICY_DN]  # noqa: E731
    # A usage error is found before anything is asked of the directory.
    assert run_fleet_admin(host_a, "start-date", "2026-02-30").returncode == 64
    assert run_fleet_admin(host_a, "start-date").returncode == 64
    ahead = run_fleet_admin(host_a, "start-date", "2098-06-01")
    assert ahead.returncode == 0 and "2098-06-01" in ahead.stdout, (ahead.stdout, ahead.stderr)
    assert policy() == {"e2faStartDate": ["2098-06-01"]}
    assert host_b.authenticate(user, "").result == "ignored"
    started = run_fleet_admin(host_b, "start-date", "2020-01-01")
    assert started.returncode == 0 and "mandatory" in started.stdout and "activation recorded" in started.stdout, started.stdout
    assert "e2faActivatedAt" in policy()
    for host in fleet:
        required = host.authenticate(user, "")
        assert required.result == "auth_err" and required.prompted, required
    # Moving the date later again: the output says it changes nothing, the activation stays, codes are still asked.
    later = run_fleet_admin(host_a, "start-date", "2099-06-01")
    assert later.returncode == 0 and "already active" in later.stdout and "does not turn it off" in later.stdout, later.stdout
    assert policy()["e2faStartDate"] == ["2099-06-01"] and "e2faActivatedAt" in policy()
    for host in fleet:
        assert host.authenticate(user, "").prompted
    # In local mode there is no directory to write: the policy file's start_date is the start date.
    Host.configure(host_a, "")
    local = run_fleet_admin(host_a, "start-date", "2030-01-01")
    assert local.returncode == 1 and "start_date" in local.stderr, (local.stdout, local.stderr)


def test_an_unprivileged_caller_checks_its_own_users_code_through_engage2fad(directory, users, fleet):
    """A screen locker runs PAM as the user: fleet mode took the local path there, which cannot check codes
    (unprivileged = allow-self let the password alone unlock once active). It now asks engage2fad over the
    enrollment socket about the caller's own user only (SO_PEERCRED), with the fleet-wide replay and lockout."""
    host_a, host_b = fleet
    user, other = users[15], users[14]
    reset = run_fleet_admin(host_a, "reset", user.pw_name, "--yes")
    assert reset.returncode == 0, reset.stderr
    device = new_device()
    directory.add_device(user.pw_name, device)
    directory.replace(user_dn(user.pw_name), e2faFailures="0", e2faLockedUntil="0")

    def as_caller(caller, host, answer):
        result = subprocess.run(["runuser", "-u", caller.pw_name, "--", "pamtester", "-v", host.service, user.pw_name, "authenticate"],
                                input=answer + "\n", capture_output=True, text=True, timeout=30)
        from conftest import Outcome
        return Outcome(result)
    settle()
    typed = code(device)
    unlocked = as_caller(user, host_a, typed)
    assert unlocked.result == "success", unlocked
    # The same code is refused on the other host, to root's login and to the user's own screen locker alike.
    assert host_b.authenticate(user, typed).result == "auth_err"
    assert as_caller(user, host_b, typed).result == "auth_err"
    password_only = as_caller(user, host_b, "")
    assert password_only.result == "auth_err" and password_only.prompted, password_only
    # Another user's process cannot ask about this user: refused, never let in.
    assert as_caller(other, host_a, code(device, offset_steps=1)).result != "success"
    assert host_a.authenticate(user, code(device, offset_steps=1)).result == "success"
