"""The commands in the README and docs/ work as written.

- Every fenced shell block marked to run (info string ``sh run``) runs with bash (``set -e``:
  every command must exit 0) in a fresh temporary folder that looks like the project folder:
  ``.venv/bin/snn-workbench`` and ``.venv/bin/python`` (this interpreter, this checkout; the bare
  ``snn-workbench`` too, through PATH), and ``workbench/bundled/demo``,
  ``workbench/bundled/c_reference`` and ``scripts`` linked to where the code finds them (the
  ``workbench.bundled`` constants: the folders of an installed package serve as well). The
  C-reference workflow (convert, record, export, compile, run, compare -> 0) is one of them.
- Every ``snn-workbench`` command line in any shell block, and every inline ``snn-workbench ...``
  (or robustness.md's ``snn ...``) command, parses with the real argument parser: a renamed or
  removed flag fails here even where the command names placeholder files.
- The README's example output is what ``scripts/readme_example.py`` writes (the command's output).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.bundled import C_REFERENCE_DIR, DEMO_DIR
from workbench.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), C_REFERENCE_DIR / "README.md",
        DEMO_DIR / "README.md"]
# What a documented relative path means: the folder the code itself uses.
LINKS = {"workbench/bundled/demo": DEMO_DIR, "workbench/bundled/c_reference": C_REFERENCE_DIR,
         "scripts": ROOT / "scripts"}
FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")
INLINE = re.compile(r"`((?:\.venv/bin/)?(?:snn-workbench|snn) [^`]+)`")
TIMEOUT = 180


def shell_blocks(text: str) -> list[tuple[int, bool, str]]:
    """(line number, marked to run, body) of every ```sh / ```bash / ```shell block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m.group(1) in ("sh", "bash", "shell"):
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append((start, "run" in m.group(2).split(), "\n".join(body) + "\n"))
        elif m:  # another fenced block: skip to its end
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
        i += 1
    return blocks


def marked_blocks():
    seen, out = set(), []
    for path in DOCS:
        for line, marked, body in shell_blocks(path.read_text()):
            if marked and body not in seen:  # the same block in two files runs once
                seen.add(body)
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                out.append(pytest.param(body, id=f"{where}:{line}"))
    return out


def make_project_folder(folder: Path) -> dict:
    """``folder`` set up like the project folder; returns the environment to run blocks in."""
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, argv in (("snn-workbench", f'"{sys.executable}" -m workbench'), ("python", f'"{sys.executable}"')):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        (bin_dir / name).chmod(0o755)
    for rel, target in LINKS.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).symlink_to(target, target_is_directory=True)
    env = dict(os.environ)
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", QT_QPA_PLATFORM="offscreen",
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def run_block(body: str, folder: Path) -> subprocess.CompletedProcess:
    env = make_project_folder(folder)
    script = folder / "block.sh"
    script.write_text("set -euo pipefail\n" + body)
    return subprocess.run(["bash", "-x", str(script)], cwd=folder, env=env, capture_output=True, text=True, check=False,
                          timeout=TIMEOUT)


def command_lines(body: str) -> list[str]:
    """The commands of a shell block: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def cli_argv(command: str) -> list[str] | None:
    """The arguments after ``snn-workbench`` (or robustness.md's ``snn``), or None for another program."""
    words = shlex.split(command.replace("[", "").replace("]", ""), comments=True)
    if not words or Path(words[0]).name not in ("snn-workbench", "snn"):
        return None
    return words[1:]


def parse_error(argv: list[str]) -> str | None:
    """None when the real parser accepts ``argv``, else what it said."""
    import contextlib
    import io

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1]
    return None


def documented_invocations():
    out = []
    for path in DOCS:
        text = path.read_text()
        for line, _, body in shell_blocks(text):
            out += [(f"{path.name}:{line}", argv) for c in command_lines(body) if (argv := cli_argv(c)) is not None]
        for m in INLINE.finditer(text):
            span = m.group(1)
            if "..." in span or "|" in span or "[" in span:  # a pattern, not a command
                continue
            argv = cli_argv(span)
            if len(argv) > 1:  # a bare `snn-workbench compare` names the command only
                out.append((f"{path.name}: `{span}`", argv))
    return out


# ---- the tests ---------------------------------------------------------------------------------
def test_the_runnable_blocks_are_marked():
    ids = [p.id for p in marked_blocks()]
    assert any(i.startswith("README.md:") for i in ids), ids  # the C-reference workflow
    assert any(i.startswith("docs/evaluation.md:") for i in ids), ids
    assert any(i.startswith("docs/robustness.md:") for i in ids), ids
    c_ref = (C_REFERENCE_DIR / "README.md").read_text()
    readme = (ROOT / "README.md").read_text()
    c_blocks = [b for _, marked, b in shell_blocks(c_ref) if marked]
    assert c_blocks and c_blocks[0] in [b for _, marked, b in shell_blocks(readme) if marked], \
        "the C reference README and the README's Traces section must give the same commands"


@pytest.mark.parametrize("body", marked_blocks())
def test_marked_block_runs(body, tmp_path):
    if re.search(r"^cc ", body, re.MULTILINE) and shutil.which("cc") is None:
        pytest.skip("no C compiler 'cc' on PATH")
    proc = run_block(body, tmp_path)
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    if "compare ours.npz trace_c" in body:  # the C reference agrees with us, as documented
        assert "verdict: equal" in proc.stdout
        assert (tmp_path / "trace_c" / "trace.txt").is_file()


def test_a_broken_block_fails(tmp_path):
    text = "x\n```sh run\nsnn-workbench neurons > /dev/null\nsnn-workbench run --demo --no-such-flag\necho after\n```\n"
    [(_, marked, body)] = shell_blocks(text)
    assert marked
    proc = run_block(body, tmp_path)
    assert proc.returncode == 2 and "unrecognized arguments: --no-such-flag" in proc.stderr
    assert "after" not in proc.stdout  # set -e: the block stops at the failing command


def test_unmarked_blocks_do_not_run():
    text = "```sh\nrm -rf /\n```\n```text\n```sh run\n```\n"
    assert [marked for _, marked, _ in shell_blocks(text)] == [False]


def test_every_documented_command_line_parses():
    found = documented_invocations()
    assert len(found) > 30, found
    bad = [(where, argv, err) for where, argv in found if (err := parse_error(argv))]
    assert not bad, "\n".join(f"{w}: snn-workbench {' '.join(a)}: {e}" for w, a, e in bad)


def test_the_parse_check_catches_a_renamed_flag():
    assert parse_error(["run", "--demo", "--trace-layer", "conv1"]) is None
    assert "unrecognized arguments: --record-traces" in parse_error(["run", "--demo", "--record-traces", "t.npz"])
    assert "invalid choice" in parse_error(["export-params", "n.npz", "p", "--format", "bin"])
    text = "```sh\n.venv/bin/snn-workbench run --demo \\\n    --no-such-flag   # comment\n```\n"
    [(_, _, body)] = shell_blocks(text)
    assert [cli_argv(c) for c in command_lines(body)] == [["run", "--demo", "--no-such-flag"]]


def test_readme_example_output_is_current():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import readme_example
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    text = (ROOT / "README.md").read_text()
    assert readme_example.rendered(text, readme_example.command_output()) == text, \
        "README.md's example output is stale: run .venv/bin/python scripts/readme_example.py"
