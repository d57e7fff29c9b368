"""Every `feedbackguard ...` command the docs show is true of the real command.

The docs are README.md, SECURITY.md, docs/*.md and workers/*.md. Each command they
show, in a shell code block or in inline code, must name real (sub)commands and only
options those have. The command lines of shell code blocks are also run, in a fresh
home of their own (FEEDBACKGUARD_HOME, the embedded Redis, `store init` first) and
must succeed; those that run until stopped or for minutes (`demo`, `bench`, `serve`,
`worker`), and `redis stop` (whose `--all` would stop every embedded Redis of the
machine), run with `--help` instead.

Inline code may summarise: `store init / export` is `store init` and `store export`,
`[--burst]` is an optional `--burst`, `...` stands for anything.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from feedbackguard.cli import main
from feedbackguard.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted({*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("workers/*.md")})
SHELL_BLOCKS = {"", "sh", "bash", "shell", "console"}
SHELL_SEPARATORS = {"&&", "||", ";", "|"}
# What runs with --help instead (see above).
NOT_RUN = {("demo",), ("bench",), ("serve",), ("worker",), ("redis", "stop")}


@dataclass(frozen=True)
class Shown:
    """A command a doc shows: its arguments after `feedbackguard`, and whether it is a
    command line of a shell code block (to be run) or inline code (checked only)."""

    doc: str
    line: int
    args: tuple[str, ...]
    runnable: bool

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: feedbackguard {' '.join(self.args)}"


def _resolve(args: tuple[str, ...]) -> tuple[click.Command, int]:
    """The (sub)command `args` name, and how many of them named it."""
    command: click.Command = main
    used = 0
    while isinstance(command, click.Group) and used < len(args):
        sub = command.commands.get(args[used])
        if sub is None:
            break
        command, used = sub, used + 1
    return command, used


def _from_code_line(line: str) -> Iterator[tuple[str, ...]]:
    """The feedbackguard commands of a shell line (`a && b`, env assignments, comments)."""
    words = shlex.split(line.removeprefix("$ "), comments=True)
    segments: list[list[str]] = [[]]
    for word in words:
        if word in SHELL_SEPARATORS:
            segments.append([])
        else:
            segments[-1].append(word)
    for segment in segments:
        while segment and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", segment[0]):
            segment = segment[1:]
        if segment and Path(segment[0]).name == "feedbackguard":
            yield tuple(segment[1:])


def _from_inline(code: str) -> Iterator[tuple[str, ...]]:
    """The commands an inline summary stands for: `a b / c [--d]` is `a b --d`, `a c`."""
    first, *alternatives = code.removeprefix("feedbackguard ").split(" / ")

    def words(text: str) -> tuple[str, ...]:
        return tuple(w for w in text.replace("[", " ").replace("]", " ").split() if w != "...")

    args = words(first)
    yield args
    _, used = _resolve(args)
    for alternative in alternatives:
        yield args[: max(used - 1, 0)] + words(alternative)


def shown_commands() -> list[Shown]:
    found: list[Shown] = []
    for path in DOCS:
        doc = str(path.relative_to(ROOT))
        block: str | None = None  # the language of the code block we are in
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fence = re.match(r"\s*```(\w*)", line)
            if fence:
                block = fence.group(1) if block is None else None
                continue
            if block is not None:
                if block in SHELL_BLOCKS:
                    found += [Shown(doc, number, a, True) for a in _from_code_line(line)]
                continue
            for code in re.findall(r"`(feedbackguard [^`]+)`", line):
                found += [Shown(doc, number, a, False) for a in _from_inline(code)]
    return found


def problems(args: tuple[str, ...]) -> list[str]:
    """What is wrong with `feedbackguard ARGS`: an unknown command or option."""
    command, used = _resolve(args)
    rest = args[used:]
    if isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        return [f"{command.name} has no command {rest[0]!r}"]
    known = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            known |= {*param.opts, *param.secondary_opts}
    return [
        f"{command.name} has no option {word.split('=')[0]}"
        for word in rest
        if word.startswith("-") and word != "-" and word.split("=")[0] not in known
    ]


SHOWN = shown_commands()


def test_the_docs_show_commands_to_check() -> None:
    assert any(shown.runnable for shown in SHOWN)
    assert any(shown.args[:2] == ("store", "export") for shown in SHOWN)


def test_the_check_refuses_an_option_the_command_does_not_have() -> None:
    assert problems(("store", "export", "--out", "data.jsonl")) == ["export has no option --out"]
    assert problems(("worker", "--burst", "--queue", "fg-ingest")) == []


@pytest.mark.parametrize("shown", SHOWN, ids=str)
def test_command_shown_in_the_docs_exists_with_its_options(shown: Shown) -> None:
    assert problems(shown.args) == [], str(shown)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh home (embedded Redis, SQLite store), initialised as the README says."""
    path = tmp_path_factory.mktemp("readme") / ".feedbackguard"
    yield path
    EmbeddedRedis(path).stop()


def _run(args: tuple[str, ...], home: Path) -> click.testing.Result:
    env = {
        "FEEDBACKGUARD_HOME": str(home),
        "FEEDBACKGUARD_REDIS_URL": None,
        "FEEDBACKGUARD_STORE_URL": None,
        "FEEDBACKGUARD_SIGNING_KEY": None,
    }
    return CliRunner(env=env).invoke(main, list(args))


@pytest.mark.parametrize("shown", [s for s in SHOWN if s.runnable], ids=str)
def test_command_line_shown_in_the_docs_runs(
    shown: Shown, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(home.parent)  # files the command writes land beside the home
    assert _run(("store", "init"), home).exit_code == 0
    args = shown.args
    _, used = _resolve(args)
    if any(args[: len(prefix)] == prefix for prefix in NOT_RUN):
        args = (*args[:used], "--help")
    result = _run(args, home)
    assert result.exit_code == 0, f"{shown}\n{result.output}"
