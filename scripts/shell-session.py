#!/usr/bin/env python3
"""A scripted session with `make shell` (scripts/shell.sh) through a
pseudo-terminal, as a learner would type it: each step types a line (or
a control key) and waits for what a user would look for on the screen.
One boot. Prints the transcript; exit status 0 when every step saw what it
expected, 1 with the step that did not.

    python3 scripts/shell-session.py [runner arguments...]
"""

import os
import pty
import select
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = b"pageos:/# "

# (what to type, what must then appear on the screen, seconds to wait).
# A control key is typed only after the screen has been quiet for
# JOB_SETTLE seconds: the job it is meant for must be the terminal's
# foreground by then, and nothing on the screen says when the shell has
# done that (tcsetpgrp after fork, or after `fg`). A ^C typed before goes
# to the shell, which ignores it, as it would for a person that quick.
JOB_SETTLE = 2.0
QUIET = 0.5

STEPS = [
    (None, PROMPT, 120),
    # Typed characters are echoed, the command runs, the prompt comes back.
    (b"echo hi $((6 * 7))", b"echo hi $((6 * 7))", 20),
    (b"\r", b"hi 42", 20),
    (None, PROMPT, 20),
    # ^C: echoed as ^C, SIGINT ends the foreground job, the shell goes on.
    (b"sleep 30\r", b"sleep 30", 20),
    (b"\x03", b"^C", 10),
    (b"echo status $?\r", b"status 130", 20),
    # ^Z stops the job (job control), fg continues it, ^C ends it.
    (b"sleep 40\r", b"sleep 40", 20),
    (b"\x1a", b"Stopped", 15),
    (b"fg\r", b"sleep 40", 15),
    (b"\x03", b"^C", 10),
    (b"echo after $?\r", b"after 130", 20),
    # A pipeline, and a program reading the terminal until ^D.
    (b"echo one two | wc -w\r", b"\n2", 20),
    (b"cat\r", b"cat", 10),
    (b"typed line\r", b"typed line\r\r\ntyped line", 10),
    (b"\x04", PROMPT, 10),
    # The learner's view of its own memory.
    (b"grep stack /proc/self/maps\r", b"[stack]", 20),
    (b"exit\r", b"init exited", 30),
]


def main():
    args = sys.argv[1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("sh", ["sh", os.path.join(ROOT, "scripts", "shell.sh")] + args)
    screen = b""
    failed = None

    def read_some(timeout):
        """What the screen shows next (b"" after `timeout` seconds of quiet)."""
        nonlocal screen
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(fd, 4096)
        except OSError:
            return None
        # Answer the shell's cursor-position query as a terminal would
        # (ash asks at every prompt, and waits a moment for the answer).
        for _ in range(data.count(b"\x1b[6n")):
            os.write(fd, b"\x1b[1;11R")
        screen += data
        return data

    start = 0
    for typed, expect, secs in STEPS:
        if typed is not None:
            # A person reads the screen before typing: let it settle.
            quiet = JOB_SETTLE if typed in (b"\x03", b"\x1a") else QUIET
            while read_some(quiet):
                pass
        if typed is not None:
            start = len(screen)
            os.write(fd, typed)
        # (A step that types nothing looks on from the last one's start.)
        deadline = time.time() + secs
        while expect not in screen[start:] and time.time() < deadline:
            if read_some(0.2) is None:
                break
        if expect not in screen[start:]:
            failed = (typed, expect)
            break
    end = time.time() + 30
    while time.time() < end:
        try:
            wpid, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            break
        if wpid:
            break
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                screen += os.read(fd, 4096)
            except OSError:
                pass
    sys.stdout.write(screen.decode(errors="replace"))
    if failed:
        print("\nshell-session: after typing %r, never saw %r" % failed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
