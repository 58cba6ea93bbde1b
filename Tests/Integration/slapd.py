"""A throwaway OpenLDAP slapd for the fleet tests: Debian's own slapd with a cn=config made by slapadd -n0
in a temporary directory, engage2fa's shipped schema and example ACLs, listening on a free loopback port
and an ldapi:// socket, stopped by its PID. The directory content is written through ldapadd as the
admin, the way an admin would set it up."""

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(ROOT, "ldap", "engage2fa-schema.ldif")
ACL = os.path.join(ROOT, "ldap", "engage2fa-acl.ldif")
SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
ENGAGE = f"ou=engage2fa,{SUFFIX}"
POLICY_DN = f"cn=policy,{ENGAGE}"
ALGORITHM_OIDS = {"SHA1": "1.2.840.113549.2.7", "SHA256": "1.2.840.113549.2.9", "SHA512": "1.2.840.113549.2.11"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def acl_lines():
    """The olcAccess values of the shipped example, as one LDIF fragment (its continuation lines kept)."""
    lines = open(ACL).read().splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("olcAccess:"))
    return "\n".join(lines[start:])


class Certificates:
    """A throwaway CA made with openssl in a temporary directory, a server certificate for `server_names`
    (IP addresses or DNS names, as subjectAltName), and a client certificate for each host, whose subject
    cn=HOST,o=engage2fa-test slapd maps to the host's entry (olcAuthzRegexp) for SASL EXTERNAL."""

    CLIENT_SUFFIX = "o=engage2fa-test"

    def __init__(self, server_names, hosts=(), name="engage2fa test CA"):
        self.directory = tempfile.mkdtemp(prefix="engage2fa-ca-")
        self.ca = os.path.join(self.directory, "ca.pem")
        self.ca_key = os.path.join(self.directory, "ca.key")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj", f"/CN={name}",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        alternative = ",".join(("IP:" if all(part.isdigit() for part in entry.split(".")) else "DNS:") + entry for entry in server_names)
        self.server, self.server_key = self.issue("server", "/CN=engage2fa test directory",
                                                  [f"subjectAltName={alternative}", "extendedKeyUsage=serverAuth"])
        self.clients = {host: self.issue(host, f"/O=engage2fa-test/CN={host}", ["extendedKeyUsage=clientAuth"]) for host in hosts}

    def openssl(self, *arguments):
        result = subprocess.run(["openssl", *arguments], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"openssl {arguments[0]} failed: {result.stderr}")

    def issue(self, name, subject, extensions):
        key, request, certificate = (os.path.join(self.directory, f"{name}.{suffix}") for suffix in ("key", "csr", "pem"))
        extension_file = os.path.join(self.directory, f"{name}.ext")
        with open(extension_file, "w") as handle:
            handle.write("\n".join(extensions) + "\n")
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                     "-out", request, "-subj", subject)
        self.openssl("x509", "-req", "-in", request, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
                     "-out", certificate, "-days", "2", "-extfile", extension_file)
        os.chmod(key, 0o600)
        return certificate, key

    def close(self):
        shutil.rmtree(self.directory, ignore_errors=True)


class LDAPError(Exception):
    def __init__(self, code, output):
        super().__init__(f"LDAP result {code}: {output}")
        self.code = code
        self.output = output


class Slapd:
    """One slapd: the provider, or (with `provider`) a syncrepl consumer that chains writes to it."""

    def __init__(self, provider=None, sync=True, certificates=None, addresses=()):
        self.directory = tempfile.mkdtemp(prefix="engage2fa-slapd-")
        self.port = free_port()
        self.ldapi_path = os.path.join(self.directory, "ldapi")
        self.uri = f"ldap://127.0.0.1:{self.port}/"
        # With certificates: TLS (StartTLS on every ldap:// listener, and ldaps:// on 127.0.0.1), client
        # certificates asked for but not required (hosts that bind with a password send none).
        self.certificates = certificates
        self.ldaps_port = free_port() if certificates else None
        self.ldaps_uri = f"ldaps://127.0.0.1:{self.ldaps_port}/" if certificates else None
        # More plain listeners (StartTLS if certificates), e.g. the machine's non-loopback address.
        self.address_uris = {address: f"ldap://{address}:{self.port}/" for address in addresses}
        self.ldapi = "ldapi://" + urllib.parse.quote(self.ldapi_path, safe="")
        self.provider = provider
        self.pid = None
        # Without sync, mdb commits without fdatasync (olcDbNoSync): for measuring what the directory's
        # durability costs apart from engage2fa's own work.
        self.sync = sync
        self.write_config()

    def write_config(self):
        config_dir = os.path.join(self.directory, "slapd.d")
        data_dir = os.path.join(self.directory, "data")
        os.makedirs(config_dir)
        os.makedirs(data_dir)
        modules = "olcModuleLoad: back_mdb\nolcModuleLoad: otp\n"
        if self.provider:
            modules += "olcModuleLoad: syncprov\nolcModuleLoad: back_ldap\n"
        else:
            modules += "olcModuleLoad: syncprov\n"
        replica = ""
        if self.provider:
            # Reads from this consumer's copy; writes are chained to the provider as the client's identity
            # (idassert proxy as the admin, authorized as whoever bound here).
            replica = (
                f"olcSyncrepl: rid=001 provider={self.provider.uri} bindmethod=simple binddn=\"{ADMIN_DN}\" "
                f"credentials={ADMIN_PASSWORD} searchbase=\"{SUFFIX}\" type=refreshAndPersist retry=\"1 +\" timeout=3\n"
                f"olcUpdateRef: {self.provider.uri}\n")
        tls = ""
        if self.certificates:
            tls = (f"olcAuthzRegexp: {{1}}cn=([^,]+),{Certificates.CLIENT_SUFFIX} cn=$1,ou=hosts,{SUFFIX}\n"
                   f"olcTLSCACertificateFile: {self.certificates.ca}\nolcTLSCertificateFile: {self.certificates.server}\n"
                   f"olcTLSCertificateKeyFile: {self.certificates.server_key}\nolcTLSVerifyClient: try\n")
        text = f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {self.directory}/slapd.pid
