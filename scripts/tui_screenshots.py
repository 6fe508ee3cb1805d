#!/usr/bin/env python3
"""Screenshots of the console for the README: run `officiant` in tmux at 80x24 on a fresh
rehearsal token, walk the rehearsal ceremony, capture the screen with its colours
(`tmux capture-pane -e`), and draw each capture to PNG (an MVG drawing rendered by
ImageMagick in DejaVu Sans Mono).

    cargo build && python3 scripts/tui_screenshots.py [target/debug/officiant] [assets]

Needs tmux, ImageMagick (`convert`), fonts-dejavu-core and OpenSSH's ssh-keygen,
ssh-agent and ssh-add.
"""

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/officiant"))
OUT = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "assets"))
SOCK = "officiant-shots-%d" % os.getpid()
# The real ImageMagick (a stand-in may shadow it on PATH).
CONVERT = "/usr/bin/convert" if os.path.exists("/usr/bin/convert") else "convert"
W, H = 80, 24

# xterm-ish palette
PALETTE = [
    "#1d1f21", "#cc342b", "#198844", "#c0a000", "#3971ed", "#a36ac7", "#3971ed", "#c5c8c6",
    "#969896", "#ff5f56", "#5af78e", "#f3f99d", "#57c7ff", "#ff6ac1", "#9aedfe", "#ffffff",
]
FG, BG = "#d0d0d0", "#1d1f21"


def tmux(*args, capture=False, check=True):
    r = subprocess.run(["tmux", "-L", SOCK, *args], check=check, capture_output=capture, text=True)
    return r.stdout if capture else None


def screen(colors=False):
    args = ["capture-pane", "-p", "-t", "shots"] + (["-e"] if colors else [])
    return tmux(*args, capture=True)


def wait_for(needle, secs=30):
    t0 = time.time()
    while time.time() - t0 < secs:
        if needle in screen():
            return
        time.sleep(0.1)
    raise SystemExit("%r did not appear:\n%s" % (needle, screen()))


def keys(*k):
    tmux("send-keys", "-t", "shots", *k)


def text(s):
    tmux("send-keys", "-l", "-t", "shots", s)


def color256(n):
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (v, v, v)


def parse(ansi):
    """Cells of (char, fg, bg, bold, dim, underline, reverse) per line."""
    rows = []
    for line in ansi.split("\n")[:H]:
        st = dict(fg=None, bg=None, bold=False, dim=False, ul=False, rev=False)
        cells = []
        for tok in re.split(r"(\x1b\[[0-9;:]*m)", line):
            m = re.fullmatch(r"\x1b\[([0-9;:]*)m", tok)
            if not m:
                for ch in tok:
                    cells.append((ch, dict(st)))
                continue
            codes = [int(c) if c else 0 for c in re.split("[;:]", m.group(1))] or [0]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    st = dict(fg=None, bg=None, bold=False, dim=False, ul=False, rev=False)
                elif c == 1:
                    st["bold"] = True
                elif c == 2:
                    st["dim"] = True
                elif c == 4:
                    st["ul"] = True
                elif c == 7:
                    st["rev"] = True
                elif c == 22:
                    st["bold"] = st["dim"] = False
                elif c == 24:
                    st["ul"] = False
                elif c == 27:
                    st["rev"] = False
                elif 30 <= c <= 37:
                    st["fg"] = PALETTE[c - 30]
                elif 90 <= c <= 97:
                    st["fg"] = PALETTE[c - 90 + 8]
                elif 40 <= c <= 47:
                    st["bg"] = PALETTE[c - 40]
                elif 100 <= c <= 107:
                    st["bg"] = PALETTE[c - 100 + 8]
                elif c == 39:
                    st["fg"] = None
                elif c == 49:
                    st["bg"] = None
                elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                    st["fg" if c == 38 else "bg"] = color256(codes[i + 2])
                    i += 2
                elif c in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
                    st["fg" if c == 38 else "bg"] = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                    i += 4
                i += 1
        rows.append(cells)
    return rows


FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"


def mvg(rows):
    """An ImageMagick MVG drawing: one rectangle per background cell, one glyph per cell."""
    cw, ch, pad = 9, 19, 12
    out = ["viewbox 0 0 %d %d" % (W * cw + 2 * pad, H * ch + 2 * pad),
           "fill '%s' rectangle 0,0 %d,%d" % (BG, W * cw + 2 * pad, H * ch + 2 * pad),
           "font-size 15", "text-antialias 1"]
    for y, cells in enumerate(rows):
        for x, (c, st) in enumerate(cells[:W]):
            fg, bg = st["fg"] or FG, st["bg"]
            if st["rev"]:
                fg, bg = (st["bg"] or BG), (st["fg"] or FG)
            x0, y0 = pad + x * cw, pad + y * ch
            if bg:
                out.append("fill '%s' rectangle %d,%d %d,%d" % (bg, x0, y0, x0 + cw - 1, y0 + ch - 1))
            if st["ul"]:
                out.append("fill '%s' rectangle %d,%d %d,%d" % (fg, x0, y0 + ch - 3, x0 + cw - 1, y0 + ch - 2))
            if c.strip():
                out.append("font '%s'" % (FONT_BOLD if st["bold"] else FONT))
                out.append("fill '%s' fill-opacity %s" % (fg, "0.6" if st["dim"] else "1"))
                glyph = c.replace("\\", "\\\\").replace("'", "\\'")
                out.append("text %d,%d '%s'" % (x0, y0 + 14, glyph))
    return "\n".join(out)


