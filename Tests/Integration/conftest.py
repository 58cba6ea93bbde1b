"""Fixtures for tests through real libpam: the built module, throwaway PAM services and policy files,
test users with device files written from the documented format, oathtool for codes, and a syslog
socket that captures what the module logs."""

import base64
import datetime
import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILT_MODULE = os.environ.get("ENGAGE2FA_MODULE", os.path.join(ROOT, ".build", "release", "libpam_engage2fa.so"))
ENROLL = os.path.join(ROOT, ".build", "release", "engage2fa-enroll")
ADMIN = os.path.join(ROOT, ".build", "release", "engage2fa-admin")
# Installed under its real name, as the documented install step does: pam_syslog names it after the file.
MODULE = f"/tmp/engage2fa-test-module-{os.environ.get('E2FA_USER_PREFIX', 'e2fa-t')}/pam_engage2fa.so"  # one per session prefix
# Another prefix lets two pytest sessions run side by side without sharing (or deleting) users.
USER_PREFIX = os.environ.get("E2FA_USER_PREFIX", "e2fa-t")
# Where the module records activation: compiled in, never taken from the policy file it protects.
ACTIVATION_ROOT = "/var/lib/engage2fa"


def activation_record_path(config_path):
    """The activation record of the policy file at `config_path` (pam_engage2fa(8): FILES)."""
    if config_path == "/etc/engage2fa.conf":
        return os.path.join(ACTIVATION_ROOT, "activation")
    return os.path.join(ACTIVATION_ROOT, "activation.d", hashlib.sha256(config_path.encode()).hexdigest())


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("the PAM tests need root (test users, /etc/pam.d services, setfsuid)", returncode=2)
    if not os.path.exists(BUILT_MODULE):
        pytest.exit(f"build the module first: swift build -c release --product pam_engage2fa ({BUILT_MODULE} missing)", returncode=2)
    os.makedirs(os.path.dirname(MODULE), exist_ok=True)
    subprocess.run(["install", "-m", "644", BUILT_MODULE, MODULE], check=True)


# --- users -------------------------------------------------------------------------------------

def ensure_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        return pwd.getpwnam(name)


@pytest.fixture(scope="session")
def users():
    """Twenty test users, created once; their device files are removed before each test that uses them."""
    created = [ensure_user(f"{USER_PREFIX}{index}") for index in range(1, 21)]
    yield created
    for entry in created:
        subprocess.run(["userdel", "--remove", entry.pw_name], stderr=subprocess.DEVNULL)


# --- devices -----------------------------------------------------------------------------------

def b32(data):
    return base64.b32encode(data).decode().rstrip("=")


class DeviceSet:
    """Writes a user's device file in the documented format, independently of the Swift code."""

    def __init__(self, user, path=None):
        self.user = user
        self.path = path or os.path.join(user.pw_dir, ".engage2fa")
        self.devices = []
        self.recovery = None

    def add(self, name, secret=None, algorithm="SHA1", digits=6, period=30):
        device = {"id": secrets.token_hex(8), "name": name, "secret": secret or os.urandom(20),
                  "algorithm": algorithm, "digits": digits, "period": period}
        self.devices.append(device)
        return device

    def add_recovery_codes(self, count=10, iterations=1000):
        alphabet = "abcdefghijklmnopqrstuvwxyz234567"
        salt = os.urandom(16)
        codes = ["".join(secrets.choice(alphabet) for _ in range(10)) for _ in range(count)]
        hashes = [hashlib.pbkdf2_hmac("sha256", code.encode(), salt, iterations, 32) for code in codes]
        self.recovery = {"salt": salt, "iterations": iterations, "hashes": hashes}
        return [code[:5] + "-" + code[5:] for code in codes]

    def text(self):
        from urllib.parse import quote
        lines = ["engage2fa-devices 1"]
        for d in self.devices:
            lines.append(f"device id={d['id']} added={int(time.time())} algorithm={d['algorithm']} digits={d['digits']} "
                         f"period={d['period']} secret={b32(d['secret'])} name={quote(d['name'], safe='')}")
        if self.recovery:
            lines.append(f"recovery-codes salt={self.recovery['salt'].hex()} iterations={self.recovery['iterations']} created=1")
            lines += [f"recovery hash={h.hex()}" for h in self.recovery["hashes"]]
        return "\n".join(lines) + "\n"

    def write(self, mode=0o600, owner=None):
        if os.path.lexists(self.path):
            os.unlink(self.path)
        with open(self.path, "w") as handle:
            handle.write(self.text())
        uid = self.user.pw_uid if owner is None else owner
        os.chown(self.path, uid, self.user.pw_gid)
        os.chmod(self.path, mode)
        return self


