"""The submission's side of the sandbox: limits a grading process puts on itself before student code runs.

Always: resource limits (address space, file size, processes, no core files) and
death with the grader. Where Linux lets an unprivileged process do it, also fresh
namespaces (`unshare_namespaces`: user, network, mount, pid) and inside them: a
loopback interface and nothing else (chapter 1's gloo processes talk over 127.0.0.1), a
process cap for the whole pid namespace, every mount read-only except the scratch
folder, a private /dev/shm, and the submissions and results folders hidden behind
empty mounts.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import resource
import signal
import socket
import struct
from pathlib import Path

PR_SET_PDEATHSIG = 1
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    16384,
    1 << 18,
)
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
# Flags a remount inside a user namespace must keep (the kernel locks them), by their mountinfo names.
_KEPT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": 1024,
    "nodiratime": 2048,
    "relatime": 1 << 21,
}
SHM_MB = 256

_libc = ctypes.CDLL(None, use_errno=True)


class ConfineError(Exception):
    """The sandbox could not be set up as asked."""


def limit_resources(*, memory_mb: int, file_size_mb: int, processes: int) -> None:
    """Cap this process (and what it starts): address space, file size, processes; no core dumps."""
    for limit, value in (
        (resource.RLIMIT_AS, memory_mb * 2**20),
        (resource.RLIMIT_FSIZE, file_size_mb * 2**20),
        (resource.RLIMIT_NPROC, processes),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(limit, (value, value))


def die_with_parent() -> None:
    """Be killed when the process that started this one dies (a grader killed with -9 leaves no orphans)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, options: str | None = None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    if _libc.mount(encode(source), encode(target), encode(fstype), flags, encode(options)) != 0:
        errno = ctypes.get_errno()
        raise ConfineError(f"mount {target}: {os.strerror(errno)}")


def _mounts() -> list[tuple[str, set[str]]]:
    """(mount point, options) of every mount this process sees."""
    unescape = lambda text: re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)  # noqa: E731
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        mounts.append((unescape(fields[4]), set(fields[5].split(","))))
    return mounts


def unshare_namespaces() -> None:
    """Move this process into fresh user, mount and network namespaces, as root of the user
    namespace (mapped to the caller, no other ids), with every mount private to it. Its next
    child becomes process 1 of a fresh pid namespace. Needs a single-threaded process."""
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) != 0:
        raise ConfineError(f"unshare: {os.strerror(ctypes.get_errno())}")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _loopback_up()


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    """Bring up `lo`, the one interface of a fresh network namespace: 127.0.0.1 reaches only
    this namespace's own processes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        try:
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
        except OSError as exc:
            raise ConfineError(f"loopback: {exc.strerror}") from None


def mount_proc() -> None:
    """Show this pid namespace's processes in /proc (called by its process 1)."""
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def cap_processes(count: int) -> None:
    """Cap the pid namespace at about `count` processes and threads (a kernel limit, unlike
    RLIMIT_NPROC it holds for root too); needs Linux 6.14 or later, skipped before that."""
    try:
        Path("/proc/sys/kernel/pid_max").write_text(str(count))
    except OSError:
        pass


def lock_filesystem(scratch: Path, hide: list[Path]) -> None:
    """Make every mount read-only except `scratch`; give /dev/shm a private tmpfs; hide `hide`.

    Only inside fresh user and mount namespaces (`unshare_namespaces`).
    """
    scratch_point = str(scratch)
    _mount(scratch_point, scratch_point, None, MS_BIND | MS_REC)
    for point, options in _mounts():
        if point == scratch_point or point.startswith(scratch_point + "/"):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for name in options & _KEPT_FLAGS.keys():
            flags |= _KEPT_FLAGS[name]
        try:
            _mount(None, point, None, flags)
        except ConfineError:
            if "ro" not in options and Path(point).exists():
                raise
    if Path("/dev/shm").is_dir():
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={SHM_MB}m")
    hide_folders(hide)


def hide_folders(folders: list[Path]) -> None:
    """Put an empty read-only tmpfs over each existing folder of `folders` (inside the mount namespace)."""
    for folder in folders:
        if folder.is_dir():
            _mount("tmpfs", str(folder), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")


def empty_files(folder: Path, kept: list[Path]) -> None:
    """Cover `folder` with a read-only tmpfs that holds only an empty file for each of `kept` (files
    under `folder`): their names stay, since pytest collects modules imported before by their paths;
    their contents and everything else in `folder` go."""
    names = [path.relative_to(folder) for path in kept if path.is_relative_to(folder)]
    _mount("tmpfs", str(folder), "tmpfs", MS_NOSUID | MS_NODEV, "size=64k")
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()
    _mount(None, str(folder), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
