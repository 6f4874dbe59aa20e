"""The command-line interface: a thin Typer shell over `trainyard.api`.

Each group of commands lives in `trainyard/commands/<name>.py` with a
`register(app)` function; heavy imports happen inside the commands so that
`trainyard --help` starts fast.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from trainyard.commands._common import err_console
from trainyard.errors import TrainyardError

COMMAND_MODULES = ("train", "registry", "versions", "serve", "monitor", "ui", "audit", "evaluate", "lm", "rag", "label")

app = typer.Typer(
    name="trainyard",
    help="From raw data to a validated, deployed and monitored model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def _global(
    workspace: str = typer.Option(None, "--workspace", "-w", help="Workspace directory (default ./trainyard-workspace or $TRAINYARD_HOME)."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    if workspace:
        os.environ["TRAINYARD_HOME"] = workspace


def _flag_shows_no_type(display_type_rich):
    """Typer 0.29's rich help prints a flag as `--json <bool>`, as if it took a value: show flags bare."""
    def display(self, ctx):
        return None if self.is_flag else display_type_rich(self, ctx)

    return display


typer.core.TyperOption.display_type_rich = _flag_shows_no_type(typer.core.TyperOption.display_type_rich)

for _name in COMMAND_MODULES:
    importlib.import_module(f"trainyard.commands.{_name}").register(app)


GLOBAL_FLAGS = ("--debug",)
GLOBAL_VALUES = ("--workspace", "-w")


def hoist_global_options(argv: list[str]) -> list[str]:
    """The global options moved in front of the command, so `trainyard models --workspace DIR --debug` works as
    `trainyard --workspace DIR --debug models` does (the README says every command takes them). Nothing after a
    `--` moves, and no command has an option of the same names."""
    front, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif arg in GLOBAL_VALUES and i + 1 < len(argv):
            front.extend(argv[i:i + 2])
            i += 1
        elif arg.startswith("--workspace="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    argv = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in argv or os.environ.get("TRAINYARD_DEBUG") == "1"
    try:
        app(args=argv, prog_name="trainyard")
    except TrainyardError as exc:
        if debug:
            err_console.print_exception()
        err_console.print(f"[bold red]error:[/] {exc.problem}", highlight=False)
        if exc.fix:
            err_console.print(f"[bold]fix:[/] {exc.fix}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: the run is recorded as interrupted; nothing else was changed.")
        sys.exit(130)
    except MemoryError:
        err_console.print("[bold red]error:[/] ran out of memory.\n[bold]fix:[/] use a smaller sample, fewer families (--include), or a machine with more memory.")
        sys.exit(2)
    except Exception as exc:  # a bug, not a user error: say so briefly, full trace with --debug
        if debug:
            raise
        err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", highlight=False)
        err_console.print("rerun with --debug for the traceback, and please report it.")
        sys.exit(1)


if __name__ == "__main__":
    main()
