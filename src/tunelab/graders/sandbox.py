"""The host side of the python grader's sandbox: one isolated worker process scores many samples.

Samples go to the worker over a pipe, one JSON line each, and each answer must come back within the
per-sample wall time, or the worker's process group is killed and a fresh worker takes the next
sample. The isolation itself is sandbox_launcher.py's; the first mechanism that sets up on this
machine is remembered for the process. A sample whose code fails, times out, runs out of memory or
returns a non-number scores 0 with the kind of failure, never an exception here.
"""

import contextlib
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from tunelab.graders.base import Outcome

MECHANISMS = ("namespaces", "user-namespaces", "audit-hook")
SETUP_FAILED = 97  # sandbox_launcher.SETUP_FAILED (that module is a script, not imported here)
STARTUP_S = 30.0  # an interpreter start, not the user's code
HERE = Path(__file__).parent
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc/ld.so.cache")
DIED = {signal.SIGXCPU: "timeout", signal.SIGXFSZ: "file_size", signal.SIGKILL: "killed"}
REFUSED: dict[str, str] = {}  # mechanism → why it did not set up here (asked once per process)
TIMEOUT = object()
MAX_REPLY_BYTES = 1 << 24  # an answer is a short line; more is code writing to the protocol's descriptor


@dataclass(frozen=True)
class SandboxLimits:
    """What one sample's code may use; CPU time is a backstop for a worker whose host is gone."""

    timeout_s: float = 10.0
    memory_mb: int = 2048
    file_mb: int = 64
    samples_per_worker: int = 500  # a fresh worker after this many, so the CPU budget stays per sample

    def for_worker(self) -> dict:
        cpu = int(self.timeout_s * self.samples_per_worker) + 10
        return {"memory_mb": self.memory_mb, "file_mb": self.file_mb, "cpu_s": cpu}


def readable_paths() -> list[str]:
    """The Python installation (the venv and its base) and system libraries: all the worker may read."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    found = sorted(os.path.abspath(path) for path in found | set(SYSTEM_PATHS) if os.path.lexists(path))
    tops = [path for path in found if not os.path.islink(path)]
    return [path for path in found if not any(path.startswith(top + "/") for top in tops)]


def clean_environment(home: str) -> dict:
    """No inherited variables (no API keys); one thread for numerical libraries, which may not start threads."""
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", **threads}


class Worker:
    """One sandboxed process and the unread part of its output."""

    def __init__(self, mechanism: str, config: dict):
        self.mechanism, self.buffer, self.stopped, self.error_text = mechanism, b"", False, ""
        self.stderr = tempfile.TemporaryFile()
        command = [sys.executable, "-I", "-S", str(HERE / "sandbox_launcher.py"), json.dumps(config)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, start_new_session=True
        )

    def send(self, message: dict) -> bool:
        try:
            self.process.stdin.write(json.dumps(message, default=str).encode() + b"\n")
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def receive(self, timeout_s: float):
        """The next message; TIMEOUT when none came in time; None when the process ended."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                return TIMEOUT
            chunk = os.read(self.process.stdout.fileno(), 1 << 16)
            if not chunk or len(self.buffer) > MAX_REPLY_BYTES:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return None

    def stop(self) -> int:
        """Kill the whole process group (the code may not fork, but a group kill does not depend on that)."""
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        if self.process.poll() is None:  # once reaped, the pid may belong to another process: never signal it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        code = self.process.wait()
        self.stderr.seek(0)
        self.error_text = self.stderr.read()[-2000:].decode(errors="replace").strip()
        for pipe in (self.process.stdin, self.process.stdout, self.stderr):
            with contextlib.suppress(OSError):  # a write still buffered for a dead process
                pipe.close()
        return code

    def setup_error(self) -> str:
        """The last line the launcher wrote before it gave up (read by stop())."""
        return self.error_text.splitlines()[-1] if self.error_text else "the sandboxed interpreter did not start"


def died_kind(code: int) -> str:
    return DIED.get(-code, "crashed") if code < 0 else "crashed"


def exit_description(code: int) -> str:
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def release(live: list[Worker], folder: str) -> None:
    """Stop a sandbox's worker and remove its folder (at close, or when the sandbox is garbage)."""
    while live:
        live.pop().stop()
    shutil.rmtree(folder, ignore_errors=True)


