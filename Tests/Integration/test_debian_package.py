"""The .deb: built from the source tree with dpkg-buildpackage, checked by lintian, installed, used
for a real PAM login with the toolchain hidden, removed and purged."""

import glob
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import ROOT, DeviceSet, code, settle

MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True).stdout.strip()
INSTALLED_MODULE = f"/lib/{MULTIARCH}/security/pam_engage2fa.so"
BINARIES = ["/usr/bin/engage2fa-enroll", "/usr/sbin/engage2fa-admin", INSTALLED_MODULE]


def run(*command, **options):
    return subprocess.run(command, capture_output=True, text=True, **options)


@pytest.fixture(scope="module")
def package():
    """Builds the package from a copy of the source tree (dpkg-buildpackage writes next to the tree)."""
    if shutil.which("dpkg-buildpackage") is None:
        pytest.skip("dpkg-dev and debhelper are not installed (scripts/install-deps installs them)")
    work = tempfile.mkdtemp(prefix="engage2fa-deb-")
    source = os.path.join(work, "engage2fa")
    files = run("git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").stdout.split("\0")
    for name in filter(None, files):
        if os.path.exists(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(source, name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(source, name), follow_symlinks=False)
    build = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=source)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    (deb,) = glob.glob(os.path.join(work, "libpam-engage2fa_*.deb"))
    yield deb
    run("apt-get", "purge", "-y", "libpam-engage2fa")
    shutil.rmtree(work, ignore_errors=True)


def test_lintian_reports_no_errors(package):
    result = run("lintian", "--no-tag-display-limit", package)
    problems = [line for line in result.stdout.splitlines() if line.startswith(("E:", "W:"))]
    assert problems == [], result.stdout


def test_install_use_remove_purge(package, users):
    install = run("apt-get", "install", "-y", "--no-install-recommends", package)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    # What the package put where, and that installing it locks nobody out.
    for path in BINARIES + ["/etc/engage2fa.conf", "/usr/share/pam-configs/engage2fa"]:
        assert os.path.exists(path), path
    state = os.stat("/var/lib/engage2fa")
    assert (state.st_uid, state.st_mode & 0o777) == (0, 0o700)
    check = run("/usr/sbin/engage2fa-admin", "check")
    assert check.returncode == 0 and "2FA is not configured" in check.stdout, check.stdout + check.stderr
    assert "pam_engage2fa" not in open("/etc/pam.d/common-auth").read()
    assert "/etc/engage2fa.conf" in run("dpkg-query", "--showformat=${Conffiles}", "--show", "libpam-engage2fa").stdout

    # Nothing under the Swift toolchain is needed: no RUNPATH, and with /opt/swift hidden
    # (a private mount namespace) the commands run and a login through libpam succeeds.
    for binary in BINARIES:
        dynamic = run("readelf", "-d", binary).stdout
        assert "RUNPATH" not in dynamic and "RPATH" not in dynamic, binary
        libraries = run("ldd", binary).stdout
        assert "not found" not in libraries and "swift" not in libraries.lower(), libraries

    alice = users[0]
    directory = tempfile.mkdtemp(prefix="engage2fa-pkg-")
    os.chmod(directory, 0o755)
    config = os.path.join(directory, "engage2fa.conf")
    with open(config, "w") as handle:
        handle.write(f"start_date = 2020-01-01\nstate_dir = {directory}/state\n")
    service = "e2fa-pkg-" + uuid.uuid4().hex[:8]
    with open(f"/etc/pam.d/{service}", "w") as handle:
        handle.write(f"auth required pam_engage2fa.so config={config}\naccount required pam_permit.so\n")
    devices = DeviceSet(alice)
    phone = devices.add("Phone")
    devices.write()
    try:
        settle()
        hidden = ("mount -t tmpfs none /opt/swift && "
                  f"engage2fa-enroll --help >/dev/null && engage2fa-admin --help >/dev/null && "
                  f"echo {code(phone)} | pamtester {service} {alice.pw_name} authenticate")
        result = run("unshare", "--mount", "sh", "-c", hidden)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "successfully authenticated" in result.stdout + result.stderr
    finally:
        os.unlink(f"/etc/pam.d/{service}")
        shutil.rmtree(directory, ignore_errors=True)

    # remove keeps the policy and everyone's devices; purge removes the policy and the state, not the devices.
    assert run("apt-get", "remove", "-y", "libpam-engage2fa").returncode == 0
    assert not os.path.exists(INSTALLED_MODULE)
    assert os.path.exists("/etc/engage2fa.conf") and os.path.exists(devices.path)
    assert run("apt-get", "purge", "-y", "libpam-engage2fa").returncode == 0
    assert not os.path.exists("/etc/engage2fa.conf") and not os.path.exists("/var/lib/engage2fa")
    assert os.path.exists(devices.path)


def test_man_pages_render_without_warnings():
    pages = sorted(glob.glob(os.path.join(ROOT, "man", "*.[0-9]")))
    assert [os.path.basename(p) for p in pages] == ["engage2fa-admin.8", "engage2fa-enroll.1", "engage2fa.conf.5", "pam_engage2fa.8"]
    for page in pages:
        groff = run("groff", "-ww", "-z", "-t", "-man", page, env={**os.environ, "LC_ALL": "C.UTF-8"})
        assert groff.returncode == 0 and groff.stderr == "", (page, groff.stderr)
        if shutil.which("mandoc"):
            lint = run("mandoc", "-T", "lint", "-W", "warning", page)
            assert lint.stdout == "" and lint.stderr == "", (page, lint.stdout)
