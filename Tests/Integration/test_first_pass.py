"""Issue 16: stacking like google-authenticator for clients with one password box. `forward_pass`: the
module asks once for the password with the code typed at its end, splits the code off, and hands the
password to the next module as PAM_AUTHTOK; `use_first_pass` / `try_first_pass` take that combined
answer from an earlier module's PAM_AUTHTOK (try_first_pass asks when there is none). Through a real
stack: the module, then pam_unix checking the user's real password."""

import socket
import subprocess

import paramiko
import pytest

from conftest import MODULE, DeviceSet, code, device_for, of_service, settle
from test_ssh_sudo import SSHServer, password_of as ssh_password_of


def password_of(user):
    return "pw-" + user.pw_name + "-Box1"


@pytest.fixture
def with_password(users):
    user = users[0]
    subprocess.run(["chpasswd"], input=f"{user.pw_name}:{password_of(user)}\n", text=True, check=True)
    yield user
    subprocess.run(["passwd", "-d", user.pw_name], capture_output=True)


def write_stack(host, lines):
    with open(host.service_path, "w") as handle:
        handle.write("\n".join(lines + ["auth optional pam_echo.so engage2fa-result=success",
                                        "auth required pam_permit.so", "account required pam_permit.so"]) + "\n")


def module(host, argument):
    return f"{MODULE} config={host.config_path} {argument}"


def forward_pass_stack(host):
    """The module first, with the one prompt; pam_unix checks what it forwards (and asks for the password
    itself, try_first_pass, when the module asked nothing)."""
    write_stack(host, [f"auth requisite {module(host, 'forward_pass')}",
                       "auth [success=ok default=die] pam_unix.so try_first_pass nodelay"])


def enrolled(user, recovery=False):
    devices = DeviceSet(user)
    phone = devices.add("Phone")
    codes = devices.add_recovery_codes(count=2, iterations=1000) if recovery else None
    devices.write()
    return phone, codes


def test_forward_pass_one_field_password_then_code(host, with_password, syslog):
    user = with_password
    phone, _ = enrolled(user)
    host.activate()
    forward_pass_stack(host)
    mark = syslog.mark()
    settle()
    typed = code(phone)
    outcome = host.authenticate(user, password_of(user) + typed)
    assert outcome.result == "success", outcome
    assert outcome.output.count("Password & verification code:") == 1 and "Password:" not in outcome.output, outcome
    logged = "\n".join(of_service(syslog.since(mark), host.service))
    assert "code accepted" in logged, logged
    assert password_of(user) not in logged and typed not in logged, logged


def test_forward_pass_wrong_password_or_wrong_code_fails(host, with_password):
    user = with_password
    phone, _ = enrolled(user)
    host.activate()
    forward_pass_stack(host)
    settle()
    # The right code after a wrong password: the code passes, pam_unix refuses what was forwarded.
    outcome = host.authenticate(user, "not-the-password" + code(phone))
    assert outcome.result == "auth_err", outcome
    wrong = "000000" if code(phone, 1) != "000000" else "111111"
    outcome = host.authenticate(user, password_of(user) + wrong)
    assert outcome.result == "auth_err", outcome
    # Only the password, no code: refused (the password's last six characters are no code).
    outcome = host.authenticate(user, password_of(user))
    assert outcome.result == "auth_err", outcome


def test_forward_pass_recovery_code_at_the_end(host, with_password):
    user = with_password
    _, codes = enrolled(user, recovery=True)
    host.activate()
    forward_pass_stack(host)
    outcome = host.authenticate(user, password_of(user) + codes[0])
    assert outcome.result == "success", outcome
    outcome = host.authenticate(user, password_of(user) + codes[0].replace("-", ""))
    assert outcome.result == "auth_err", outcome  # used once


def test_forward_pass_asks_nothing_when_no_code_is_needed(host, with_password):
    user = with_password
    host.configure("", start="2099-01-01")  # before start_date, no device: no code
    forward_pass_stack(host)
    outcome = host.authenticate(user, password_of(user))
    assert outcome.result == "success", outcome
    assert "Password & verification code:" not in outcome.output and "Password:" in outcome.output, outcome


def test_use_first_pass_takes_the_earlier_modules_password(host, with_password):
    user = with_password
    phone, _ = enrolled(user)
    host.activate()
    # pam_unix asks and keeps what was typed as PAM_AUTHTOK (it fails on password+code: optional);
    # the module splits the code off and leaves the password for the pam_unix after it.
    write_stack(host, ["auth optional pam_unix.so nodelay",
                       f"auth requisite {module(host, 'use_first_pass')}",
                       "auth [success=ok default=die] pam_unix.so use_first_pass nodelay"])
    settle()
    outcome = host.authenticate(user, password_of(user) + code(phone))
    assert outcome.result == "success", outcome
    assert "Verification code:" not in outcome.output and "Password & verification code:" not in outcome.output, outcome
    # No earlier password: use_first_pass never asks, and refuses.
    write_stack(host, [f"auth requisite {module(host, 'use_first_pass')}", "auth required pam_permit.so"])
    outcome = host.authenticate(user, password_of(user) + code(phone))
    assert outcome.result == "auth_err", outcome


def test_try_first_pass_asks_when_there_is_no_earlier_password(host, with_password):
    user = with_password
    phone, _ = enrolled(user)
    host.activate()
    write_stack(host, [f"auth requisite {module(host, 'try_first_pass')}",
                       "auth [success=ok default=die] pam_unix.so use_first_pass nodelay"])
    settle()
    outcome = host.authenticate(user, password_of(user) + code(phone))
    assert outcome.result == "success", outcome
    assert outcome.output.count("Password & verification code:") == 1, outcome


def test_two_password_modes_are_refused(host, users):
    write_stack(host, [f"auth requisite {module(host, 'forward_pass use_first_pass')}"])
    host.activate()
    outcome = host.authenticate(users[0], "")
    assert outcome.result == "auth_err", outcome


def test_forward_pass_over_sshd_password_authentication(host, users, syslog):
    """sshd's `password` method (one box): sshd answers the module's prompt with what the client sent."""
    user = users[0]
    phone = device_for(user)
    host.activate()
    server = SSHServer(users, authentication="password")
    try:
        with open(f"/etc/pam.d/{server.service}", "w") as handle:
            handle.write(f"auth requisite {module(host, 'forward_pass')}\n"
                         "auth [success=ok default=die] pam_unix.so try_first_pass nodelay\n"
                         "auth required pam_permit.so\naccount required pam_unix.so\n"
                         "session required pam_permit.so\npassword required pam_deny.so\n")

        def logs_in(password):
            transport = paramiko.Transport(socket.create_connection(("127.0.0.1", server.port), timeout=30))
            try:
                transport.start_client(timeout=30)
                try:
                    transport.auth_password(user.pw_name, password)
                except paramiko.AuthenticationException:
                    return False
                return transport.is_authenticated()
            finally:
                transport.close()

        mark = syslog.mark()
        settle()
        assert logs_in(ssh_password_of(user) + code(phone))
        assert not logs_in("wrong-password" + code(phone, 1))
        wrong = "000000" if code(phone, 1) != "000000" else "111111"
        assert not logs_in(ssh_password_of(user) + wrong)
        accepted = [line for line in of_service(syslog.since(mark), server.service) if "code accepted" in line]
        assert len(accepted) == 2 and all(line.rstrip().endswith(" rhost=127.0.0.1 tty=ssh") for line in accepted), accepted
    finally:
        server.stop()
