"""`python -m edupulse`: the same as the `edupulse` command."""

from edupulse.cli import run

run()
