"""Fleet mode, the fresh-eye security review of the fleetlogin and fleetenroll work (issue 15): a password-only
attacker (a shell as the user, no device) on a host whose directory copy is behind, recovery codes planted
before a first device, a lockout ending past what the policy allows, and requests about other users on the
world-connectable enrollment socket."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import code, settle
from slapd import ENGAGE, Slapd, user_dn
from test_fleet import FleetHost, devices_of, directory, enroll, fleet, new_device  # noqa: F401 (fixtures)
from test_fleet_attacks import stall_replication
from test_fleet_enroll import device_with_recovery_codes, enroll_command, recovery_codes_in


def recovery_hashes_at(server, user):
    return server.search(user_dn(user.pw_name), "e2faRecoveryHash", scope="base").get(user_dn(user.pw_name), {}).get("e2faRecoveryHash", [])


@pytest.fixture
def stale_host(directory, users):  # noqa: F811
    """Host C reading from a syncrepl consumer that stopped hearing from the provider before the victims
    below enrolled (its writes still chain to the provider)."""
    consumer = Slapd(provider=directory).start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not consumer.search(f"ou=users,{ENGAGE}", scope="base"):
        time.sleep(0.1)
    stall_replication(consumer)
    folder = tempfile.mkdtemp(prefix="engage2fa-host-c-")
    os.chmod(folder, 0o755)
    host = FleetHost(folder, users, consumer, "host-b").start_daemon()
    yield consumer, host
    host.close()
    shutil.rmtree(folder, ignore_errors=True)
    consumer.close()


def test_a_password_alone_replaces_no_recovery_codes_through_a_consumer_that_is_behind(directory, users, fleet, stale_host):  # noqa: F811
    """The victim has a device and recovery codes at the provider; a consumer that is behind has neither.
    engage2fad decided "no device, no codes: no proof needed" on that copy and replaced the codes at the
    provider: the attacker got ten working recovery codes and the victim's stopped working."""
    host_a, _ = fleet
    consumer, host_c = stale_host
    victim = users[0]
    device_with_recovery_codes(directory, host_a, victim)
    hashes = recovery_hashes_at(directory, victim)
    assert len(hashes) == 10
    assert not consumer.search(user_dn(victim.pw_name), "e2faRecoveryHash")  # the consumer is behind
    attempt = enroll_command(host_c, victim, "recovery-codes", stdin="\n")
    stolen = recovery_codes_in(attempt.stdout)
    assert sorted(recovery_hashes_at(directory, victim)) == sorted(hashes), (attempt.stdout, attempt.stderr)
    assert attempt.returncode == 1 and not stolen, attempt.stdout
    if stolen:
        assert host_a.authenticate(victim, stolen[0]).result != "success"


def test_a_password_alone_links_no_first_device_through_a_consumer_that_is_behind(directory, users, fleet, stale_host):  # noqa: F811
    """The same copy says "no device": the first-device claim is asserted at the provider, which has one."""
    consumer, host_c = stale_host
    victim = users[1]
    directory.add_device(victim.pw_name, new_device("phone"))
    assert not consumer.search(user_dn(victim.pw_name), "e2faDeviceName")
    try:
        attacker, returncode = enroll(host_c, victim, "attacker")
    except AssertionError as refused:  # refused before any secret is shown
        assert "no URI line" in str(refused), refused
    else:
        assert returncode != 0, attacker.output
    assert [entry["e2faDeviceName"] for entry in devices_of(directory, victim)] == [["phone"]]


def test_recovery_codes_planted_before_the_first_device_do_not_outlive_it(directory, users, fleet):  # noqa: F811
    """A password-only attacker made recovery codes for a user who had neither device nor codes (allowed: nothing
    to prove with); the user then linked a first device without any proof, and the attacker's codes, which the
    user never saw, still logged in as a second factor on every host. Now codes are made only with a device."""
    host_a, host_b = fleet
    victim = users[2]
    planted = enroll_command(host_b, victim, "recovery-codes", stdin="\n")
    assert planted.returncode == 1 and not recovery_codes_in(planted.stdout), planted.stdout
    assert "link one first" in planted.stderr, planted.stderr
    assert recovery_hashes_at(directory, victim) == []
    enrollment, returncode = enroll(host_a, victim, "phone")
    assert returncode == 0, (enrollment.output, enrollment.errors)
    settle()
    made = enroll_command(host_a, victim, "recovery-codes", stdin=code(enrollment.device, offset_steps=1) + "\n")
    assert made.returncode == 0 and len(recovery_codes_in(made.stdout)) == 10, (made.stdout, made.stderr)


def test_a_user_left_with_recovery_codes_only_proves_one_to_link_a_device(directory, users, fleet):  # noqa: F811
    """The user removed the last device with a recovery code: the unused codes still are a second factor, so a
    password alone must not link a "first" device beside them (on any host); one of the codes does."""
    host_a, host_b = fleet
    user = users[7]
    _, codes = device_with_recovery_codes(directory, host_a, user)
    removed = enroll_command(host_b, user, "remove", "phone", "--yes", stdin=codes[0] + "\n")
    assert removed.returncode == 0, (removed.stdout, removed.stderr)
    settle()
    assert devices_of(directory, user) == []
    attacker, returncode = enroll(host_b, user, "attacker", lambda device: code(device), "")
    assert returncode != 0, attacker.output
    assert "unused recovery code" in attacker.output + attacker.errors, (attacker.output, attacker.errors)
    assert devices_of(directory, user) == []
    again, returncode = enroll(host_a, user, "new phone", lambda device: code(device), codes[1])
    assert returncode == 0, (again.output, again.errors)
    assert [entry["e2faDeviceName"] for entry in devices_of(directory, user)] == [["new phone"]]
    # That code was used up: it does not log in anywhere now.
    assert host_b.authenticate(user, codes[1]).result != "success"


