"""Issue 16, "where the module applies": exempt_groups / only_groups (membership through NSS, the
primary group too), exempt_services for services that cannot prompt, and a module that notices it
already accepted a code in this PAM transaction (the pam-auth-update profile and a per-service line
both in one stack ask once). Exemptions come only from the root-owned policy file: a broken one grants
none once 2FA is active."""

import os
import subprocess
import time

import pytest

from conftest import MODULE, USER_PREFIX, code, device_for, of_service, run_admin, settle


@pytest.fixture
def staff(users):
    """A group with users[0] as a supplementary member."""
    name = f"{USER_PREFIX}-staff"
    subprocess.run(["groupdel", name], stderr=subprocess.DEVNULL)
    subprocess.run(["groupadd", name], check=True)
    subprocess.run(["gpasswd", "-a", users[0].pw_name, name], check=True, capture_output=True)
    yield name
    subprocess.run(["groupdel", name], stderr=subprocess.DEVNULL)


def test_exempt_groups_skip_members_supplementary_and_primary(host, users, staff):
    member, primary_member, other = users[0], users[1], users[2]
    for user in (member, primary_member, other):
        device_for(user)
    # users[1]'s primary group is the one useradd made with its name; it is in no group file's member list.
    host.activate(f"exempt_groups = {staff}, {primary_member.pw_name}\n")
    for user in (member, primary_member):
        outcome = host.authenticate(user, "")
        assert outcome.result == "ignored" and not outcome.prompted, (user.pw_name, outcome)
    outcome = host.authenticate(other, "000000")
    assert outcome.prompted and outcome.result == "auth_err", outcome


def test_only_groups_asks_members_only_and_never_refuses_the_others(host, users, staff):
    member, outsider = users[0], users[2]
    phone = device_for(member)
    host.activate(f"only_groups = {staff}\n")
    settle()
    outcome = host.authenticate(member, code(phone))
    assert outcome.prompted and outcome.result == "success", outcome
    # No device and no deadline: refused anywhere 2FA applies; outside only_groups it does not apply.
    outcome = host.authenticate(outsider, "")
    assert outcome.result == "ignored" and not outcome.prompted, outcome
    # An unknown user is asked as if it were in only_groups, and answered like a wrong code.
    outcome = host.authenticate(f"{USER_PREFIX}-nobody-here", "123456")
    assert outcome.prompted and outcome.result == "auth_err", outcome


def test_exempt_service_is_not_asked_other_services_are(host, users):
    user = users[0]
    phone = device_for(user)
    other_service = host.service + "-x"
    host.activate(f"exempt_services = cups, {host.service.upper()}\n")  # PAM lowercases service names
    outcome = host.authenticate(user, "")
    assert outcome.result == "ignored" and not outcome.prompted, outcome
    with open(host.service_path) as source, open(f"/etc/pam.d/{other_service}", "w") as copy:
        copy.write(source.read())
    try:
        settle()
        result = subprocess.run(["pamtester", "-v", other_service, user.pw_name, "authenticate"],
                                input=code(phone) + "\n", capture_output=True, text=True, timeout=30)
        assert "Verification code:" in result.stdout + result.stderr and result.returncode == 0, result
    finally:
        os.unlink(f"/etc/pam.d/{other_service}")


def test_a_broken_policy_grants_no_exemption_once_active(host, users, staff, syslog):
    user = users[0]
    device_for(user)
    host.activate(f"exempt_groups = {staff}\nexempt_services = {host.service}\n")
    assert host.authenticate(user, "").result == "ignored"
    host.activate(f"exempt_groups = {staff}\nexempt_services = {host.service}\nwindow = lots\n")
    outcome = host.authenticate(user, "000000")
    assert outcome.prompted and outcome.result == "auth_err", outcome


def test_unknown_groups_are_a_check_warning_and_exempt_nobody(host, users, staff):
    user = users[2]
    device_for(user)
    host.activate(f"exempt_groups = {USER_PREFIX}-no-such-group, {staff}\nonly_groups = {USER_PREFIX}-gone\n")
    outcome = host.authenticate(user, "000000")
    # only_groups names no group that exists: it takes in nobody, so nobody is asked (check says so).
    assert outcome.result == "ignored", outcome
    check = run_admin("check", "--config", host.config_path)
    assert check.returncode == 0, check
    assert f"warning: exempt_groups: no group '{USER_PREFIX}-no-such-group' on this host" in check.stdout, check.stdout
    assert f"warning: only_groups: no group '{USER_PREFIX}-gone' on this host" in check.stdout, check.stdout
    assert f"no code is asked of members of {USER_PREFIX}-no-such-group, {staff} (exempt_groups)" in check.stdout, check.stdout
    assert f"a code is asked only of members of {USER_PREFIX}-gone (only_groups)" in check.stdout, check.stdout


def test_status_and_check_show_the_exemptions(host, users, staff):
    member, other = users[0], users[2]
    host.activate(f"exempt_groups = {staff}\nexempt_services = cups, dovecot\n")
    status = run_admin("status", "--config", host.config_path, member.pw_name, other.pw_name)
    assert status.returncode == 0, status
    rows = status.stdout.splitlines()
    assert rows[1].split()[0] == member.pw_name and rows[1].endswith(f"exempt: member of {staff} (exempt_groups)"), rows
    assert rows[2].endswith("refused: no device, no deadline"), rows
    check = run_admin("check", "--config", host.config_path)
    assert "no code is asked for the services cups, dovecot (exempt_services)" in check.stdout, check.stdout


def stack_twice(host, arguments=""):
    """The pam-auth-update profile's line (in common-auth) and a per-service line, both in one stack."""
    line = f"{MODULE} config={host.config_path} {arguments}".rstrip()
    with open(host.service_path, "w") as handle:
        handle.write(f"auth [success=1 default=ignore] pam_permit.so\n"  # stands in for pam_unix
                     "auth requisite pam_deny.so\n"
                     f"auth [success=ok new_authtok_reqd=ok ignore=ignore default=die] {line}\n"
                     f"auth required {line}\n"
                     "auth optional pam_echo.so engage2fa-result=success\n"
                     "auth required pam_permit.so\n"
                     "account required pam_permit.so\n")


def test_the_second_instance_in_one_transaction_neither_asks_nor_refuses(host, users, syslog):
    user = users[0]
    phone = device_for(user)
    host.activate()
    host.authenticate(user, "")
    stack_twice(host)
    time.sleep(0.3)
    mark = syslog.mark()
    settle()
    outcome = host.authenticate(user, code(phone))
    assert outcome.result == "success", outcome
    assert outcome.output.count("Verification code:") == 1, outcome
    logged = of_service(syslog.since(mark), host.service)
    assert any("code accepted" in line for line in logged), logged
    assert any("already accepted a code in this PAM transaction" in line for line in logged), logged
    # A new transaction asks again: the mark lives in one PAM handle only.
    settle()
    outcome = host.authenticate(user, "000000")
    assert outcome.prompted and outcome.result == "auth_err", outcome
