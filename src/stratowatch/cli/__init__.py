"""The one command, ``stratowatch``, with lazily imported subcommands.

Each subcommand lives in ``stratowatch/cli/<verb>.py`` as a click command named ``command``;
``COMMANDS`` maps the verb to its module so ``stratowatch --help`` stays fast and a broken
optional dependency only affects its own subcommand.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

import click

COMMANDS: dict[str, str] = {
    "demo": "Simulate a two-balloon episode with radars of two partners and track it.",
    "track": "Track a plots CSV (benchmark format) and write confirmed tracks.",
    "score": "Score tracks against truth: GOSPA and track fragmentation.",
    "ingest": "Read a sensor file, count and optionally store its observations.",
    "replay": "Replay sensor files of any format in time order through the pipeline.",
    "predict": "Predict where a drifting balloon goes (or came from) on real winds.",
    "serve": "Run the live service: sources, pipeline, store and HTTP API in one process.",
    "auth": "Manage who may call the API: principals, their secrets and tokens.",
    "audit": "Show the audit log and verify its hash chain.",
}


class UsageFailure(click.ClickException):
    """A user error: printed as one clear line, exit code 2 (never a traceback)."""

    exit_code = 2


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _module_exists(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _module_exists(cmd_name):
            return None
        module = importlib.import_module(f"stratowatch.cli.{cmd_name}")
        command: click.Command = module.command
        command.short_help = COMMANDS[cmd_name]
        return command


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(f"stratowatch.cli.{name}") is not None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stratowatch")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """stratowatch: track, classify and predict high-altitude objects from many sensors."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main() -> None:
    cli(prog_name="stratowatch")
