"""Every PAM stack the project ships (the README, pam/sshd, pam/sudo, pam/login, the pam-auth-update
profile as it lands in common-auth), built as a real PAM service and driven through libpam with
pamtester: a wrong password never reaches the module, so it neither shows the code prompt (or anything
else that tells whether the user exists or is enrolled) nor counts toward the code lockout.

The password part is Debian's common-auth as pam-auth-update generates it (in a throwaway root with its
own debconf database: the machine's /etc/pam.d and debconf are never touched)."""

import os
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import MODULE, ROOT, DeviceSet, code, settle

MAX_FAILURES = 3
WRONG_PASSWORD_LOGINS = 6
PAM_CONFIGS = "/usr/share/pam-configs"


def password_of(user):
    return "pw-" + user.pw_name + "-Stack1"


def read(path):
    with open(path) as handle:
        return handle.read()


# --- the shipped stacks, read from the shipped files -----------------------------------------------

def readme():
    return read(os.path.join(ROOT, "README.md"))


def readme_section_block(heading):
    """The first fenced code block after a README heading."""
    text = readme()
    start = text.index(heading)
    block = re.search(r"```[a-z]*\n(.*?)```", text[start:], re.S)
    return block.group(1)


def readme_by_hand_commands():
    """The README's by-hand commands that write /etc/pam.d/e2fa-sshd (a printf or a here-document)."""
    lines = readme_section_block("## Try it over ssh (by hand)").splitlines()
    for index, line in enumerate(lines):
        if "/etc/pam.d/e2fa-sshd" in line:
            if "<<" in line:
                marker = re.search(r"<<-?\s*'?(\w+)'?", line).group(1)
                end = lines.index(marker, index + 1)
                return "\n".join(lines[index:end + 1]) + "\n"
            return line + "\n"
    raise AssertionError("the README's by-hand section no longer writes /etc/pam.d/e2fa-sshd")


def man_page_stacks():
    """The stacks pam_engage2fa(8) shows: its .nf blocks with a pam_engage2fa.so line, roff escapes undone."""
    text = read(os.path.join(ROOT, "man", "pam_engage2fa.8"))
    blocks = re.findall(r"^\.nf\n(.*?)^\.fi$", text, re.S | re.M)
    # forward_pass stacks check the code before the password by design (one box for both): test_first_pass.py.
    return [block.replace("\\-", "-") for block in blocks if "pam_engage2fa.so" in block and "forward_pass" not in block]


def snippet_lines(text):
    """The PAM lines of a snippet that goes "right after @include common-auth" (the line is added when the
    snippet leaves it to the comment)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not any(line.startswith("@include common-auth") for line in lines):
        lines.insert(0, "@include common-auth")
    return lines


def with_test_module(text, config):
    """The module line pointed at the test build and the test's policy; every control value stays as shipped."""
    return re.sub(r"(?<![\w.-])(?:/\S*/)?pam_engage2fa\.so(?:\s+config=\S+)?", f"{MODULE} config={config}", text)


# --- common-auth as pam-auth-update writes it ------------------------------------------------------

