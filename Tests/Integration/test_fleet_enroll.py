"""engage2fa-enroll list, remove, recovery-codes and status in fleet mode (store = ldap): run as the real
unprivileged user against this host's engage2fad (SO_PEERCRED says who asks), on two simulated hosts
sharing Debian's real slapd. Removing a device and replacing the recovery codes need a current code from
one of the user's devices (or a recovery code), consumed centrally: a password alone takes nothing away."""

import base64
import json
import os
import re
import socket
import urllib.parse

from conftest import Enrollment, code, run_enroll, settle
from slapd import user_dn
from test_fleet import devices_of, enroll, fleet, directory, new_device  # noqa: F401 (fixtures)


def names_of(directory, user):
    return sorted(entry["e2faDeviceName"][0] for entry in devices_of(directory, user))


def enroll_command(host, user, *arguments, stdin=""):
    return run_enroll(user, *arguments, "--config", host.config_path, stdin=stdin)


def recovery_codes_in(output):
    return re.findall(r"\b[a-z0-9]{5}-[a-z0-9]{5}\b", output)


def device_with_recovery_codes(directory, host, user):
    """A device put in the directory, then recovery codes made on `host` with its code: (device, the ten codes)."""
    phone = new_device("phone")
    directory.add_device(user.pw_name, phone)
    settle()
    made = enroll_command(host, user, "recovery-codes", stdin=code(phone) + "\n")
    assert made.returncode == 0, (made.stdout, made.stderr)
    codes = recovery_codes_in(made.stdout)
    assert len(codes) == 10, made.stdout
    return phone, codes


def test_list_on_host_b_shows_the_device_enrolled_on_host_a_names_escaped(directory, users, fleet):
    host_a, host_b = fleet
    user = users[0]
    enrollment, returncode = enroll(host_a, user, "phone")
    assert returncode == 0, (enrollment.output, enrollment.errors)
    # A device entry an administrator wrote with a terminal escape in its name (LDIF base64 value).
    hostile = "evil\x1b[2J\x07name"
    directory.add_device(user.pw_name, {**new_device(), "name": "placeholder"})
    placeholder = [dn for dn, entry in directory.search(user_dn(user.pw_name), "e2faDeviceName").items()
                   if entry.get("e2faDeviceName") == ["placeholder"]][0]
    directory.modify(f"dn: {placeholder}\nchangetype: modify\nreplace: e2faDeviceName\n"
                     f"e2faDeviceName:: {base64.b64encode(hostile.encode()).decode()}\n")
    listed = enroll_command(host_b, user, "list")
    assert listed.returncode == 0, listed.stderr
    assert "phone" in listed.stdout and "on every host of the fleet" in listed.stdout, listed.stdout
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout and "evil" in listed.stdout, repr(listed.stdout)
    as_json = json.loads(enroll_command(host_b, user, "list", "--json").stdout)
    assert sorted(device["name"] for device in as_json["devices"]) == sorted(["phone", hostile]), as_json
    assert as_json["user"] == user.pw_name and as_json["recovery_codes_left"] == 0


def test_status_on_host_b_is_the_directory_and_the_central_policy(directory, users, fleet):
    host_a, host_b = fleet
    user = users[1]
    before = enroll_command(host_b, user, "status")
    assert before.returncode == 0, before.stderr
    # No device anywhere, 2FA started centrally, no deadline: refused at a login, and status says so.
    assert "engage2fa-enroll" in before.stdout and "not enabled" not in before.stdout, before.stdout
    enrollment, returncode = enroll(host_a, user, "phone")
    assert returncode == 0, (enrollment.output, enrollment.errors)
    after = enroll_command(host_b, user, "status")
    assert after.returncode == 0, after.stderr
    assert "active" in after.stdout and "1 linked device" in after.stdout, after.stdout
    # A deadline set centrally for a user without a device: the grace period, on host B too.
    waiting = users[7]
    directory.ensure_user(waiting.pw_name)
    directory.replace(user_dn(waiting.pw_name), e2faDeadline="2099-01-01")
    grace = enroll_command(host_b, waiting, "status")
    assert grace.returncode == 0 and "2099-01-01" in grace.stdout, grace.stdout


def test_remove_on_host_b_with_a_code_and_host_a_refuses_that_device(directory, users, fleet):
    host_a, host_b = fleet
    user = users[2]
    phone, tablet = new_device("phone"), new_device("tablet")
    directory.add_device(user.pw_name, phone)
    directory.add_device(user.pw_name, tablet)
    settle()
    proof = code(phone)
    removed = enroll_command(host_b, user, "remove", "TABLET", "--yes", stdin=proof + "\n")
    assert removed.returncode == 0, (removed.stdout, removed.stderr)
    assert "Removed 'tablet'" in removed.stdout, removed.stdout
    assert names_of(directory, user) == ["phone"]
    assert host_a.authenticate(user, code(tablet)).result == "auth_err"
    # The proof was consumed centrally: it logs in nowhere; the phone's next code does.
    assert host_a.authenticate(user, proof).result == "auth_err"
    assert host_a.authenticate(user, code(phone, offset_steps=1)).result == "success"


