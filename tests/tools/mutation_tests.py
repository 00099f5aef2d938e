"""`make mutation`: run, for each mutant, only the tests that execute the code it changed.

Usage (with .venv's interpreter):
  python tests/tools/mutation_tests.py map <config.toml> <map.json>
      Runs the config's `[burrow-mutation] tests` (pytest arguments) once, on the unmutated source,
      and records which lines of the files under mutation each test executes, which run outside
      any test (at import), and how long each test takes.
  python tests/tools/mutation_tests.py run <map.json>
      cosmic-ray's test-command: reads the mutated lines from `git diff` (the mutant is applied in
      place), takes the innermost statement around them, and runs with `-x`, fastest first, every
      test that executed a line of that statement: all of them if it runs at import, none if no
      test reaches it (the mutant survives). A test that never executes a statement cannot see it
      changed, so this kills exactly what running every test would, in a fraction of the time.
      The tests run in a child of a test server (`serve <map.json>`, started on first use, ended by
      `stop <map.json>`) that has imported everything from outside this checkout once.
As a pytest plugin (`-p tests.tools.mutation_tests`) it records the map or runs the tests listed
in the file $MUTATION_SELECT, in that order.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.tools.mutation_tests"]


# --- the pytest plugin ------------------------------------------------------------------------------
class _Recorder:
    """Lines of `files` executed, per test (None: outside any test, i.e. at import)."""

    def __init__(self, files: list[str]) -> None:
        self.files = {str(ROOT / f): f for f in files}
        self.current: str | None = None
        self.lines: dict[str, dict[int, set]] = {f: {} for f in files}
        self.seconds: dict[str, float] = {}

    def _global(self, frame, event, arg):
        name = self.files.get(frame.f_code.co_filename)
        if name is None:
            return None
        lines = self.lines[name]
        lines.setdefault(frame.f_lineno, set()).add(self.current)

        def local(frame, event, arg):
            lines.setdefault(frame.f_lineno, set()).add(self.current)
            return local

        return local

    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_runtest_setup(self, item) -> None:
        self.current = item.nodeid

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        self.current = None


_RECORDER: _Recorder | None = None


def pytest_configure(config) -> None:
    global _RECORDER
    files = os.environ.get("MUTATION_RECORD")
    if files:
        _RECORDER = _Recorder(json.loads(files))
        config.pluginmanager.register(_RECORDER, "mutation-recorder")
        sys.settrace(_RECORDER._global)  # noqa: SLF001


def pytest_collection_modifyitems(config, items) -> None:
    selected = os.environ.get("MUTATION_SELECT")
    if not selected:
        return
    order = {nodeid: index for index, nodeid in enumerate(json.loads(Path(selected).read_text()))}
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in order])
    items[:] = sorted((item for item in items if item.nodeid in order), key=lambda item: order[item.nodeid])


# --- map and run ------------------------------------------------------------------------------------
def record(config: str, map_path: str) -> int:
    settings = tomllib.loads(Path(config).read_text())
    files = settings["cosmic-ray"]["module-path"]
    args = settings.get("burrow-mutation", {}).get("tests")
    if args is None:  # the config's test-command runs its tests itself
        return 0
    raw = Path(map_path).with_suffix(".raw.json")
    env = {**os.environ, "MUTATION_RECORD": json.dumps(files), "MUTATION_RAW": str(raw)}
    started = time.monotonic()
    code = subprocess.run([*PYTEST, *args], cwd=ROOT, env=env).returncode
    if code != 0:
        print(f"mutation: the tests fail on the unmutated source (exit {code}); fix them first")
        return 1
    recorded = json.loads(raw.read_text())
    raw.unlink()
    tests = sorted(recorded["seconds"], key=recorded["seconds"].get)
    index = {test: i for i, test in enumerate(tests)}
    lines = {
        f: {line: sorted(-1 if t is None else index[t] for t in who) for line, who in by_line.items()}
        for f, by_line in recorded["lines"].items()
    }
    for name in files:  # what runs at import, even if the module was imported before tracing began
        for line in import_lines(Path(ROOT / name).read_text()):
            lines[name][str(line)] = sorted({*lines[name].get(str(line), []), -1})
    Path(map_path).write_text(
        json.dumps(
            {
                "args": args,
                "tests": tests,
                "seconds": recorded["seconds"],
                "lines": lines,
                "preload": recorded["preload"],
            }
        )
    )
    print(
        f"mutation: {len(tests)} tests mapped in {time.monotonic() - started:.0f} s; "
        f"all of them take {sum(recorded['seconds'].values()):.0f} s"
    )
    return 0


def pytest_unconfigure(config) -> None:
    if _RECORDER is not None:
        sys.settrace(None)
        lines = {f: {line: [t for t in who] for line, who in by_line.items()} for f, by_line in _RECORDER.lines.items()}
        outside = [name for name, module in list(sys.modules.items()) if _outside(module)]
        Path(os.environ["MUTATION_RAW"]).write_text(
            json.dumps({"lines": lines, "seconds": _RECORDER.seconds, "preload": outside})
        )


def _outside(module) -> bool:
    """Whether `module` comes from outside this checkout (the interpreter, .venv's packages)."""
    file = getattr(module, "__file__", None)
    return bool(file) and not os.path.realpath(file).startswith(f"{ROOT}{os.sep}")


HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? ")


def mutated(files: list[str]) -> dict[str, tuple[int, int]]:
    """Per changed file, the first and last line (of the original) that the mutant changes."""
    found: dict[str, tuple[int, int]] = {}
    for name in files:
        diff = subprocess.run(
            ["git", "diff", "-U0", "--no-color", "--", name], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        for match in (HUNK.match(line) for line in diff.splitlines()):
            if match:
                start, count = int(match[1]), int(match[2] if match[2] is not None else 1)
                first, last = found.get(name, (start, start + max(count, 1) - 1))
                found[name] = (min(first, start), max(last, start + max(count, 1) - 1))
    return found


def _start(node: ast.stmt) -> int:
    return min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])


