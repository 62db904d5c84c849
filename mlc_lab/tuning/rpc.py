"""Measuring trials on other machines through TVM's RPC tracker: build here, time there.

    result = tune_remote(matmul_task(512, 512, 512, target=key), 64, tracker="10.0.0.5:9190", key="rpi4",
                         target={"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"},
                         cross_compiler="aarch64-linux-gnu-g++")

Why TVM's RPC: it is the field's measurement engine for boards one does not sit at. A *tracker*
keeps a queue of *servers* (`python -m tvm.exec.rpc_server --tracker HOST:PORT --key KEY` on each
board, which needs only the TVM runtime); a client asks the tracker for a server of a key and gets a
session to it. Here each trial's kernel is compiled on this machine for the remote target (cross-
compiled: LLVM emits the board's code, `cross_compiler` links the shared library), uploaded,
loaded, run once and compared with the interpreter's answer (computed here), then timed remotely
with `time_evaluator`. Several servers measure in parallel: one worker per free server, each a
tuner holding one session, all on one shared log (`mlc_lab.tuning.coordination`: no config is
measured twice, and all workers end with the same trials). The records carry the remote target.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlc_lab.errors import MlcLabError
from mlc_lab.tuning.measure import TrialResult, WrongResult, error_line, kernel_info, scheduled_func, timed_trial
from mlc_lab.tuning.space import Config
from mlc_lab.tuning.task import Task, target_signature

#: Seconds a worker waits for the tracker to answer (connect, summary).
TRACKER_TIMEOUT_S = 10.0


class RemoteMeasureError(MlcLabError, RuntimeError):
    """The tracker cannot be reached, or has no server of the key asked for."""


def parse_tracker(text: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); ValueError naming --rpc-tracker otherwise."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"argument --rpc-tracker: expected HOST:PORT (e.g. 127.0.0.1:9190), got {text!r}")
    return host, int(port)


def remote_target(target: Any = None) -> Any:
    """The TVM target a remote board is compiled for (default: this CPU, for a server on this machine)."""
    from mlc_lab.codegen.tvm.build import host_target, resolve_target

    return host_target() if target is None else resolve_target(target)


def remote_key(target: Any, threads: int | None = None) -> str:
    """The tuning-log target of a remote board: its `mcpu` and thread count (`num-cores` if the target says)."""
    threads = threads or int(target.attrs.get("num-cores", 0) or 0) or None
    return target_signature(target, threads)


def _tracker(host: str, port: int):
    import tvm.rpc

    try:
        with socket.create_connection((host, port), timeout=TRACKER_TIMEOUT_S):
            pass
        return tvm.rpc.connect_tracker(host, port)
    except (OSError, RuntimeError) as e:
        raise RemoteMeasureError(f"cannot reach the RPC tracker at {host}:{port}: {error_line(e)}") from None


def free_servers(host: str, port: int, key: str) -> tuple[int, int]:
    """(free, registered) servers of `key` at the tracker; `RemoteMeasureError` when none is registered."""
    summary = _tracker(host, port).summary()
    registered = sum(1 for s in summary.get("server_info", []) if str(s.get("key", "")).split(":")[-1] == key)
    free = int(summary.get("queue_info", {}).get(key, {}).get("free", 0))
    if registered == 0:
        keys = sorted({str(s.get("key", "")).split(":")[-1] for s in summary.get("server_info", [])})
        raise RemoteMeasureError(
            f"no RPC server with key {key!r} at tracker {host}:{port} (keys there: {', '.join(keys) or 'none'})"
        )
    return free, registered


def request_session(host: str, port: int, key: str, session_timeout: float = 0) -> tuple[Any, str]:
    """A session to one server of `key`, and that server's address (the tracker's REQUEST, as
    `tvm.rpc.TrackerSession.request` does it, keeping the address it answers with)."""
    import tvm.rpc
    from tvm.rpc import base

    sock = socket.create_connection((host, port), timeout=TRACKER_TIMEOUT_S)
    try:
        sock.settimeout(None)  # the tracker answers when a server is free: that may take a while
        sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
        magic = struct.unpack("<i", base.recvall(sock, 4))[0]
        if magic != base.RPC_TRACKER_MAGIC:
            raise RemoteMeasureError(f"{host}:{port} is not an RPC tracker")
        base.sendjson(sock, [base.TrackerCode.REQUEST, key, "", 1])
        value = base.recvjson(sock)
    finally:
        sock.close()
    if value[0] != base.TrackerCode.SUCCESS:
        raise RemoteMeasureError(f"tracker {host}:{port} refused a session of key {key!r}: {value!r}")
    url, server_port, match_key = value[1]
    return tvm.rpc.connect(url, server_port, match_key, session_timeout), f"{url}:{server_port}"


@dataclass
class Reference:
    """What every worker checks against: the kernel's analysis, inputs and the interpreter's output (once)."""

    info: Any
    inputs: list[np.ndarray]
    expected: np.ndarray
    atol: float

    @classmethod
    def of(cls, task: Task, rtol: float) -> Reference:
        inputs = task.random_inputs()
        expected = task.reference(inputs)
        return cls(kernel_info(task), inputs, expected, rtol * float(np.abs(expected).max() or 1.0))


class RemoteCost:
    """A cost function (config -> TrialResult) that builds here and runs on one RPC server's session."""

    def __init__(
        self,
        task: Task,
        session: Any,
        server: str,
        target: Any,
        reference: Reference,
        repeat: int = 5,
        min_repeat_ms: int = 20,
        rtol: float = 1e-3,
        cross_compiler: str | None = None,
        build_lock: threading.Lock | None = None,
    ) -> None:
        self.task, self.session, self.server, self.target = task, session, server, target
        self.reference = reference
        self.info = reference.info  #: what `tune` reads the search space from
        self.repeat, self.min_repeat_ms, self.rtol = repeat, min_repeat_ms, rtol
        self.cross_compiler = cross_compiler
        self.build_lock = build_lock or threading.Lock()  # TVM's compiler state is per process
        self.measured: list[str] = []  #: config ids this server measured
        self._dir = tempfile.TemporaryDirectory(prefix="mlc_lab_rpc_")

    def __call__(self, config: Config | None) -> TrialResult:
        from mlc_lab.tuning.strategies import config_id

        name = f"trial_{uuid.uuid4().hex[:12]}.so"
        path = os.path.join(self._dir.name, name)

        def build() -> None:
            with self.build_lock:
                self._build(config, path)

        def run(_: None) -> float:
            cost = self._run(path, name)
            self.measured.append(config_id(dict(config or {})))
            return cost

        return timed_trial(config, build, run, where=f" on {self.server}")

    def _build(self, config: Config | None, path: str) -> None:
        import tvm

        from mlc_lab.codegen.tvm.prepack import prepacked_kernel

        func, constants = scheduled_func(self.task, config, self.info)
        # as the model runs it (and as local trials are timed): constant weights packed before timing
        weights = [x.op == "constant" for x in self.task.node.inputs] + [True] * len(constants)
        func, self._arrays = prepacked_kernel(func, [*self.reference.inputs, *constants], weights)
        executable = tvm.compile(tvm.IRModule({"main": func}), target=self.target)
        if self.cross_compiler:
            from tvm.support import cc

            executable.export_library(path, fcompile=cc.cross_compiler(self.cross_compiler))
        else:
            executable.export_library(path)

    def _run(self, path: str, name: str) -> float:
        import tvm

        self.session.upload(path, name)
        module = self.session.load_module(name)
        dev = self.session.cpu()
        ref = self.reference
        args = [tvm.runtime.tensor(a, dev) for a in self._arrays]
        out = tvm.runtime.tensor(np.zeros(ref.expected.shape, ref.expected.dtype), dev)
        module["main"](*args, out)
        got = out.numpy()
        if not np.allclose(got, ref.expected, rtol=self.rtol, atol=ref.atol):
            raise WrongResult(f"wrong result: max abs error {float(np.abs(got - ref.expected).max()):.3g}")
        timer = module.time_evaluator("main", dev, number=1, repeat=self.repeat, min_repeat_ms=self.min_repeat_ms)
        return float(min(timer(*args, out).results))


