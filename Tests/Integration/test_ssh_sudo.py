"""Real logins: a second OpenSSH server on 127.0.0.1 with its own PAM service (pam_unix + pam_engage2fa),
a real ssh client (paramiko, keyboard-interactive), and sudo driven through a pty."""

import concurrent.futures
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import paramiko
import pexpect
import pytest

from conftest import MODULE, USER_PREFIX, Enrollment, code, device_for, run_admin, settle, date_in

KEY_USER = f"{USER_PREFIX}20"  # this user logs in with publickey + code


def password_of(user):
    return "pw-" + user.pw_name + "-Secret1"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SSHServer:
    """sshd run through a symlink with its own name: sshd uses that name as its PAM service."""

    def __init__(self, users, authentication="keyboard-interactive"):
        self.directory = tempfile.mkdtemp(prefix="engage2fa-sshd-")
        os.chmod(self.directory, 0o755)
        self.service = "e2fa-sshd-" + uuid.uuid4().hex[:8]
        self.binary = os.path.join(self.directory, self.service)
        os.symlink("/usr/sbin/sshd", self.binary)
        self.port = free_port()
        self.keys = os.path.join(self.directory, "keys")
        os.mkdir(self.keys)
        host_key = os.path.join(self.directory, "host_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
        self.log = os.path.join(self.directory, "sshd.log")
        with open(os.path.join(self.directory, "sshd_config"), "w") as handle:
            handle.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {self.directory}/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication {"yes" if authentication == "password" else "no"}
PubkeyAuthentication yes
AuthorizedKeysFile {self.keys}/%u
StrictModes no
PermitRootLogin no
UseDNS no
MaxStartups 100
MaxSessions 50
LoginGraceTime 60
LogLevel VERBOSE
AuthenticationMethods {authentication}
Match User {KEY_USER}
    AuthenticationMethods publickey,keyboard-interactive
""")
        for user in users:
            subprocess.run(["chpasswd"], input=f"{user.pw_name}:{password_of(user)}\n", text=True, check=True)
        os.makedirs("/run/sshd", exist_ok=True)
        self.process = subprocess.Popen([self.binary, "-D", "-e", "-f", os.path.join(self.directory, "sshd_config")],
                                        stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.process.poll() is None, open(self.log).read()
                time.sleep(0.1)
        raise AssertionError("sshd did not start: " + open(self.log).read())

    def use(self, host):
        """Points the server's PAM service at this test's policy file. The key user skips pam_unix."""
        with open(f"/etc/pam.d/{self.service}", "w") as handle:
            handle.write(
                f"auth [success=1 default=ignore] pam_succeed_if.so quiet user = {KEY_USER}\n"
                "auth requisite pam_unix.so\n"
                f"auth required {MODULE} config={host.config_path}\n"
                "auth required pam_permit.so\n"
                "account required pam_unix.so\n"
                "session required pam_permit.so\n"
                "password required pam_deny.so\n")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
        if os.path.exists(f"/etc/pam.d/{self.service}"):
            os.unlink(f"/etc/pam.d/{self.service}")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def sshd(users):
    server = SSHServer(users)
    yield server
    server.stop()
    # Nothing left behind: the listener is gone, and so is every connection it served.
    assert server.process.poll() is not None
    leftover = subprocess.run(["pgrep", "-f", server.service], capture_output=True, text=True).stdout.split()
    assert leftover == [], leftover


class Login:
    def __init__(self):
        self.ok = False
        self.shown = []
        self.prompts = []
        self.output = ""

    @property
    def text(self):
        return "\n".join(self.shown + [self.output])


def ssh_login(server, user, code_answer=None, password=None, key=None, pty=False, command="id -un"):
    """One ssh login: keyboard-interactive answers the password and code prompts (the code may be a
    function called when the prompt arrives); on success runs `command` (or a shell on a pty)."""
    login = Login()
    transport = paramiko.Transport(socket.create_connection(("127.0.0.1", server.port), timeout=30))
    try:
        transport.start_client(timeout=30)

        def handler(title, instructions, prompts):
            if instructions:
                login.shown.append(instructions)
            answers = []
            for prompt, _ in prompts:
                login.prompts.append(prompt)
                if "assword" in prompt:
                    answers.append(password if password is not None else password_of(user))
                elif "Verification code" in prompt:
                    answers.append(code_answer() if callable(code_answer) else (code_answer or ""))
                else:
                    answers.append("")
            return answers

        try:
            if key is not None:
                remaining = transport.auth_publickey(user.pw_name, key)
                login.after_key = remaining
            transport.auth_interactive(user.pw_name, handler)
        except paramiko.AuthenticationException:
            return login
        login.ok = transport.is_authenticated()
        channel = transport.open_session(timeout=30)
        if pty:
            channel.get_pty()
            channel.invoke_shell()
            channel.sendall(b"id -un; exit\n")
        else:
            channel.exec_command(command)
        chunks = []
        while True:
            data = channel.recv(65536)
            if not data:
                break
            chunks.append(data)
        login.output = b"".join(chunks).decode(errors="replace")
        login.status = channel.recv_exit_status()
        return login
    finally:
        transport.close()


# --- scenarios -------------------------------------------------------------------------------------

def test_password_and_code_give_a_shell(sshd, host, users):
    sshd.use(host)
    alice = users[0]
    host.activate()
    phone = device_for(alice)
    settle()
    login = ssh_login(sshd, alice, lambda: code(phone))
    assert login.ok, login.text
    assert login.output.strip() == alice.pw_name
    assert login.prompts[-1] == "Verification code: "


def test_wrong_code_and_another_users_code_are_denied(sshd, host, users):
    sshd.use(host)
    alice, bob = users[0], users[1]
    host.activate()
    phone = device_for(alice)
    bobs = device_for(bob)
    settle()
    assert not ssh_login(sshd, alice, "000000" if code(phone) != "000000" else "111111").ok
    assert not ssh_login(sshd, alice, lambda: code(bobs)).ok
    assert ssh_login(sshd, alice, lambda: code(phone)).ok


def test_wrong_password_never_reaches_the_code(sshd, host, users):
    sshd.use(host)
    alice = users[0]
    host.activate()
    phone = device_for(alice)
    login = ssh_login(sshd, alice, lambda: code(phone), password="wrong")
    assert not login.ok
    assert "Verification code: " not in login.prompts, login.prompts


def test_same_code_twice_and_previous_step(sshd, host, users):
    sshd.use(host)
    alice = users[0]
    host.activate("window = 1\n")
    phone = device_for(alice)
    settle(margin=8)
    previous = code(phone, -1)
    assert ssh_login(sshd, alice, previous).ok
    assert not ssh_login(sshd, alice, previous).ok
    current = code(phone)
    assert ssh_login(sshd, alice, current).ok
    assert not ssh_login(sshd, alice, current).ok


def test_before_start_password_only_with_nudge_and_enrolled_not_asked(sshd, host, users):
    sshd.use(host)
    alice, bob = users[0], users[1]
    start = date_in(9)
    host.configure("", start=start)
    device_for(alice)
    login = ssh_login(sshd, alice, pty=True)
    assert login.ok and "Verification code: " not in login.prompts, login.text
    login = ssh_login(sshd, bob, pty=True)
    assert login.ok and "Verification code: " not in login.prompts
    assert f"Two-factor authentication becomes mandatory on {start} (in 9 days)." in login.text, login.text


def test_after_start_unenrolled_refused_deadline_nudged_and_reset_reenrolls(sshd, host, users):
    sshd.use(host)
    bob, carol = users[1], users[2]
    host.activate()
    refused = ssh_login(sshd, bob)
    assert not refused.ok
    assert "you have not linked an authenticator app" in refused.text, refused.text

    deadline = date_in(4)
    assert run_admin("extend", bob.pw_name, deadline, "--config", host.config_path).returncode == 0
    login = ssh_login(sshd, bob, pty=True)
    assert login.ok and f"Your personal deadline is {deadline} (in 4 days)" in login.text, login.text

    # carol lost her phone: reset with a deadline, she logs in with her password and enrolls again.
    lost = device_for(carol)
    settle()
    assert ssh_login(sshd, carol, lambda: code(lost)).ok
    assert run_admin("reset", carol.pw_name, "--deadline", deadline, "--config", host.config_path).returncode == 0
    assert ssh_login(sshd, carol, pty=True).ok
    settle()
    enrollment = Enrollment(carol, "--name", "New phone", "--config", host.config_path)
    assert enrollment.answer(code(enrollment.device)) == 0
    time.sleep(30 - time.time() % 30 + 0.5)
    assert not ssh_login(sshd, carol, lambda: code(lost)).ok
    assert ssh_login(sshd, carol, lambda: code(enrollment.device)).ok


def test_ratchet_over_ssh(sshd, host, users):
    sshd.use(host)
    alice = users[0]
    host.activate()
    phone = device_for(alice)
    settle()
    assert ssh_login(sshd, alice, lambda: code(phone)).ok
    host.configure("", start="2099-01-01")
    login = ssh_login(sshd, alice, "")
    assert not login.ok and "Verification code: " in login.prompts


def test_publickey_alone_is_not_enough(sshd, host, users):
    sshd.use(host)
    keyed = next(user for user in users if user.pw_name == KEY_USER)
    host.activate()
    phone = device_for(keyed)
    key = paramiko.Ed25519Key.from_private_key_file(make_key(sshd, keyed))
    settle()
    login = ssh_login(sshd, keyed, "", key=key)
    assert login.after_key == ["keyboard-interactive"]
    assert not login.ok
    assert login.prompts == ["Verification code: "]  # no password: the key stands for it
    login = ssh_login(sshd, keyed, lambda: code(phone), key=key)
    assert login.ok and login.output.strip() == KEY_USER
    # Without the key, the code alone is not enough either.
    assert not ssh_login(sshd, keyed, lambda: code(phone, 1)).ok


def make_key(server, user):
    path = os.path.join(server.directory, f"id_{user.pw_name}")
    if not os.path.exists(path):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
        shutil.copy(path + ".pub", os.path.join(server.keys, user.pw_name))
    return path


@pytest.mark.parametrize("garbage", ["letters", "1" * 1000, "", "%s%n%x%n", "12345\x00", "' OR 1=1 --"])
def test_garbage_at_the_code_prompt_is_denied_and_sshd_carries_on(sshd, host, users, garbage):
    sshd.use(host)
    alice = users[0]
    host.activate("max_failures = 50\n")
    phone = device_for(alice)
    assert not ssh_login(sshd, alice, garbage).ok
    settle()
    assert ssh_login(sshd, alice, lambda: code(phone)).ok


def test_twenty_users_in_parallel_all_log_in(sshd, host, users):
    sshd.use(host)
    host.activate()
    devices = {user.pw_name: device_for(user) for user in users if user.pw_name != KEY_USER}
    settle(margin=15)
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        logins = list(pool.map(lambda user: ssh_login(sshd, user, lambda: code(devices[user.pw_name])),
                               [user for user in users if user.pw_name != KEY_USER]))
    assert [login.output.strip() for login in logins] == [u.pw_name for u in users if u.pw_name != KEY_USER]


def test_twenty_parallel_logins_with_one_code_exactly_one_succeeds(sshd, host, users):
    sshd.use(host)
    alice = users[0]
    host.activate("max_failures = 100\n")
    phone = device_for(alice)
    for round_ in range(3):
        settle(margin=15)
        shared = code(phone)
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            logins = list(pool.map(lambda _: ssh_login(sshd, alice, shared), range(20)))
        assert sum(login.ok for login in logins) == 1, (round_, [login.text for login in logins if login.ok])
        time.sleep(30 - time.time() % 30 + 0.3)


# --- sudo --------------------------------------------------------------------------------------------

@pytest.fixture
def sudo_service(host, users):
    """A PAM service for sudo (password + code) and a sudoers file that uses it for one test user."""
    service = "e2fa-sudo-" + uuid.uuid4().hex[:8]
    user = users[3]
    with open(f"/etc/pam.d/{service}", "w") as handle:
        handle.write(f"auth requisite pam_unix.so\nauth required {MODULE} config={host.config_path}\n"
                     "account required pam_unix.so\nsession required pam_permit.so\n")
    sudoers = f"/etc/sudoers.d/{service}"
    with open(sudoers, "w") as handle:
        handle.write(f"Defaults:{user.pw_name} pam_service={service}, passwd_tries=1, !lecture, timestamp_timeout=0\n"
                     f"{user.pw_name} ALL=(ALL) ALL\n")
    os.chmod(sudoers, 0o440)
    subprocess.run(["chpasswd"], input=f"{user.pw_name}:{password_of(user)}\n", text=True, check=True)
    yield user
    os.unlink(sudoers)
    os.unlink(f"/etc/pam.d/{service}")


def run_sudo(user, answer_code):
    child = pexpect.spawn("runuser", ["-u", user.pw_name, "--", "sudo", "-S", "-k", "true"], timeout=30, encoding="utf-8")
    transcript = []
    child.expect("password for")
    transcript.append(child.before + child.after)
    child.sendline(password_of(user))
    index = child.expect(["Verification code: ", pexpect.EOF])
    transcript.append(child.before)
    if index == 0:
        child.sendline(answer_code() if callable(answer_code) else answer_code)
        child.expect(pexpect.EOF)
        transcript.append(child.before)
    child.close()
    return child.exitstatus, "".join(transcript), index == 0


def test_sudo_needs_the_code(host, sudo_service):
    user = sudo_service
    host.activate()
    phone = device_for(user)
    status, transcript, asked = run_sudo(user, "000000" if code(phone) != "000000" else "111111")
    assert asked and status != 0, transcript
    settle()
    status, transcript, asked = run_sudo(user, lambda: code(phone))
    assert asked and status == 0, transcript


def test_sudo_before_start_asks_only_the_password(host, sudo_service):
    user = sudo_service
    host.configure("", start="2099-01-01")
    device_for(user)
    status, transcript, asked = run_sudo(user, "")
    assert status == 0 and not asked, transcript
