"""Errors a user can cause and fix (bad YAML, out-of-range values, missing files, an existing output).

The CLI turns a `UserError` into its lines on stderr and exit code 2, never a traceback.  Anything
else that escapes is a bug in cucm-sim and may raise.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input; `problems` holds one self-contained line per problem."""

    def __init__(self, problems: list[str]) -> None:
        if not problems:
            raise ValueError("a UserError needs at least one problem")
        super().__init__("\n".join(problems))
        self.problems = problems


class ScenarioError(UserError):
    """A scenario file (or a --set override) that cannot be read or does not validate."""


class OutputExistsError(UserError):
    """The output directory exists and --force was not given."""