class Sandbox:
    """Runs one grader's source on many samples, starting a fresh worker whenever the code kills one."""

    def __init__(self, source: str, limits: SandboxLimits | None = None, mechanism: str = "auto"):
        self.source, self.limits = source, limits or SandboxLimits()
        self.candidates = MECHANISMS if mechanism == "auto" else (mechanism,)
        self.mechanism: str | None = None
        self.live: list[Worker] = []  # the running worker, if any (a list the finalizer can share)
        self.served = self.requests = 0
        self.load_failure: Outcome | None = None
        self.folder = tempfile.mkdtemp(prefix="tunelab-grader-")  # the new root's mount point, or audit-hook's cwd
        self._finalizer = weakref.finalize(self, release, self.live, self.folder)

    def config(self, mechanism: str) -> dict:
        readable = readable_paths()
        if mechanism == "audit-hook":
            readable = [os.path.realpath(path) for path in readable] + ["/dev/null", "/dev/urandom"]
        home = self.folder if mechanism == "audit-hook" else "/sandbox"
        return {
            "mechanism": mechanism,
            "root": self.folder,
            "cwd": self.folder,
            "uid": random.randint(10**9, 2**31 - 2),  # no process or file has it (above subuid ranges)
            "readable": readable,
            "limits": self.limits.for_worker(),
            "worker": str(HERE / "sandbox_worker.py"),
            "python": sys.executable,
            "env": clean_environment(home),
        }

    def start(self) -> Worker:
        """A worker under the first mechanism that sets up here (the ones refused before are skipped)."""
        for mechanism in self.candidates:
            if mechanism in REFUSED and len(self.candidates) > 1:
                continue
            worker = Worker(mechanism, self.config(mechanism))
            hello = worker.receive(STARTUP_S)
            if isinstance(hello, dict) and hello.get("sandboxed"):
                self.mechanism = mechanism
                return worker
            code = worker.stop()
            REFUSED[mechanism] = (
                worker.setup_error() if code == SETUP_FAILED else f"exit {code}: {worker.setup_error()}"
            )
        from tunelab.errors import TunelabError

        reasons = "; ".join(f"{name}: {REFUSED.get(name)}" for name in self.candidates)
        raise TunelabError(f"no sandbox for the python grader could start ({reasons})", "see docs for what it needs")

    def load(self, worker: Worker) -> Outcome | None:
        """None once the source has run in the worker; else the failure every sample gets."""
        worker.send({"source": self.source})
        reply = worker.receive(self.limits.timeout_s)
        if isinstance(reply, dict) and reply.get("ready"):
            return None
        if isinstance(reply, dict):
            return Outcome(0.0, reply.get("error", "exception"), f"loading the source: {reply.get('detail', '')}")
        code = worker.stop()
        kind = "timeout" if reply is TIMEOUT else died_kind(code)
        return Outcome(0.0, kind, f"loading the grader's source ({exit_description(code)})")

    def ready_worker(self) -> Worker | None:
        if not self.live and self.load_failure is None:
            worker = self.start()
            self.load_failure = self.load(worker)
            if self.load_failure:
                worker.stop()
            else:
                self.live.append(worker)
        return self.live[0] if self.live else None

    def grade(self, sample: dict, item: dict) -> Outcome:
        """One sample's score from the user's grade(sample, item), or the kind of failure."""
        self.requests += 1
        request_id = self.requests  # a fresh id, so no late answer can be taken for this sample's
        worker = self.ready_worker()
        if worker is None:
            return self.load_failure
        sent = worker.send({"id": request_id, "sample": sample, "item": item})
        reply = worker.receive(self.limits.timeout_s) if sent else None
        if reply is TIMEOUT:
            self.drop()
            return Outcome(0.0, "timeout", f"no score within {self.limits.timeout_s:g} s")
        if not isinstance(reply, dict) or reply.get("id") != request_id:
            return self.ended(garbled=reply is not None)
        self.served += 1
        if self.served >= self.limits.samples_per_worker:
            self.drop()
        if "error" in reply:
            return Outcome(0.0, reply["error"], reply.get("detail", ""))
        return Outcome(float(reply["score"]))

    def ended(self, garbled: bool) -> Outcome:
        """The worker ended mid-sample (or wrote something that is not an answer): a crash, or a limit's signal."""
        code = self.drop()
        kind = "crashed" if garbled else died_kind(code)
        return Outcome(0.0, kind, f"the grader's process ended ({exit_description(code)})")

    def drop(self) -> int:
        """Stop the worker; the next sample starts a fresh one. Returns its exit status."""
        self.served = 0
        return self.live.pop().stop() if self.live else 0

    def close(self) -> None:
        self.served = 0
        self._finalizer()