def pam_auth_update(profiles, enable=()):
    """Runs the real pam-auth-update in a throwaway root (--root, its own debconf database) from a
    pristine state, as on a fresh Debian machine, and returns the common-auth it writes."""
    root = tempfile.mkdtemp(prefix="engage2fa-pam-auth-update-")
    try:
        for directory in ("usr/share/pam-configs", "etc/pam.d", "var/lib/pam"):
            os.makedirs(os.path.join(root, directory))
        for name, path in profiles.items():
            shutil.copy(path, os.path.join(root, "usr/share/pam-configs", name))
        debconf = os.path.join(root, "debconf.conf")
        with open(debconf, "w") as handle:
            handle.write(f"Config: configdb\nTemplates: templatedb\n\n"
                         f"Name: configdb\nDriver: File\nFilename: {root}/config.dat\n\n"
                         f"Name: templatedb\nDriver: File\nFilename: {root}/templates.dat\n")
        command = ["pam-auth-update", "--root", root, "--force", "--package"]
        if enable:
            command += ["--enable", *enable]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "DEBCONF_SYSTEMRC": debconf, "DEBIAN_FRONTEND": "noninteractive"})
        assert result.returncode == 0, result.stdout + result.stderr
        return read(os.path.join(root, "etc/pam.d/common-auth"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def common_auth():
    """Debian's common-auth without and with the engage2fa profile, each installed as its own file in
    /etc/pam.d for the services below to @include."""
    if shutil.which("pam-auth-update") is None:
        pytest.skip("libpam-runtime's pam-auth-update is not installed")
    # The distribution's profiles (unix, capability, ...), never a copy of ours that a package test installed.
    profiles = {name: os.path.join(PAM_CONFIGS, name) for name in os.listdir(PAM_CONFIGS) if name != "engage2fa"}
    assert "unix" in profiles
    plain = pam_auth_update(profiles)
    with_profile = pam_auth_update({**profiles, "engage2fa": os.path.join(ROOT, "pam", "pam-configs", "engage2fa")},
                                   enable=["engage2fa"])
    assert "pam_unix.so" in plain and "pam_engage2fa" not in plain, plain
    assert "pam_engage2fa.so" in with_profile, with_profile
    files = {}
    for kind, text in (("plain", plain), ("engage2fa", with_profile)):
        name = f"e2fa-common-auth-{kind}-{uuid.uuid4().hex[:8]}"
        files[kind] = (name, text)
    yield files
    for name, _ in files.values():
        if os.path.exists(f"/etc/pam.d/{name}"):
            os.unlink(f"/etc/pam.d/{name}")


def install_common_auth(common_auth, kind, config):
    name, text = common_auth[kind]
    with open(f"/etc/pam.d/{name}", "w") as handle:
        handle.write(with_test_module(text, config))
    return name


def auth_lines(stack, common_auth, host):
    """The auth part of a shipped stack, as it would stand in /etc/pam.d, with the test build of the module."""
    config = host.config_path
    if stack == "readme-by-hand":
        scratch = os.path.join(host.directory, "by-hand-service")
        commands = readme_by_hand_commands().replace("/etc/pam.d/e2fa-sshd", scratch)
        subprocess.run(["sh", "-e", "-c", commands], check=True, cwd=host.directory)
        return with_test_module(read(scratch), config).splitlines()
    if stack == "pam-auth-update":
        return [f"@include {install_common_auth(common_auth, 'engage2fa', config)}"]
    if stack == "old-by-hand":  # the by-hand stack the README had before: pam_unix "required"
        return ["auth required pam_unix.so", f"auth required {MODULE} config={config}"]
    if stack == "readme-wire":
        text = readme_section_block("## Wire sshd and sudo")
    elif stack == "readme-stacking":
        text = readme_section_block("### Stacking")
    elif stack.startswith("man-"):
        text = man_page_stacks()[int(stack[len("man-"):])]
    else:
        text = read(os.path.join(ROOT, stack))
    common = install_common_auth(common_auth, "plain", config)
    return [line.replace("@include common-auth", f"@include {common}") for line in snippet_lines(with_test_module(text, config))]


def write_service(host, lines):
    body = "\n".join(lines) + "\n"
    if not re.search(r"^account\s", body, re.M):
        body += "account required pam_permit.so\n"
    with open(host.service_path, "w") as handle:
        handle.write(body)


# --- logins -----------------------------------------------------------------------------------------

def login(host, user, password, answer):
    """One pamtester login: the password, then (if asked) the code, each on its own line."""
    result = subprocess.run(["pamtester", "-v", host.service, user.pw_name, "authenticate"],
                            input=f"{password}\n{answer}\n", capture_output=True, text=True, timeout=60)
    return result.returncode, (result.stdout + result.stderr).replace(host.service, "SERVICE")


def password_only_output(host, user, common_auth):
    """What the password part alone (common-auth, no module) shows for a wrong password: the reference
    for "the module said nothing"."""
    service = host.service + "-base"
    with open(f"/etc/pam.d/{service}", "w") as handle:
        handle.write(f"@include {install_common_auth(common_auth, 'plain', host.config_path)}\n"
                     "account required pam_permit.so\n")
    try:
        result = subprocess.run(["pamtester", "-v", service, user.pw_name, "authenticate"],
                                input="not-the-password\n000000\n", capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, result.stdout + result.stderr
        return (result.stdout + result.stderr).replace(service, "SERVICE")
    finally:
        os.unlink(f"/etc/pam.d/{service}")


def wrong_code(device):
    near = {code(device, step) for step in range(-3, 4)}
    return next(candidate for candidate in ("000000", "111111", "222222", "333333") if candidate not in near)


def failure_count(host, user):
    """The failure count the module's state file records for the user (0 when there is no record)."""
    counts = [int(n) for n in re.findall(r"^failures count=(\d+)", host.state_file(user), re.M)]
    return max(counts, default=0)


def setup_user(host, users):
    user = users[0]
    subprocess.run(["chpasswd"], input=f"{user.pw_name}:{password_of(user)}\n", text=True, check=True)
    host.activate(f"max_failures = {MAX_FAILURES}\nlockout_seconds = 600\n")
    devices = DeviceSet(user)
    phone = devices.add("Phone")
    devices.write()
    return user, phone


SHIPPED = (["readme-by-hand", "readme-wire", "readme-stacking", "pam/sshd", "pam/sudo", "pam/login", "pam-auth-update"]
           + [f"man-{index}" for index in range(len(man_page_stacks()))])


def test_every_shipped_stack_is_found():
    # The extraction above follows the files: a section renamed or a block removed must not silently
    # drop a stack from the test.
    assert len(man_page_stacks()) >= 2
    assert "pam_unix.so" in readme_section_block("### Stacking")
    assert "pam_unix.so" in readme_by_hand_commands()


@pytest.mark.parametrize("stack", SHIPPED)
def test_wrong_passwords_never_reach_the_module(stack, host, users, common_auth):
    user, phone = setup_user(host, users)
    write_service(host, auth_lines(stack, common_auth, host))
    baseline = password_only_output(host, user, common_auth)

    for attempt in range(WRONG_PASSWORD_LOGINS):
        status, output = login(host, user, "not-the-password", wrong_code(phone))
        assert status != 0, (stack, attempt, output)
        assert "Verification code:" not in output, (stack, attempt, output)
        # Not a word from the module either (no refusal naming the user, no lockout notice).
        assert output == baseline, (stack, attempt, output, baseline)
    assert failure_count(host, user) == 0, host.state_file(user)

    # Not locked out, and no failure counted: MAX_FAILURES - 1 wrong codes after the right password still
    # leave the right code accepted (one counted wrong password would have made them a lockout).
    for attempt in range(MAX_FAILURES - 1):
        status, output = login(host, user, password_of(user), wrong_code(phone))
        assert status != 0 and "Verification code:" in output, (stack, attempt, output)
    settle()
    status, output = login(host, user, password_of(user), code(phone))
    assert status == 0 and "Verification code:" in output and "successfully authenticated" in output, (stack, output)
    assert failure_count(host, user) == 0, host.state_file(user)


def test_old_by_hand_stack_lets_wrong_passwords_lock_the_user_out(host, users, common_auth):
    """The regression the test above guards against: with "auth required pam_unix.so" the module runs after
    a wrong password, asks for the code, and wrong passwords lock a real user out."""
    user, phone = setup_user(host, users)
    write_service(host, auth_lines("old-by-hand", common_auth, host))
    status, output = login(host, user, "not-the-password", wrong_code(phone))
    assert status != 0 and "Verification code:" in output, output
    for _ in range(WRONG_PASSWORD_LOGINS - 1):
        login(host, user, "not-the-password", wrong_code(phone))
    settle()
    status, output = login(host, user, password_of(user), code(phone))
    assert status != 0, output
    assert "Verification code:" not in output, output  # locked out: not even asked
