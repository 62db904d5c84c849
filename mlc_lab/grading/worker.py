"""The student's side of grading: an isolated process that runs the notebook's cells, then answers probes.

Started by `mlc_lab.grading.sandbox` as `python -I -m mlc_lab.grading.worker REQ_FD RESP_FD` in a
temporary folder holding only a copy of the submission. It trusts nothing it computes: it only runs
the student's code and reports what that code returned (as JSON, see `wire`); every verdict is made
by the grader in its own process. Anything the notebook patches here (the checks, `mlc_lab`, this
module) can change what is reported, never how it is judged.

Messages are length-prefixed JSON frames: the first request is the job (cells and limits); then
one event per cell, "ready", and one answer per probe request until the grader closes the pipe.
"""

from __future__ import annotations

import os
import resource
import struct
import sys
from typing import Any

HEADER = struct.Struct(">I")
#: The largest frame either side accepts (a graph or an MLIR module fits easily).
MAX_FRAME = 64 << 20


def send(fd: int, message: dict[str, Any]) -> None:
    from mlc_lab.grading import wire

    try:
        body = wire.dumps(message)
    except (wire.WireError, ValueError, TypeError, RecursionError) as e:
        body = wire.dumps({"error": {"type": "WireError", "message": str(e)}})
    data = HEADER.pack(len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


def recv(fd: int) -> Any:
    """The next frame's value, or None at end of input."""
    from mlc_lab.grading import wire

    head = _read_exactly(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME:
        raise wire.WireError(f"frame of {size} bytes is over the limit")
    body = _read_exactly(fd, size)
    return None if body is None else wire.loads(body)


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def limit_resources(memory_mb: int, file_mb: int) -> None:
    """Hard limits (the notebook cannot raise them again): address space, file size, no core dumps."""
    for which, value in (
        (resource.RLIMIT_AS, memory_mb << 20),
        (resource.RLIMIT_FSIZE, file_mb << 20),
        (resource.RLIMIT_CORE, 0),
    ):
        if value > 0:
            resource.setrlimit(which, (value, value))


def error_line(exc: BaseException | None) -> str | None:
    """The last line of a traceback: `ModuleNotFoundError: No module named 'x'`."""
    if exc is None:
        return None
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _told_to_stop(requests: int) -> bool:
    """The grader sends `skip` when the cells' time is up: later cells are not run."""
    import select

    if not select.select([requests], [], [], 0)[0]:
        return False
    message = recv(requests)
    return message is None or bool(isinstance(message, dict) and message.get("skip"))


def run_cells(cells: list[str], requests: int, events: int) -> Any:
    """Run each cell on an IPython shell (magics work), reporting start and outcome of each."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    # History in memory: the SQLite file's commits wait for the disk (~70 ms a notebook on ext4), and the
    # history of a grading run is never read again. (No history-saving thread either.)
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config, colors="NoColor")
    shell.user_ns["__name__"] = "__main__"
    for index, source in enumerate(cells):
        if _told_to_stop(requests):
            break
        send(events, {"event": "cell", "index": index})
        result = shell.run_cell(source, store_history=True)
        error = error_line(result.error_before_exec or result.error_in_exec)
        sys.stdout.flush()
        sys.stderr.flush()
        send(events, {"event": "cell_done", "index": index, "error": error})
    return shell


def serve(shell: Any, requests: int, answers: int) -> None:
    from mlc_lab.grading import probes
    from mlc_lab.grading.wire import WireError

    send(answers, {"event": "ready"})
    while True:
        try:
            request = recv(requests)
        except KeyboardInterrupt:  # an interrupt that arrived after the probe finished
            continue
        except WireError as e:
            send(answers, {"error": {"type": "WireError", "message": str(e)}})
            continue
        if request is None:
            return
        if request.get("skip"):
            continue
        name, args = request.get("probe"), request.get("args", [])
        probe = probes.PROBES.get(name)
        if probe is None:
            send(answers, {"error": {"type": "LookupError", "message": f"no probe {name!r}"}})
            continue
        try:
            send(answers, {"ok": probe(shell.user_ns, *args)})
        except BaseException as exc:  # noqa: BLE001 - the student's error is the answer
            send(answers, {"error": {"type": type(exc).__name__, "message": str(exc).strip()[:2000]}})
        sys.stdout.flush()
        sys.stderr.flush()


def main(argv: list[str]) -> int:
    requests, answers = int(argv[0]), int(argv[1])
    job = recv(requests)
    if not isinstance(job, dict):
        return 3
    limit_resources(int(job.get("memory_mb", 0)), int(job.get("file_mb", 0)))
    shell = run_cells([str(c) for c in job.get("cells", [])], requests, answers)
    serve(shell, requests, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
