"""Regenerate the README's example output: run the command it shows and write what it printed
between the README's markers (never typed by hand).

    .venv/bin/python scripts/readme_example.py           # rewrite README.md
    .venv/bin/python scripts/readme_example.py --check   # exit 1 when README.md is out of date

``tests/test_docs_commands.py`` runs the check, so a change of the demo, the engine or the table
layout that changes the output fails the suite until this script is run again.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

README = ROOT / "README.md"
COMMAND = ["run", "--demo", "--no-progress"]
BEGIN = "<!-- readme_example: begin (written by scripts/readme_example.py) -->"
END = "<!-- readme_example: end -->"


def command_output() -> str:
    """What ``snn-workbench run --demo --no-progress`` prints (stdout), run in this process."""
    from workbench.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(COMMAND))
    if code != 0:
        raise RuntimeError(f"snn-workbench {' '.join(COMMAND)} exited with {code}")
    return out.getvalue().rstrip("\n")


def rendered(text: str, output: str) -> str:
    """``text`` (the README) with the block between the markers replaced by ``output``."""
    try:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise SystemExit(f"{README}: the markers {BEGIN!r} ... {END!r} are missing") from None
    block = f"Example (`snn-workbench {' '.join(COMMAND)}`):\n\n```text\n{output}\n```\n"
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 when README.md differs")
    args = ap.parse_args(argv)
    old = README.read_text()
    new = rendered(old, command_output())
    if args.check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       "README.md", "README.md (regenerated)"))
            print("README.md example is out of date: run scripts/readme_example.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        README.write_text(new)
        print(f"updated {README}")
    else:
        print(f"{README} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
