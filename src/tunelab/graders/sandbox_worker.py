"""The process inside the python grader's sandbox: limits itself, runs the user's `grade`, answers JSON lines.

Runs with the standard library only (it is handed to a fresh interpreter as `-c` source after the
launcher has isolated it), so it imports nothing of tunelab. Protocol on stdin/stdout, one JSON
object a line: first {"source": ...}, answered {"ready": true} or {"ready": false, "error": ...};
then {"id", "sample", "item"} per sample, answered {"id", "score"} or {"id", "error", "detail"}.
The user's code sees /dev/null as stdout, so a print() cannot garble the protocol.
"""

import json
import math
import numbers
import os
import resource
import sys


def apply_limits(limits: dict) -> None:
    """Rlimits the user's code cannot raise again (the hard limit is set too)."""
    mb = 2**20
    for name, value in (
        ("RLIMIT_AS", limits["memory_mb"] * mb),
        ("RLIMIT_FSIZE", limits["file_mb"] * mb),
        ("RLIMIT_CPU", limits["cpu_s"]),
        ("RLIMIT_NOFILE", 64),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_NPROC", 0),  # no fork, no threads: the process is alone under its user id
    ):
        hard = value + 5 if name == "RLIMIT_CPU" else value  # SIGXCPU at the soft limit, SIGKILL 5 s later
        resource.setrlimit(getattr(resource, name), (value, hard))


PROCESS_EVENTS = {"os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen"}
PROCESS_EVENTS |= {"pty.spawn", "ctypes.dlopen", "os.kill", "os.killpg"}
NETWORK_EVENTS = {"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto"}
PATH_EVENTS = {"os.chdir", "os.chmod", "os.link", "os.symlink", "os.remove", "os.rename", "os.mkdir", "os.rmdir"}
LISTING_EVENTS = {"os.listdir", "os.scandir"}
NATIVE_MODULES = ("_ctypes", "ctypes", "_posixsubprocess")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def inside(path, roots: list[str]) -> bool:
    if isinstance(path, int):  # an already open descriptor
        return True
    real = os.path.realpath(os.fsdecode(path))
    return any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots)


def file_check(event: str, args: tuple, readable: list[str], writable: str) -> None:
    """Refuse a path outside the private folder (or, for reading, outside the Python installation)."""
    if event == "open":
        writing = any(c in str(args[1] or "") for c in "wax+") or bool((args[2] or 0) & WRITE_FLAGS)
    elif event in PATH_EVENTS or event in LISTING_EVENTS:
        writing = event in PATH_EVENTS
    else:
        return
    if args and args[0] is not None and not inside(args[0], [writable] if writing else [writable, *readable]):
        raise PermissionError(f"{args[0]} is outside the grader's sandbox")


def install_audit_hook(readable: list[str], writable: str, host_visible: bool) -> None:
    """An audit hook (Python code cannot remove one) that refuses new processes and native code loading, on top
    of any mechanism: RLIMIT_NPROC does not bind a process whose real user is root. Where the host is visible
    (`audit-hook`, the last resort when namespaces are refused) it also refuses sockets and files outside the
    Python installation and the private folder; weaker than namespaces, so used only without them."""
    refused = PROCESS_EVENTS | (NETWORK_EVENTS if host_visible else set())

    def hook(event: str, args: tuple) -> None:
        if event in refused:
            raise PermissionError(f"{event} is not allowed in a grader")
        if event == "import" and args[0] in NATIVE_MODULES:
            raise ImportError(f"{args[0]} is not allowed in a grader")  # an ImportError, which numpy tolerates
        if host_visible:
            file_check(event, args, readable, writable)

    sys.addaudithook(hook)


def load_grade(source: str):
    """The user's grade function; the module runs here, once, after the limits are in place."""
    namespace = {"__name__": "grader"}
    exec(compile(source, "grader.py", "exec"), namespace)
    grade = namespace.get("grade")
    if not callable(grade):
        raise TypeError("the source defines no grade(sample, item) function")
    return grade


def error_kind(exc: BaseException) -> str:
    return "memory" if isinstance(exc, MemoryError) else "exception"


def answer(grade, request: dict) -> dict:
    """One sample's result: a finite number, or the kind of failure."""
    try:
        value = grade(request["sample"], request["item"])
    except BaseException as exc:  # noqa: BLE001 - SystemExit and the rest are the user's failures, reported
        return {"id": request["id"], "error": error_kind(exc), "detail": f"{type(exc).__name__}: {exc}"[:300]}
    if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        return {"id": request["id"], "error": "non_number", "detail": f"grade returned {type(value).__name__}"}
    return {"id": request["id"], "score": float(value)}


def main() -> None:
    config = json.loads(sys.argv[1])
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    requests = sys.stdin
    apply_limits(config["limits"])
    install_audit_hook(config["readable"], os.getcwd(), config["audit"])
    replies.write(json.dumps({"sandboxed": True, "uid": os.getuid()}) + "\n")
    os.dup2(quiet, 1)  # the user's prints and tracebacks go nowhere: stdout is the protocol, stderr the host's file
    os.dup2(quiet, 2)
    try:
        grade = load_grade(json.loads(requests.readline())["source"])
    except BaseException as exc:  # noqa: BLE001 - a module that fails to load fails every sample, reported once
        replies.write(json.dumps({"ready": False, "error": error_kind(exc), "detail": f"{type(exc).__name__}: {exc}"}))
        replies.write("\n")
        return
    replies.write(json.dumps({"ready": True}) + "\n")
    for line in requests:
        replies.write(json.dumps(answer(grade, json.loads(line))) + "\n")


if __name__ == "__main__":
    main()
