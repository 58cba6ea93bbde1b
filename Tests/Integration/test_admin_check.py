"""engage2fa-admin check when the policy file is not there: never "not configured" and exit 0."""

import os
import subprocess
import tempfile

from conftest import ADMIN, run_admin

DEFAULT_POLICY = "/etc/engage2fa.conf"
DEFAULT_STATE = "/var/lib/engage2fa"


def test_check_with_a_config_that_does_not_exist_is_an_error(tmp_path):
    for missing in (tmp_path / "engage2fa.conf", tmp_path / "typo" / "engage2fa.conf"):
        result = run_admin("check", "--config", str(missing))
        assert result.returncode == 1, (missing, result.stdout, result.stderr)
        assert f"{missing}: no such file" in result.stderr, result.stderr
        assert "not configured" not in result.stdout + result.stderr, result.stdout


def run_without_the_default_policy(tmp_path, *arguments):
    """engage2fa-admin in a private mount namespace where /etc/engage2fa.conf does not exist (an overlay
    on /etc with the file removed in its upper layer) and the default state directory is empty: the
    machine's /etc and /var/lib/engage2fa are never changed."""
    scratch = tempfile.mkdtemp(prefix="overlay-", dir=tmp_path)
    hide_state = f"mount -t tmpfs -o mode=0755 none {DEFAULT_STATE} && " if os.path.isdir(DEFAULT_STATE) else ""
    script = (f"mount -t tmpfs none {scratch} && mkdir {scratch}/upper {scratch}/work && "
              f"mount -t overlay overlay -o lowerdir=/etc,upperdir={scratch}/upper,workdir={scratch}/work /etc && "
              f"rm -f {DEFAULT_POLICY} && test ! -e {DEFAULT_POLICY} && {hide_state}"
              f'exec "$0" "$@"')
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, ADMIN, *arguments],
                          capture_output=True, text=True, timeout=60)


def test_check_without_the_default_policy_file_says_so_and_fails(tmp_path):
    result = run_without_the_default_policy(tmp_path, "check")
    assert result.returncode == 1, (result.stdout, result.stderr)
    output = result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"no policy file at {DEFAULT_POLICY}", output
    # Then what the module does without the file: before any activation, nothing.
    assert "2FA is not configured" in lines[1], output
    # The same with --config naming the default path.
    result = run_without_the_default_policy(tmp_path, "check", "--config", DEFAULT_POLICY)
    assert result.returncode == 1 and f"no policy file at {DEFAULT_POLICY}" in result.stdout + result.stderr, result


def test_check_of_a_group_writable_policy_file_names_the_rule_it_breaks(tmp_path):
    """A policy file may be 644 (only its owner may write it): a 664 one is refused with that rule and
    its fix, not with the private files' "expected 600"."""
    policy = tmp_path / "engage2fa.conf"
    policy.write_text("start_date = 2020-01-01\n")
    os.chmod(policy, 0o644)
    result = run_admin("check", "--config", str(policy))
    assert "cannot use the policy file" not in result.stderr, result.stderr
    os.chmod(policy, 0o664)
    result = run_admin("check", "--config", str(policy))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"{policy}: mode 664 lets group or others write to it (only its owner may: chmod go-w)" in result.stderr, result.stderr
    assert "expected 600" not in result.stderr, result.stderr
