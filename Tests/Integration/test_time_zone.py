"""Dates without an offset are 00:00 in the system time zone (/etc/localtime), whatever TZ the caller
sets: through real setuid sudo, a user's TZ neither delays a deadline that has passed nor brings the
start date forward. (Issue 13, item E.)

Each command runs in its own mount namespace in which the file /etc/localtime resolves to is
bind-mounted over by another zone: the module sees that system zone, and nothing else on the machine
(other test sessions included) does."""

import datetime
import os
import shutil
import subprocess
import uuid
import zoneinfo

import pexpect
import pytest

from conftest import ADMIN, MODULE, Outcome

# What a caller could put in TZ. glibc honours rule strings (and zone files under TZDIR) even in
# setuid programs; offsets beyond 24 h are clamped to 24 h.
TZ_LATER = ["<-167>+167", "<-24>+24", "<-23>+23:59:59", "Pacific/Pago_Pago", ":Etc/GMT+12",
            "EST5EDT", "UTC0", ":/etc/passwd", "../../../../etc/passwd", "garbage,,,M13", ""]
TZ_EARLIER = ["<+24>-24", "<+14>-14", "Pacific/Kiritimati", ":Etc/GMT-14", "<+20>-20<+21>,M1.1.0,M12.5.0/167",
              "UTC0", ":/etc/passwd"]

SYSTEM_ZONE_TARGET = os.path.realpath("/etc/localtime")
ZONEINFO = "/usr/share/zoneinfo"


def in_zone(zone, argv, zone_file=None):
    """argv run with `zone` (or the file `zone_file`) as the system time zone, in a private mount namespace."""
    if not os.path.isfile(SYSTEM_ZONE_TARGET):
        pytest.skip("/etc/localtime does not name a file to bind another zone over")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
            zone_file or os.path.join(ZONEINFO, zone), SYSTEM_ZONE_TARGET, *argv]


def clean_environment():
    environment = dict(os.environ)
    environment.pop("TZ", None)
    return environment


def password_of(user):
    return "pw-" + user.pw_name + "-Tz1"


def local_midnight(zone, day):
    return datetime.datetime.combine(day, datetime.time(0), zoneinfo.ZoneInfo(zone)).timestamp()


def today_in(zone):
    return datetime.datetime.now(zoneinfo.ZoneInfo(zone)).date()


def pamtester(host, zone, user, zone_file=None):
    """A login through the test Host's PAM service (no TZ in the environment), with `zone` as system zone."""
    result = subprocess.run(in_zone(zone, ["pamtester", "-v", host.service, user.pw_name, "authenticate"], zone_file),
                            input="", capture_output=True, text=True, timeout=60, env=clean_environment())
    return Outcome(result)


@pytest.fixture
def sudo_policy(host, users):
    """A PAM service for sudo (pam_unix + the module, with the Host's policy) and a sudoers file: `allowed`
    may run anything, `outsider` is not in sudoers (only its Defaults name the PAM service)."""
    service = "e2fa-tz-" + uuid.uuid4().hex[:8]
    allowed, outsider = users[7], users[8]
    pam_path = f"/etc/pam.d/{service}"
    with open(pam_path, "w") as handle:
        handle.write(f"auth required pam_unix.so\nauth required {MODULE} config={host.config_path}\n"
                     "account required pam_unix.so\nsession required pam_permit.so\n")
    sudoers = f"/etc/sudoers.d/{service}"
    options = f"pam_service={service}, passwd_tries=1, !lecture, timestamp_timeout=0, !mail_no_user, !mail_badpass"
    with open(sudoers, "w") as handle:
        handle.write(f"Defaults:{allowed.pw_name} {options}\nDefaults:{outsider.pw_name} {options}\n"
                     f"{allowed.pw_name} ALL=(ALL) ALL\n")
    os.chmod(sudoers, 0o440)
    for user in (allowed, outsider):
        subprocess.run(["chpasswd"], input=f"{user.pw_name}:{password_of(user)}\n", text=True, check=True)
    yield allowed, outsider
    os.unlink(sudoers)
    os.unlink(pam_path)


def sudo_with_tz(zone, user, tz):
    """`TZ=tz sudo -S -k true` (no TZ at all if tz is None) as `user`, with `zone` as the system zone; the password is typed, no code.
    Returns (exit status, transcript, whether a code was asked for)."""
    environment = [] if tz is None else ["env", f"TZ={tz}"]
    argv = in_zone(zone, ["runuser", "-u", user.pw_name, "--", *environment, "sudo", "-S", "-k", "true"])
    child = pexpect.spawn(argv[0], argv[1:], timeout=30, encoding="utf-8", env=clean_environment())
    transcript = []
    child.expect("password for")
    transcript.append(child.before + child.after)
    child.sendline(password_of(user))
    index = child.expect(["Verification code: ", pexpect.EOF])
    transcript.append(child.before)
    if index == 0:
        child.sendline("000000")
        child.expect(pexpect.EOF)
        transcript.append(child.before)
    child.close()
    return child.exitstatus, "".join(transcript), index == 0


