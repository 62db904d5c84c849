"""The fork server (`grading.zygote`): students forked from one pre-started interpreter are as isolated
as freshly started ones, a notebook that changes the package copy or kills the zygote harms no later
student, and grading falls back to a fresh `python -I` per notebook when the server is unusable.

Each notebook writes what it sees into a JSON-lines file given by absolute path (`@@OUT@@`)."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

import mlc_lab
from mlc_lab.grading import cleanup, grade, grader, zygote
from mlc_lab.grading.grader import Options
from mlc_lab.grading.sandbox import MARKER, Limits

DATA = Path(__file__).parent / "grading_data"
CHECKS = DATA / "checks"
PACKAGE = Path(mlc_lab.__file__).resolve().parent
SOLUTION = (DATA / "solutions" / "toy.md").read_text()

INTROSPECT = """
```{code-cell} ipython3
import json, os, resource, sys, tempfile
import numpy as np
import mlc_lab

fds = []
for fd in sorted(os.listdir("/proc/self/fd")):
    try:
        fds.append(os.readlink(f"/proc/self/fd/{fd}").split(":")[0])
    except OSError:
        pass  # the listing's own descriptor, closed by now
seen = {
    "files": sorted(os.listdir(".")),
    "cwd": os.getcwd(), "home": os.environ.get("HOME"), "tmpdir": os.environ.get("TMPDIR"),
    "gettempdir": tempfile.gettempdir(), "env": sorted(os.environ), "secret": os.environ.get("MLC_LAB_TEST_SECRET"),
    "own_session": os.getsid(0) == os.getpid(), "ppid": os.getppid(), "fds": fds,
    "isolated": sys.flags.isolated, "package": os.path.dirname(mlc_lab.__file__),
    "forked": "mlc_lab.grading.zygote" in sys.modules, "address_space": resource.getrlimit(resource.RLIMIT_AS)[0],
    "draw": int(np.random.randint(1 << 30)),
}
with open("@@OUT@@", "a") as f:
    f.write(json.dumps(seen) + "\\n")
```
"""

TAMPER = """
```{code-cell} ipython3
from pathlib import Path
import mlc_lab

here = Path(mlc_lab.__file__).parent  # the package copy this process imported (the zygote's)
(here / "planted.py").write_text("VALUE = 1\\n")
with open(here / "book.py", "a") as f:
    f.write("\\nPLANTED = True\\n")
```
"""

LATER = """
```{code-cell} ipython3
import json
import mlc_lab.book

try:
    import mlc_lab.planted
    planted = True
except ImportError:
    planted = False
with open("@@OUT@@", "a") as f:
    f.write(json.dumps({"planted": planted, "book_patched": hasattr(mlc_lab.book, "PLANTED")}) + "\\n")
```
"""

USES_TVM = """
```{code-cell} ipython3
import json, sys

preloaded = "tvm" in sys.modules  # before this notebook imports it
import tvm

with open("@@OUT@@", "a") as f:
    f.write(json.dumps({"preloaded": preloaded, "tvm": tvm.__file__}) + "\\n")
```
"""


def _signal_zygote(signal_name: str) -> str:
    """A notebook cell that sends `signal_name` to this grader's zygote (a sibling: both are the grader's children)."""
    return f"""