def device_for(user):
    """Writes a device file with one device, "Phone", and returns the device."""
    devices = DeviceSet(user)
    device = devices.add("Phone")
    devices.write()
    return device


def code(device, offset_steps=0, at=None):
    """The device's code from oathtool, the independent reference."""
    now = int(time.time() if at is None else at) + offset_steps * device["period"]
    result = subprocess.run(
        ["oathtool", f"--totp={device['algorithm'].lower()}", "-b", "-d", str(device["digits"]),
         "-s", f"{device['period']}s", "-N", f"@{now}", b32(device["secret"])],
        check=True, capture_output=True, text=True)
    return result.stdout.strip()


def date_in(days):
    """The local date `days` after today, as the module counts days left ("in N days"): from today's date,
    not from now plus N times 24 hours (which, in the last hour of a day, is a day further). In the last
    seconds of a day it waits for the next, so that the test and the module see the same today."""
    now = datetime.datetime.now()
    midnight = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time())
    if (midnight - now).total_seconds() < 30:
        time.sleep((midnight - now).total_seconds() + 1)
    return (datetime.date.today() + datetime.timedelta(days=days)).isoformat()


def settle(period=30, margin=4):
    """Waits until at least `margin` seconds remain in the current step, so a code computed now is still
    the current one when the module checks it."""
    left = period - time.time() % period
    if left < margin:
        time.sleep(left + 0.2)


# --- PAM services and policies ------------------------------------------------------------------

class Host:
    """A throwaway policy file, state directory and PAM service using the built module."""

    def __init__(self, directory, users):
        self.directory = directory
        self.users = users
        self.state_dir = os.path.join(directory, "state")
        self.config_path = os.path.join(directory, "engage2fa.conf")
        # Linux-PAM lowercases service names: keep them lower case or /etc/pam.d/other is used instead.
        self.service = "e2fa-test-" + uuid.uuid4().hex[:10]
        self.service_path = os.path.join("/etc/pam.d", self.service)
        self.write_service()

    def write_service(self, arguments=None):
        arguments = f"config={self.config_path}" if arguments is None else arguments
        # The echo lines make the module's result visible: PAM_IGNORE and PAM_SUCCESS both let
        # the stack succeed, and pamtester shows which path was taken.
        with open(self.service_path, "w") as handle:
            handle.write(
                f"auth [success=2 ignore=ignore default=die] {MODULE} {arguments}\n"
                "auth optional pam_echo.so engage2fa-result=ignored\n"
                "auth [success=done default=die] pam_permit.so\n"
                "auth optional pam_echo.so engage2fa-result=success\n"
                "auth required pam_permit.so\n"
                "account required pam_permit.so\n")

    def configure(self, text, start=None):
        body = f"state_dir = {self.state_dir}\n"
        if start is not None:
            body += f"start_date = {start}\n"
        body += text
        with open(self.config_path, "w") as handle:
            handle.write(body)
        os.chmod(self.config_path, 0o644)

    def activate(self, extra=""):
        """A start date in the past: 2FA is mandatory."""
        self.configure(extra, start="2020-01-01")

    def authenticate(self, user, answer=None, timeout=30, items=None):
        """pamtester's login; `items` sets PAM items as a client would (pamtester -I rhost=… -I tty=…)."""
        name = user if isinstance(user, str) else user.pw_name
        stdin = "" if answer is None else answer + "\n"
        options = [argument for item, value in (items or {}).items() for argument in ("-I", f"{item}={value}")]
        result = subprocess.run(["pamtester", "-v", *options, self.service, name, "authenticate"],
                                input=stdin, capture_output=True, text=True, timeout=timeout)
        return Outcome(result)

    def state_file(self, user):
        path = os.path.join(self.state_dir, "users", f"{user.pw_uid}.state")  # keyed by uid
        return open(path).read() if os.path.exists(path) else ""

    @property
    def activation_path(self):
        return activation_record_path(self.config_path)

    def close(self):
        if os.path.exists(self.service_path):
            os.unlink(self.service_path)
        if os.path.lexists(self.activation_path):
            os.unlink(self.activation_path)


class Outcome:
    def __init__(self, result):
        self.returncode = result.returncode
        self.output = result.stdout + result.stderr

    @property
    def prompted(self):
        return "Verification code:" in self.output

    @property
    def result(self):
        if self.returncode == 0:
            if "engage2fa-result=success" in self.output:
                return "success"
            if "engage2fa-result=ignored" in self.output:
                return "ignored"
            return "unknown-success"
        if "exhausted maximum number of retries" in self.output.lower():
            return "maxtries"
        if "Authentication failure" in self.output:
            return "auth_err"
        return "other-failure"

    def __repr__(self):
        return f"Outcome({self.result!r}, rc={self.returncode}, output={self.output!r})"


