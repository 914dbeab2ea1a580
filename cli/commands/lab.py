"""`workerlab lab`: the course. list, show, check (the verify step), reset (the starting state)."""

from __future__ import annotations

import typer
from rich.markdown import Markdown
from rich.table import Table

from workerlab.cli import journal
from workerlab.cli.errors import EXIT_FAILED
from workerlab.cli.support import (
    ContextOption,
    NamespaceOption,
    friendly,
    kube_for,
    out,
    print_json,
)
from workerlab.labs import course
from workerlab.labs.checking import CheckContext, Item

lab_app = typer.Typer(
    help="The course: one lab per folder under labs/, each ending in a check.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

NumberArg = typer.Argument(..., help="lab number (see `workerlab lab list`)")


@lab_app.command("list")
@friendly
def list_labs() -> None:
    """List the labs in order.

    Example: workerlab lab list
    """
    table = Table(box=None)
    for column in ("#", "lab", "needs", "what you do"):
        table.add_column(column)
    for lab in course.labs():
        table.add_row(
            str(lab.number), lab.title, "kind" if lab.needs_cluster else "local", lab.summary
        )
    out.print(table)


@lab_app.command()
@friendly
def show(
    number: int = NumberArg,
    solution: bool = typer.Option(
        False, "--solution", help="include the solution (folded away by default)"
    ),
    raw: bool = typer.Option(
        False, "--raw", help="print the Markdown source as it is, solution included"
    ),
) -> None:
    """Show a lab's text: goal, background, steps, questions, hints (and --solution).

    Code blocks are printed exactly as written, never wrapped, so they copy-paste whole.

    Example: workerlab lab show 1
    """
    text = course.text(course.get(number))
    if raw:
        typer.echo(text, nl=False)
        return
    if not solution:
        text = course.fold_solution(
            text, f"Folded away: `workerlab lab show {number} --solution` shows it."
        )
    print_lab_text(text)


def print_lab_text(text: str) -> None:
    """Prose through rich's Markdown; code blocks verbatim, because rich hard-wraps them at the
    terminal width and a wrapped command no longer works when pasted."""
    for segment in course.segments(text):
        if not segment.is_code:
            if segment.text.strip():
                out.print(Markdown(segment.text))
            continue
        fence_open, *code = segment.text.splitlines(keepends=True)
        # an unclosed block (at the end of the text) still gets its closing fence
        fence_close = code.pop() if code and code[-1].startswith("```") else "```"
        verbatim = "".join(code)
        if verbatim and not verbatim.endswith("\n"):
            verbatim += "\n"
        out.print()
        out.print(fence_open.rstrip("\n"), style="dim", markup=False, soft_wrap=True)
        out.file.write(verbatim)
        out.print(fence_close.rstrip("\n"), style="dim", markup=False, soft_wrap=True)
        out.print()


def render_items(number: int, items: list[Item]) -> None:
    for it in items:
        mark = "[green]PASS[/]" if it.passed else "[red]FAIL[/]"
        detail = f" [dim]({it.detail})[/]" if it.detail else ""
        out.print(f"{mark} {it.name}{detail}", soft_wrap=True)
        if not it.passed and it.hint:
            out.print(f"     [yellow]hint:[/] {it.hint}", soft_wrap=True)
    passed = sum(it.passed for it in items)
    verdict = "[green]passed[/]" if passed == len(items) else "[red]not yet[/]"
    out.print(f"lab {number}: {passed}/{len(items)} checks, {verdict}")


@lab_app.command()
@friendly
def check(
    number: int = NumberArg,
    url: str = typer.Option(None, "--url", help="lab 2: your local worker's URL"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    namespace: str = NamespaceOption,
    context: str = ContextOption,
) -> None:
    """Check your work on the real cluster/processes: what passed, what not, and a hint.

    Exit code 0 when every check passes, 1 when one fails, 2 when a prerequisite is missing.

    Example: workerlab lab check 4
    """
    lab = course.get(number)
    ctx = CheckContext(
        kube_for(namespace, context), journal.lab_started_at(number), {"url": url} if url else {}
    )
    checker = course.checker(lab)
    items = checker.evaluate(checker.gather(ctx))
    if as_json:
        print_json(
            {
                "lab": number,
                "passed": all(i.passed for i in items),
                "items": [vars(i) for i in items],
            }
        )
    else:
        render_items(number, items)
    if not all(i.passed for i in items):
        raise typer.Exit(EXIT_FAILED)


@lab_app.command()
@friendly
def reset(
    number: int = NumberArg,
    namespace: str = NamespaceOption,
    context: str = ContextOption,
) -> None:
    """Put things in the lab's starting state and start its clock (checks count from here).

    Example: workerlab lab reset 5
    """
    lab = course.get(number)
    ctx = CheckContext(kube_for(namespace, context))
    for line in course.checker(lab).reset(ctx):
        out.print(f"- {line}")
    journal.mark_lab_started(number)
    out.print(f"lab {number} ({lab.title}) starts now: workerlab lab show {number}")
