"""Fleet mode under attack (the security review of issue 15): a hostile local user at engage2fad's
enrollment socket, a hostile network client's answers, and a syncrepl consumer that has fallen behind."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import code, settle
from slapd import Slapd, user_dn
from test_fleet import DAEMON, HOST_PASSWORDS, FleetHost, directory, fleet, new_device  # noqa: F401 (fixtures)


def children_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


FLOODER = r"""
import select, socket, sys
path, count = sys.argv[1], int(sys.argv[2])
connections = []
for _ in range(count):
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(path)
    connections.append(connection)
print("connected", flush=True)
# Sends nothing (a slowloris); reports how many connections engage2fad closed, once the test says so.
sys.stdin.readline()
closed = 0
for connection in connections:
    # Readable at once: engage2fad answered (a refusal) or hung up; an idle child keeps it unreadable.
    if select.select([connection], [], [], 0)[0]:
        closed += 1
print(closed, flush=True)
"""


def test_one_local_user_cannot_make_engage2fad_hold_unbounded_root_processes(users, fleet):
    """Every connection to the world-writable enrollment socket got a root child of its own that waited ten
    minutes for a line: one user holding thousands of idle connections exhausts the service's tasks (systemd's
    TasksMax) or memory, and then no fork is left for the module's logins: every required user is denied."""
    host_a, _ = fleet
    attacker = users[3]
    enroll_socket = os.path.join(host_a.socket_dir, "enroll.socket")
    flooder = subprocess.Popen(["runuser", "-u", attacker.pw_name, "--", "/usr/bin/python3", "-c", FLOODER, enroll_socket, "40"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert flooder.stdout.readline().strip() == "connected"
        # engage2fad has seen all 40 connections once the enrollment listener's queue is empty.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(children_of(host_a.daemon.pid)) < 40:
            time.sleep(0.2)
        held = len(children_of(host_a.daemon.pid))
        assert held <= 8, f"one user's idle enrollment connections hold {held} root processes of engage2fad"
        flooder.stdin.write("\n")
        flooder.stdin.flush()
        assert int(flooder.stdout.readline()) >= 32  # refused at once with an answer, then closed
    finally:
        flooder.kill()
        flooder.wait()


def test_an_answer_longer_than_any_code_is_a_wrong_code_not_a_directory_outage(directory, users, fleet):  # noqa: F811
    """A network client at sshd types 300 characters: local mode says "Wrong verification code" and counts it;
    fleet mode sent it to engage2fad, which refused the request line, and the module then logged at error level
    that the directory cannot be reached (false outage alarms on demand, and the guess is not counted)."""
    host_a, _ = fleet
    user = users[5]
    directory.add_device(user.pw_name, new_device())
    outcome = host_a.authenticate(user, "1" * 300)
    assert outcome.result == "auth_err", outcome
    assert "Wrong verification code" in outcome.output and "cannot be reached" not in outcome.output, outcome
    failures = directory.search(user_dn(user.pw_name), "e2faFailures", scope="base")[user_dn(user.pw_name)]
    assert failures.get("e2faFailures") == ["1"], failures


def stall_replication(consumer):
    """The consumer stops receiving the provider's changes (its provider URI points nowhere); writes it gets
    are still chained to the provider."""
    ldif = ("dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcSyncrepl\n"
            "olcSyncrepl: rid=001 provider=ldap://127.0.0.1:9/ bindmethod=simple binddn=\"cn=nobody\" credentials=x "
            "searchbase=\"dc=example,dc=org\" type=refreshAndPersist retry=\"1 +\" timeout=1\n")
    subprocess.run(["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", consumer.ldapi], input=ldif, text=True, check=True,
                   capture_output=True)


class BehindConsumer:
    """A syncrepl consumer that has the user's device, then stops hearing from the provider (writes it gets
    still chain there), and a host reading from it; 2FA active."""

    def __init__(self, directory, users, user, device):
        self.consumer = Slapd(provider=directory).start()
        self.folder = tempfile.mkdtemp(prefix="engage2fa-host-b-")
        os.chmod(self.folder, 0o755)
        self.host = None
        directory.add_device(user.pw_name, device)
        directory.replace(user_dn(user.pw_name), e2faFailures="0", e2faLockedUntil="0")
        device_dn = f"e2faDeviceID={device['id']},{user_dn(user.pw_name)}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (self.consumer.search(device_dn, "oathSecret", scope="base")
                                                   and "e2faFailures" in self.read(user, "e2faFailures")):
            time.sleep(0.1)
        assert self.consumer.search(device_dn, "oathSecret", scope="base"), "the consumer never got the device"
        stall_replication(self.consumer)
        directory.set_policy(e2faStartDate="2020-01-01")

    def read(self, user, attribute):
        return self.consumer.search(user_dn(user.pw_name), attribute, scope="base").get(user_dn(user.pw_name), {})

    def close(self):
        if self.host:
            self.host.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.consumer.close()


@pytest.fixture
def behind(directory, users):  # noqa: F811
    made = []

    def make(user, device, extra=""):
        setup = BehindConsumer(directory, users, user, device)
        made.append(setup)
        setup.host = FleetHost(setup.folder, users, setup.consumer, "host-b").start_daemon()
        setup.host.activate(extra)
        return setup
    yield make
    for setup in made:
        setup.close()


def test_a_lockout_at_the_provider_holds_through_a_consumer_that_is_behind(directory, users, behind):  # noqa: F811
    """The lockout was read from whichever copy answered: a consumer that is behind let a locked-out user's
    right guess log in (the replay check itself stayed atomic at the provider)."""
    user = users[6]
    device = new_device()
    setup = behind(user, device)
    # Locked out fleet-wide at the provider (as the hosts' split failures do); the consumer never hears of it.
    directory.replace(user_dn(user.pw_name), e2faFailures="0", e2faLockedUntil=str(int(time.time()) + 600))
    time.sleep(1)  # give a (wrongly) still running replication the chance to deliver it
    assert setup.read(user, "e2faLockedUntil").get("e2faLockedUntil") == ["0"]
    settle()
    outcome = setup.host.authenticate(user, code(device))
    assert outcome.result in ("maxtries", "auth_err"), outcome
    assert "Too many wrong verification codes" in outcome.output, outcome


def test_wrong_codes_through_a_consumer_that_is_behind_reach_the_lockout(directory, users, behind):  # noqa: F811
    """Each wrong code was counted by a compare-and-swap of the count read: read from a consumer that is behind,
    the old count no longer matched at the provider, the swap failed every time and the guess went uncounted:
    unlimited guesses through that replica."""
    user = users[4]
    device = new_device()
    setup = behind(user, device, extra="max_failures = 3\nlockout_seconds = 600\n")
    for _ in range(3):
        wrong = setup.host.authenticate(user, "000000" if code(device) != "000000" else "111111")
        assert wrong.result == "auth_err", wrong
    provider = directory.search(user_dn(user.pw_name), "e2faLockedUntil", scope="base")[user_dn(user.pw_name)]
    assert int(provider.get("e2faLockedUntil", ["0"])[0]) > time.time(), provider
    settle()
    locked = setup.host.authenticate(user, code(device))
    assert locked.result in ("maxtries", "auth_err") and "Too many wrong verification codes" in locked.output, locked


def test_a_password_alone_adds_no_device_beside_an_unusable_device_entry(directory, users, fleet):  # noqa: F811
    """A device entry engage2fad cannot use (here 12 digits, as a bad migration or a hand edit leaves it) was
    skipped as if absent: the user then counted as having no device, and whoever knows only the password
    linked one without any proof. An entry that is there but unusable must not open that door."""
    _, host_b = fleet
    user = users[7]
    broken = new_device("old-phone")
    broken["digits"] = 12
    directory.add_device(user.pw_name, broken)
    from test_fleet import devices_of, enroll
    try:
        attacker, returncode = enroll(host_b, user, "attacker", lambda device: code(device), "")
    except AssertionError as refused:  # refused before any secret is shown (the fixed behaviour)
        assert "no URI line" in str(refused) and "cannot be used" in str(refused), refused
    else:
        assert returncode != 0, attacker.output
    assert [entry["e2faDeviceName"] for entry in devices_of(directory, user)] == [["old-phone"]]
    # At a login too the user has a device (as a broken device file makes a local user enrolled): a personal
    # deadline for users without one does not let them in without a code.
    directory.replace(user_dn(user.pw_name), e2faDeadline="2099-01-01")
    outcome = fleet[0].authenticate(user, "")
    assert outcome.result == "auth_err" and outcome.prompted, outcome


def non_loopback_address():
    import socket
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_the_bind_password_never_travels_in_plain_text_to_a_non_loopback_address(users, directory):  # noqa: F811
    """libldap takes "ldap://a,ldap://b" as two URIs. The TLS rule looked at the first only (loopback here), so
    engage2fad sent the host's bind password in the clear to the second, far one."""
    import socket
    import threading
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    listener = socket.socket()
    listener.bind((address, 0))
    listener.listen(8)
    listener.settimeout(0.5)
    received = []
    stop = threading.Event()

    def capture():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            connection.settimeout(2)
            try:
                received.append(connection.recv(4096))
            except OSError:
                pass
            connection.close()

    thread = threading.Thread(target=capture)
    thread.start()
    folder = tempfile.mkdtemp(prefix="engage2fa-host-a-")
    os.chmod(folder, 0o755)
    host = FleetHost(folder, users, directory, "host-a", uris=f"ldap://127.0.0.1:1/,ldap://{address}:{listener.getsockname()[1]}/", timeout=2)
    try:
        host.activate()
        daemon = subprocess.Popen([DAEMON, "--config", host.config_path], stderr=subprocess.PIPE, text=True)
        host.daemon = daemon
        deadline = time.monotonic() + 10
        while daemon.poll() is None and not os.path.exists(os.path.join(host.socket_dir, "login.socket")) and time.monotonic() < deadline:
            time.sleep(0.05)
        outcome = host.authenticate(users[8], "123456")
        assert outcome.result != "success", outcome
        password = HOST_PASSWORDS["host-a"].encode()
        assert not any(password in data for data in received), received
    finally:
        stop.set()
        thread.join()
        listener.close()
        host.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_login_socket_nobody_accepts_on_denies_within_the_timeout(users):
    """A hung engage2fad (or a socket left listening while nothing serves it): once its queue is full, the
    module's connect(2) blocked with no time limit, and sshd waited for ever instead of ldap_timeout."""
    import socket
    folder = tempfile.mkdtemp(prefix="engage2fa-host-a-")
    os.chmod(folder, 0o755)
    host = FleetHost(folder, users, None, "host-a", uris="ldapi:///", timeout=2)
    os.makedirs(host.socket_dir, mode=0o755, exist_ok=True)
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(os.path.join(host.socket_dir, "login.socket"))
    hung.listen(0)
    queued = []
    try:
        while True:  # fill the queue of the listener that never accepts
            waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            waiting.setblocking(False)
            try:
                waiting.connect(os.path.join(host.socket_dir, "login.socket"))
            except BlockingIOError:
                waiting.close()
                break
            queued.append(waiting)
        host.activate()
        try:
            outcome = host.authenticate(users[9], "123456", timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("the login still waited after 20 s (ldap_timeout is 2 s)")
        assert outcome.result == "auth_err" and "cannot be reached" in outcome.output, outcome
    finally:
        for waiting in queued:
            waiting.close()
        hung.close()
        host.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("mode, owner", [(0o644, 0), (0o600, "user")])
def test_a_bind_password_file_others_can_read_or_own_is_not_used(directory, users, mode, owner):  # noqa: F811
    """A password file readable by others (or owned by a user) is refused: the required user is denied as
    when the directory cannot be reached, never let in."""
    folder = tempfile.mkdtemp(prefix="engage2fa-host-a-")
    os.chmod(folder, 0o755)
    host = FleetHost(folder, users, directory, "host-a", timeout=2)
    try:
        password_file = os.path.join(folder, "bind-password")
        os.chmod(password_file, mode)
        if owner == "user":
            os.chown(password_file, users[11].pw_uid, users[11].pw_gid)
        directory.add_device(users[10].pw_name, new_device())
        directory.set_policy(e2faStartDate="2020-01-01")
        host.activate()
        host.start_daemon()
        outcome = host.authenticate(users[10], "123456")
        assert outcome.result == "auth_err" and "cannot be reached" in outcome.output, outcome
    finally:
        host.close()
        shutil.rmtree(folder, ignore_errors=True)