def test_a_lockout_ending_past_lockout_seconds_is_brought_back_as_in_local_mode(directory, users, fleet):  # noqa: F811
    """A host whose clock ran a year ahead (or a hand edit) leaves e2faLockedUntil far ahead: local mode brings such
    a lockout back to lockout_seconds; the provider's assertion kept refusing every attempt, fleet-wide, for ever
    (the message said "try again in N minutes" each time)."""
    host_a, host_b = fleet
    for host in fleet:
        host.configure("lockout_seconds = 2\nmax_failures = 5\n")
    user = users[3]
    device = new_device()
    directory.add_device(user.pw_name, device)
    directory.replace(user_dn(user.pw_name), e2faFailures="0", e2faLockedUntil=str(int(time.time()) + 365 * 86400))
    first = host_a.authenticate(user, "000000")
    assert first.result in ("maxtries", "auth_err"), first
    time.sleep(3)  # past lockout_seconds from the first attempt that saw the lockout
    settle()
    assert host_b.authenticate(user, code(device)).result == "success"


ASK = r"""
import socket, sys
path = sys.argv[1]
for line in sys.argv[2:]:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(path)
    answer = b""
    try:
        connection.sendall(line.encode() + b"\n")
        while not answer.endswith(b"\n"):
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:  # engage2fad hung up on a line past its buffer
        answer = b"closed"
    print(answer.decode(errors="replace").strip(), flush=True)
    connection.close()
"""


def test_the_enrollment_socket_answers_login_questions_about_the_callers_own_user_only(directory, users, fleet, syslog):  # noqa: F811
    """A hostile local user at the world-connectable socket: snapshots and checks about root, another user, a
    numeric name, a name with a trailing newline byte or a case twin's spelling are refused and logged; nothing
    is counted against the other user; a line longer than the buffer is dropped."""
    host_a, _ = fleet
    attacker, other = users[4], users[5]
    directory.add_device(other.pw_name, new_device())
    directory.replace(user_dn(other.pw_name), e2faFailures="0")
    hex_of = lambda text: text.encode().hex()  # noqa: E731
    names = ["root", other.pw_name, str(other.pw_uid), other.pw_name + "\n", other.pw_name.upper(), other.pw_name + " "]
    lines = [f"snapshot {hex_of(name)}" for name in names] + [f"check {hex_of(name)} {hex_of('123456')}" for name in names]
    mark = syslog.mark()
    enroll_socket = os.path.join(host_a.socket_dir, "enroll.socket")
    asked = subprocess.run(["runuser", "-u", attacker.pw_name, "--", "/usr/bin/python3", "-c", ASK, enroll_socket, *lines],
                           capture_output=True, text=True, timeout=60)
    answers = asked.stdout.splitlines()
    assert len(answers) == len(lines), (asked.stdout, asked.stderr)
    assert all(answer.startswith("failed ") for answer in answers), answers
    entry = directory.search(user_dn(other.pw_name), "e2faFailures", scope="base")[user_dn(other.pw_name)]
    assert entry["e2faFailures"] == ["0"], entry
    time.sleep(0.3)
    refusals = [line for line in syslog.messages[mark:] if "engage2fad" in line and f"uid {attacker.pw_uid} asked about user" in line]
    assert len(refusals) == len(lines), syslog.messages[mark:]
    assert not any("\n" in line or "\x1b" in line for line in refusals), refusals
    # Its own user: answered.
    own = subprocess.run(["runuser", "-u", attacker.pw_name, "--", "/usr/bin/python3", "-c", ASK, enroll_socket,
                          f"snapshot {hex_of(attacker.pw_name)}", "x" * 20000],
                         capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert own[0].startswith("snapshot "), own
    assert own[1] in ("", "closed"), own  # no answer to a line past the buffer: the connection is closed


def test_a_password_typed_without_a_code_sends_no_part_of_it_to_engage2fad(directory, users, fleet, tmp_path):  # noqa: F811
    """forward_pass, one field for the password and the code: the user forgets the code and types the password
    alone. The module split off the last six characters as "the code" and sent them to engage2fad, which reads
    them (traced here on its read calls): no part of the password may go there."""
    from conftest import MODULE
    from test_fleet import run_fleet_admin
    host_a, _ = fleet
    user = users[6]
    password = "pw-" + user.pw_name + "-Horse"
    subprocess.run(["chpasswd"], input=f"{user.pw_name}:{password}\n", text=True, check=True)
    try:
        directory.add_device(user.pw_name, new_device())
        with open(host_a.service_path, "w") as handle:
            handle.write(f"auth requisite {MODULE} config={host_a.config_path} forward_pass\n"
                         "auth [success=ok default=die] pam_unix.so try_first_pass nodelay\n"
                         "auth required pam_permit.so\naccount required pam_permit.so\n")
        trace = tmp_path / "engage2fad.trace"
        tracer = subprocess.Popen(["strace", "-f", "-e", "trace=read", "-s", "512", "-o", str(trace), "-p", str(host_a.daemon.pid)],
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)  # strace attached
            outcome = host_a.authenticate(user, password)
            assert outcome.result == "auth_err", outcome
        finally:
            tracer.terminate()
            tracer.wait(timeout=10)
        traced = trace.read_text(errors="replace")
        assert "check " in traced, traced[-2000:]  # the module's request was traced
        tail = password[-6:].encode().hex()
        assert tail not in traced, [line for line in traced.splitlines() if tail in line]
    finally:
        subprocess.run(["passwd", "-d", user.pw_name], capture_output=True)
