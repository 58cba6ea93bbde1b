"""The man pages against the commands they describe: every option each `--help` shows (every subcommand
of both commands) is an entry of OPTIONS in the command's man page, and every page renders at 80 columns without a warning."""

import glob
import os
import re
import subprocess

import pytest

from conftest import ADMIN, ENROLL, ROOT

PAGES = {ENROLL: os.path.join(ROOT, "man", "engage2fa-enroll.1"), ADMIN: os.path.join(ROOT, "man", "engage2fa-admin.8")}


def run(*command, **options):
    return subprocess.run(list(command), capture_output=True, text=True, timeout=60, **options)


def rendered(page, width=80):
    """The page as man shows it on a terminal `width` columns wide, without overstrikes."""
    result = run("man", "--warnings", "-l", page, env={**os.environ, "MANWIDTH": str(width), "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": ""})
    assert result.returncode == 0, result.stderr
    return result


def help_text(binary, *subcommand):
    result = run(binary, *subcommand, "--help")
    assert result.returncode == 0, result
    return result.stdout


def section(text, title):
    """The lines of a help section (`OPTIONS:`, `SUBCOMMANDS:`) up to the next one."""
    match = re.search(rf"^{title}:\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def subcommands(binary):
    names = re.findall(r"^  ([a-z][a-z-]*)", section(help_text(binary), "SUBCOMMANDS"), re.M)
    assert names, help_text(binary)
    return [name for name in names if name != "help"]


def options(text):
    """Every option a help text's OPTIONS section names (`-V, --version`, `--config <path>`)."""
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", "\n".join(
        line.split("  ")[1] if line.startswith("  ") and len(line.split("  ")) > 1 else ""
        for line in section(text, "OPTIONS").splitlines())))


@pytest.mark.parametrize("binary", [ENROLL, ADMIN], ids=["engage2fa-enroll", "engage2fa-admin"])
def test_every_option_in_every_help_is_in_the_man_page(binary):
    page = rendered(PAGES[binary], width=200).stdout
    # Each option is an entry of OPTIONS (a tag line at the entries' indent), not only in SYNOPSIS or prose.
    options_section = re.search(r"^OPTIONS\n(.*?)^\S", page, re.M | re.S).group(1)
    body = "\n".join(line for line in options_section.splitlines() if re.match(r" {7}-", line))
    helps = {"": help_text(binary)} | {name: help_text(binary, name) for name in subcommands(binary)}
    missing = []
    for name, text in helps.items():
        found = options(text)
        assert "--help" in found, (name, text)
        missing += [f"{name or '(top level)'}: {option}" for option in sorted(found) if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", body)]
    assert missing == [], missing


def test_every_subcommand_has_its_place_in_the_man_page():
    for binary, page in PAGES.items():
        text = rendered(page, width=200).stdout
        for name in subcommands(binary):
            assert re.search(rf"^ {{7}}{re.escape(name)}\b", text, re.M), (page, name)


def test_every_page_fits_80_columns_without_warnings():
    pages = sorted(glob.glob(os.path.join(ROOT, "man", "*.[0-9]")))
    assert len(pages) == 5  # with engage2fad(8)
    for page in pages:
        result = rendered(page)
        assert result.stderr == "", (page, result.stderr)
        wide = [line for line in result.stdout.splitlines() if len(line) > 80]
        assert wide == [], (page, wide)
