"""Run a command under the system-call filter a systemd unit declares, without systemd.

systemd turns ``SystemCallFilter=`` lines into a seccomp allow-list: the first line
names the groups allowed, each later ``~`` line takes groups out, and a call outside
the list kills the process (SIGSYS) unless ``SystemCallErrorNumber=`` makes it fail
with that error instead. Here the groups are expanded by ``systemd-analyze
syscall-filter`` (the machine's own systemd) and the filter is loaded with
libseccomp in a child process that then execs the command.
"""

from __future__ import annotations

import ctypes.util
import functools
import json
import re
import shutil
import subprocess
import sys

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ERRNO = 0x00050000
EPERM = 1


def available() -> str | None:
    """Why a filter cannot be built here, or None."""
    if shutil.which("systemd-analyze") is None:
        return "no systemd-analyze"
    if ctypes.util.find_library("seccomp") is None:
        return "no libseccomp"
    return None


@functools.cache
def expand(group: str) -> frozenset[str]:
    listed = subprocess.run(["systemd-analyze", "syscall-filter", group],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    names: set[str] = set()
    for line in listed.splitlines()[1:]:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        names |= expand(name) if name.startswith("@") else {name}
    return frozenset(names)


def unit_filter(unit_text: str) -> tuple[list[str], bool]:
    """The system calls ``unit_text`` allows, and whether a denied call only fails
    (``SystemCallErrorNumber=``) rather than killing the process."""
    allowed: set[str] | None = None
    for line in re.findall(r"^SystemCallFilter=(.*)$", unit_text, re.M):
        deny = line.startswith("~")
        names: set[str] = set()
        for item in line.lstrip("~").split():
            names |= expand(item) if item.startswith("@") else {item}
        if deny:
            allowed = (allowed or set()) - names
        else:
            allowed = names if allowed is None else allowed | names
    fails_only = re.search(r"^SystemCallErrorNumber=\S+", unit_text, re.M) is not None
    return sorted(allowed or ()), fails_only


_LAUNCHER = """
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
lib = ctypes.CDLL(spec["library"])
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
context = lib.seccomp_init(spec["default"])
for name in spec["allowed"]:
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number >= 0:
        lib.seccomp_rule_add(context, 0x7FFF0000, number, 0)
if lib.seccomp_load(context) != 0:
    sys.exit("cannot load the filter")
os.execv(spec["argv"][0], spec["argv"])
"""


def run_filtered(unit_text: str, argv: list[str], *, timeout_s: float = 120,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` under ``unit_text``'s filter; a killed process has returncode -31."""
    allowed, fails_only = unit_filter(unit_text)
    library = ctypes.util.find_library("seccomp")
    spec = {"library": library, "allowed": allowed, "argv": argv,
            "default": SCMP_ACT_ERRNO | EPERM if fails_only else SCMP_ACT_KILL_PROCESS}
    return subprocess.run([sys.executable, "-c", _LAUNCHER, json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout_s, env=env)
