"""Isolates the python grader's process, then replaces itself with the worker (sandbox_worker.py).

Run as `python -I -S sandbox_launcher.py CONFIG_JSON` (standard library only). Mechanisms, strongest first:
- `namespaces` (root): new mount, network and IPC namespaces; a tmpfs root holding read-only binds of
  the Python installation and system libraries, /dev/null and friends, and a private tmpfs /sandbox;
  pivot_root into it with the host's tree detached; then a random unprivileged uid, so no capability
  is left to undo any of it, and no_new_privs.
- `user-namespaces` (any user, where the kernel allows): the same inside a new user namespace.
- `audit-hook`: only a private working folder here; the worker installs an audit hook instead.
A setup step that fails exits SETUP_FAILED with the step on stderr, so the caller tries the next one.
"""

import ctypes
import json
import os
import platform
import sys

SETUP_FAILED = 97
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x10000000, 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MNT_DETACH, PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 2, 1, 38
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
libc = ctypes.CDLL(None, use_errno=True)


def check(result: int, step: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{step}: {os.strerror(errno)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    check(libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def enter_namespaces(user: bool) -> None:
    """New namespaces; in a user namespace the caller's ids map to root inside it."""
    uid, gid = os.getuid(), os.getgid()
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | (CLONE_NEWUSER if user else 0)), "unshare")
    if user:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)


def bind(path: str, root: str, read_only: bool = True) -> None:
    """`path` visible at the same place under `root` (a symlink is recreated, not followed)."""
    target = root + path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(path):
        os.symlink(os.readlink(path), target)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "w").close()
    mount(path, target, None, MS_BIND | MS_REC)
    if read_only:
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(config: dict, owner: int) -> None:
    """A tmpfs root with only the readable paths, a few devices and a private writable /sandbox."""
    root = config["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path in config["readable"]:
        bind(path, root)
    for device in DEVICES:
        if os.path.exists(device):
            bind(device, root, read_only=False)
    os.mkdir(root + "/sandbox")
    options = f"size={config['limits']['file_mb']}m,mode=0700,uid={owner},gid={owner}"
    mount("tmpfs", root + "/sandbox", "tmpfs", MS_NOSUID | MS_NODEV, options)


def pivot(root: str) -> None:
    """Make `root` the filesystem root and detach the host's tree, so nothing outside it can be reached."""
    number = PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(0, f"pivot_root: unknown syscall number on {platform.machine()}")
    os.mkdir(root + "/.old")
    check(libc.syscall(number, root.encode(), (root + "/.old").encode()), "pivot_root")
    os.chdir("/")
    check(libc.umount2(b"/.old", MNT_DETACH), "umount old root")
    os.rmdir("/.old")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/sandbox")


def isolate(config: dict) -> None:
    user = config["mechanism"] == "user-namespaces"
    enter_namespaces(user)
    owner = 0 if user else config["uid"]
    build_root(config, owner)
    pivot(config["root"])
    if not user:
        os.setgroups([])
        os.setgid(owner)
        os.setuid(owner)  # leaves root: every capability goes with it


def prepare(config: dict) -> None:
    if config["mechanism"] == "audit-hook":
        os.chdir(config["cwd"])
    else:
        isolate(config)
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    check(libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "parent death signal")  # after setuid, which clears it


def main() -> None:
    config = json.loads(sys.argv[1])
    with open(config["worker"]) as handle:  # read while the host's files are still in view
        worker = handle.read()
    worker_config = {key: config[key] for key in ("limits", "readable")} | {
        "audit": config["mechanism"] == "audit-hook"
    }
    python = config["python"]
    try:
        prepare(config)
        os.execve(python, [python, "-I", "-B", "-c", worker, json.dumps(worker_config)], config["env"])
    except OSError as exc:
        sys.stderr.write(f"sandbox setup failed ({config['mechanism']}): {exc}\n")
        sys.exit(SETUP_FAILED)


if __name__ == "__main__":
    main()