def test_a_deadline_that_passed_today_stays_passed_whatever_tz_sudo_is_given(host, sudo_policy):
    """An unenrolled user whose personal deadline is today (date-only): past 00:00 in the system zone,
    so refused. A zone east of UTC (+14): the later any TZ puts midnight, the more a bypass would show."""
    user, _ = sudo_policy
    zone = "Pacific/Kiritimati"
    deadline = today_in(zone)
    host.activate(f"[deadlines]\n{user.pw_name} = {deadline.isoformat()}\n")
    status, transcript, asked = sudo_with_tz(zone, user, None)
    assert status != 0 and not asked, f"without TZ: {transcript!r}"
    got_in = {}
    for tz in TZ_LATER:
        status, transcript, asked = sudo_with_tz(zone, user, tz)
        if status == 0 or asked:
            got_in[tz] = transcript
    assert not got_in, f"deadline {deadline} (system zone {zone}) moved by TZ: {sorted(got_in)}; {got_in!r}"


def test_tz_given_to_sudo_by_a_user_not_in_sudoers_does_not_start_2fa_early(host, users, sudo_policy):
    """start_date is tomorrow in the system zone (date-only). A user who may not even use sudo sets TZ
    so that tomorrow's midnight is already past: 2FA must not become active (no activation recorded),
    so an unenrolled user's login afterwards is still let through, and `check` does not say active."""
    _, outsider = sudo_policy
    bystander = users[9]
    # A zone west of UTC: tomorrow's midnight there is furthest from the earliest a TZ can make it.
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    for zone in ["Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage"]:
        start = today_in(zone) + datetime.timedelta(days=1)
        if local_midnight(zone, start) - now >= 15 * 60:
            break
    host.configure("", start=start.isoformat())

    before = pamtester(host, zone, bystander)
    assert before.result == "ignored", before

    for tz in TZ_EARLIER:
        status, transcript, asked = sudo_with_tz(zone, outsider, tz)
        assert not asked, f"TZ={tz!r}: a code was asked for before start_date: {transcript!r}"
        after = pamtester(host, zone, bystander)
        assert after.result == "ignored", \
            f"after TZ={tz!r} sudo by a user not in sudoers, start_date {start} ({zone}) is already in force: {after!r}"

    check = subprocess.run(in_zone(zone, [ADMIN, "check", "--config", host.config_path]),
                           capture_output=True, text=True, timeout=60, env=clean_environment())
    assert "2FA is active" not in check.stdout, check.stdout


def pick_discriminating_date():
    """A zone and a date whose 00:00 is past in that zone but not yet in UTC, or the other way round
    (each by at least 10 minutes): a module that read UTC, or any zone but the system's, would answer
    differently."""
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    margin = 10 * 60
    for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata", "America/Sao_Paulo", "Asia/Tokyo",
                 "America/Los_Angeles", "Europe/Amsterdam", "Australia/Lord_Howe"]:
        today = today_in(zone)
        for day in (today - datetime.timedelta(days=1), today, today + datetime.timedelta(days=1)):
            in_zone_time = local_midnight(zone, day)
            in_utc = datetime.datetime.combine(day, datetime.time(0), datetime.timezone.utc).timestamp()
            if abs(in_zone_time - now) >= margin and abs(in_utc - now) >= margin \
                    and (in_zone_time <= now) != (in_utc <= now):
                return zone, day, in_zone_time <= now
    raise AssertionError("no zone and date tell the system zone from UTC now")


def test_the_module_reads_the_system_zone(host, users):
    """The control: with no TZ at all, a date-only deadline is 00:00 in /etc/localtime's zone."""
    user = users[10]
    zone, day, passed = pick_discriminating_date()
    host.activate(f"[deadlines]\n{user.pw_name} = {day.isoformat()}\n")
    outcome = pamtester(host, zone, user)
    assert outcome.result == ("auth_err" if passed else "ignored"), (zone, day.isoformat(), outcome)


def test_a_system_zone_file_others_could_have_written_is_not_used(host, users, tmp_path):
    """The same zone file, but owned by nobody: the module does not trust it and dates are in UTC."""
    user = users[11]
    zone, day, passed = pick_discriminating_date()
    untrusted = tmp_path / "zone"
    shutil.copyfile(os.path.join(ZONEINFO, zone), untrusted)
    os.chmod(untrusted, 0o644)
    os.chown(untrusted, 65534, 65534)
    host.activate(f"[deadlines]\n{user.pw_name} = {day.isoformat()}\n")
    # In UTC the deadline is on the other side of now.
    outcome = pamtester(host, zone, user, zone_file=str(untrusted))
    assert outcome.result == ("ignored" if passed else "auth_err"), (zone, day.isoformat(), outcome)
    trusted = pamtester(host, zone, user)
    assert trusted.result == ("auth_err" if passed else "ignored"), (zone, day.isoformat(), trusted)