olcAuthzRegexp: {{0}}uid=([^,]+),cn=[^,]+,cn=auth uid=$1,ou=people,{SUFFIX}
{tls}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
{modules}
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file://{SCHEMA}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcDbDirectory: {data_dir}
olcRootDN: {ADMIN_DN}
olcRootPW: {ADMIN_PASSWORD}
olcDbMaxSize: 1073741824
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: entryCSN,entryUUID eq
{"" if self.sync else "olcDbNoSync: TRUE" + chr(10)}{replica}{acl_lines()}

dn: olcOverlay={{0}}syncprov,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{0}}syncprov
"""
        if self.provider:
            text += f"""
dn: olcOverlay={{0}}chain,olcDatabase={{-1}}frontend,cn=config
objectClass: olcOverlayConfig
objectClass: olcChainConfig
olcOverlay: {{0}}chain
olcChainReturnError: TRUE

dn: olcDatabase={{0}}ldap,olcOverlay={{0}}chain,olcDatabase={{-1}}frontend,cn=config
objectClass: olcLDAPConfig
objectClass: olcChainDatabase
olcDatabase: {{0}}ldap
olcDbURI: "{self.provider.uri}"
olcDbIDAssertBind: bindmethod=simple binddn="{ADMIN_DN}" credentials={ADMIN_PASSWORD} mode=self
olcDbIDAssertAuthzFrom: *
"""
        ldif = os.path.join(self.directory, "config.ldif")
        with open(ldif, "w") as handle:
            handle.write(text)
        result = subprocess.run(["slapadd", "-n0", "-F", config_dir, "-l", ldif], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"slapadd -n0 failed: {result.stdout}{result.stderr}")

    def start(self):
        config_dir = os.path.join(self.directory, "slapd.d")
        listeners = " ".join([self.uri, self.ldapi, *self.address_uris.values()] + ([self.ldaps_uri] if self.ldaps_uri else []))
        subprocess.run(["slapd", "-F", config_dir, "-h", listeners], check=True, capture_output=True, text=True)
        deadline = time.monotonic() + 10
        pid_file = os.path.join(self.directory, "slapd.pid")
        while time.monotonic() < deadline:
            if os.path.exists(pid_file) and self.answers():
                self.pid = int(open(pid_file).read().strip())
                return self
            time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def answers(self):
        return subprocess.run(["ldapsearch", "-x", "-H", self.uri, "-s", "base", "-b", "", "-LLL", "namingContexts"],
                              capture_output=True, timeout=5).returncode == 0

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            self.pid = None

    def close(self):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- clients (ldap-utils) ----------------------------------------------------------------

    def run(self, tool, ldif=None, bind=(ADMIN_DN, ADMIN_PASSWORD), uri=None, arguments=()):
        command = [tool, "-x", "-H", uri or self.uri]
        if bind:
            command += ["-D", bind[0], "-w", bind[1]]
        result = subprocess.run(command + list(arguments), input=ldif, capture_output=True, text=True, timeout=15)
        if result.returncode != 0:
            raise LDAPError(result.returncode, result.stdout + result.stderr)
        return result.stdout

    def add(self, ldif, bind=(ADMIN_DN, ADMIN_PASSWORD)):
        return self.run("ldapadd", ldif, bind)

    def modify(self, ldif, bind=(ADMIN_DN, ADMIN_PASSWORD)):
        return self.run("ldapmodify", ldif, bind)

    def search(self, base, *attributes, bind=(ADMIN_DN, ADMIN_PASSWORD), scope="sub", filter="(objectClass=*)", uri=None):
        """The entries as {dn: {attribute: [values]}} (base64 values decoded to bytes); none when the base
        is missing or hidden from this identity (noSuchObject, 32)."""
        try:
            output = self.run("ldapsearch", bind=bind, uri=uri,
                              arguments=["-LLL", "-o", "ldif-wrap=no", "-s", scope, "-b", base, filter, *attributes])
        except LDAPError as error:
            if error.code == 32:
                return {}
            raise
        entries, current = {}, None
        for line in output.splitlines():
            if not line:
                current = None
                continue
            name, _, value = line.partition(":")
            if value.startswith(": "):
                value = base64.b64decode(value[2:])
            else:
                value = value[1:]
            if name == "dn":
                current = entries.setdefault(value if isinstance(value, str) else value.decode(), {})
            elif current is not None:
                current.setdefault(name, []).append(value)
        return entries

    # --- the directory as an admin sets it up ----------------------------------------------------

    def populate(self, people=(), hosts=()):
        """The base entries, people with passwords, hosts with passwords, and the two groups."""
        ldif = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n"]
        for unit in ("people", "groups", "hosts"):
            ldif.append(f"dn: ou={unit},{SUFFIX}\nobjectClass: organizationalUnit\nou: {unit}\n")
        ldif.append(f"dn: {ENGAGE}\nobjectClass: organizationalUnit\nou: engage2fa\n")
        ldif.append(f"dn: ou=users,{ENGAGE}\nobjectClass: organizationalUnit\nou: users\n")
        ldif.append(f"dn: {POLICY_DN}\nobjectClass: e2faPolicy\ncn: policy\n")
        for name, password in people:
            ldif.append(f"dn: uid={name},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\nsn: {name}\n"
                        f"userPassword: {password}\n")
        for name, password in hosts:
            ldif.append(f"dn: cn={name},ou=hosts,{SUFFIX}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
                        f"cn: {name}\nuserPassword: {password}\n")
        ldif.append(f"dn: cn=engage2fa-admins,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: engage2fa-admins\nmember: {ADMIN_DN}\n")
        members = "".join(f"member: cn={name},ou=hosts,{SUFFIX}\n" for name, _ in hosts) or f"member: {ADMIN_DN}\n"
        ldif.append(f"dn: cn=engage2fa-hosts,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: engage2fa-hosts\n{members}")
        self.add("\n".join(ldif))

    def add_device(self, user, device, verified_step=None, bind=(ADMIN_DN, ADMIN_PASSWORD)):
        """A device entry (and the user's entry if missing), written as the admin would."""
        self.ensure_user(user)
        ldif = (f"dn: e2faDeviceID={device['id']},{user_dn(user)}\nobjectClass: e2faDevice\nobjectClass: oathTOTPToken\n"
                f"objectClass: oathTOTPParams\ne2faDeviceID: {device['id']}\ne2faDeviceName: {device['name']}\n"
                f"e2faAdded: {int(time.time())}\noathSecret:: {base64.b64encode(device['secret']).decode()}\n"
                f"oathOTPLength: {device['digits']}\noathTOTPTimeStepPeriod: {device['period']}\n"
                f"oathHMACAlgorithm: {ALGORITHM_OIDS[device['algorithm']]}\n")
        if verified_step is not None:
            ldif += f"e2faVerifiedStep: {verified_step}\n"
        self.add(ldif, bind=bind)

    def ensure_user(self, user, bind=(ADMIN_DN, ADMIN_PASSWORD)):
        try:
            self.add(f"dn: {user_dn(user)}\nobjectClass: e2faUser\nuid: {user}\n", bind=bind)
        except LDAPError as error:
            if error.code != 68:  # already exists
                raise

    def set_policy(self, **values):
        """Replaces policy attributes (e2faStartDate=..., e2faIssuer=...); None deletes one."""
        self.replace(POLICY_DN, **values)

    def replace(self, dn, **values):
        changes = []
        for name, value in values.items():
            if value is None:
                changes.append(f"replace: {name}\n")
            else:
                changes.append(f"replace: {name}\n{name}: {value}\n")
        self.modify(f"dn: {dn}\nchangetype: modify\n" + "-\n".join(changes))


def user_dn(user):
    return f"uid={user},ou=users,{ENGAGE}"


def person_dn(user):
    return f"uid={user},ou=people,{SUFFIX}"


def host_dn(name):
    return f"cn={name},ou=hosts,{SUFFIX}"