def import_lines(source: str) -> set[int]:
    """The first lines of the statements a module runs when imported (its own and its classes')."""
    lines, bodies = set(), [ast.parse(source).body]
    while bodies:
        for node in bodies.pop():
            lines.add(_start(node))
            if isinstance(node, ast.ClassDef):
                bodies.append(node.body)
    return lines


def statement(name: str, first: int, last: int) -> range:
    """The lines of the innermost statement of the original `name` that holds lines first..last."""
    source = subprocess.run(["git", "show", f":{name}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    around = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.stmt) and _start(node) <= first and node.end_lineno >= last
    ]
    if not around:
        return range(first, last + 1)
    inner = min(around, key=lambda node: node.end_lineno - _start(node))
    return range(_start(inner), inner.end_lineno + 1)


def run(map_path: str) -> int:
    recorded = json.loads(Path(map_path).read_text())
    tests: list[str] = recorded["tests"]
    chosen: set[int] = set()
    changed = mutated(list(recorded["lines"]))
    if not changed:
        print("mutation: no change in the files under mutation; running every test")
        chosen = set(range(len(tests)))
    for name, (first, last) in changed.items():
        for line in statement(name, first, last):
            chosen.update(recorded["lines"][name].get(str(line), []))
    if -1 in chosen:  # the statement runs at import: every test may see it
        chosen = set(range(len(tests)))
    if not chosen:
        print(f"mutation: no test executes {changed}; it survives")
        return 0
    selection = Path(map_path).with_suffix(".selected.json")
    selection.write_text(json.dumps([tests[i] for i in sorted(chosen)]))
    print(f"mutation: {changed}: {len(chosen)} of {len(tests)} tests execute it", flush=True)
    return ask(map_path, {"select": str(selection), "args": [*PYTEST[3:], "-x", *recorded["args"]]})


# --- the test server ---------------------------------------------------------------------------------
# A test process spends ~12 s importing the provider bindings before its first test. The server imports
# what lies outside this checkout once (never Burrow, which the mutants change), then forks one child
# per mutant, which imports Burrow as it is on disk now and runs pytest. The children share the server's
# jsii runtime (one at a time); after SERVED requests, or a child that did not exit by itself, the
# server stops and the next request starts a fresh one. Its socket and log lie beside the map.
SERVED = 100
CHILD_TIMEOUT = 240.0
EXIT = "\nmutation-exit:"


def _socket(map_path: str) -> str:
    return str(ROOT / Path(map_path).with_suffix(".sock"))


def serve(map_path: str) -> int:
    import importlib
    import signal
    import socket

    sys.dont_write_bytecode = True  # a mutant's bytecode must never be cached for the next one
    for name in json.loads(Path(map_path).read_text())["preload"]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - a module that imports only as part of its package
            continue
    import gc

    import pytest

    gc.freeze()  # what is preloaded stays: no collection (pytest runs several at its end) walks it again
    Path(_socket(map_path)).unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(_socket(map_path))
    server.listen()
    for _ in range(SERVED):
        conn, _address = server.accept()
        request = json.loads(conn.makefile().readline())
        if request.get("stop"):
            conn.close()
            break
        child = os.fork()
        if child == 0:
            server.close()
            os.dup2(conn.fileno(), 1)
            os.dup2(conn.fileno(), 2)
            os.chdir(ROOT)
            os.environ["MUTATION_SELECT"] = request["select"]
            try:
                code = int(pytest.main(request["args"]))
            except BaseException:  # noqa: BLE001 - reported as a failed run
                code = 3
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)  # no atexit: the jsii runtime is the server's
        deadline = time.monotonic() + CHILD_TIMEOUT
        while (status := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if status[0] == 0:
            os.kill(child, signal.SIGKILL)
            status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status[1])
        conn.sendall(f"{EXIT}{code}\n".encode())
        conn.close()
        if code < 0:  # killed mid-run: the jsii runtime may be mid-message
            break
    server.close()
    Path(_socket(map_path)).unlink(missing_ok=True)
    return 0


def _connect(map_path: str):
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(_socket(map_path))
    return conn


def ask(map_path: str, request: dict) -> int:
    """Run `request` on the server (started if none listens); its output, then pytest's exit code."""
    for _attempt in range(3):
        try:
            conn = _connect(map_path)
        except OSError:
            log = (ROOT / Path(map_path).with_suffix(".server.log")).open("a")
            subprocess.Popen(
                [sys.executable, __file__, "serve", map_path], cwd=ROOT, stdout=log, stderr=log, start_new_session=True
            )
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    conn = _connect(map_path)
                    break
                except OSError:
                    continue
            else:
                print(f"mutation: the test server did not start (see {Path(map_path).with_suffix('.server.log')})")
                return 2
        conn.sendall((json.dumps(request) + "\n").encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        output = b"".join(chunks).decode(errors="replace")
        conn.close()
        body, marker, code = output.rpartition(EXIT)
        if marker:
            print(body, flush=True)
            return int(code)
        # The server stopped before answering (its request limit): ask a fresh one.
    print("mutation: the test server gave no exit code")
    return 2


def stop(map_path: str) -> int:
    try:
        conn = _connect(map_path)
    except OSError:
        return 0
    conn.sendall(b'{"stop": true}\n')
    conn.close()
    return 0


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    sys.exit({"map": record, "run": run, "serve": serve, "stop": stop}[command](*arguments))
