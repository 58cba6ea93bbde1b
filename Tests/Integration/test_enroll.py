"""engage2fa-enroll, run as the user, checked with oathtool, zbarimg and the module through libpam."""

import json
import os
import re
import subprocess
import time

import pytest

import base64
import socket
from urllib.parse import quote, unquote, urlparse

from conftest import ENROLL, Enrollment, code, run_enroll, settle, date_in


def link(user, config, name="Pixel 8", *extra):
    settle()
    enrollment = Enrollment(user, "--name", name, "--config", config, *extra)
    assert enrollment.answer(code(enrollment.device)) == 0, (enrollment.output, enrollment.errors)
    return enrollment


def test_enrolled_device_is_saved_and_logs_in_through_pam(host, users, enroll_config):
    alice = users[0]
    enrollment = link(alice, enroll_config)
    # The account is unique per host (label = %u@%h): apps keep two hosts' entries apart.
    assert enrollment.uri.startswith(f"otpauth://totp/Engage:{alice.pw_name}@{socket.gethostname()}?secret=")
    assert enrollment.uri.endswith("&issuer=Engage")  # SHA1, 6 digits and 30 s are the defaults apps assume
    assert "Linked 'Pixel 8'." in enrollment.output
    path = os.path.join(alice.pw_dir, ".engage2fa")
    stat = os.stat(path)
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (alice.pw_uid, alice.pw_gid, 0o600)
    listing = json.loads(run_enroll(alice, "list", "--json", "--config", enroll_config).stdout)
    assert [device["name"] for device in listing["devices"]] == ["Pixel 8"]
    # The code typed to link the device is never accepted again, not even within its window; the next
    # step's code (inside the window) passes a real login at once.
    assert host.authenticate(alice, code(enrollment.device)).result == "auth_err"
    assert host.authenticate(alice, code(enrollment.device, offset_steps=1)).result == "success"


def test_wrong_code_saves_nothing_and_never_prints_the_right_code(host, users, enroll_config):
    alice = users[0]
    link(alice, enroll_config, "Old phone")
    path = os.path.join(alice.pw_dir, ".engage2fa")
    before = open(path, "rb").read()
    settle()
    enrollment = Enrollment(alice, "--name", "New phone", "--config", enroll_config)
    right = [code(enrollment.device, offset) for offset in (-1, 0, 1)]
    wrong = next(f"{n:06d}" for n in range(1000000) if f"{n:06d}" not in right)
    assert enrollment.answer(wrong) != 0
    assert open(path, "rb").read() == before
    assert "nothing was saved" in enrollment.errors
    for value in right:
        assert value not in enrollment.output + enrollment.errors


def test_issuer_and_parameters_come_from_the_policy(host, users):
    alice = users[0]
    host.activate("issuer = Build Farm\nalgorithm = SHA256\ndigits = 8\nperiod = 60\n")
    settle(60)
    enrollment = Enrollment(alice, "--name", "Phone", "--config", host.config_path)
    assert enrollment.uri.startswith(f"otpauth://totp/Build%20Farm:{alice.pw_name}@{socket.gethostname()}?")
    assert "&algorithm=SHA256&digits=8&period=60" in enrollment.uri
    assert enrollment.device == {**enrollment.device, "algorithm": "SHA256", "digits": 8, "period": 60}
    assert enrollment.answer(code(enrollment.device)) == 0, enrollment.errors


def test_label_template_names_the_account_and_is_encoded(host, users):
    alice = users[0]
    host.activate("label = %u (100%%) on %h\n")
    settle()
    enrollment = Enrollment(alice, "--name", "Phone", "--config", host.config_path)
    label = f"{alice.pw_name} (100%) on {socket.gethostname()}"
    assert enrollment.uri.startswith("otpauth://totp/Engage:" + quote(label, safe="@") + "?secret=")
    assert unquote(urlparse(enrollment.uri).path) == "/Engage:" + label
    assert enrollment.answer(code(enrollment.device)) == 0, enrollment.errors


