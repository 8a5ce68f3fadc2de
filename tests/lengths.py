#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""lint.lengths: no file in src/, apps/ or include/ over 600 lines, and no C
function over 60 lines.

    lengths.py ROOT [--list]

A function's length is counted from the line of its opening brace to the
line of its closing brace, both included (the signature is not counted:
a long parameter list is not a long body). The repository's style
(.clang-format, BreakBeforeBraces: Linux) puts a function's braces, and
only a function's, alone at the start of a line; a table or array
initialiser opens with `= {` on its declaration's line and is data, not a
function, so it is not counted. --list prints every function over the
limit, allowed or not.

ALLOWED names the exceptions, each with its reason; a stale entry (the
function is gone or short now) fails too, so the list only shrinks.
"""
import os
import re
import sys

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 60
DIRS = ("src", "apps", "include")
EXTS = (".c", ".h")

# "path:function" -> why it may be longer.
ALLOWED = {}

NAME = re.compile(r"([A-Za-z_]\w*)\s*\(")


def signature_name(lines, brace):
    """The name of the function whose body opens at lines[brace]: the
    first identifier followed by "(" in the lines just above it."""
    start = brace
    while start > 0:
        prev = lines[start - 1].rstrip()
        if not prev or prev.endswith((";", "}", "*/")) or prev.startswith("#"):
            break
        start -= 1
    m = NAME.search(" ".join(lines[start:brace]))
    return m.group(1) if m else "?"


def functions(lines):
    """(name, first line number, length) of each function in a file."""
    out = []
    i = 0
    while i < len(lines):
        if lines[i].rstrip() == "{":
            end = i + 1
            while end < len(lines) and not lines[end].startswith("}"):
                end += 1
            out.append((signature_name(lines, i), i + 1, end - i + 1))
            i = end
        i += 1
    return out


def sources(root):
    for top in DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(EXTS):
                    path = os.path.join(dirpath, f)
                    yield os.path.relpath(path, root), path


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    root, listing = sys.argv[1], "--list" in sys.argv[2:]
    problems, used = [], set()
    for rel, path in sources(root):
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) > MAX_FILE_LINES:
            problems.append("%s: %d lines (at most %d)" % (rel, len(lines), MAX_FILE_LINES))
        for name, line, length in functions(lines):
            if length <= MAX_FUNCTION_LINES:
                continue
            key = "%s:%s" % (rel, name)
            if listing:
                print("%s:%d: %s() %d lines" % (rel, line, name, length))
            if key in ALLOWED:
                used.add(key)
            else:
                problems.append("%s:%d: %s() is %d lines (at most %d, brace to brace)"
                                % (rel, line, name, length, MAX_FUNCTION_LINES))
    for key in sorted(set(ALLOWED) - used):
        problems.append("%s: in ALLOWED but no longer over %d lines (or gone): remove it"
                        % (key, MAX_FUNCTION_LINES))
    for p in problems:
        print(p)
    print("lint.lengths: %d problem(s)" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
