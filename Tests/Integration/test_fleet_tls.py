"""Fleet mode over real TLS: Debian's slapd with certificates from a throwaway CA (openssl), ldaps:// and
StartTLS checked against `ldap_ca`, a wrong CA and a name mismatch refused (required users denied, the
system log naming the URI and why), SASL EXTERNAL with the host's client certificate instead of a bind
password, and plain LDAP to the machine's non-loopback address refused (TLS is waived only for ldapi://
and loopback addresses)."""

import os
import shutil
import tempfile

import pytest

from conftest import ADMIN, code, settle
from slapd import ENGAGE, Certificates, Slapd
from test_fleet import HOST_PASSWORDS, FleetHost, new_device
from test_fleet_attacks import non_loopback_address

import subprocess

ADDRESS = non_loopback_address()


@pytest.fixture(scope="module")
def certificates():
    names = ["127.0.0.1"] + ([ADDRESS] if ADDRESS else [])
    made = Certificates(names, hosts=["host-a", "host-b"])
    yield made
    made.close()


@pytest.fixture(scope="module")
def tls_directory(certificates):
    server = Slapd(certificates=certificates, addresses=[ADDRESS] if ADDRESS else []).start()
    server.populate(hosts=HOST_PASSWORDS.items())
    server.set_policy(e2faStartDate="2020-01-01")
    yield server
    server.close()


class TLSHost(FleetHost):
    """A fleet host whose policy names `uri` and the TLS keys in `extra`; without a password, it binds
    with SASL EXTERNAL (its client certificate)."""

    def __init__(self, users, server, uri, extra="", password=True, name="host-a"):
        folder = tempfile.mkdtemp(prefix=f"engage2fa-{name}-")
        os.chmod(folder, 0o755)
        super().__init__(folder, users, server, name, uris=uri, timeout=2)
        if not password:
            self.fleet_keys = "".join(line + "\n" for line in self.fleet_keys.splitlines() if not line.startswith("ldap_bind_"))
        self.fleet_keys += extra
        # Active locally too: with the directory out of reach, required users must be denied.
        self.activate()

    def close(self):
        super().close()
        shutil.rmtree(self.directory, ignore_errors=True)


def logs_in(host, directory, user):
    device = new_device()
    directory.add_device(user.pw_name, device)
    settle()
    return host.authenticate(user, code(device))


def assert_refused_naming_why(host, user, uri, syslog, *reasons):
    mark = syslog.mark()
    denied = host.authenticate(user, "")
    assert denied.result == "auth_err" and "directory cannot be reached" in denied.output, denied
    lines = [line for line in syslog.since(mark) if "cannot be reached" in line and uri in line]
    assert lines, syslog.since(mark)
    assert any(any(reason in line for reason in reasons) for line in lines), lines
    return lines


def test_ldaps_with_the_right_ca_logs_in(tls_directory, certificates, users):
    host = TLSHost(users, tls_directory, tls_directory.ldaps_uri, f"ldap_ca = {certificates.ca}\n").start_daemon()
    try:
        outcome = logs_in(host, tls_directory, users[0])
        assert outcome.result == "success", outcome
    finally:
        host.close()


@pytest.mark.skipif(ADDRESS is None, reason="this machine has no non-loopback IPv4 address")
def test_starttls_to_a_non_loopback_address_with_the_right_ca_logs_in(tls_directory, certificates, users):
    host = TLSHost(users, tls_directory, tls_directory.address_uris[ADDRESS], f"ldap_ca = {certificates.ca}\n").start_daemon()
    try:
        outcome = logs_in(host, tls_directory, users[1])
        assert outcome.result == "success", outcome
    finally:
        host.close()