def test_wrong_code_names_the_settings_apps_ignore(host, users):
    alice = users[0]
    host.activate("period = 60\nalgorithm = SHA256\n")
    settle(60)
    enrollment = Enrollment(alice, "--name", "Phone", "--config", host.config_path)
    # What Google Authenticator would show: SHA1 codes every 30 seconds, for the same secret.
    ignored = code({**enrollment.device, "algorithm": "SHA1", "period": 30})
    assert enrollment.answer(ignored) != 0
    assert "period = 60, algorithm = SHA256, which some apps ignore (Google Authenticator, Microsoft Authenticator)" in enrollment.errors


# --- QR codes, decoded by zbarimg ---------------------------------------------------------------

def zbar(path):
    result = subprocess.run(["zbarimg", "--quiet", "--raw", path], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def write_pgm(path, rows, scale=6):
    """A grayscale image of a grid of booleans (True = dark), `scale` pixels a module."""
    height, width = len(rows), len(rows[0])
    with open(path, "wb") as handle:
        handle.write(f"P5 {width * scale} {height * scale} 255\n".encode())
        for row in rows:
            line = bytes(0 if dark else 255 for dark in row for _ in range(scale))
            handle.write(line * scale)


def terminal_modules(text):
    """The module grid drawn by the terminal rendering: each character is two modules, top and bottom."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [line for line in plain.split("\n") if any(ch in line for ch in "█▀▄")]
    width = max(len(line) for line in lines)
    top = {"█": True, "▀": True, "▄": False, " ": False}
    bottom = {"█": True, "▀": False, "▄": True, " ": False}
    grid = []
    for line in lines:
        line = line.ljust(width)
        grid.append([top[ch] for ch in line])
        grid.append([bottom[ch] for ch in line])
    border = [[False] * (width + 8) for _ in range(4)]
    return border + [[False] * 4 + row + [False] * 4 for row in grid] + border


def svg_modules(text):
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', text).group(1))
    grid = [[False] * size for _ in range(size)]
    for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", text):
        grid[int(y)][int(x)] = True
    return grid


def test_qr_codes_decode_to_exactly_the_printed_uri(host, users, enroll_config):
    alice = users[0]
    images = os.path.join(host.directory, "images")
    os.mkdir(images)
    os.chmod(images, 0o777)  # the command runs as alice
    png, svg = os.path.join(images, "qr.png"), os.path.join(images, "qr.svg")
    settle()
    enrollment = Enrollment(alice, "--name", "Phone", "--config", enroll_config, "--qr", "terminal",
                            "--qr-png", png, "--qr-svg", svg)
    assert enrollment.answer(code(enrollment.device)) == 0
    printed = enrollment.output  # the QR code follows the URI line, right above the prompt
    assert zbar(png) == enrollment.uri
    assert (os.stat(png).st_mode & 0o777) == 0o600
    # Deflated (zlib): a version-4/5 code at 8 pixels a module is 100 KB or more as raw rows.
    assert os.path.getsize(png) < 4096, os.path.getsize(png)
    terminal_image = os.path.join(images, "terminal.pgm")
    write_pgm(terminal_image, terminal_modules(printed))
    assert zbar(terminal_image) == enrollment.uri
    assert "\x1b[30;107m" in printed  # black on white whatever the terminal's theme
    svg_image = os.path.join(images, "svg.pgm")
    write_pgm(svg_image, svg_modules(open(svg).read()))
    assert zbar(svg_image) == enrollment.uri


def test_no_qr_when_output_is_not_a_terminal_unless_asked(host, users, enroll_config):
    settle()
    enrollment = Enrollment(users[0], "--name", "Phone", "--config", enroll_config)
    assert not any("█" in line or "▀" in line for line in enrollment.printed)
    grouped = next(line for line in enrollment.printed if re.fullmatch(r"  ([A-Z2-7]{4} )+[A-Z2-7]{1,4}\n", line))
    assert grouped.replace(" ", "").strip() in enrollment.uri
    enrollment.answer(code(enrollment.device))


# --- names, list, remove ----------------------------------------------------------------------------

@pytest.mark.parametrize("name,message", [
    ("", "a device name cannot be empty"),
    ("   ", "a device name cannot be empty"),
    ("evil\x07bell", "a device name cannot contain a control or invisible formatting character (found U+0007)"),
    ("PIXEL 8", "there is already a device named 'Pixel 8'"),
    ("x" * 65, "a device name can be at most 64 characters"),
])
def test_bad_device_names_are_refused(host, users, enroll_config, name, message):
    alice = users[0]
    link(alice, enroll_config)
    result = run_enroll(alice, "add", "--name", name, "--config", enroll_config)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_name_asked_for_when_not_given(host, users, enroll_config):
    alice = users[0]
    settle()
    process = subprocess.Popen(["runuser", "-u", alice.pw_name, "--", ENROLL, "--config", enroll_config],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdin.write("Tablet\n")
    process.stdin.flush()
    printed = ""
    while "otpauth://" not in printed:
        printed += process.stdout.readline()
    secret = re.search(r"secret=([A-Z2-7]+)", printed).group(1)
    device = {"secret": base64.b32decode(secret + "=" * (-len(secret) % 8)), "algorithm": "SHA1", "digits": 6, "period": 30}
    out, err = process.communicate(code(device) + "\n", timeout=30)
    assert process.returncode == 0, err
    assert "Device name" in printed and "Linked 'Tablet'." in out


def test_list_and_remove_round_trip(host, users, enroll_config):
    alice = users[0]
    link(alice, enroll_config, "Pixel 8")
    link(alice, enroll_config, "iPad")
    listing = run_enroll(alice, "list", "--config", enroll_config)
    assert listing.returncode == 0
    assert "Pixel 8" in listing.stdout and "iPad" in listing.stdout and "Recovery codes left: 0" in listing.stdout
    refused = run_enroll(alice, "remove", "ipad", "--config", enroll_config)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    missing = run_enroll(alice, "remove", "Nokia", "--yes", "--config", enroll_config)
    assert missing.returncode != 0 and "there is no device named 'Nokia'" in missing.stderr and "'iPad'" in missing.stderr
    removed = run_enroll(alice, "remove", "ipad", "--yes", "--config", enroll_config)
    assert removed.returncode == 0 and "Removed 'iPad'." in removed.stdout
    names = [d["name"] for d in json.loads(run_enroll(alice, "list", "--json", "--config", enroll_config).stdout)["devices"]]
    assert names == ["Pixel 8"]


def test_recovery_codes_work_once_through_pam(host, users, enroll_config):
    alice = users[0]
    link(alice, enroll_config)
    result = run_enroll(alice, "recovery-codes", "--config", enroll_config)
    assert result.returncode == 0, result.stderr
    codes = re.findall(r"\b[a-z2-7]{5}-[a-z2-7]{5}\b", result.stdout)
    assert len(codes) == 10 and len(set(codes)) == 10
    text = open(os.path.join(alice.pw_dir, ".engage2fa")).read()
    assert text.count("recovery hash=") == 10
    assert not any(c in text or c.replace("-", "") in text for c in codes)
    assert host.authenticate(alice, codes[2]).result == "success"
    assert host.authenticate(alice, codes[2]).result == "auth_err"
    listing = json.loads(run_enroll(alice, "list", "--json", "--config", enroll_config).stdout)
    assert listing["recovery_codes_left"] == 9
    again = run_enroll(alice, "recovery-codes", "--config", enroll_config)
    assert "The 9 unused codes you had before no longer work." in again.stdout
    assert host.authenticate(alice, codes[3]).result == "auth_err"


def test_case_twin_names_log_in_and_enroll_refuses_to_edit(host, users, enroll_config):
    """Names equal but for case are a rule of naming devices (enrollment's), not of logging in: a file edited
    by hand to hold two still logs in with either device; enroll's list and status flag it, and its
    changes refuse it and change nothing."""
    alice = users[0]
    link(alice, enroll_config, "Pixel 8")
    ipad = link(alice, enroll_config, "iPad")
    path = os.path.join(alice.pw_dir, ".engage2fa")
    with open(path) as handle:
        text = handle.read()
    assert " name=iPad\n" in text
    with open(path, "w") as handle:
        handle.write(text.replace(" name=iPad\n", " name=PIXEL%208\n"))
    edited = open(path, "rb").read()
    assert host.authenticate(alice, code(ipad.device, offset_steps=1)).result == "success"
    warning = "duplicate device 'PIXEL 8' (the same name as 'Pixel 8', ignoring case)"
    listing = run_enroll(alice, "list", "--config", enroll_config)
    assert listing.returncode == 0 and "PIXEL 8" in listing.stdout and warning in listing.stderr, (listing.stdout, listing.stderr)
    status = run_enroll(alice, "status", "--config", enroll_config)
    assert status.returncode == 0 and warning in status.stderr, status.stderr
    for change in (("remove", "pixel 8", "--yes"), ("add", "--name", "Tablet")):
        refused = run_enroll(alice, *change, "--config", enroll_config)
        assert refused.returncode != 0 and warning in refused.stderr and "Nothing was changed" in refused.stderr, (change, refused.stderr)
    assert open(path, "rb").read() == edited


# --- errors -------------------------------------------------------------------------------------------

def test_unsafe_device_file_gets_the_fix_in_the_message(host, users, enroll_config):
    alice = users[0]
    link(alice, enroll_config)
    path = os.path.join(alice.pw_dir, ".engage2fa")
    os.chmod(path, 0o644)
    result = run_enroll(alice, "list", "--config", enroll_config)
    assert result.returncode != 0
    assert f"Fix it with: chmod 600 {path}" in result.stderr


def test_invalid_policy_file_is_reported_with_file_and_line(host, users):
    host.configure("window = 99\n")
    result = run_enroll(users[0], "list", "--config", host.config_path)
    assert result.returncode != 0
    assert f"{host.config_path}:2: error: window must be" in result.stderr


def test_root_can_enroll_for_a_user_and_users_cannot_act_for_others(host, users, enroll_config):
    alice, bob = users[0], users[1]
    settle()
    enrollment = Enrollment(bob, "--name", "Phone", "--config", enroll_config, "--user", bob.pw_name, as_root=True)
    assert enrollment.answer(code(enrollment.device)) == 0, enrollment.errors
    stat = os.stat(os.path.join(bob.pw_dir, ".engage2fa"))
    assert (stat.st_uid, stat.st_mode & 0o777) == (bob.pw_uid, 0o600)
    result = run_enroll(alice, "list", "--user", bob.pw_name, "--config", enroll_config)
    assert result.returncode != 0 and "only root can act for another user" in result.stderr


def test_enroll_under_sudo_says_it_acts_for_root_and_points_at_user(host, users, enroll_config):
    alice = users[0]
    # What sudo leaves for the command it runs as root: SUDO_USER names who typed it.
    under_sudo = subprocess.run(["env", f"SUDO_USER={alice.pw_name}", ENROLL, "list", "--config", enroll_config],
                                capture_output=True, text=True, timeout=60)
    assert under_sudo.returncode == 0, under_sudo.stderr
    assert (f"Warning: run with sudo, this acts for root, not for {alice.pw_name}. For your own devices run "
            f"engage2fa-enroll without sudo; for another user's, add --user NAME (e.g. --user {alice.pw_name}).") in under_sudo.stderr
    for command in (["env", f"SUDO_USER={alice.pw_name}", ENROLL, "list", "--user", alice.pw_name, "--config", enroll_config],
                    ["env", "-u", "SUDO_USER", ENROLL, "list", "--config", enroll_config]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "Warning" not in result.stderr, result
    # Root's enrollment says whose account the device went to.
    settle()
    enrollment = Enrollment(alice, "--name", "Phone", "--config", enroll_config, "--user", alice.pw_name, as_root=True)
    assert enrollment.answer(code(enrollment.device)) == 0, enrollment.errors
    assert f"Linked 'Phone' for {alice.pw_name}." in enrollment.output


def test_status_before_start_and_when_active(host, users):
    alice = users[0]
    start = date_in(3)
    host.configure("", start=start)
    result = run_enroll(alice, "status", "--config", host.config_path)
    assert f"becomes mandatory on {start} (in 3 days)" in result.stdout, result
    host.activate()
    link(alice, host.config_path)
    result = run_enroll(alice, "status", "--config", host.config_path)
    assert "Two-factor authentication is active" in result.stdout and "1 linked device" in result.stdout


def test_version_and_help():
    assert subprocess.run([ENROLL, "--version"], capture_output=True, text=True).stdout.strip() == "0.1.0"
    for sub in ["add", "list", "remove", "recovery-codes", "status"]:
        result = subprocess.run([ENROLL, sub, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "--config" in result.stdout
