"""`probelink-server rules`: validate diagnosis rule files before a server loads them.

    probelink-server rules check ./my-rules          # exit 0 when every file is good
    probelink-server rules check ./my-rules --json   # {"ok": false, "problems": [...]}

Exit status 2 with one message per bad file (file, line, rule, what to fix), the same
messages with which `serve` would refuse to start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from probelink.server.cli.client import JsonOpt
from probelink.server.diagnosis.engine import unknown_actions
from probelink.server.diagnosis.prices import load_actions
from probelink.server.diagnosis.rules import RuleSet, check_directory

app = typer.Typer(help="Diagnosis rules: validate a directory of rule files.", no_args_is_help=True)


@app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="A directory of *.toml rule files.")],
    json_out: JsonOpt = False,
) -> None:
    """Validate every rule file in DIRECTORY: TOML, fields, CEL conditions, threshold names,
    actions."""
    problems = check_directory(directory)
    rule_ids: list[str] = []
    if not problems:
        rules = RuleSet.load(directory, shipped=False)
        # What `serve --rules-dir` would refuse too: an action the catalog does not have.
        problems = unknown_actions(rules, load_actions())
        rule_ids = [] if problems else sorted(rules.rules)
    if json_out:
        typer.echo(json.dumps({"ok": not problems, "problems": problems, "rules": rule_ids}))
    elif problems:
        for problem in problems:
            typer.echo(problem, err=True)
    else:
        typer.echo(f"{directory}: {len(rule_ids)} rules, all good")
    if problems:
        raise typer.Exit(2)