```{{code-cell}} ipython3
import os, signal

for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdline = open(f"/proc/{{pid}}/cmdline", "rb").read()
        parent = int(open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        continue
    # this grader's zygote; this process has the same cmdline, so it skips itself
    if b"mlc_lab.grading.zygote import main" in cmdline and parent == os.getppid() and int(pid) != os.getpid():
        os.kill(int(pid), signal.{signal_name})
```
"""


KILLER = _signal_zygote("SIGKILL")
STOPPER = _signal_zygote("SIGSTOP")


#: A student's descriptors besides IPython's history database: stdin, stdout, stderr, the two pipes.
FRESH_FDS = ["/dev/null", "pipe", "pipe", "pipe", "pipe"]


def open_files(view: dict) -> list[str]:
    return [f for f in view["fds"] if "history.sqlite" not in f]


def notebook(folder: Path, student: str, *cells: str, out: Path) -> None:
    (folder / student).mkdir(parents=True)
    text = SOLUTION.replace("## Checks", "".join(cells) + "\n## Checks").replace("@@OUT@@", str(out))
    (folder / student / "toy.md").write_text(text)


def seen(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Zygote starts during the test, from none running (so the count is this test's own)."""
    zygote.close_servers()
    counted: list[int] = []
    real = zygote.ForkServer.start

    def start(self: zygote.ForkServer) -> None:
        fresh = self.proc is None and not self.failed
        real(self)
        if fresh and self.proc is not None:
            counted.append(self.proc.pid)

    monkeypatch.setattr(zygote.ForkServer, "start", start)
    yield counted
    zygote.close_servers()


def test_forked_students_are_isolated_like_fresh_processes(tmp_path: Path, starts: list[int]) -> None:
    out = tmp_path / "seen.jsonl"
    for student in ("s1", "s2"):
        notebook(tmp_path / "class", student, INTROSPECT, out=out)
    os.environ["MLC_LAB_TEST_SECRET"] = "the grader's secret"
    try:
        report = grade(tmp_path / "class", checks=CHECKS, options=Options(limits=Limits(memory_mb=4096), guard=()))
    finally:
        del os.environ["MLC_LAB_TEST_SECRET"]
    assert all(n.ok for n in report.notebooks), [n.results for n in report.notebooks]
    assert len(starts) == 1  # one zygote served both students
    first, second = seen(out)
    for view in (first, second):
        assert view["forked"], view  # it came from the zygote
        assert view["files"] == [".home", "toy.md"]  # a working folder holding only its submission
        assert view["home"] == os.path.join(view["cwd"], ".home")
        assert view["tmpdir"] == view["gettempdir"] == os.path.join(view["home"], "tmp")
        assert view["secret"] is None and MARKER in view["env"] and "PYTHONPATH" not in view["env"]
        assert view["own_session"] and view["ppid"] == os.getpid()  # re-parented to the grader
        assert open_files(view) == FRESH_FDS  # nothing of the zygote's (its socket) is left open
        assert view["isolated"] == 1
        assert Path(view["package"]).resolve() != PACKAGE  # a private copy, not the installed package
        assert view["address_space"] == 4096 << 20
    assert first["cwd"] != second["cwd"]
    assert first["draw"] != second["draw"]  # NumPy's global generator is reseeded per student


def test_a_notebook_changing_the_package_copy_or_killing_or_stopping_the_zygote_harms_no_later_student(
    tmp_path: Path, starts: list[int]
) -> None:
    out = tmp_path / "seen.jsonl"
    cls = tmp_path / "class"
    notebook(cls, "a_tamper", TAMPER, out=out)
    notebook(cls, "b_later", LATER, out=out)
    notebook(cls, "c_killer", KILLER, out=out)
    notebook(cls, "d_after", LATER, out=out)
    notebook(cls, "e_stopper", STOPPER, out=out)
    notebook(cls, "f_after", LATER, out=out)
    start = time.monotonic()
    report = grade(cls, checks=CHECKS, options=Options(guard=()))
    elapsed = time.monotonic() - start
    scores = {Path(n.path).parent.name: n for n in report.notebooks}
    assert all(n.ok for n in scores.values()), {
        k: (n.error, n.cell_errors, [r.message for r in n.results if not r.passed]) for k, n in scores.items()
    }
    assert seen(out) == [{"planted": False, "book_patched": False}] * 3
    assert len(starts) == 4  # the first, and fresh ones after a_tamper's change, c_killer's kill, e_stopper's stop
    assert elapsed < zygote.FORK_TIMEOUT  # f_after did not wait for the stopped zygote to answer
    assert not (PACKAGE / "planted.py").exists() and "PLANTED" not in (PACKAGE / "book.py").read_text()


