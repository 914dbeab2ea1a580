"""`workerlab lab`: the course. list, show, check (the verify step), reset (the starting state)."""

from __future__ import annotations

from dataclasses import replace

import typer
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from workerlab.api.resource import LAB_NAMESPACE, PROGRESS_CONFIGMAP
from workerlab.cli import classroom
from workerlab.cli.support import (
    ContextOption,
    NamespaceOption,
    friendly,
    kube_for,
    out,
    print_json,
)
from workerlab.common import journal
from workerlab.common.errors import EXIT_FAILED, EXIT_USAGE, WorkerlabError
from workerlab.common.kube import Kube, is_learner_namespace
from workerlab.common.nodes import pod_nodes
from workerlab.labs import course
from workerlab.labs.checking import CheckContext, Item

lab_app = typer.Typer(
    help="The course: one lab per folder under labs/, each ending in a check.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

NumberArg = typer.Argument(..., help="lab number (see `workerlab lab list`)")
CLUSTER_PROBE_TIMEOUT_S = 10


@lab_app.command("list")
@friendly
def list_labs() -> None:
    """List the labs in order.

    Example: workerlab lab list
    """
    table = Table(box=None)
    for column in ("#", "lab", "needs", "rights", "what you do"):
        table.add_column(column)
    for lab in course.labs():
        table.add_row(
            str(lab.number),
            lab.title,
            "kind" if lab.needs_cluster else "local",
            lab.rights if lab.needs_cluster else "",
            lab.summary,
        )
    out.print(table)
    out.print(
        "[dim]rights cluster-admin: the lab changes the whole cluster. On a shared class "
        "cluster it is the instructor's (see docs/class.md).[/]",
        soft_wrap=True,
    )


def require_rights(lab: course.Lab, kube: Kube) -> None:
    """In a learner's namespace a cluster-admin lab stops with a clear message, not a Forbidden."""
    if lab.needs_cluster_admin and is_learner_namespace(kube.namespace):
        raise WorkerlabError(
            f"lab {lab.number} ({lab.title}) needs cluster-admin rights, and you are working "
            f"in your class namespace {kube.namespace!r}: ask your instructor (they run it for "
            "the class, or on a cluster of your own: `make up`)",
            hint=f"workerlab lab show {lab.number} describes what it does",
        )


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
    namespace: str | None = NamespaceOption,
    context: str | None = ContextOption,
) -> None:
    """Show a lab's text: goal, background, steps, questions, hints (and --solution).

    Code blocks are printed exactly as written, never wrapped, so they copy-paste whole. Their
    commands name the namespace you work in (your context's, or --namespace): a learner's
    `learner-NAME` in a class, `workerlab` on your own cluster.

    Example: workerlab lab show 1
    """
    text = course.text(course.get(number))
    if raw:
        typer.echo(text, nl=False)
        return
    working_in = kube_for(namespace, context).namespace  # the kubeconfig only: no API call
    text = course.for_namespace(text, working_in)
    if not solution:
        text = course.fold_solution(
            text, f"Folded away: `workerlab lab show {number} --solution` shows it."
        )
    if working_in != LAB_NAMESPACE:
        out.print(
            f"[dim]The commands below are for namespace {escape(working_in)}.[/]",
            soft_wrap=True,
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


def said_elsewhere(it: Item) -> bool:
    """The detail adds nothing: the name, or the hint printed below it, already says it."""
    shown = [it.name] + ([it.hint] if not it.passed and it.hint else [])
    return bool(it.detail) and any(it.detail.strip() in text for text in shown)


def aimed(items: list[Item], namespace: str) -> list[Item]:
    """The items with their hints' commands aimed at `namespace` (see `course.for_namespace`)."""
    return [
        replace(
            it,
            hint=course.for_namespace(it.hint, namespace),
            detail=course.for_namespace(it.detail, namespace),
        )
        for it in items
    ]


def render_items(number: int, items: list[Item]) -> None:
    for it in items:
        mark = "[green]PASS[/]" if it.passed else "[red]FAIL[/]"
        detail = f" [dim]({it.detail})[/]" if it.detail and not said_elsewhere(it) else ""
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
    namespace: str | None = NamespaceOption,
    context: str | None = ContextOption,
) -> None:
    """Check your work on the real cluster/processes: what passed, what not, and a hint.

    Exit code 0 when every check passes, 1 when one fails, 2 when a prerequisite is missing.

    Example: workerlab lab check 4
    """
    lab = course.get(number)
    kube = kube_for(namespace, context)
    if lab.needs_cluster:
        require_rights(lab, kube)
    ctx = CheckContext(kube, journal.lab_started_at(number), {"url": url} if url else {})
    checker = course.checker(lab)
    items = aimed(checker.evaluate(checker.gather(ctx)), kube.namespace)
    recorded = None
    if is_learner_namespace(kube.namespace) and all(i.passed for i in items):
        recorded = record(lab, kube, items, ctx)
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
        if recorded:
            out.print(f"[dim]{escape(recorded)}[/]", soft_wrap=True)
    if not all(i.passed for i in items):
        raise typer.Exit(EXIT_FAILED)


