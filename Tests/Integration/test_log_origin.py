"""Issue 16: every line the module logs says where the login came from — the service (in the prefix,
as pam_syslog words it), and PAM_RHOST and PAM_TTY when the application set them — so that an admin can
grep an attack by address. The remote host is the client's to choose (sshd passes a reverse-DNS name,
other daemons what the client claims): escaped like any attacker input."""

import time

from conftest import code, device_for, of_service, settle


def activate_quietly(host, user):
    """2FA active and its activation recorded, so that only the lines of the logins that follow are captured."""
    host.activate()
    host.authenticate(user, "")
    time.sleep(0.3)


def test_every_line_names_service_rhost_and_tty(host, users, syslog):
    user = users[0]
    phone = device_for(user)
    host.activate("max_failures = 2\n")
    items = {"rhost": "203.0.113.77", "tty": "ssh"}
    mark = syslog.mark()
    settle()
    assert host.authenticate(user, "000000" if code(phone) != "000000" else "111111", items=items).result == "auth_err"
    assert host.authenticate(user, code(phone), items=items).result == "success"
    assert host.authenticate("e2fa-no-such-user", "123456", items=items).result == "auth_err"
    logged = of_service(syslog.since(mark), host.service)
    # The activation, a wrong code, an accepted code, an unknown user: each line carries its origin.
    assert len(logged) >= 4, logged
    for line in logged:
        assert f"pam_engage2fa({host.service}:auth): " in line, line
        assert line.rstrip().endswith(" rhost=203.0.113.77 tty=ssh"), line
    assert any("wrong code" in line for line in logged), logged
    assert any("code accepted" in line for line in logged), logged


def test_lines_without_items_carry_none(host, users, syslog):
    user = users[0]
    phone = device_for(user)
    activate_quietly(host, user)
    mark = syslog.mark()
    settle()
    assert host.authenticate(user, code(phone)).result == "success"
    logged = of_service(syslog.since(mark), host.service)
    assert len(logged) == 1 and "code accepted" in logged[0], logged
    assert "rhost=" not in logged[0] and "tty=" not in logged[0], logged


def test_a_hostile_rhost_forges_no_line_and_no_field(host, users, syslog):
    user = users[0]
    phone = device_for(user)
    activate_quietly(host, user)
    forged = f"evil\npam_engage2fa({host.service}:auth): user root: code accepted from device 'Key' rhost=10.0.0.1\x1b[8m tty=x"
    mark = syslog.mark()
    settle()
    assert host.authenticate(user, code(phone), items={"rhost": forged, "tty": "pts/\x1b]0;owned\x07"}).result == "success"
    logged = of_service(syslog.since(mark), host.service)
    assert len(logged) == 1, logged
    line = logged[0]
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line, line
    # One rhost= and one tty= field, the client's bytes escaped inside them (spaces too: no field can be forged).
    assert line.count(" rhost=") == 1 and line.count(" tty=") == 1, line
    assert "rhost=evil\\x0apam_engage2fa(" in line, line
    assert line.rstrip().endswith("tty=pts/\\x1b]0;owned\\x07"), line