@pytest.fixture
def host(users, tmp_path):
    directory = tempfile.mkdtemp(prefix="engage2fa-host-")
    os.chmod(directory, 0o755)
    for entry in users:
        for name in os.listdir(entry.pw_dir):
            if name.startswith(".engage2fa"):
                path = os.path.join(entry.pw_dir, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
    instance = Host(directory, users)
    yield instance
    instance.close()
    shutil.rmtree(directory, ignore_errors=True)


# --- syslog -------------------------------------------------------------------------------------

class SyslogCapture:
    """Listens on /dev/log (the module logs with pam_syslog) and keeps every message."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.socket = None
        if os.path.exists("/dev/log"):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                probe.connect("/dev/log")
                probe.close()
                return  # a real syslog daemon owns it; tests that read logs will skip
            except OSError:
                os.unlink("/dev/log")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind("/dev/log")
        os.chmod("/dev/log", 0o666)
        self.thread = threading.Thread(target=self.listen, daemon=True)
        self.thread.start()

    def listen(self):
        while True:
            try:
                data = self.socket.recv(65536)
            except OSError:
                return
            with self.lock:
                self.messages.append(data.decode(errors="replace"))

    def mark(self):
        with self.lock:
            return len(self.messages)

    def since(self, mark, wait=0.3):
        time.sleep(wait)
        with self.lock:
            return [m for m in self.messages[mark:] if " pam_engage2fa(" in m]

    def close(self):
        if self.socket:
            self.socket.close()
            os.unlink("/dev/log")


def of_service(lines, service):
    """The lines of one PAM service: other sessions' modules may log to the socket this session captures."""
    return [line for line in lines if f" pam_engage2fa({service}:auth): " in line]


@pytest.fixture(scope="session")
def syslog_capture():
    capture = SyslogCapture()
    yield capture
    capture.close()


@pytest.fixture
def syslog(syslog_capture):
    if syslog_capture.socket is None:
        pytest.skip("a syslog daemon owns /dev/log; cannot capture the module's messages")
    return syslog_capture


# --- the enrollment command ------------------------------------------------------------------------

def run_enroll(user, *arguments, stdin="", as_root=False):
    """engage2fa-enroll as the user (or as root), with standard input from the test."""
    command = [ENROLL, *arguments] if as_root else ["runuser", "-u", user.pw_name, "--", ENROLL, *arguments]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)


class Enrollment:
    """An interactive `engage2fa-enroll add`: reads what it prints up to the URI line, then answers."""

    def __init__(self, user, *arguments, as_root=False):
        command = [ENROLL, "add", *arguments]
        if not as_root:
            command = ["runuser", "-u", user.pw_name, "--"] + command
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.printed = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"no URI line; printed {self.printed!r}, stderr {self.process.stderr.read()!r}")
            self.printed.append(line)
            if line.startswith("otpauth://"):
                self.uri = line.strip()
                break
        from urllib.parse import urlparse, parse_qs
        query = parse_qs(urlparse(self.uri).query)
        secret = query["secret"][0]
        # Parameters left out of the URI have the Key Uri Format's defaults.
        self.device = {"secret": base64.b32decode(secret + "=" * (-len(secret) % 8)),
                       "algorithm": query.get("algorithm", ["SHA1"])[0], "digits": int(query.get("digits", [6])[0]),
                       "period": int(query.get("period", [30])[0])}

    def answer(self, text):
        # Not communicate(): it reads the pipe's file descriptor directly, and what readline() already
        # took into the buffer after the URI line (the QR code, the prompt) would be lost.
        try:
            self.process.stdin.write(text + "\n")
            self.process.stdin.close()
        except BrokenPipeError:  # it already ended (an error before the prompt): its output says why
            pass
        out = self.process.stdout.read()
        self.errors = self.process.stderr.read()
        self.process.wait(timeout=60)
        self.output = "".join(self.printed) + out
        return self.process.returncode


@pytest.fixture
def enroll_config(host):
    """A policy file for the enrollment tests: 2FA active, state in the test's directory."""
    host.activate()
    return host.config_path


def run_admin(*arguments, user=None):
    """engage2fa-admin as root (or as `user`, to see it refuse)."""
    command = [ADMIN, *arguments] if user is None else ["runuser", "-u", user.pw_name, "--", ADMIN, *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)