def record(lab: course.Lab, kube: Kube, items: list[Item], ctx: CheckContext) -> str:
    """A class learner's pass goes into their progress ConfigMap. A local lab passed on the
    learner's machine: when the cluster cannot take its record, the pass still stands."""
    try:
        classroom.record_pass(kube, lab.number, items, ctx.runs(), ctx.started_at)
    except WorkerlabError as error:
        if lab.needs_cluster:
            raise
        return f"passed here; not recorded for your instructor: {error}"
    return f"recorded in {kube.namespace}/configmap/{PROGRESS_CONFIGMAP}"


@lab_app.command()
@friendly
def reset(
    which: str = typer.Argument(..., help="lab number, or `all` for the whole course"),
    namespace: str | None = NamespaceOption,
    context: str | None = ContextOption,
) -> None:
    """Put things in the lab's starting state and start its clock (checks count from here).

    `all` resets every lab in order; labs that need the cluster are skipped, with the reason,
    when it is unreachable.

    Example: workerlab lab reset 5
    """
    kube = kube_for(namespace, context)
    if which.strip().lower() != "all":
        lab = course.get(lab_number(which))
        if lab.needs_cluster:
            require_rights(lab, kube)
        reset_one(lab, kube)
        out.print(
            f"lab {lab.number} ({lab.title}) starts now: workerlab lab show {lab.number}",
            soft_wrap=True,
        )
        return
    cluster_problem: str | None = None
    if any(lab.needs_cluster for lab in course.labs()):
        cluster_problem = why_unreachable(kube)
    done, skipped, failed, instructors, machines = [], [], [], [], []
    learner = is_learner_namespace(kube.namespace)
    workers = 0
    if not cluster_problem and not learner and any(lab.workers for lab in course.labs()):
        try:
            workers = len(pod_nodes(kube)[0])
        except WorkerlabError:
            workers = 0  # nodes unreadable: the labs that stop machines are skipped, said below
    for lab in course.labs():
        if lab.needs_cluster and cluster_problem:
            skipped.append(lab.number)
            continue
        if lab.needs_cluster_admin and learner:
            instructors.append(lab.number)
            continue
        if lab.workers > workers:
            machines.append(lab.number)
            continue
        out.print(f"lab {lab.number} ({lab.title}):")
        try:
            reset_one(lab, kube)
        except WorkerlabError as error:
            out.print(f"  [red]could not reset:[/] {escape(str(error))}", soft_wrap=True)
            failed.append(lab.number)
        else:
            done.append(lab.number)
    out.print(f"reset labs: {numbers(done)}")
    if skipped:
        out.print(
            f"[yellow]skipped labs {numbers(skipped)}[/]: they need the cluster, and "
            f"{escape(cluster_problem or '')}",
            soft_wrap=True,
        )
    if instructors:
        out.print(
            f"[yellow]skipped labs {numbers(instructors)}[/]: they need cluster-admin rights; "
            "ask your instructor",
            soft_wrap=True,
        )
    if machines:
        out.print(
            f"[yellow]skipped labs {numbers(machines)}[/]: they stop machines and need "
            f"{max(course.get(n).workers for n in machines)} worker "
            "nodes or more (make down, then make up NODES=3)",
            soft_wrap=True,
        )
    if failed:
        out.print(f"[red]could not reset labs {numbers(failed)}[/]")
        raise typer.Exit(EXIT_USAGE)


def lab_number(text: str) -> int:
    """A lab number as typed; anything else is a usage error naming what is accepted."""
    try:
        return int(text)
    except ValueError:
        raise WorkerlabError(
            f"{text!r} is not a lab: give a number 1..{len(course.labs())} or `all`",
            hint="workerlab lab list",
        ) from None


def reset_one(lab: course.Lab, kube: Kube) -> None:
    for line in course.checker(lab).reset(CheckContext(kube)):
        out.print(f"- {escape(line)}", soft_wrap=True)
    journal.mark_lab_started(lab.number)


def why_unreachable(kube: Kube) -> str | None:
    """None when the API server answers; else the one-line reason (no kubectl, no context...)."""
    try:
        kube.run("get", "--raw", "/readyz", namespaced=False, timeout=CLUSTER_PROBE_TIMEOUT_S)
    except WorkerlabError as error:
        return f"{error} ({error.hint})" if error.hint else str(error)
    return None


def numbers(labs: list[int]) -> str:
    return ", ".join(map(str, labs)) or "none"
