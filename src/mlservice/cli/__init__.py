"""``mlservice`` command line. :mod:`mlservice.cli.server` holds the commands run on the server's
own machine (serve, worker, migrate, admin, ...); :mod:`mlservice.cli.client` the ones that talk
to a running server over HTTP (status, train, predict, drift)."""

from __future__ import annotations

import argparse
import sys

from mlservice import __version__
from mlservice.cli import client, server
from mlservice.observability.logs import configure_logging
from mlservice.settings import SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlservice", description="ML Service " + __version__)
    parser.add_argument("--version", action="version", version=f"mlservice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    server.add_commands(commands)
    client.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = None
    if getattr(args, "needs_settings", True):
        try:
            settings = load_settings()
        except SettingsError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        configure_logging(settings)
    try:
        return args.handler(settings, args)
    except KeyboardInterrupt:  # Ctrl-C before a command handles it (`serve` while importing)
        return 130
