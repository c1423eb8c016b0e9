"""Lean in a box: every Lean process a search or a re-check starts runs confined.

Model-written tactics run inside Lean, and Lean runs arbitrary code through
metaprogramming, so each Lean process (the REPL lean-interact starts, the ``lake env lean``
LeanDojo starts, the whole-file re-check) runs with:

- no network: its own network namespace, loopback only (bwrap), or no TCP connect/bind
  (Landlock) and no ``socket(AF_INET*)`` (seccomp);
- the file system read-only except its work directory (the directory it starts in), a
  private temporary directory (``TMPDIR``), and the directories named in
  ``PROVER_SANDBOX_WRITABLE`` (``os.pathsep``-separated);
- ``RLIMIT_AS`` = the memory limit, file-size and CPU-time limits, and a limit on its
  processes and threads (where the prover runs as root, the process runs as an unprivileged
  user id of its own, since Linux enforces ``RLIMIT_NPROC`` only for other users; it keeps
  ``CAP_DAC_OVERRIDE`` so it still reads root's files; writes are stopped by the mounts);
- death with the process that started it (a watcher, since PR_SET_PDEATHSIG follows the
  starting *thread*, and the REPL pool starts Lean from threads).

How, by ``--sandbox``: ``bwrap`` (bubblewrap: namespaces and read-only bind mounts),
``landlock`` (Landlock + seccomp + rlimits, set in a small launcher before ``exec``),
``auto`` (bwrap where installed, else Landlock where the kernel has it, else no sandbox
and one warning line naming what to install), ``off``.

Both Lean libraries run unchanged: the sandbox is a ``lake`` executable that confines
itself, then runs the real ``lake`` (``confining_lake``). lean-interact is given it as its
``lake_path``; LeanDojo finds it first on ``PATH`` (``put_first_on_path``). ``prover
setup-lean`` does not use it (it downloads and builds).

    lake = confining_lake("lake", "auto", Limits(memory_mb=16000))   # a path to give lean-interact
    put_first_on_path(Path(lake).parent)                            # for LeanDojo's `lake env lean`

This file runs as a script too (``python sandbox.py landlock ...``: the Landlock launcher);
it imports only the standard library at the top for that reason.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import resource
import shlex
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

MODES = ("auto", "bwrap", "landlock", "off")
WRITABLE_VARIABLE = "PROVER_SANDBOX_WRITABLE"
INSTALL_HINT = "install bubblewrap (`apt-get install bubblewrap`)"
# Where the prover runs as root, each sandboxed Lean gets a user id of its own in this range
# (base + its launcher's pid modulo the span), so RLIMIT_NPROC counts that process alone.
UID_BASE, UID_SPAN = 200_000, 100_000


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed Lean process (and what it starts)."""

    memory_mb: int | None = 16_000  # RLIMIT_AS
    cpu_s: int = 6 * 3600  # RLIMIT_CPU: a REPL lives through many tactics, so this is per process, generous
    file_mb: int = 4096  # RLIMIT_FSIZE
    processes: int = 1024  # RLIMIT_NPROC: processes and threads (Lean runs a thread per core)


# -- what is available ------------------------------------------------------------------------------


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where there is none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        version = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(0, int(version))


