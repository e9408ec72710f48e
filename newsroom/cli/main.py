"""The ``newsroom`` command line: the group, its commands registered one by one, and
``main`` (the console script).

Every command prints what is wrong and what to do; a traceback never reaches the user.
Exit codes: 0 fine, 1 the input has problems, 2 the command was used wrongly or an
unexpected internal error happened.
"""

from __future__ import annotations

import sys

import click

from ..errors import NewsroomError
from ..redaction import install_log_redaction
from ..settings import get_settings, reread_settings
from .audit import audit
from .catalog import calendar, preview, validate
from .channels import channels
from .crisis import crisis
from .decisions import approve
from .deploy import deploy
from .recall import recall
from .requests import requests
from .schedule import schedule_command
from .stack import db, up, web, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsroom")
def cli() -> None:
    """Newsroom: topic-focused campaigns across many channels, carried by Prefect."""


# Each command once, in the order ``newsroom --help`` lists them (click sorts by name).
for _command in (validate, preview, calendar, schedule_command, approve, recall, crisis,
                 requests, channels, audit, db, deploy, up, web, worker):
    cli.add_command(_command)


def _connect_to_stack(args: list[str]) -> None:
    """Before Prefect reads its settings: Prefect's ephemeral mode off, and the running
    stack's API, credential and publishing environment from the data dir
    (newsroom/running_stack.py). ``newsroom up`` starts or checks its own."""
    import os

    from ..running_stack import connect

    command = next((arg for arg in args if not arg.startswith("-")), None)
    for warning in connect(os.environ, data_dir=get_settings().data_dir,
                           use_record=command != "up"):
        click.echo(f"newsroom: warning: {warning}", err=True)
    reread_settings()  # the record may have set Newsroom's settings


def main() -> None:
    install_log_redaction()
    if "prefect" not in sys.modules:
        _connect_to_stack(sys.argv[1:])
    try:
        cli(standalone_mode=True)
    except NewsroomError as exc:
        click.echo(f"newsroom: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last guard: never a traceback for a user
        click.echo(f"newsroom: unexpected error: {type(exc).__name__}: {exc}", err=True)
        click.echo("please report this to the Newsroom maintainers with the command you ran",
                   err=True)
        sys.exit(2)
