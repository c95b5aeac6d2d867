"""The imgpipe command line."""

from pipeline.cli.main import cli, main

__all__ = ["cli", "main"]
