"""The command-line modules, one per `daozhang` command (the table is in `daozhang/cli.py`).

Each exposes `add_arguments(parser)` and `run(args) -> int`. They sit above every other
product module and may import any of them; nothing below imports a command.
"""