def has_seccomp() -> bool:
    try:
        import pyseccomp  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(mode: str) -> str:
    """The sandbox ``mode`` stands for here: ``bwrap``, ``landlock`` or ``off``.

    An explicit ``bwrap``/``landlock`` that this machine lacks raises a
    MissingDependencyError; ``auto`` with neither warns once (``warn_unconfined``)."""
    from prover.errors import MissingDependencyError

    if mode not in MODES:
        raise ValueError(f"--sandbox must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        return "off"
    if mode in ("auto", "bwrap") and shutil.which("bwrap"):
        return "bwrap"
    if mode == "bwrap":
        raise MissingDependencyError(f"--sandbox bwrap needs bubblewrap, which is not on PATH; {INSTALL_HINT}")
    if landlock_abi() >= 1:
        return "landlock"
    if mode == "landlock":
        raise MissingDependencyError(
            "--sandbox landlock needs a Linux kernel with Landlock, which this one lacks; "
            f"{INSTALL_HINT} and use --sandbox bwrap"
        )
    warn_unconfined()
    return "off"


_warned = False


def warn_unconfined() -> None:
    global _warned
    if not _warned:
        _warned = True
        print(
            f"warning: Lean runs unconfined (no bubblewrap, no Landlock here): {INSTALL_HINT} to confine it",
            file=sys.stderr,
        )


def describe(mode: str = "auto") -> str:
    """One line: which sandbox ``mode`` gives on this machine, and what it confines."""
    try:
        resolved = _resolve_quietly(mode)
    except Exception as exc:  # a missing dependency: say so
        return f"{mode}: unavailable ({exc})"
    root = " as its own unprivileged user (root drops to it)" if os.geteuid() == 0 else ""
    if resolved == "bwrap":
        return (
            f"bwrap ({shutil.which('bwrap')}): own network namespace (loopback only), read-only file system "
            f"except the work directory and a private TMPDIR, rlimits{root}, dies with the prover's process"
        )
    if resolved == "landlock":
        seccomp = (
            "seccomp (no socket(AF_INET*))" if has_seccomp() else "no seccomp (pip install pyseccomp; UDP is open)"
        )
        return (
            f"landlock (ABI {landlock_abi()}): no TCP connect/bind, writes only in the work directory and "
            f"a private TMPDIR, {seccomp}, rlimits{root}, dies with the prover's process"
        )
    return f"off: Lean runs unconfined{'' if mode == 'off' else f'; {INSTALL_HINT}'}"


def _resolve_quietly(mode: str) -> str:
    global _warned
    saved, _warned = _warned, True
    try:
        return resolve(mode)
    finally:
        _warned = saved


# -- the confining `lake` -----------------------------------------------------------------------------


def confining_lake(lake: str, mode: str, limits: Limits, directory: str | os.PathLike | None = None) -> str:
    """A ``lake`` executable that runs ``lake`` (a name on PATH or a path) confined as
    ``mode`` says (see the module docstring); ``lake`` itself when the sandbox is off.

    The executable is written once under ``directory`` (default: the user's
    ``~/.cache/prover/sandbox``, not the shared temporary directory, where another user
    could plant one), named by a hash of what it does; its file name is
    ``lake``, so its directory can go first on PATH. A missing ``lake`` is returned as
    given (the caller's own check says what to install)."""
    resolved = resolve(mode)
    real = _real_lake(lake)
    if resolved == "off" or real is None:
        return lake
    real = os.path.abspath(real)  # not resolved: elan's `lake` is a link to elan, which reads its own name
    if resolved == "bwrap":
        script = _bwrap_script(real, limits)
    else:
        script = _landlock_script(real, limits)
    digest = hashlib.sha256(script.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base = Path(directory) if directory is not None else cache / "prover" / "sandbox"
    home = base / digest
    wrapper = home / "lake"
    if not wrapper.is_file():
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        # A name of its own for each writer: the search threads of one process (and other
        # processes) may write the same wrapper at once, and the last rename wins whole.
        handle, partial = tempfile.mkstemp(prefix="lake.", suffix=".tmp", dir=home)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(script.replace("@HOME@", shlex.quote(str(home))))
        os.chmod(partial, 0o755)
        os.replace(partial, wrapper)
    return str(wrapper)


def put_first_on_path(directory: str | os.PathLike) -> None:
    """Put ``directory`` first on this process's PATH (once): LeanDojo runs ``lake`` from PATH."""
    entries = os.environ.get("PATH", "").split(os.pathsep)
    entries = [str(directory)] + [e for e in entries if e != str(directory)]
    os.environ["PATH"] = os.pathsep.join(entries)


MARKER = "# The prover's confining `lake`"


def is_confining(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``lake`` written by ``confining_lake``."""
    try:
        with open(path, "rb") as head:
            return MARKER.encode() in head.read(256)
    except OSError:
        return False


def _real_lake(lake: str) -> str | None:
    """``lake`` resolved on PATH, skipping confining ones (so confining twice wraps once)."""
    if os.sep in lake:
        return lake if shutil.which(lake) else None
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which(lake, path=directory or ".")
        if found and not is_confining(found):
            return found
    return None


def confine_lake_on_path(mode: str, limits: Limits) -> None:
    """Put a ``confining_lake`` for the ``lake`` on PATH first on PATH (no-op when off or absent)."""
    wrapper = confining_lake("lake", mode, limits)
    if wrapper != "lake":
        put_first_on_path(Path(wrapper).parent)


def _drop_root(uid: str, pdeathsig: bool = True) -> list[str]:
    """setpriv: become ``uid`` (a shell expression), keep only CAP_DAC_OVERRIDE, and (with
    ``pdeathsig``) die with the parent."""
    return [
        shutil.which("setpriv") or "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all,+dac_override",
        "--ambient-caps=-all,+dac_override",
        "--bounding-set=-all,+dac_override",
        "--no-new-privs",
    ] + (["--pdeathsig=SIGKILL"] if pdeathsig else [])


def _quote(words: list[str]) -> str:
    # words that hold "$..." shell expressions are left for the shell; the rest are quoted
    return " ".join(w if '"$' in w else shlex.quote(w) for w in words)


# Death with the parent *process*: PR_SET_PDEATHSIG (bwrap's --die-with-parent) fires when
# the parent *thread* ends, and the libraries start Lean from threads (the warm REPL pool's
# spares), so a watcher checks once a second that the process that started this one
# ($PPID) is alive, and kills the sandbox when it is not. Its descriptors are /dev/null, so
# it holds no pipe of Lean's open.
def _watcher() -> str:
    """Shell text starting the watcher. Where root was dropped, every process of the
    sandbox's own user id is killed when it ends (what Lean forked too; there is no pid
    namespace to do it)."""
    sweep = f'; {shutil.which("pkill") or "pkill"} -KILL -U "$uid" 2>/dev/null' if os.geteuid() == 0 else ""
    # `( (...) & )`: the watcher is orphaned at once, so it is no descendant of Lean's that a
    # library would signal and wait for.
    return (
        'owner=$PPID; me=$$; ( (while kill -0 "$owner" 2>/dev/null && kill -0 "$me" 2>/dev/null; do sleep 1; done; '
        f'kill -0 "$owner" 2>/dev/null || kill -KILL "$me" 2>/dev/null{sweep}) </dev/null >/dev/null 2>&1 & )\n'
    )


def _writable_binds() -> str:
    """Shell text: a --bind for each existing PROVER_SANDBOX_WRITABLE entry, read at run time."""
    return (
        f'IFS=:; extra=""; for d in ${{{WRITABLE_VARIABLE}:-}}; do '
        '[ -d "$d" ] && extra="$extra --bind $d $d"; done; unset IFS\n'
    )


def _bwrap_script(real_lake: str, limits: Limits) -> str:
    root = os.geteuid() == 0
    # No pid namespace: the libraries kill and watch Lean by the pids they see.
    namespaces = ([] if root else ["--unshare-user"]) + [
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    caps = [w for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE") for w in ("--cap-add", cap)] if root else []
    head = [
        shutil.which("bwrap") or "bwrap",
        *namespaces,
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        '"$HOME_DIR/tmp"',
        "--setenv",
        "TMPDIR",
        '"$HOME_DIR/tmp"',
        "--bind",
        '"$work"',
        '"$work"',
        "--chdir",
        '"$work"',
    ]
    # bwrap runs with SIGTERM ignored and Lean with it restored: a SIGTERM to both (as
    # lean-interact's kill sends) ends Lean, and bwrap exits after it, having reaped it (an
    # orphan's exit would wait for init to reap it). The limits are set by the shell
    # (`ulimit`, no extra process) and inherited; RLIMIT_NPROC binds once root is dropped.
    # Lean dies with bwrap (its parent, one thread), bwrap with the prover (_watcher).
    tail = ["--", shutil.which("env") or "env", "--default-signal=TERM"]
    tail += _drop_root('"$uid"') if root else [shutil.which("setpriv") or "setpriv", "--pdeathsig=SIGKILL"]
    tail += [real_lake, '"$@"']
    return (
        "#!/bin/sh\n"
        f"{MARKER} (prover/envs/sandbox.py, bwrap): runs the real lake in a sandbox.\n"
        "HOME_DIR=@HOME@\n"
        'work="$(pwd -P)"\n'
        f"uid=$(( {UID_BASE} + $$ % {UID_SPAN} ))\n"
        + _writable_binds()
        + _ulimits(limits)
        + _watcher()
        + "trap '' TERM\n"
        + f"exec {_quote(head)} $extra {_quote(caps + tail)}\n"
    )


def _ulimits(limits: Limits) -> str:
    """Shell text setting the limits with ``ulimit`` (bash counts -f in KiB and processes with
    -u; dash counts -f in 512-byte blocks and processes with -p); a failure stops the start."""
    memory = f"ulimit -v {limits.memory_mb * 1024} && " if limits.memory_mb else ""
    common = f"{memory}ulimit -t {limits.cpu_s}"
    return (
        'if [ -n "${BASH_VERSION:-}" ]; then '
        f"{common} && ulimit -f {limits.file_mb * 1024} && ulimit -u {limits.processes}; "
        f"else {common} && ulimit -f {limits.file_mb * 2048} && ulimit -p {limits.processes}; fi "
        '|| { echo "prover sandbox: could not set the resource limits" >&2; exit 126; }\n'
    )


def _landlock_script(real_lake: str, limits: Limits) -> str:
    spec = {"limits": asdict(limits), "drop_root": os.geteuid() == 0 and shutil.which("setpriv") is not None}
    launcher = [
        sys.executable,
        "-I",
        str(Path(__file__).resolve()),
        "landlock",
        json.dumps(spec),
        '"$HOME_DIR/tmp"',
        "--",
    ]
    return (
        "#!/bin/sh\n"
        f"{MARKER} (prover/envs/sandbox.py, Landlock + seccomp + rlimits).\n"
        "HOME_DIR=@HOME@\n"
        f"uid=$(( {UID_BASE} + $$ % {UID_SPAN} )); export PROVER_SANDBOX_UID=$uid\n"
        + _watcher()
        + f'exec {_quote(launcher)} {shlex.quote(real_lake)} "$@"\n'
    )


# -- the Landlock launcher ---------------------------------------------------------------------------

_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38
# LANDLOCK_ACCESS_FS_*: bit 0 execute, 1 write_file, 2 read_file, 3 read_dir, 4 remove_dir,
# 5 remove_file, 6..12 make_{char,dir,reg,sock,fifo,block,sym}, 13 refer (ABI 2), 14 truncate
# (ABI 3), 15 ioctl_dev (ABI 5). Reading and executing stay allowed everywhere.
_FS_READ = 0b1101
_FS_BITS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock(writable: list[str], abi: int) -> None:
    """Restrict this process (and what it execs) to writing in ``writable``, and no TCP."""
    libc = ctypes.CDLL(None, use_errno=True)
    all_fs = (1 << _FS_BITS_BY_ABI.get(abi, 16)) - 1
    attr = _RulesetAttr(
        all_fs,
        (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
        (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    file_rights = 0b110 | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)  # read, write, truncate, ioctl
    rules = [("/", _FS_READ)] + [(path, all_fs) for path in writable]
    rules += [(dev, file_rights) for dev in ("/dev/null", "/dev/zero", "/dev/tty", "/dev/full")]
    rules += [("/dev/pts", all_fs & ~0b1)]
    for path, access in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        is_dir = os.path.isdir(path)
        rule = _PathBeneathAttr(access if is_dir else access & (0b111 | 1 << 14 | 1 << 15), fd)
        if libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
            os.close(fd)
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        os.close(fd)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(ruleset)


def _seccomp() -> bool:
    """Refuse ``socket(AF_INET/AF_INET6/AF_PACKET, ...)`` with EPERM; False without pyseccomp."""
    try:
        import pyseccomp as seccomp
    except ImportError:
        return False
    import errno
    import socket

    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for family in (socket.AF_INET, socket.AF_INET6, getattr(socket, "AF_PACKET", 17)):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "socket", seccomp.Arg(0, seccomp.EQ, family))
    rules.load()
    return True


def launch_landlock(spec: dict, tmp: str, command: list[str]) -> None:
    """The Landlock launcher: rlimits, a private TMPDIR, Landlock, seccomp, then exec."""
    limits = Limits(**spec["limits"])
    work = os.getcwd()
    private_tmp = tempfile.mkdtemp(prefix="lean-", dir=tmp)
    extra = [d for d in os.environ.get(WRITABLE_VARIABLE, "").split(os.pathsep) if d and os.path.isdir(d)]
    os.environ["TMPDIR"] = private_tmp
    try:
        os.setsid()  # no controlling terminal to inject input into
    except OSError:
        pass  # a session leader already (lean-interact starts it so)
    for name, value in (
        (resource.RLIMIT_CPU, limits.cpu_s),
        (resource.RLIMIT_FSIZE, limits.file_mb * 2**20),
        (resource.RLIMIT_NPROC, limits.processes),
    ):
        resource.setrlimit(name, (value, value))
    if limits.memory_mb:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * 2**20,) * 2)
    _landlock([work, private_tmp, *extra], landlock_abi())
    _seccomp()
    if spec.get("drop_root"):
        uid = os.environ.get("PROVER_SANDBOX_UID", str(UID_BASE))
        command = _drop_root(uid, pdeathsig=False) + command  # its parent is a thread: _watcher does it
    os.execvp(command[0], command)


if __name__ == "__main__" and len(sys.argv) > 4 and sys.argv[1] == "landlock" and sys.argv[4] == "--":
    launch_landlock(json.loads(sys.argv[2]), sys.argv[3], sys.argv[5:])
