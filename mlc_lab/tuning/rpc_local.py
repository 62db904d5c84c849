"""A TVM RPC tracker and servers on this machine (127.0.0.1), for tests and the book: stand-ins for boards.

    with local_rpc(servers=2, key="board") as rpc:          # rpc.tracker: "127.0.0.1:PORT"
        tune_remote(task, 8, tracker=rpc.tracker, key="board")

The processes are TVM's own entry points (`python -m tvm.exec.rpc_tracker`, `python -m tvm.exec.rpc_server`),
each started in its own process group on a free port, and stopped by PID (its group: the server's
workers too) when the block ends, however it ends. They run without torch: a stub module on their
PYTHONPATH refuses the import, which `import tvm` otherwise does and which is most of their start-up
time; an RPC server needs only TVM's runtime.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from mlc_lab.tuning.rpc import RemoteMeasureError, free_servers

#: Seconds the tracker and the servers get to start (each imports TVM: slow on a loaded machine).
START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(*procs: subprocess.Popen) -> None:
    """Stop processes started here and everything in their process groups (whose ids are their PIDs).

    All are signalled first and waited for together: a worker whose leader died is reparented and
    reaped by init, which may take a moment."""
    for signum in (signal.SIGTERM, signal.SIGKILL):  # SIGKILL: what a leader left behind in its group
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
    for proc in procs:
        proc.wait()
    deadline = time.monotonic() + 10.0
    left = list(procs)
    while left and time.monotonic() < deadline:  # until each group's last (reparented) worker is gone
        left = [p for p in left if _group_alive(p.pid)]
        for proc in left:  # again: a worker forked while the group was being killed missed the signal
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs. Zombies do not count: a worker reparented to a PID 1
    that never reaps (as in many containers) stays a zombie, dead but still signalable."""
    import psutil

    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


class LocalRPC:
    """The started processes (`procs`, tracker first) and their logs, in a temporary folder."""

    def __init__(self, key: str, threads: int = 1) -> None:
        self.key = key
        self.folder = Path(tempfile.mkdtemp(prefix="mlc_lab_local_rpc_"))
        (self.folder / "torch.py").write_text('raise ImportError("an RPC server needs no torch")\n')
        path = os.pathsep.join(filter(None, [str(self.folder), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PYTHONPATH": path, "TVM_NUM_THREADS": str(threads)}
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.port = 0

    @property
    def tracker(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> None:
        log = self.folder / f"{name}.log"
        with open(log, "wb") as out:
            command = [sys.executable, "-m", *args]
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.procs.append(proc)
        self.logs.append(log)

    def wait_for(self, check, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for proc, log in zip(self.procs, self.logs):
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-1500:]
                    raise RemoteMeasureError(f"{what}: {log.stem} exited with status {proc.returncode}: {tail}")
            with contextlib.suppress(OSError, RemoteMeasureError):
                if check():
                    return
            time.sleep(0.3)
        raise RemoteMeasureError(f"{what}: not ready after {START_TIMEOUT_S:.0f} s (logs in {self.folder})")

    def stop(self) -> None:
        stop(*self.procs)


@contextlib.contextmanager
def local_rpc(servers: int = 2, key: str = "local", threads: int = 1) -> Iterator[LocalRPC]:
    """Start a tracker and `servers` RPC servers of `key` here; yields them (`.tracker` is 'HOST:PORT')."""
    rpc = LocalRPC(key, threads)
    try:
        rpc.port = free_port()
        rpc.start(
            "tracker",
            "tvm.exec.rpc_tracker",
            "--host",
            "127.0.0.1",
            "--port",
            str(rpc.port),
            "--port-end",
            str(rpc.port + 1),
        )
        rpc.wait_for(lambda: socket.create_connection(("127.0.0.1", rpc.port), timeout=1).close() or True, "tracker")
        for i in range(servers):
            port = free_port()
            rpc.start(
                f"server{i}",
                "tvm.exec.rpc_server",
                "--tracker",
                rpc.tracker,
                "--key",
                key,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--port-end",
                str(port + 1),
            )
        rpc.wait_for(lambda: free_servers("127.0.0.1", rpc.port, key) == (servers, servers), f"{servers} servers")
        yield rpc
    finally:
        rpc.stop()