def test_remove_without_or_with_a_wrong_code_is_refused_and_nothing_is_lost(directory, users, fleet):
    host_a, host_b = fleet
    user = users[3]
    phone = new_device("phone")
    directory.add_device(user.pw_name, phone)
    for stdin in ("", "\n", "000000\n", "abcde-fghij\n"):
        refused = enroll_command(host_b, user, "remove", "phone", "--yes", stdin=stdin)
        assert refused.returncode == 1, (stdin, refused.stdout, refused.stderr)
        assert "nothing was changed" in refused.stderr, refused.stderr
        assert names_of(directory, user) == ["phone"]
    # No such device: named, with what is linked.
    missing = enroll_command(host_b, user, "remove", "laptop", "--yes", stdin=code(phone) + "\n")
    assert missing.returncode == 1 and "'phone'" in missing.stderr, missing.stderr
    settle()
    assert host_a.authenticate(user, code(phone)).result == "success"


def test_password_only_attacker_cannot_remove_the_devices_then_link_a_first_one(directory, users, fleet):
    """A shell as the user on host B (the password alone): remove the victim's device, then link the
    attacker's own phone as the "first" device. Neither the remove nor the link may go through."""
    host_a, host_b = fleet
    user = users[4]
    enrollment, returncode = enroll(host_a, user, "phone")
    assert returncode == 0, (enrollment.output, enrollment.errors)
    for guess in ("", "123456"):
        attempt = enroll_command(host_b, user, "remove", "phone", "--yes", stdin=guess + "\n")
        assert attempt.returncode == 1, attempt.stdout
    attacker, returncode = enroll(host_b, user, "attacker", lambda device: code(device), "")
    assert returncode != 0, attacker.output
    assert names_of(directory, user) == ["phone"]
    # Nor can it make recovery codes to log in with.
    codes = enroll_command(host_b, user, "recovery-codes", stdin="\n")
    assert codes.returncode == 1 and not recovery_codes_in(codes.stdout), codes.stdout
    assert "e2faRecoveryHash" not in directory.search(user_dn(user.pw_name), "e2faRecoveryHash", scope="base")[user_dn(user.pw_name)]


def test_recovery_codes_made_on_host_b_work_on_host_a_once(directory, users, fleet):
    host_a, host_b = fleet
    user = users[5]
    _, codes = device_with_recovery_codes(directory, host_b, user)
    used = host_a.authenticate(user, codes[0])
    assert used.result == "success" and "9 recovery codes left" in used.output, used
    assert host_b.authenticate(user, codes[0]).result == "auth_err"
    assert host_a.authenticate(user, codes[0]).result == "auth_err"
    # Replaced again with a recovery code as the proof: the old ones stop working everywhere.
    again = enroll_command(host_a, user, "recovery-codes", stdin=codes[1] + "\n")
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert "The 8 unused codes you had before no longer work." in again.stdout, again.stdout
    assert host_b.authenticate(user, codes[2]).result == "auth_err"
    fresh = recovery_codes_in(again.stdout)
    assert host_b.authenticate(user, fresh[0]).result == "success"
    # A wrong proof changes nothing.
    refused = enroll_command(host_b, user, "recovery-codes", stdin="000000\n")
    assert refused.returncode == 1 and "nothing was changed" in refused.stderr, refused.stderr
    assert host_a.authenticate(user, fresh[1]).result == "success"


# --- the authenticator app's label names the fleet ------------------------------------------------------------

def account_label(uri):
    return urllib.parse.unquote(urllib.parse.urlparse(uri).path.lstrip("/"))


def test_both_hosts_give_the_app_the_fleets_label_and_local_mode_keeps_the_hosts(directory, users, fleet, host):
    host_a, host_b = fleet
    user = users[6]
    first, returncode = enroll(host_a, user, "phone")
    assert returncode == 0, (first.output, first.errors)
    second, returncode = enroll(host_b, user, "tablet", lambda device: code(device), code(first.device, offset_steps=1))
    assert returncode == 0, (second.output, second.errors)
    # ldap_base ou=engage2fa,dc=example,dc=org: the fleet is example.org, whichever host enrolled.
    assert account_label(first.uri) == account_label(second.uri) == f"Engage:{user.pw_name}@example.org", (first.uri, second.uri)
    # fleet_name names it otherwise, on every host that says so.
    for fleet_host in fleet:
        fleet_host.configure("fleet_name = Example Corp\n")
    third, returncode = enroll(host_b, user, "laptop", lambda device: code(device), code(second.device, offset_steps=1))
    assert returncode == 0, (third.output, third.errors)
    assert account_label(third.uri) == f"Engage:{user.pw_name}@Example Corp"
    # Local mode keeps user@host.
    host.activate()
    local = Enrollment(user, "--name", "local phone", "--config", host.config_path)
    local.answer(code(local.device))
    assert account_label(local.uri) == f"Engage:{user.pw_name}@{socket.gethostname()}"
