"""The grader's side of the student's process: start it isolated, bound it, talk to it, kill it all.

Isolation, as far as a process on the same machine goes (no containers here):
- its own temporary folder as working directory and HOME, holding only a copy of the submission;
- `python -I`: no PYTHONPATH, no user site-packages, neither the script's folder nor the working
  directory on `sys.path` (a `mlc_lab/` next to the notebook cannot shadow the package);
- a scrubbed environment (PATH, locale, thread counts, a run marker; nothing of the grader's);
- hard resource limits set before any student code runs (address space, file size, no core files);
- started by forking a pre-started interpreter (`zygote`, imports paid once per grader) that turns
  the child into the same fresh process first; `python -I` per submission when that is unavailable;
- one wall-clock budget for all cells, one for all checks, enforced from here: SIGINT first, then
  SIGKILL after a grace period (a notebook ignoring SIGINT is still stopped, and labelled a timeout);
- output kept up to a cap (the rest is read and dropped, so a flood cannot fill the grader's memory);
- at the end every process it started is killed: its session, its descendants, anything carrying
  the run marker, and orphans re-parented to the grader (which makes itself a child subreaper).
"""

from __future__ import annotations

import ctypes
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlc_lab.errors import MlcLabError
from mlc_lab.grading import wire
from mlc_lab.grading.worker import HEADER, MAX_FRAME
from mlc_lab.grading.zygote import ForkedProcess, ForkServer