def test_a_directory_certificate_from_another_ca_is_refused(tls_directory, users, syslog):
    other = Certificates(["127.0.0.1"], name="some other CA")
    host = TLSHost(users, tls_directory, tls_directory.ldaps_uri, f"ldap_ca = {other.ca}\n").start_daemon()
    try:
        tls_directory.add_device(users[2].pw_name, new_device())
        assert_refused_naming_why(host, users[2], tls_directory.ldaps_uri, syslog, "certificate was rejected")
    finally:
        host.close()
        other.close()


def test_a_directory_certificate_for_another_name_is_refused(users, syslog):
    elsewhere = Certificates(["directory.invalid"])
    server = Slapd(certificates=elsewhere).start()
    host = None
    try:
        server.populate(hosts=HOST_PASSWORDS.items())
        server.set_policy(e2faStartDate="2020-01-01")
        server.add_device(users[3].pw_name, new_device())
        host = TLSHost(users, server, server.ldaps_uri, f"ldap_ca = {elsewhere.ca}\n").start_daemon()
        assert_refused_naming_why(host, users[3], server.ldaps_uri, syslog, "certificate was rejected")
    finally:
        if host:
            host.close()
        server.close()
        elsewhere.close()


def test_sasl_external_with_the_hosts_client_certificate_needs_no_bind_password(tls_directory, certificates, users, syslog):
    certificate, key = certificates.clients["host-b"]
    extra = f"ldap_ca = {certificates.ca}\nldap_cert = {certificate}\nldap_key = {key}\n"
    host = TLSHost(users, tls_directory, tls_directory.ldaps_uri, extra, password=False, name="host-b").start_daemon()
    try:
        assert "ldap_bind" not in open(host.config_path).read()
        # Reading the device's secret needs the hosts' group: the certificate was mapped to cn=host-b.
        mark = syslog.mark()
        outcome = logs_in(host, tls_directory, users[4])
        assert outcome.result == "success", (outcome, syslog.since(mark))
        checked = subprocess.run([ADMIN, "check", "--config", host.config_path], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0 and "answers as SASL EXTERNAL" in checked.stdout, (checked.stdout, checked.stderr)
    finally:
        host.close()


def test_a_client_key_others_can_read_is_not_used(tls_directory, certificates, users, syslog):
    certificate, key = certificates.clients["host-a"]
    exposed = os.path.join(certificates.directory, "exposed.key")
    shutil.copy(key, exposed)
    os.chmod(exposed, 0o644)
    extra = f"ldap_ca = {certificates.ca}\nldap_cert = {certificate}\nldap_key = {exposed}\n"
    host = TLSHost(users, tls_directory, tls_directory.ldaps_uri, extra, password=False).start_daemon()
    try:
        tls_directory.add_device(users[5].pw_name, new_device())
        mark = syslog.mark()
        denied = host.authenticate(users[5], "")
        assert denied.result == "auth_err" and "directory cannot be reached" in denied.output, denied
        assert any("ldap_key" in line for line in syslog.since(mark)), syslog.since(mark)
    finally:
        host.close()


@pytest.mark.skipif(ADDRESS is None, reason="this machine has no non-loopback IPv4 address")
def test_plain_ldap_to_a_non_loopback_address_is_refused(users, syslog):
    """The same slapd answers in the clear on loopback and on the machine's other address: only the
    loopback URI is used without TLS; the other one needs StartTLS, which this slapd does not offer."""
    server = Slapd(addresses=[ADDRESS]).start()
    hosts = []
    try:
        server.populate(hosts=HOST_PASSWORDS.items())
        server.set_policy(e2faStartDate="2020-01-01")
        far = server.address_uris[ADDRESS]
        hosts.append(TLSHost(users, server, far).start_daemon())
        server.add_device(users[6].pw_name, new_device())
        assert_refused_naming_why(hosts[0], users[6], far, syslog, "StartTLS")
        hosts.append(TLSHost(users, server, server.uri, name="host-b").start_daemon())
        assert logs_in(hosts[1], server, users[7]).result == "success"
    finally:
        for host in hosts:
            host.close()
        server.close()
