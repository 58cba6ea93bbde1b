"""Fleet mode (store = ldap) against Debian's real slapd: the shipped schema and example ACLs, logins on
two simulated hosts (two PAM services with separate state directories and the same directory), races,
lockouts and recovery codes across hosts, and the directory going away."""

import os
import secrets

import pytest

from slapd import ADMIN_DN, LDAPError, POLICY_DN, Slapd, host_dn, person_dn, user_dn

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


def test_host_writes_only_last_steps_failures_and_recovery_consumption(directory):
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
    # Refused: secrets, names, policy, deadlines, adding recovery hashes, deleting devices or activation.
    refused_changes = [
        (device_dn, "replace: oathSecret\noathSecret: AAAA\n"),
        (device_dn, "replace: e2faDeviceName\ne2faDeviceName: renamed\n"),
        (device_dn, "replace: oathOTPLength\noathOTPLength: 8\n"),
        (POLICY_DN, "replace: e2faStartDate\ne2faStartDate: 2099-01-01\n"),
        (POLICY_DN, "replace: e2faIssuer\ne2faIssuer: Evil\n"),
        (user_dn("bob"), "replace: e2faDeadline\ne2faDeadline: 2099-01-01\n"),
        (user_dn("bob"), "add: e2faRecoveryHash\ne2faRecoveryHash: " + "cc" * 32 + "\n"),
        (user_dn("bob"), "replace: e2faRecoverySalt\ne2faRecoverySalt: " + "dd" * 16 + "\n"),
    ]
    for dn, change in refused_changes:
        with pytest.raises(LDAPError) as refused:
            directory.modify(f"dn: {dn}\nchangetype: modify\n{change}", bind=host)
        assert refused.value.code == 50, (change, refused.value.output)
    with pytest.raises(LDAPError) as refused:
        directory.run("ldapdelete", bind=host, arguments=[device_dn])
    assert refused.value.code == 50
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