def shot(name):
    time.sleep(0.3)
    rows = parse(screen(colors=True))
    with tempfile.NamedTemporaryFile("w", suffix=".mvg", delete=False) as f:
        f.write(mvg(rows))
    dest = os.path.join(OUT, name + ".png")
    subprocess.run([CONVERT, "mvg:" + f.name, dest], check=True)
    if not os.environ.get("KEEP_MVG"):
        os.unlink(f.name)
    else:
        print("kept", f.name)
    print("wrote", dest)


def main():
    work = tempfile.mkdtemp(prefix="officiant-shots-")
    os.mkdir(os.path.join(work, "ceremonies"))
    shutil.copy(os.path.join(ROOT, "tests/fixtures/tui-rehearsal.toml"), os.path.join(work, "ceremonies/rehearsal.toml"))
    with open(os.path.join(work, "firmware.bin"), "wb") as f:
        f.write(b"\x5a" * 65536)
    tmux("new-session", "-d", "-s", "shots", "-x", str(W), "-y", str(H), "-c", work,
         "env TERM=xterm-256color %s; sleep 600" % BIN)
    try:
        wait_for("Rehearsal: firmware sign")
        keys("Enter"); wait_for("Press Enter to begin")
        keys("Enter"); wait_for("Who is present")
        # The roll call: each person once, with their roles (Space ticks, Enter adds).
        for name, down in [("Alice Admin", 0), ("Walter Witness", 1), ("Wanda Witness", 1)]:
            text(name); keys("Enter"); wait_for("Roles of " + name)
            for _ in range(down):
                keys("Down")
            keys("Space")
            if name == "Wanda Witness":
                shot("console-rollcall")
            keys("Enter"); wait_for("✓ " + name)
        keys("Enter")
        # Sign-offs are picked from the roll call.
        wait_for('administrator signs off "init"'); keys("Enter")
        wait_for('witness signs off "init"'); keys("Enter")
        # The destructive step names the token; its label is typed to go ahead.
        wait_for('Type "officiant-rehearsal"')
        shot("console-confirm")
        text("officiant-rehearsal"); keys("Enter")
        for pin in ["97310", "97310", "246810", "246810"]:
            time.sleep(0.3)
            text(pin); keys("Enter")
        wait_for("✓ done    login", 60)
        wait_for('witness signs off "gen-p256"'); keys("Enter")
        # The result waits for the witness: read aloud, hex and PGP words.
        wait_for("confirms it", 60)
        shot("console-review")
        keys("Enter")
        wait_for('witness signs off "gen-rsa"'); keys("Enter")
        wait_for("elapsed")
        wait_for("confirms it", 300); keys("Enter")
        wait_for("confirms it", 30); keys("Enter")
        wait_for("Ceremony complete", 60)
        wait_for("Transcript head")
        shot("console-ceremony")
        keys("1"); keys("Tab"); wait_for("SHA-256 of public key")
        shot("console-home")
        keys("3"); keys("Down", "Down", "Enter"); text("firm"); keys("Tab", "Enter")
        keys("g"); wait_for("User PIN to sign"); text("246810"); keys("Enter")
        wait_for("Written")
        shot("console-sign")
        tmux("kill-server")
        approvals(work)
    finally:
        tmux("kill-server", check=False)
        shutil.rmtree(work, ignore_errors=True)


def approvals(work):
    """The Approvals screen: a token the shipped signing-policy ceremony set up, a request
    waiting in requests/, approved once already by bob with stock ssh-keygen."""
    shipped = os.path.join(ROOT, "ceremonies")
    token = "sim:" + os.path.join(work, "policy-token")
    subprocess.run([BIN, "run", os.path.join(shipped, "signing-policy.toml"),
                    "--answers", os.path.join(shipped, "signing-policy.answers.toml"),
                    "--backend", token, "--out", os.path.join(work, "policy-out")],
                   check=True, stdout=subprocess.DEVNULL)
    requests = os.path.join(work, "requests")
    os.mkdir(requests)
    req = os.path.join(requests, "release-2.0.json")
    with open(os.path.join(shipped, "rehearsal-secrets/user.pin")) as f:
        pin = f.read().strip()
    subprocess.run([BIN, "request", "create", "--backend", token, "--pin-source", "env:PIN",
                    "--key", "fw-release", "--max-uses", "1", "--valid-for", "8h",
                    "--description", "door controller firmware 2.0 for the field trial",
                    "-o", req, "--transcript", os.path.join(work, "request.jsonl")],
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, PIN=pin))
    bob = os.path.join(work, "approver-bob")
    shutil.copy(os.path.join(shipped, "rehearsal-secrets/approver-bob"), bob)
    os.chmod(bob, 0o600)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", bob, "-n", "officiant-approval", req],
                   check=True, stderr=subprocess.DEVNULL)
    # alice, the approver at this console, has her key in an ssh-agent.
    sock = os.path.join(work, "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        alice = os.path.join(work, "approver-alice")
        shutil.copy(os.path.join(shipped, "rehearsal-secrets/approver-alice"), alice)
        os.chmod(alice, 0o600)
        subprocess.run(["ssh-add", "-q", alice], check=True, env=dict(os.environ, SSH_AUTH_SOCK=sock))
        tmux("new-session", "-d", "-s", "shots", "-x", str(W), "-y", str(H), "-c", work,
             "env TERM=xterm-256color SSH_AUTH_SOCK=%s %s --backend %s; sleep 600" % (sock, BIN, token))
        wait_for("Ceremonies")
        keys("4")
        wait_for("door controller firmware 2.0")
        shot("console-approvals")
    finally:
        agent.kill()


if __name__ == "__main__":
    main()
