#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that a tool's man page and its --help name the same options.

    man_help.py TOOL MANPAGE

The man page is rendered as a reader sees it (groff -man, or man -l), and
every long option ("--name") in the rendered text is compared with those in
TOOL --help. Any option in one but not the other fails the test.
"""
import re
import shutil
import subprocess
import sys

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")


def render(page):
    if shutil.which("groff"):
        cmd = ["groff", "-man", "-Tutf8", "-P-cbou", page]
    elif shutil.which("man"):
        cmd = ["man", "-l", page]
    else:
        sys.exit("man_help: neither groff nor man is installed (apt-get install groff-base)")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                         env={"MANWIDTH": "200", "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        sys.exit(f"man_help: rendering {page} failed: {out.stderr.strip()}")
    text = out.stdout.replace("\u2010", "-").replace("\u2212", "-")
    # Examples may show other tools' options (echod --listen in
    # echo-bench(1)): only the sections that describe this tool count.
    kept, section = [], ""
    for line in text.splitlines():
        if re.fullmatch(r"[A-Z][A-Z ]+", line):
            section = line
        if section not in ("EXAMPLES", "SEE ALSO"):
            kept.append(line)
    return "\n".join(kept)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: man_help.py TOOL MANPAGE")
    tool, page = sys.argv[1], sys.argv[2]
    helped = subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=30)
    if helped.returncode != 0:
        sys.exit(f"man_help: {tool} --help exited {helped.returncode}")
    in_help = set(OPTION.findall(helped.stdout))
    in_man = set(OPTION.findall(render(page)))
    if not in_help:
        sys.exit(f"man_help: no options found in {tool} --help")
    missing_in_man = sorted(in_help - in_man)
    missing_in_help = sorted(in_man - in_help)
    for opt in missing_in_man:
        print(f"man_help: {opt} is in --help but not in the man page {page}")
    for opt in missing_in_help:
        print(f"man_help: {opt} is in the man page but not in --help")
    print(f"{len(in_help)} options in --help, {len(in_man)} in the man page")
    return 1 if missing_in_man or missing_in_help else 0


if __name__ == "__main__":
    sys.exit(main())