@dataclass
class RemoteTuneResult:
    """The tuning run (every trial of the key, as `tune` returns it) and how many trials each server measured."""

    result: Any
    servers: Counter = field(default_factory=Counter)  #: server address -> trials it measured
    target: str = ""  #: the remote target, as the records have it


def tune_remote(
    task: Task,
    trials: int,
    *,
    tracker: str,
    key: str,
    target: Any = None,
    db: Any = None,
    strategy: str = "model",
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    cross_compiler: str | None = None,
    session_timeout: float = 0,
) -> RemoteTuneResult:
    """Tune `task` measuring on the tracker's servers of `key`: one worker per free server (or `workers`).

    `task.target` should be `remote_key(remote_target(target))` so that the log records the remote target
    (`make_task(..., target=...)` in the CLI does). Without `db` the workers share a temporary log."""
    from mlc_lab.tuning.database import TuningDatabase
    from mlc_lab.tuning.tuner import tune

    host, port = parse_tracker(tracker)
    free, registered = free_servers(host, port, key)
    count = workers or max(1, free)
    tvm_target = remote_target(target)
    reference = Reference.of(task, 1e-3)
    scratch = None
    if db is None:
        scratch = tempfile.TemporaryDirectory(prefix="mlc_lab_rpc_log_")
        db = TuningDatabase(os.path.join(scratch.name, "remote.jsonl"))
    lock = threading.Lock()
    costs = []
    for _ in range(count):
        session, server = request_session(host, port, key, session_timeout)
        costs.append(
            RemoteCost(task, session, server, tvm_target, reference, cross_compiler=cross_compiler, build_lock=lock)
        )
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = tune(
                task, trials, strategy=strategy, db=db, seed=seed + i, progress=progress and i == 0, cost=costs[i]
            )
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,), name=f"mlc-lab-rpc-{i}") for i in range(count)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for cost in costs:
            cost.session = None  # closes the session: the server is free for others again
        if scratch is not None:
            scratch.cleanup()
    if errors:
        raise errors[0]
    servers: Counter = Counter()
    for cost in costs:
        servers[cost.server] += len(cost.measured)
    best = max(results, key=lambda r: len(r.trials))
    return RemoteTuneResult(best, servers, task.target)
