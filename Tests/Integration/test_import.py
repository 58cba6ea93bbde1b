"""Issue 16: `engage2fa-admin import` moves users over from google-authenticator and pam_oath, and their
phones keep working. The files imported are written by the real `google-authenticator` command and
updated by the real pam_google_authenticator and pam_oath modules after a login; the codes oathtool
computes from the original secret are then accepted by a real PAM login through pam_engage2fa, a code
the old module already accepted is refused (replay state), and scratch codes work once."""

import base64
import os
import subprocess

import pytest

from conftest import code, run_admin, settle

GA_FILE = ".google_authenticator"


def google_authenticator(user, *options):
    """The real command, run as the user, writes ~/.google_authenticator."""
    path = os.path.join(user.pw_dir, GA_FILE)
    if os.path.exists(path):
        os.unlink(path)
    result = subprocess.run(["runuser", "-u", user.pw_name, "--", "google-authenticator", "-f", "-q", "-Q", "NONE", "-C",
                             "-r", "3", "-R", "30", *([] if "-W" in options else ["-w", "3"]), *options],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result
    return path


def ga_device(path):
    lines = open(path).read().splitlines()
    secret = base64.b32decode(lines[0] + "=" * (-len(lines[0]) % 8))
    step = next((int(line.split()[2]) for line in lines if line.startswith('" STEP_SIZE')), 30)
    scratch = [line for line in lines[1:] if line.isdigit()]
    return {"secret": secret, "algorithm": "SHA1", "digits": 6, "period": step}, scratch


def login_through_the_old_module(host, module_line, user, device):
    """One login through the module being replaced (it records what it accepted); returns the code typed."""
    service = host.service + "-old"
    with open(f"/etc/pam.d/{service}", "w") as handle:
        handle.write(f"auth required {module_line}\naccount required pam_permit.so\n")
    try:
        settle()
        typed = code(device)
        result = subprocess.run(["pamtester", service, user.pw_name, "authenticate"], input=typed + "\n",
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result
    finally:
        os.unlink(f"/etc/pam.d/{service}")
    return typed


def import_ga(host, *arguments):
    return run_admin("import", "--config", host.config_path, "--from", "google-authenticator", *arguments)


def test_google_authenticator_file_imports_and_the_phone_keeps_working(host, users, syslog):
    user = users[0]
    path = google_authenticator(user, "-t", "-d", "-e", "5")
    device, scratch = ga_device(path)
    original = open(path).read()
    host.activate()
    dry = import_ga(host, "--dry-run", user.pw_name)
    assert dry.returncode == 0, dry
    assert "would import device 'imported from google-authenticator' (SHA1, 6 digits, 30 s), 5 scratch codes as recovery codes" in dry.stdout, dry.stdout
    assert not os.path.exists(os.path.join(user.pw_dir, ".engage2fa")), "a dry run wrote the device file"
    result = import_ga(host, user.pw_name)
    assert result.returncode == 0, result
    assert f"{user.pw_name}: imported device 'imported from google-authenticator'" in result.stdout, result.stdout
    assert f"{path} left in place" in result.stdout, result.stdout
    assert open(path).read() == original  # the source is left alone
    device_file = open(os.path.join(user.pw_dir, ".engage2fa")).read()
    assert "period=30" in device_file and "imported%20from%20google-authenticator" in device_file
    assert all(code_ not in device_file for code_ in scratch)  # hashed
    assert os.stat(os.path.join(user.pw_dir, ".engage2fa")).st_uid == user.pw_uid
    settle()
    outcome = host.authenticate(user, code(device))
    assert outcome.result == "success", outcome
    outcome = host.authenticate(user, scratch[0])
    assert outcome.result == "success", outcome
    assert host.authenticate(user, scratch[0]).result == "auth_err"  # once
    # Imported again: the user has devices now, and nothing is overwritten.
    again = import_ga(host, user.pw_name)
    assert again.returncode == 1, again
    assert "already has 1 device and 4 recovery codes" in again.stderr and "nothing changed" in again.stderr, again.stderr


def test_step_size_is_kept_and_remove_source_removes_it(host, users):
    user = users[1]
    path = google_authenticator(user, "-t", "-D", "-S", "60")
    device, _ = ga_device(path)
    assert device["period"] == 60
    host.activate()
    result = import_ga(host, "--remove-source", user.pw_name)
    assert result.returncode == 0, result
    assert f"{path} removed" in result.stdout and not os.path.exists(path), result.stdout
    settle(period=60)
    assert host.authenticate(user, code(device)).result == "success"


def test_a_code_google_authenticator_accepted_is_refused_after_import(host, users):
    """DISALLOW_REUSE: the real pam_google_authenticator records the step it accepted; it becomes replay state."""
    user = users[2]
    path = google_authenticator(user, "-t", "-d", "-W")
    device, _ = ga_device(path)
    typed = login_through_the_old_module(host, "pam_google_authenticator.so", user, device)
    assert '" DISALLOW_REUSE ' in open(path).read()
    host.activate()
    assert import_ga(host, user.pw_name).returncode == 0
    outcome = host.authenticate(user, typed)
    assert outcome.result == "auth_err" and "already used" in outcome.output, outcome


def test_counter_based_file_is_refused_with_a_clear_message(host, users):
    user = users[3]
    path = google_authenticator(user, "-c")
    host.activate()
    result = import_ga(host, user.pw_name)
    assert result.returncode == 1, result
    assert f"{user.pw_name}: not imported: {path}: counter-based (HOTP_COUNTER): engage2fa supports time-based codes only" in result.stderr, result.stderr
    assert not os.path.exists(os.path.join(user.pw_dir, ".engage2fa"))


def test_a_file_others_can_read_or_a_link_is_refused(host, users):
    user, victim = users[4], users[5]
    path = google_authenticator(user, "-t", "-d")
    os.chmod(path, 0o644)
    host.activate()
    result = import_ga(host, user.pw_name)
    assert result.returncode == 1 and path in result.stderr, result
    # A link to another user's file is not followed (the user's identity could not read it anyway).
    victim_path = google_authenticator(victim, "-t", "-d")
    os.unlink(path)
    os.symlink(victim_path, path)
    os.lchown(path, user.pw_uid, user.pw_gid)
    result = import_ga(host, user.pw_name)
    assert result.returncode == 1, result
    assert not os.path.exists(os.path.join(user.pw_dir, ".engage2fa"))


# --- pam_oath ----------------------------------------------------------------------------------------

def test_pam_oath_usersfile_imports_and_passwords_are_never_copied(host, users, tmp_path):
    totp30, totp60, counter = users[6], users[7], users[8]
    secret30, secret60 = os.urandom(20), os.urandom(20)
    usersfile = os.path.join(host.directory, "users.oath")
    with open(usersfile, "w") as handle:
        handle.write(f"HOTP/T30 {totp30.pw_name} - {secret30.hex()}\n"
                     f"HOTP/T60/8 {totp60.pw_name} Plain-Text-Pw1 {secret60.hex()}\n"
                     f"HOTP {counter.pw_name} - {os.urandom(20).hex()} 0\n")
    os.chmod(usersfile, 0o600)
    device30 = {"secret": secret30, "algorithm": "SHA1", "digits": 6, "period": 30}
    device60 = {"secret": secret60, "algorithm": "SHA1", "digits": 8, "period": 60}
    # A login through the real pam_oath first: it records the OTP it accepted (and when) in the usersfile.
    typed = login_through_the_old_module(host, f"pam_oath.so usersfile={usersfile} window=5 digits=6", totp30, device30)
    assert typed in open(usersfile).read()  # pam_oath wrote the last OTP and its time
    host.activate()
    result = run_admin("import", "--config", host.config_path, "--from", "oath", usersfile)
    assert result.returncode == 1, result  # the counter-based line
    assert f"{counter.pw_name}: not imported: {usersfile}:3: counter-based (HOTP)" in result.stderr, result.stderr
    assert f"{totp30.pw_name}: imported device 'imported from pam_oath' (SHA1, 6 digits, 30 s), codes up to the last one used refused" in result.stdout, result.stdout
    assert f"{totp60.pw_name}: imported device 'imported from pam_oath' (SHA1, 8 digits, 60 s)" in result.stdout, result.stdout
    for user in (totp30, totp60):
        text = open(os.path.join(user.pw_dir, ".engage2fa")).read()
        assert "Plain-Text-Pw1" not in text
    assert "Plain-Text-Pw1" not in result.stdout + result.stderr
    outcome = host.authenticate(totp30, typed)
    assert outcome.result == "auth_err" and "already used" in outcome.output, outcome  # replay state
    settle()
    assert host.authenticate(totp30, code(device30, 1)).result == "success"
    settle(period=60)
    assert host.authenticate(totp60, code(device60)).result == "success"


def test_usage_errors(host, users):
    result = run_admin("import", "--from", "oath", "relative/users.oath")
    assert result.returncode == 64 and "absolute path" in result.stderr, result
    result = run_admin("import", "--from", "google-authenticator")
    assert result.returncode == 64, result
    result = run_admin("import", "--from", "pam_u2f", users[0].pw_name)
    assert result.returncode == 64, result
