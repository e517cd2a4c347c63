"""Errors a user can cause and fix (bad YAML, out-of-range values, missing files, an existing output).

The CLI turns a `UserError` into its lines on stderr and exit code 2, never a traceback.  Anything
else that escapes is a bug in cucm-sim and may raise.

A `UserError` bounds what it will print, whatever it is given: at most `MAX_PROBLEMS` lines (the rest
summed up in one more line), each at most `MAX_PROBLEM_CHARS` characters, with control characters (an
ESC from a file name or a scenario's name would drive the terminal) shown as escapes such as `\\x1b`.
"""

from __future__ import annotations

import re
from typing import Final

MAX_PROBLEMS: Final = 20
"""Problem lines a UserError keeps; the rest are counted in one closing line."""
MAX_PROBLEM_CHARS: Final = 2000
"""Characters one problem line keeps; a longer one is cut and ends in '...'."""
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters other than tab and newline written as escapes (`\\x1b`)."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def bounded(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """`text` made printable, on one line, and cut to `limit` characters (ending in '...' when cut)."""
    one_line = printable(" ".join(text.splitlines()))
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


class UserError(Exception):
    """A problem in the user's input; `problems` holds one self-contained, bounded line per problem."""

    def __init__(self, problems: list[str]) -> None:
        if not problems:
            raise ValueError("a UserError needs at least one problem")
        shown = [bounded(problem) for problem in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS:,} more problems (the first {MAX_PROBLEMS} "
                         "are shown)")
        super().__init__("\n".join(shown))
        self.problems = shown


class ScenarioError(UserError):
    """A scenario file (or a --set override) that cannot be read or does not validate."""


class OutputExistsError(UserError):
    """The output directory exists and --force was not given."""


class WorkLimitError(UserError):
    """A run or a sweep that would ask for more time or memory than the documented limits allow
    (docs/limits.md), refused before it starts or stopped when its backlog outgrows memory."""


class RecordingError(UserError):
    """A Perfmon recording (PDH-CSV) that cannot be read: its message names the file and the line."""
