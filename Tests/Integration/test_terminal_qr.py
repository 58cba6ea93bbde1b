"""The QR code engage2fa-enroll draws on a terminal, as a person sees it: the command runs on a real
pseudo-terminal of a given size, pyte (a terminal emulator) keeps what is on its screen when the prompt
appears, PIL paints that screen in a light and in a dark theme, and zbarimg decodes the picture."""

import base64
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

import pyte  # scripts/install-deps installs pyte and Pillow
import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import ENROLL, code, settle

PROMPT = b"Verification code: "
CELL_WIDTH, CELL_HEIGHT = 8, 16  # a terminal cell is about twice as tall as wide: half blocks are square

# Each theme's default colours (what a cell without colour attributes shows) and the palette of the 16
# ANSI colours, in the styles of common terminals.
PALETTE = {
    "black": (0, 0, 0), "red": (205, 0, 0), "green": (0, 205, 0), "brown": (205, 205, 0),
    "blue": (0, 0, 238), "magenta": (205, 0, 205), "cyan": (0, 205, 205), "white": (229, 229, 229),
    "brightblack": (127, 127, 127), "brightwhite": (255, 255, 255),
}
THEMES = {
    "light": {"fg": (0, 0, 0), "bg": (255, 255, 255)},
    "dark": {"fg": (229, 229, 229), "bg": (30, 30, 30)},
}


class Terminal:
    """engage2fa-enroll add on a pseudo-terminal COLUMNS×LINES, as the user."""

    def __init__(self, user, columns, lines, *arguments):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TERM": "xterm-256color", "LANG": "C.UTF-8"}
        self.process = subprocess.Popen(["runuser", "-u", user.pw_name, "--", ENROLL, "add", *arguments],
                                        stdin=slave, stdout=slave, stderr=slave, env=environment,
                                        start_new_session=True)
        os.close(slave)
        self.columns, self.lines = columns, lines
        self.output = b""

    def read_until(self, marker, timeout=60):
        deadline = time.monotonic() + timeout
        while marker not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {marker!r} in {self.output!r}"
            if select.select([self.master], [], [], remaining)[0]:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the command ended
                    chunk = b""
                assert chunk, f"the command ended before {marker!r}: {self.output!r}"
                self.output += chunk

    def screen(self):
        """What the terminal shows now: its LINES rows of cells."""
        screen = pyte.Screen(self.columns, self.lines)
        pyte.ByteStream(screen).feed(self.output)
        return screen

    def uri(self):
        plain = re.sub(rb"\x1b\[[0-9;]*m", b"", self.output).decode()
        return re.search(r"^otpauth://\S+", plain, re.M).group(0)

    def answer(self, text):
        """Types a line (None: end of input, ^D) and returns the exit status."""
        os.write(self.master, b"\x04" if text is None else text.encode() + b"\r")
        rest = b""
        while True:
            if not select.select([self.master], [], [], 60)[0]:
                break
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
        self.output += rest
        os.close(self.master)
        return self.process.wait(timeout=60)


def paint(screen, theme, path):
    """The screen as a picture: each cell's character in its colours, half and full blocks exactly,
    other characters in the default bitmap font."""
    colours = THEMES[theme]
    image = Image.new("RGB", (screen.columns * CELL_WIDTH, screen.lines * CELL_HEIGHT), colours["bg"])
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for y in range(screen.lines):
        row = screen.buffer[y]
        for x in range(screen.columns):
            cell = row[x]
            fg = colours["fg"] if cell.fg == "default" else PALETTE[cell.fg]
            bg = colours["bg"] if cell.bg == "default" else PALETTE[cell.bg]
            if cell.reverse:
                fg, bg = bg, fg
            left, top = x * CELL_WIDTH, y * CELL_HEIGHT
            draw.rectangle([left, top, left + CELL_WIDTH - 1, top + CELL_HEIGHT - 1], fill=bg)
            half = CELL_HEIGHT // 2
            if cell.data == "█":
                draw.rectangle([left, top, left + CELL_WIDTH - 1, top + CELL_HEIGHT - 1], fill=fg)
            elif cell.data == "▀":
                draw.rectangle([left, top, left + CELL_WIDTH - 1, top + half - 1], fill=fg)
            elif cell.data == "▄":
                draw.rectangle([left, top + half, left + CELL_WIDTH - 1, top + CELL_HEIGHT - 1], fill=fg)
            elif cell.data.strip():
                draw.text((left, top + 2), cell.data, fill=fg, font=font)
    image.save(path)


def decode(path):
    result = subprocess.run(["zbarimg", "--quiet", "--raw", path], capture_output=True, text=True)
    return result.returncode, result.stdout.strip()


@pytest.mark.parametrize("label", [None, "%u@build-server-01.example"])
def test_default_qr_decodes_from_the_visible_80x24_screen_in_light_and_dark_themes(host, users, tmp_path, label):
    alice = users[0]
    host.activate("" if label is None else f"label = {label}\n")
    settle()
    terminal = Terminal(alice, 80, 24, "--name", "Phone", "--config", host.config_path)
    terminal.read_until(PROMPT)
    screen = terminal.screen()
    uri = terminal.uri()
    # The prompt is on the screen's last line, the cursor after it; no warning.
    assert screen.display[-1].rstrip() == PROMPT.decode().rstrip(), screen.display
    assert "Warning" not in "\n".join(screen.display)
    for theme in THEMES:
        picture = str(tmp_path / f"screen-{theme}.png")
        paint(screen, theme, picture)
        assert decode(picture) == (0, uri), (theme, screen.display)
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    device = {"secret": base64.b32decode(secret + "=" * (-len(secret) % 8)), "algorithm": "SHA1", "digits": 6, "period": 30}
    assert terminal.answer(code(device)) == 0, terminal.output


def test_a_qr_code_that_does_not_fit_is_said_at_the_prompt(host, users, tmp_path):
    """Too narrow or too short: the warning is under the QR code, next to the prompt, not above it where
    it scrolls away."""
    alice = users[0]
    host.activate()
    for columns, lines, words in [(40, 24, "columns wide"), (80, 18, "lines")]:
        terminal = Terminal(alice, columns, lines, "--name", "Phone", "--config", host.config_path)
        terminal.read_until(PROMPT)
        visible = terminal.screen().display
        assert visible[-1].rstrip() == PROMPT.decode().rstrip(), visible
        warning = "\n".join(visible[-4:-1])
        assert "Warning: the terminal" in warning and words in warning and "--qr-png" in warning, visible
        # The screen does not decode: the warning is right.
        picture = str(tmp_path / f"small-{columns}x{lines}.png")
        paint(terminal.screen(), "dark", picture)
        assert decode(picture)[0] != 0
        assert terminal.answer(None) == 1
