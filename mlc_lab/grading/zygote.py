"""A fork server for the student's process: the interpreter start and the imports, paid once per grader.

Starting `python -I` and importing mlc_lab, NumPy and IPython took ~0.3 s of the ~0.4 s a typical
submission costs, and on a small machine grading in parallel that start competes with the rest.
The zygote is started the way each student's process used to be (`python -I`, a scrubbed
environment, its own session, a private copy of the package first on `sys.path`), imports all that
once, then forks one child per submission. Before any student code runs, the child becomes what a
fresh start gave: a new session, the submission's folder as working directory, that submission's
environment (HOME, TMPDIR, run marker), only its own pipes open, NumPy's global generator reseeded;
`worker.main` then sets the resource limits and runs the cells as before. The child is double-forked
so that it is re-parented to the grader (a child subreaper): the sandbox waits for, kills and reaps
it as its own child, exactly as before. The zygote freezes its objects (`gc.freeze`) before it forks:
a child's garbage collector then never walks them, so their pages stay shared instead of being copied
into every student's process (~half a small submission's CPU time, and memory traffic that two
submissions graded at once would compete for). Heavy libraries are imported on demand (`ON_DEMAND`):
once a student's process has loaded TVM (seen in its memory map before it is killed), the zygote
imports it before the next fork, so a class of notebooks that use TVM pays its ~3 s import once.

The package copy the zygote imported is shared by the submissions it forks. The grader therefore
fingerprints the copy after each submission (every file and folder, caches included: type, mode,
inode, size, mtime and ctime, which no `os.utime` can reset) and starts a fresh zygote on a fresh
copy when anything changed: a notebook that writes into the package it imports affects only itself.
When the fork server cannot be used (no child subreaper, a failed start), the sandbox falls back to
starting `python -I` per submission.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

#: What the zygote imports once (everything the worker needs before the student's first cell).
PRELOAD = ("numpy", "mlc_lab", "mlc_lab.grading.worker", "mlc_lab.grading.probes", "IPython.core.interactiveshell")
BOOT = (
    "import sys; p = sys.argv.pop(1); sys.path.insert(0, p); "
    "from mlc_lab.grading.zygote import main; sys.exit(main(sys.argv[1:]))"
)
#: Heavy libraries imported by the zygote once a graded notebook's process has loaded one (module ->
#: the shared library whose mapping shows it in /proc/PID/maps): every later student forked from it
#: starts with the library imported instead of paying ~3 s of CPU to import it again.
ON_DEMAND = {"tvm": "libtvm"}
#: Seconds to wait for the zygote's imports, and for one fork.
START_TIMEOUT = 120.0
FORK_TIMEOUT = 30.0


class ZygoteError(RuntimeError):
    """The fork server is unusable (it did not start, died, or did not answer)."""


# -- the zygote's side ----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """The zygote: import, say ready, then fork a student per request until the grader hangs up."""
    folder, sock = Path(argv[0]), socket.socket(fileno=int(argv[1]))
    for name in PRELOAD:
        __import__(name)
    gc.collect()
    gc.freeze()  # the imports' objects are never traversed by a child's collector: no copy of their pages
    sock.send(json.dumps({"ready": True}).encode())
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        except OSError:
            data, fds = b"", []
        if not data:  # the grader is gone (it exited, or a grading process ended without closing us)
            break
        try:
            job = json.loads(data)
            _preload(job.get("preload", ()))
            reply: dict[str, Any] = {"pid": _fork_student(sock, job, fds)}
        except Exception as exc:  # noqa: BLE001 - reported to the grader, which falls back
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            for fd in fds:
                os.close(fd)
        try:
            sock.send(json.dumps(reply).encode())
        except OSError:
            break
    shutil.rmtree(folder, ignore_errors=True)
    return 0


def _preload(names: Any) -> None:
    """Import the on-demand libraries the grader asks for (see ON_DEMAND), then freeze their objects too.

    A fork keeps only the forking thread, so an import that started a thread makes this zygote unfit:
    it says so (the grader starts a fresh one and stops asking)."""
    fresh = [str(n) for n in names if n in ON_DEMAND and n not in sys.modules]
    if not fresh:
        return
    for name in fresh:
        __import__(name)
    threads = len(_tasks())
    if threads > 1:
        raise ZygoteError(f"importing {', '.join(fresh)} started {threads - 1} thread(s): cannot fork safely")
    gc.collect()
    gc.freeze()


def _tasks() -> list[str]:
    try:
        return os.listdir("/proc/self/task")
    except OSError:
        return ["main"]


def _fork_student(sock: socket.socket, job: dict[str, Any], fds: list[int]) -> int:
    """Double fork: the student is orphaned at once, so the kernel re-parents it to the grader."""
    if len(fds) != 3:
        raise ValueError(f"expected 3 descriptors, got {len(fds)}")
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(r)
            child = os.fork()
            if child == 0:
                os.close(w)
                _become_student(sock, job, fds)
            os.write(w, str(child).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        pid = pipe.read()
    os.waitpid(middle, 0)  # once it is reaped, the student is the grader's child
    return int(pid)


def _become_student(sock: socket.socket, job: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: turn into a freshly started student process, then run the worker. Never returns."""
    code = 70
    try:
        sock.close()
        requests, answers, output = fds
        os.setsid()
        os.dup2(output, 1)
        os.dup2(output, 2)
        for fd in _open_fds():
            if fd not in (0, 1, 2, requests, answers):
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.chdir(job["workdir"])
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in job["env"].items()})
        tempfile.tempdir = None  # computed again from this environment's TMPDIR
        numpy_random = sys.modules.get("numpy.random")
        if numpy_random is not None:
            numpy_random.seed()  # the global generator from fresh entropy, as in a fresh process
        sys.argv = ["-c", str(requests), str(answers)]
        from mlc_lab.grading.worker import main as worker_main

        code = worker_main([str(requests), str(answers)])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child must never return into the zygote's loop
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        os._exit(code)