def test_a_library_one_student_loaded_is_imported_by_the_zygote_for_the_next(tmp_path: Path, starts: list[int]) -> None:
    """ON_DEMAND: the first student imports TVM itself; seen in its memory map, the zygote imports it
    once, and the students after it start with it imported (~3 s of CPU paid once, not per notebook)."""
    out = tmp_path / "seen.jsonl"
    for student in ("s1", "s2", "s3"):
        notebook(tmp_path / "class", student, USES_TVM, out=out)
    report = grade(tmp_path / "class", checks=CHECKS, options=Options(guard=()))
    assert all(n.ok for n in report.notebooks), [n.results for n in report.notebooks]
    views = seen(out)
    assert [v["preloaded"] for v in views] == [False, True, True]
    assert len({v["tvm"] for v in views}) == 1 and len(starts) == 1
    (server,) = zygote._SERVERS.values()
    assert server.loaded == {"tvm"} and server.preloading


def test_grading_falls_back_to_a_fresh_process_when_the_zygote_cannot_start(
    tmp_path: Path, starts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zygote, "BOOT", "import sys; sys.exit(3)")
    out = tmp_path / "seen.jsonl"
    notebook(tmp_path / "class", "s1", INTROSPECT, out=out)
    report = grade(tmp_path / "class", checks=CHECKS, options=Options(guard=()))
    assert report.notebooks[0].ok, report.notebooks[0].results
    (view,) = seen(out)
    assert not view["forked"] and view["isolated"] == 1 and view["own_session"]
    assert open_files(view) == FRESH_FDS
    assert Path(view["package"]).resolve() != PACKAGE  # still a private package copy
    assert view["files"] == [".home", "toy.md"]
    assert starts  # it was started, and failed
    server = next(iter(zygote._SERVERS.values()))
    assert server.failed and "exited" in server.failed


def running(needle: str) -> list[int]:
    """Live (not zombie) processes whose command line contains `needle`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle.encode() in cmdline and state != "Z":
            found.append(int(pid))
    return found


def test_no_zygote_or_its_folder_outlives_grading(
    tmp_path: Path, starts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serial: this process's zygote stops when asked (and at exit). Parallel: each grading process's
    zygote sees it go and removes its own folder. The submissions' folders are gone when grade() returns."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # the zygotes' folders land here
    for student in ("s1", "s2", "s3"):
        notebook(tmp_path / "class", student, out=tmp_path / "unused")
    grade(tmp_path / "class", checks=CHECKS, options=Options(guard=()), jobs=1)
    assert not list(temp.glob("mlc-lab-grade-*"))  # removed in the background, but before grade() returned
    assert len(starts) == 1 and running(str(temp)) == starts
    zygote.close_servers()
    assert not running(str(temp)) and not list(temp.glob("mlc-lab-zygote-*"))
    # the folder remover's thread is alive now, and still the grading processes are forked (no re-import);
    # other threads (left by earlier tests in a full run) rightly make it spawn, so only the remover is shown
    remover = [t for t in threading.enumerate() if t.name == cleanup.THREAD]
    with monkeypatch.context() as only_remover:
        only_remover.setattr(grader.threading, "enumerate", lambda: [threading.main_thread(), *remover])
        assert grader._pool_context().get_start_method() == "fork"
    stray = threading.Thread(target=time.sleep, args=(0.5,), name="stray")
    stray.start()
    assert grader._pool_context().get_start_method() == "spawn"  # a thread that might hold a lock: no fork
    stray.join()

    report = grade(tmp_path / "class", checks=CHECKS, options=Options(guard=()), jobs=2)
    assert all(n.ok for n in report.notebooks)
    assert not list(temp.glob("mlc-lab-grade-*"))  # each grading process drained its removals before it ended
    deadline = time.monotonic() + 10
    while (running(str(temp)) or list(temp.glob("mlc-lab-zygote-*"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(str(temp)), running(str(temp))
    assert not list(temp.glob("mlc-lab-zygote-*"))
