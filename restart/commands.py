"""Parse a dbt command line and render a narrowed copy of it.

Everything the narrowing does not touch is kept byte for byte: the parser records where each
token starts and ends in the original string, and rendering cuts the selection arguments out of
that string instead of re-quoting the rest.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

SUBCOMMANDS = frozenset(
    {
        "build", "run", "test", "seed", "snapshot", "compile", "clone", "docs", "source",
        "run-operation", "ls", "list", "deps", "clean", "debug", "parse", "show", "retry",
        "init", "freshness", "snapshot-freshness",
    }
)  # fmt: skip
# Sub-commands whose second word is part of the command name (`dbt docs generate`).
TWO_WORD = frozenset({"docs", "source"})
# Commands that write one result per node to run_results.json and can be narrowed to nodes.
NARROWABLE = frozenset({"build", "run", "test", "seed", "snapshot", "compile", "clone"})
# Global options (before the sub-command) that take a separate value.
GLOBAL_VALUE_FLAGS = frozenset(
    {
        "--log-level", "--log-level-file", "--log-format", "--log-format-file", "--log-path",
        "--target-path", "--profiles-dir", "--project-dir", "--printer-width",
        "--warn-error-options", "--log-file-max-bytes", "--record-timing-info", "-r",
        "--cache-selected-only-for", "--debug-connection", "--invocation-command",
    }
)  # fmt: skip
SELECTION_FLAGS = frozenset({"--select", "-s", "--models", "--model", "-m", "--exclude", "--selector"})
INCLUDE_FLAGS = frozenset({"--select", "-s", "--models", "--model", "-m"})
# The window of event times microbatch models build (dbt 1.9+); both apply to every microbatch model run.
EVENT_TIME_FLAGS = frozenset({"--event-time-start", "--event-time-end"})


# Single-letter options of dbt's sub-commands, and whether each takes a value.
SHORT_FLAGS = {
    "s": "--select", "m": "--models", "t": "--target", "f": "--full-refresh", "x": "--fail-fast",
    "q": "--quiet", "d": "--debug", "h": "--help", "o": "--output", "r": "--record-timing-info",
}  # fmt: skip
SHORT_WITH_VALUE = frozenset({"s", "m", "t", "o", "r"})


def _is_short_group(word: str) -> bool:
    """`-x`, `-xf`, `-sname`: one dash, then a known short option letter."""
    return len(word) >= 2 and word[0] == "-" and word[1] != "-" and word[1] in SHORT_FLAGS


def _check_short(word: str) -> None:
    """Refuse short-option groups that hide a selection where it cannot be cut out alone (`-xs a`)."""
    if len(word) < 2 or word[0] != "-" or word[1] == "-" or word[1].isdigit():
        return
    for position, letter in enumerate(word[1:], start=1):
        if letter not in SHORT_FLAGS:
            return  # not an option dbt knows: dbt refuses it, with or without narrowing
        if letter in SHORT_WITH_VALUE:
            if letter in "sm" and position > 1:
                raise CommandParseError(f"a selection inside the option group {word!r}")
            return


@dataclass(frozen=True)
class Option:
    """One option as written: `--select=a` is (`--select`, `a`); `-xsa` is `-x`, then (`-s`, `a`)."""

    index: int  # the token it is written in
    flag: str  # as written: `--select`, `-s`, `--fail-fast`, `-x`
    value: str | None = None  # a value attached to it (`=a`, or the rest of a short group)

    @property
    def long(self) -> str:
        """The long spelling of a short option (`-x` -> `--fail-fast`), else the flag itself."""
        return SHORT_FLAGS.get(self.flag[1:], self.flag) if len(self.flag) == 2 else self.flag


def _read_options(tokens: tuple[Token, ...], start: int) -> list[Option]:
    """The options among `tokens[start:]`, read the one way every question about the command uses.

    A short group ends at the first letter that takes a value: the rest of the word is that value, as
    click reads it (`-sstaff` is `--select staff`, never `-s -s -t -a -f -f`).
    """
    found = []
    for index in range(start, len(tokens)):
        word = tokens[index].value
        if word.startswith("--"):
            flag, eq, inline = word.partition("=")
            found.append(Option(index, flag, inline if eq else None))
        elif _is_short_group(word):
            for position, letter in enumerate(word[1:], start=1):
                if letter not in SHORT_FLAGS:
                    break
                if letter in SHORT_WITH_VALUE:
                    found.append(Option(index, "-" + letter, word[position + 1 :] or None))
                    break
                found.append(Option(index, "-" + letter))
    return found


class CommandParseError(ValueError):
    """The command line is not one this tool can narrow safely."""


@dataclass(frozen=True)
class Token:
    """One shell word: its unquoted value and its span in the original text."""

    value: str
    start: int
    end: int


@dataclass(frozen=True)
class DbtCommand:
    """A parsed `dbt ...` command line."""

    raw: str
    tokens: tuple[Token, ...]
    name: str  # "build", "docs generate", "source freshness", "run-operation", ...
    name_end: int  # index in tokens just after the sub-command word(s)

    @property
    def narrowable(self) -> bool:
        return self.name in NARROWABLE

    def option_values(self, flags: frozenset[str]) -> list[str]:
        """Values given to any of `flags` (dbt's multi-value options take words up to the next flag)."""
        return [value for _, _, values in self._options(flags) for value in values]

    def has_flag(self, flag: str) -> bool:
        """Whether `flag` is given, before or after the sub-command (`-x` counts as `--fail-fast`)."""
        return any(flag in (option.flag, option.long) for option in _read_options(self.tokens, 1))

    @property
    def fail_fast(self) -> bool:
        """Whether the command stops at its first failure (the last of `--fail-fast/-x/--no-fail-fast`)."""
        state = False
        for option in _read_options(self.tokens, self.name_end):
            if option.long == "--fail-fast":
                state = True
            elif option.long == "--no-fail-fast":
                state = False
        return state

    def _options(self, flags: frozenset[str]) -> list[tuple[int, int, list[str]]]:
        """(first token, token after the last value, values) for each use of `flags`.

        Like dbt's multi-value options, `--select=a b` and `-sa b` take `b` as well.
        """
        found: list[tuple[int, int, list[str]]] = []
        for option in _read_options(self.tokens, self.name_end):
            if option.flag not in flags or (found and option.index < found[-1][1]):
                continue
            j = option.index + 1
            while j < len(self.tokens) and not self.tokens[j].value.startswith("-"):
                j += 1
            values = [] if option.value is None else [option.value]
            found.append((option.index, j, values + [t.value for t in self.tokens[option.index + 1 : j]]))
        return found

    def without(self, flags: frozenset[str]) -> str:
        """The original text with every use of `flags` (and its values) cut out."""
        text = self.raw
        for first, stop, _ in reversed(self._options(flags)):
            start = self.tokens[first].start
            end = self.tokens[stop - 1].end
            # Take the whitespace before the option with it, so no double spaces remain.
            while start > 0 and text[start - 1].isspace():
                start -= 1
            text = text[:start] + text[end:]
        return text

    def narrowed(self, selectors: list[str], *, indirect_empty: bool) -> str:
        """This command selecting exactly `selectors`; every other flag is kept as written."""
        remove = SELECTION_FLAGS | ({"--indirect-selection"} if indirect_empty else frozenset())
        text = _strip_end(self.without(remove))
        text += " --select " + " ".join(shlex.quote(s) for s in selectors)
        if indirect_empty:
            text += " --indirect-selection empty"
        return text

    def with_event_time(self, start: str, end: str) -> str:
        """This command building the event-time window [start, end); the command's own window is replaced."""
        return f"{_strip_end(self.without(EVENT_TIME_FLAGS))} --event-time-start {start} --event-time-end {end}"


def _strip_end(text: str) -> str:
    """`text` without trailing whitespace, unless that whitespace is escaped (`a\\ `)."""
    end = len(text.rstrip())
    if end < len(text):
        slashes = len(text[:end]) - len(text[:end].rstrip("\\"))
        if slashes % 2:
            end += 1
    return text[:end]


def tokenize(text: str) -> tuple[Token, ...]:
    """Split like `shlex.split` (POSIX quotes and backslashes), remembering each word's span."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, value = i, []
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch == "'":
                close = text.find("'", i + 1)
                if close < 0:
                    raise CommandParseError("unterminated single quote")
                value.append(text[i + 1 : close])
                i = close + 1
            elif ch == '"':
                i += 1
                while True:
                    if i >= n:
                        raise CommandParseError("unterminated double quote")
                    if text[i] == '"':
                        i += 1
                        break
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        value.append(text[i + 1])
                        i += 2
                    else:
                        value.append(text[i])
                        i += 1
            elif ch == "\\":
                if i + 1 >= n:
                    raise CommandParseError("trailing backslash")
                value.append(text[i + 1])
                i += 2
            else:
                value.append(ch)
                i += 1
        tokens.append(Token("".join(value), start, i))
    return tuple(tokens)


def parse(text: str) -> DbtCommand:
    """Parse one dbt Cloud step command such as `dbt build --select a+ --vars '{x: 1}'`."""
    tokens = tokenize(text)
    if not tokens or tokens[0].value != "dbt":
        raise CommandParseError("a step command must start with `dbt`")
    i = 1
    while i < len(tokens):
        word = tokens[i].value
        if word.startswith("-"):
            i += 2 if (word in GLOBAL_VALUE_FLAGS and "=" not in word) else 1
            continue
        if word not in SUBCOMMANDS:
            raise CommandParseError(f"unknown dbt sub-command {word!r}")
        if word in TWO_WORD and i + 1 < len(tokens) and not tokens[i + 1].value.startswith("-"):
            command = DbtCommand(text, tokens, f"{word} {tokens[i + 1].value}", i + 2)
        else:
            command = DbtCommand(text, tokens, word, i + 1)
        for token in tokens[command.name_end :]:
            _check_short(token.value)
        return command
    raise CommandParseError("no dbt sub-command found")


def normalize(text: str) -> str:
    """A command with runs of whitespace folded, for comparing step names with commands."""
    return " ".join(text.split())