def _open_fds() -> list[int]:
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


# -- the grader's side ----------------------------------------------------------------------------


def fingerprint(root: Path) -> tuple[tuple[str, int, int, int, int, int], ...]:
    """Every file and folder under `root` (caches included) with type/mode, inode, size, mtime, ctime.

    Taken after every submission, so it walks with `os.scandir` and builds the relative names itself
    (`os.walk` + `relpath` took ~20 ms on the package, as long as grading a small notebook).
    """
    out: list[tuple[str, int, int, int, int, int]] = []

    def walk(folder: str, prefix: str) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            name = prefix + entry.name
            out.append((name, st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            if stat.S_ISDIR(st.st_mode):
                walk(entry.path, name + os.sep)

    walk(os.fspath(root), "")
    return tuple(out)


def _stopped(pid: int) -> bool:
    """A process stopped by a signal (SIGSTOP, a tracer) would never answer a fork request."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


class ForkedProcess:
    """A student forked by the zygote and re-parented to us: the part of `Popen` the sandbox uses."""

    def __init__(self, pid: int, stdout: Any) -> None:
        self.pid, self.stdout = pid, stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: it is gone, its status unknown
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                try:
                    _, status = os.waitpid(self.pid, 0)
                    self.returncode = os.waitstatus_to_exitcode(status)
                except ChildProcessError:
                    self.returncode = -signal.SIGKILL
                except InterruptedError:
                    continue
            return self.returncode
        deadline, pause = time.monotonic() + timeout, 0.001
        while self.poll() is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"student process {self.pid}", timeout)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        assert self.returncode is not None
        return self.returncode


class ForkServer:
    """One zygote per grading process, on its own package copy; restarted when a submission changed the copy."""

    def __init__(self, package: Path, base_env: dict[str, str]) -> None:
        self.source, self.base_env = Path(package), dict(base_env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.folder: Path | None = None
        self.ready = False
        self.failed: str | None = None
        self._print: tuple[Any, ...] = ()
        self.wanted: set[str] = set()  # ON_DEMAND modules a student's process loaded
        self.loaded: set[str] = set()  # those the running zygote imported
        self.preloading = True  # False once an on-demand import made a zygote unfit

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        """Copy the package and start the zygote; its imports run while the caller goes on."""
        if self.proc is not None or self.failed:
            return
        self.folder = Path(tempfile.mkdtemp(prefix="mlc-lab-zygote-"))
        package = self.folder / "pkg"
        shutil.copytree(self.source, package / "mlc_lab")  # with the bytecode caches: a faster start
        home = self.folder / "home"
        (home / "tmp").mkdir(parents=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**self.base_env, "HOME": str(home), "TMPDIR": str(home / "tmp")}
        with open(self.folder / "zygote.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", BOOT, str(package), str(self.folder), str(theirs.fileno())],
                cwd=home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        theirs.close()
        self.sock, self.ready = ours, False

    def spawn(self, workdir: Path, env: dict[str, str], requests: int, answers: int) -> ForkedProcess | None:
        """A student process in `workdir` with `env`, talking on the two pipe ends; None when unusable.

        The caller keeps its copies of `requests` and `answers` and closes them, as with Popen's `pass_fds`.
        """
        if self.failed:
            return None
        out_r, out_w = os.pipe()
        preload: list[str] = []
        try:
            self.start()
            assert self.sock is not None
            if not self.ready:
                self._expect(START_TIMEOUT, "ready")
                self.ready = True
                self._print = fingerprint(self.folder / "pkg")  # type: ignore[operator]  # what every child starts from
            preload = sorted(self.wanted - self.loaded) if self.preloading else []
            job = json.dumps({"workdir": str(workdir), "env": env, "preload": preload}).encode()
            socket.send_fds(self.sock, [job], [requests, answers, out_w])
            pid = int(self._expect(START_TIMEOUT if preload else FORK_TIMEOUT, "pid"))
            self.loaded.update(preload)
        except (OSError, ZygoteError, ValueError) as exc:
            os.close(out_r)
            self.close()
            if preload:  # the import made it unfit: a fresh zygote without it
                self.preloading = False
                os.close(out_w)
                out_w = -1
                return self.spawn(workdir, env, requests, answers)
            self.failed = f"the fork server failed ({exc}); starting each notebook's process afresh"
            return None
        finally:
            if out_w >= 0:
                os.close(out_w)
        return ForkedProcess(pid, open(out_r, "rb"))  # noqa: SIM115 - the sandbox closes it

    def note_libraries(self, pid: int) -> None:
        """Remember which ON_DEMAND libraries the student `pid` (still running) loaded, from its memory
        map: the next student is forked from a zygote that imported them. (A notebook that maps one on
        purpose only makes the next fork wait for an import.)"""
        missing = {module: lib for module, lib in ON_DEMAND.items() if module not in self.wanted}
        if not missing or not self.preloading:
            return
        try:
            maps = Path(f"/proc/{pid}/maps").read_text(errors="replace")
        except OSError:
            return
        self.wanted.update(module for module, lib in missing.items() if f"/{lib}" in maps)

    def _expect(self, timeout: float, key: str) -> Any:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            raise ZygoteError(f"no answer in {timeout:g} s") from None
        if not data:
            raise ZygoteError(f"it exited: {self._log_tail()}")
        reply = json.loads(data)
        if key not in reply:
            raise ZygoteError(str(reply.get("error", reply)))
        return reply[key]

    def _log_tail(self) -> str:
        try:
            lines = (self.folder / "zygote.log").read_text(errors="replace").strip().splitlines()  # type: ignore[operator]
        except OSError:
            return "no log"
        return lines[-1] if lines else "no output"

    def after_submission(self) -> bool:
        """Start afresh when the package copy changed, or the zygote died or was stopped; True when it did."""
        if self.proc is None:
            return False
        assert self.folder is not None
        try:
            intact = self.proc.poll() is None and not _stopped(self.proc.pid)
            intact = intact and fingerprint(self.folder / "pkg") == self._print
        except OSError:  # a file vanished while we looked: changed
            intact = False
        if intact:
            return False
        self.close()
        return True

    def close(self) -> None:
        """Stop the zygote (its session) and remove its folder."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
            self.proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        self.ready = False
        self.loaded = set()


_SERVERS: dict[tuple[int, str], ForkServer] = {}


def server_for(package: Path, base_env: dict[str, str]) -> ForkServer:
    """This process's fork server for `package` (a forked grading process gets its own)."""
    key = (os.getpid(), str(Path(package).resolve()))
    server = _SERVERS.get(key)
    if server is None or server.base_env != base_env:
        if server is not None:
            server.close()
        server = _SERVERS[key] = ForkServer(package, base_env)
    return server


def _forget_inherited() -> None:
    """In a forked grading process: drop the parent's servers (closing only our copy of their socket)."""
    for key in [k for k in _SERVERS if k[0] != os.getpid()]:
        server = _SERVERS.pop(key)
        if server.sock is not None:
            server.sock.close()
        server.proc = server.sock = server.folder = None


def close_servers() -> None:
    """Stop this process's zygotes (at exit; tests that count zygote starts)."""
    for key in [k for k in _SERVERS if k[0] == os.getpid()]:
        _SERVERS.pop(key).close()


os.register_at_fork(after_in_child=_forget_inherited)
atexit.register(close_servers)