#: Environment variables passed through to the student's process (thread counts keep a class
#: graded in parallel from oversubscribing the cores).
PASS_ENV = ("LANG", "LC_ALL", "TVM_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MARKER = "MLC_LAB_GRADING_RUN"
HOST_MARKER = "MLC_LAB_GRADER_HOST"
PR_SET_CHILD_SUBREAPER = 36
#: The student's process: `python -I` (nothing of the environment or working directory on sys.path),
#: then the private package copy first on sys.path, then the worker.
BOOT = (
    "import sys; p = sys.argv.pop(1); p and sys.path.insert(0, p); "
    "from mlc_lab.grading.worker import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass(frozen=True)
class Limits:
    """Per-notebook budgets: seconds for all cells, seconds for all checks, memory, output, files."""

    timeout: float = 600.0
    check_timeout: float = 600.0
    memory_mb: int = 8192
    output_kb: int = 1024
    file_mb: int = 256
    grace: float = 5.0


class SandboxError(MlcLabError, RuntimeError):
    """The student's process is gone or out of time; `timeout` tells which."""

    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class StudentError(Exception):
    """The student's code raised: its exception type and message, as the student's process told us."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name, self.message = type_name, message


@dataclass
class CellOutcome:
    index: int
    error: str | None = None
    ran: bool = True


def _become_subreaper() -> bool:
    """Orphans of the student's processes (double fork + setsid) become our children, so we find them."""
    os.environ.setdefault(HOST_MARKER, secrets.token_hex(8))
    if sys.platform.startswith("linux"):
        try:
            return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            pass
    return False


def base_environment() -> dict[str, str]:
    """The environment every student's process starts from (plus its own HOME, TMPDIR and run marker)."""
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        MPLBACKEND="Agg",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, start time in clock ticks), from /proc."""
    out = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            out[int(entry)] = (int(fields[1]), float(fields[19]))
    return out


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _descendants(root: int, procs: dict[int, tuple[int, float]]) -> set[int]:
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in procs.items() if ppid in frontier and pid not in found}
        found |= frontier
    return found


class Sandbox:
    """One student process: `run_cells()`, then `call(probe, ...)` as often as needed, then `close()`."""

    def __init__(
        self,
        cells: list[str],
        workdir: Path,
        limits: Limits = Limits(),
        package: Path | None = None,
        server: ForkServer | None = None,
    ) -> None:
        """`package`: a folder holding a private copy of `mlc_lab` that the student's process imports
        instead of the installed one (copy-on-grade: what the notebook writes there is thrown away).
        `server`: fork the process from this zygote (which imports its own package copy and is
        restarted when a submission changed it); without one, or when it fails, `python -I` is
        started, on a private copy of the server's package when no `package` is given."""
        self.cells, self.workdir, self.limits, self.package = cells, Path(workdir), limits, package
        self.server = server
        self.token = secrets.token_hex(16)
        self.output = bytearray()
        self.output_bytes = 0
        self.dead: SandboxError | None = None
        self.check_deadline = float("inf")
        self._buffer = b""
        self.proc: subprocess.Popen[bytes] | ForkedProcess | None = None

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        # a forked student is re-parented to us only when we are a subreaper: else start it afresh
        server = self.server if _become_subreaper() else None
        home = self.workdir / ".home"
        home.mkdir(exist_ok=True)
        (home / "tmp").mkdir(exist_ok=True)
        env = {**base_environment(), "HOME": str(home), "TMPDIR": str(home / "tmp"), MARKER: self.token}
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        if server is not None:
            server.start()  # before the snapshot of our children: the zygote is ours, not an orphan
        self._before = {pid for pid, (ppid, _) in _processes().items() if ppid == os.getpid()}
        self.proc = server.spawn(self.workdir, env, req_r, resp_w) if server is not None else None
        if self.proc is None:
            if self.package is None and self.server is not None:
                self.package = self.workdir.parent / "pkg"
                shutil.copytree(self.server.source, self.package / "mlc_lab")
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", BOOT, str(self.package or ""), str(req_r), str(resp_w)],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(req_r, resp_w),
                start_new_session=True,
            )
        os.close(req_r)
        os.close(resp_w)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self._send({"cells": self.cells, "memory_mb": self.limits.memory_mb, "file_mb": self.limits.file_mb})

    def _drain(self) -> None:
        """Keep the first `output_kb` of the notebook's output; read and drop the rest."""
        assert self.proc is not None and self.proc.stdout is not None
        cap = self.limits.output_kb << 10
        while chunk := self.proc.stdout.read1(1 << 16):
            self.output_bytes += len(chunk)
            if len(self.output) < cap:
                self.output += chunk[: cap - len(self.output)]

    @property
    def output_truncated(self) -> bool:
        return self.output_bytes > len(self.output)

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the student's process and every process it started; reap them; then let the fork
        server check its package copy (a fresh zygote when the notebook changed it)."""
        if self.proc is None:
            return
        if self.server is not None and isinstance(self.proc, ForkedProcess):
            self.server.note_libraries(self.proc.pid)
        try:
            self._kill_all()
        finally:
            if self.server is not None:
                self.server.after_submission()

    def _kill_all(self) -> None:
        assert self.proc is not None
        keep = {os.getpid(), self.server.pid if self.server is not None else None}
        for fd in (self._req_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        needle = f"{MARKER}={self.token}".encode()
        host_marker = f"{HOST_MARKER}={os.environ.get(HOST_MARKER, '')}".encode()
        for _ in range(3):  # a process may fork while we kill: look again
            procs = _processes()
            doomed = _descendants(self.proc.pid, procs) | {self.proc.pid}
            doomed |= {pid for pid in procs if pid not in keep and _environ_has(pid, needle)}
            doomed |= {  # orphans re-parented to us since the start that are not ours (ours carry the host marker)
                pid
                for pid, (ppid, _) in procs.items()
                if ppid == os.getpid() and pid not in self._before and not _environ_has(pid, host_marker)
            }
            doomed -= keep
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            for pid in doomed:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()
            for pid in doomed:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except OSError:
                    pass
            if not doomed - {self.proc.pid}:
                break
        self._reader.join(timeout=5)
        self.proc.stdout.close() if self.proc.stdout else None

    # -- frames -----------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        body = wire.dumps(message)
        data = HEADER.pack(len(body)) + body
        try:
            while data:
                data = data[os.write(self._req_w, data) :]
        except OSError:
            self._die("the notebook's process stopped reading (it exited or crashed)")

    def _recv(self, deadline: float) -> Any:
        """The next frame from the student's process; None when `deadline` passes first."""
        while True:
            if len(self._buffer) >= HEADER.size:
                (size,) = HEADER.unpack(self._buffer[: HEADER.size])
                if size > MAX_FRAME:
                    self._die(f"the notebook's process sent a {size}-byte message (over the limit)")
                if len(self._buffer) >= HEADER.size + size:
                    body = self._buffer[HEADER.size : HEADER.size + size]
                    self._buffer = self._buffer[HEADER.size + size :]
                    try:
                        return wire.loads(body)
                    except wire.WireError as e:
                        return {"error": {"type": "WireError", "message": str(e)}}
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._resp_r], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._resp_r, 1 << 20)
                if not chunk:
                    self.proc.wait(timeout=self.limits.grace) if self.proc else None
                    code = self.proc.returncode if self.proc else None
                    why = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                    self._die(f"the notebook's process ended ({why}): os._exit, a crash or out of memory?")
                self._buffer += chunk

    def _die(self, message: str, timeout: bool = False) -> None:
        self.dead = SandboxError(message, timeout)
        raise self.dead

    def _interrupt(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
            except OSError:
                pass

    # -- the two phases ---------------------------------------------------------------------------
    def run_cells(self) -> list[CellOutcome]:
        """Run every cell within `limits.timeout` seconds in all; one outcome per cell."""
        outcomes = [CellOutcome(i, ran=False) for i in range(len(self.cells))]
        deadline = time.monotonic() + self.limits.timeout
        current = None
        interrupted = False
        try:
            while True:
                event = self._recv(deadline)
                if event is None:
                    if interrupted:
                        where = f" in cell {current + 1}" if current is not None else ""
                        self._die(
                            f"timeout: the notebook ran past {self.limits.timeout:g} s{where} and ignored the "
                            f"interrupt: killed",
                            timeout=True,
                        )
                    self._send({"skip": True})  # the worker stops running cells after this one
                    self._interrupt()
                    interrupted, deadline = True, time.monotonic() + self.limits.grace
                    continue
                kind = event.get("event") if isinstance(event, dict) else None
                if kind == "cell" and isinstance(event.get("index"), int) and 0 <= event["index"] < len(outcomes):
                    current = event["index"]
                    outcomes[current].ran = True
                elif kind == "cell_done" and current is not None:
                    outcomes[current].error = None if event.get("error") is None else str(event["error"])
                    if interrupted:
                        outcomes[current].error = (
                            f"timeout: the notebook ran past {self.limits.timeout:g} s in this cell: interrupted; "
                            "later cells were not run"
                        )
                elif kind == "ready":
                    self.check_deadline = time.monotonic() + self.limits.check_timeout
                    return outcomes
        except SandboxError as exc:
            if interrupted and not exc.timeout:  # it died of the interrupt: still a timeout
                self.dead = SandboxError(f"timeout: the notebook ran past {self.limits.timeout:g} s: {exc}", True)
            return outcomes

    def call(self, probe: str, *args: Any) -> Any:
        """Ask the student's process to run `probe(*args)`; its answer, or StudentError/SandboxError."""
        if self.dead is not None:
            raise self.dead
        if time.monotonic() >= self.check_deadline:
            raise SandboxError(f"timeout: the checks ran past {self.limits.check_timeout:g} s", timeout=True)
        self._send({"probe": probe, "args": list(args)})
        answer = self._recv(self.check_deadline)
        if answer is None:
            self._interrupt()
            answer = self._recv(time.monotonic() + self.limits.grace)
            if answer is None:
                self._die(
                    f"timeout: the checks ran past {self.limits.check_timeout:g} s and the notebook's code ignored "
                    "the interrupt: killed",
                    timeout=True,
                )
            self.check_deadline = 0.0  # the budget is spent: later calls time out at once
            raise SandboxError(f"timeout: the checks ran past {self.limits.check_timeout:g} s", timeout=True)
        if not isinstance(answer, dict):
            raise StudentError("WireError", "malformed answer from the notebook's process")
        if "error" in answer:
            err = answer["error"] if isinstance(answer["error"], dict) else {}
            raise StudentError(str(err.get("type", "Error")), str(err.get("message", "")))
        return answer.get("ok")
