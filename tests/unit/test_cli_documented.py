"""Every ``knack-nb`` command and option is in the README (the parser of ``lib/cli.py``).

A command counts as documented when ``knack-nb <command>`` appears in README.md; an option
when one of its spellings (``-a`` or ``--app-name``) appears in a paragraph or code block
that names its command (``knack-nb`` for the options before the command).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lib.cli import _parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(text: str) -> list[str]:
    """The README's paragraphs and fenced code blocks, each as one string."""
    blocks: list[str] = []
    current: list[str] = []
    fenced = False
    for line in text.splitlines():
        boundary = line.startswith("```") or (not fenced and not line.strip())
        if line.startswith("```"):
            fenced = not fenced
        if boundary:
            if current:
                blocks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _word(text: str) -> re.Pattern[str]:
    """``text`` standing alone: not part of a longer option or name."""
    return re.compile(rf"(?<![\w-]){re.escape(text)}(?![\w-])")


def _options(parser: argparse.ArgumentParser) -> list[list[str]]:
    return [
        action.option_strings
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    ]


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _undocumented(blocks: list[str], mention: str, options: list[list[str]]) -> list[str]:
    naming = [b for b in blocks if _word(mention).search(b)]
    return [
        f"{mention} {'/'.join(spellings)}"
        for spellings in options
        if not any(_word(s).search(b) for s in spellings for b in naming)
    ]


def test_every_command_and_option_is_in_the_readme():
    parser = _parser()
    blocks = _blocks(README.read_text(encoding="utf-8"))
    commands = _commands(parser)
    assert commands, "no commands found in the parser"
    missing = _undocumented(blocks, "knack-nb", _options(parser))
    for name, sub in commands.items():
        if not any(_word(f"knack-nb {name}").search(b) for b in blocks):
            missing.append(f"knack-nb {name}")
        missing += _undocumented(blocks, f"knack-nb {name}", _options(sub))
    assert not missing, f"not in README.md: {', '.join(missing)}"


def test_the_check_sees_an_undocumented_option():
    """The rule itself: an option missing from the blocks that name its command is found."""
    blocks = _blocks("```sh\nknack-nb run x -a app\n```\n\nOther text with --env.\n")
    assert _undocumented(blocks, "knack-nb run", [["-a", "--app-name"], ["-e", "--env"]]) == [
        "knack-nb run -e/--env"
    ]
