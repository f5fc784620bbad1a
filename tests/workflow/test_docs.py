"""The commands the documentation shows work as written: parsed with Snakemake's own argument parser, no target is
swallowed by an option that takes several values (`--configfile a.yaml <target>` reads the target as a second
config file, `--forcerun rule <target>` as a second rule), and every rule they name exists."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from snakemake.cli import get_argument_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "scripts/slurm/README.md", "config/README.md",
        *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
PARSER = get_argument_parser()
# Options that take several values, read from the parser itself (--configfile, --forcerun, --until, ...).
MULTI_VALUE = {action.dest: action.option_strings[0] for action in PARSER._actions
               if action.option_strings and action.nargs in ("*", "+")}
MULTI_VALUE_OPTIONS = {option for action in PARSER._actions if action.dest in MULTI_VALUE
                       for option in action.option_strings}
# Options whose values name rules (`RULE`, `RULE:resource=value`, `RULE=value`); a value with a "/" is a file.
RULE_VALUED = ("forcerun", "until", "omit_from", "set_resources", "set_threads", "allowed_rules", "groups",
               "prioritize", "preemptible_rules")
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def fenced_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line inside a ``` fenced block of a markdown text."""
    lines, inside = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside:
            lines.append((number, line))
    return lines


def inline_commands(text: str) -> list[tuple[int, str]]:
    """Inline `code` spans that are snakemake commands, or fragments giving values to a multi-value option
    (`--set-resources train_gan_hsr:runtime=2880`; not a bare option name, not sbatch's `--mem 4000`)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for span in re.findall(r"`([^`]+)`", line):
            words = span.split()
            if re.match(r"(\S*/)?snakemake$", words[0]) or (words[0] in MULTI_VALUE_OPTIONS and len(words) > 1):
                found.append((number, span))
    return found


def join_continuations(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    joined, pending = [], None
    for number, line in lines:
        if pending is not None:
            number, line = pending[0], pending[1] + " " + line.strip()
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1])
        else:
            joined.append((number, line))
            pending = None
    return joined


def snakemake_args(line: str) -> list[str] | None:
    """The arguments of the snakemake command on a shell line (None if it runs none). Placeholders become a
    rule-looking word (`<rule>`) or a target-looking one (`<target>`, `<path of a figure .png>`)."""
    line = re.sub(r"<[^<>]*>", lambda m: "RULE_PLACEHOLDER" if "rule" in m.group() else "results/PLACEHOLDER",
                  line)
    if line.lstrip().startswith("--"):  # an option fragment in running text
        line = "snakemake " + line
    for command in re.split(r"&&|;|\|", line):
        words = shlex.split(command, comments=True)
        if words and Path(words[0]).name == "snakemake":
            return words[1:]
    return None


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, arguments) of every snakemake command in the markdown docs and the Snakefile's header."""
    commands = []
    for doc in DOCS:
        text = (REPO / doc).read_text()
        for number, line in join_continuations(fenced_blocks(text)) + inline_commands(text):
            args = snakemake_args(line)
            if args is not None:
                commands.append((f"{doc}:{number}", args))
    for number, line in enumerate((REPO / "Snakefile").read_text().splitlines(), 1):
        if line.startswith("#") and "snakemake " in line:
            command = line[line.index("snakemake "):]
            commands.append((f"Snakefile:{number}", snakemake_args(re.split(r"\s{2,}", command)[0])))
    return commands


COMMANDS = documented_commands()


def looks_like_target(word: str) -> bool:
    return "/" in word or re.search(r"\.(md|csv|tex|png|json|pt|npy|html)$", word) is not None


def swallowed_targets(args) -> list[str]:
    """Target-looking values that the parser gave to a multi-value option instead of to the targets."""
    swallowed = []
    for dest, option in MULTI_VALUE.items():
        for value in map(str, getattr(args, dest, None) or []):
            if not looks_like_target(value):
                continue
            if dest == "configfile" and value.endswith(CONFIG_SUFFIXES):
                continue
            swallowed.append(f"{option} {value}")
    return swallowed


def test_the_docs_show_commands():
    # The extraction itself works: the README's forcerun examples and the slurm README's commands are found.
    places = {where.split(":")[0] for where, _ in COMMANDS}
    assert {"docs/paper.md", "scripts/slurm/README.md", "Snakefile"} <= places, places
    assert any("--forcerun" in args for _, args in COMMANDS)


@pytest.mark.parametrize("where,args", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_keeps_its_targets(where, args):
    parsed = PARSER.parse_args(args)
    swallowed = swallowed_targets(parsed)
    assert not swallowed, (f"{where}: `snakemake {shlex.join(args)}` gives the target(s) to an option that takes "
                           f"several values: {swallowed}. Put targets first (or after `--`).")


def test_a_target_after_a_multi_value_option_is_caught():
    # The check above can fail: the two traps of issue 19 are recognised.
    for args in (["--configfile", "my.yaml", "results/paper/tables/table_3.3.md"],
                 ["--profile", "profiles/slurm", "--forcerun", "table", "results/paper/tables/table_3.3.md"],
                 ["--forcerun", "RULE_PLACEHOLDER", "results/PLACEHOLDER"]):
        assert swallowed_targets(PARSER.parse_args(args)), args
    for args in (["results/paper/tables/table_3.3.md", "--forcerun", "table"],
                 ["--configfile", "config/demo.yaml", "--", "results/demo/tables/table_3.3.md"]):
        assert not swallowed_targets(PARSER.parse_args(args)), args


def named_rules(args) -> set[str]:
    parsed = PARSER.parse_args(args)
    names = set()
    for dest in RULE_VALUED:
        for value in map(str, getattr(parsed, dest, None) or []):
            name = re.split(r"[:=]", value)[0]
            if "/" not in name and name != "RULE_PLACEHOLDER":
                names.add(name)
    return names


@pytest.fixture(scope="module")
def listed_rules() -> list[str]:
    """The rows of `snakemake --list-rules` on the paper config: "name (docstring)" or a bare name."""
    out = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules", "--snakefile", str(REPO / "Snakefile")],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    assert len(rows) > 30, rows
    return rows


def test_documented_rule_names_exist(listed_rules):
    workflow_rules = {row.split()[0] for row in listed_rules}
    unknown = {f"{where}: {name}" for where, args in COMMANDS for name in named_rules(args)
               if name not in workflow_rules}
    assert not unknown, f"rules named in documented commands that the workflow does not have: {sorted(unknown)}"
    assert named_rules(["--set-resources", "train_gan:runtime=1"]) == {"train_gan"}  # the check can fail


def test_every_rule_has_a_description(listed_rules):
    bare = [row for row in listed_rules if not re.fullmatch(r"\w+ \(.+\)", row)]
    assert not bare, f"rules without a docstring (one line right after `rule x:`): {bare}"
