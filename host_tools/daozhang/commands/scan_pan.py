"""`daozhang scan-pan PATH...`: exit 1 with file:offset for every full PAN or track data found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daozhang.commands.args import input_file
from daozhang.security.scan import scan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders to scan")
    parser.add_argument(
        "--known-ids",
        type=input_file,
        help="file of digit strings that are ids, not card numbers (one per line)",
    )


def run(args: argparse.Namespace) -> int:
    known: set[str] = set()
    if args.known_ids:
        known = {line.strip() for line in args.known_ids.read_text().splitlines() if line.strip()}
    report = scan(args.paths, known)
    for path, finding in report.findings:
        print(finding.describe(str(path)))
    sys.stderr.write(
        f"scanned {report.files} files, {report.bytes} bytes: {len(report.findings)} finding(s)\n"
    )
    return 1 if report.findings else 0
