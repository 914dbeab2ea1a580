"""`workerlab class`: the instructor's commands for one cluster shared by a whole class."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from workerlab.api.resource import CLASS_CONTEXT_PREFIX
from workerlab.cli import class_settings, classroom
from workerlab.cli.commands.lab import aimed, render_items
from workerlab.cli.support import ContextOption, friendly, out, print_json
from workerlab.common.errors import EXIT_FAILED, WorkerlabError
from workerlab.common.kube import Kube, choose_context, kubeconfig_view
from workerlab.labs import course
from workerlab.labs.checking import CheckContext, Item, gather_evidence

class_app = typer.Typer(
    help="One cluster, a whole class: a namespace, quota, rights and kubeconfig per learner "
    "(instructor, cluster-admin). See docs/class.md.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

NamesArg = typer.Argument(..., help="learner names (DNS labels), e.g. ada bob")
OutOption = typer.Option(
    classroom.DEFAULT_OUT, "--out", help="folder of the learners' kubeconfigs (NAME.kubeconfig)"
)


def instructor(context: str | None) -> Kube:
    """The instructor's kubectl: never a learner's namespace-bound class context."""
    import os

    env = os.environ.get("WORKERLAB_KUBE_CONTEXT")
    config = {} if (context or env) else kubeconfig_view(Kube().kubectl)
    chosen = choose_context(context, env, config)
    if chosen.startswith(CLASS_CONTEXT_PREFIX) and not context:
        raise WorkerlabError(
            f"the current context {chosen!r} is a learner's: class commands need the "
            "instructor's (cluster-admin) context",
            hint="unset KUBECONFIG, or pass --context kind-workerlab",
        )
    return Kube(context=chosen, namespace="default")


@class_app.command()
@friendly
def add(
    names: list[str] = NamesArg,
    out_dir: Path = OutOption,
    duration: str = typer.Option(
        classroom.DEFAULT_DURATION, "--duration", help="how long the learners' tokens last"
    ),
    server: str = typer.Option(
        None,
        "--server",
        help="API server address written into the kubeconfigs (default: your context's)",
        show_default=False,
    ),
    quota: list[str] | None = typer.Option(
        None,
        "--quota",
        metavar="KEY=QTY,...",
        help="ResourceQuota hard limits over the defaults, e.g. pods=12,requests.cpu=2 "
        "(repeatable)",
        show_default=False,
    ),
    limit_range: list[str] | None = typer.Option(
        None,
        "--limit-range",
        metavar="SECTION.RES=QTY,...",
        help="LimitRange per container over the defaults, e.g. default.cpu=500m,max.memory=2Gi; "
        "SECTION is default, defaultRequest, max or min; RES cpu, memory or ephemeral-storage "
        "(repeatable)",
        show_default=False,
    ),
    profile: Path | None = typer.Option(
        None,
        "--profile",
        metavar="FILE",
        help="YAML file with `quota:` and `limitRange:` (see docs/class.md); --quota and "
        "--limit-range go over it",
        show_default=False,
    ),
    context: str | None = ContextOption,
) -> None:
    """Add learners: namespace learner-NAME (quota, limits, rights) and DIR/NAME.kubeconfig.

    Quota and limit range: the built-in defaults, then the cluster's (ConfigMap
    workerlab-system/workerlab-class-defaults, from the Helm chart), then --profile, then
    --quota and --limit-range, each merged over the one before key by key.

    Adding an existing learner again renews their token and kubeconfig and applies the
    current quota and limit range; their work stays.

    Example: workerlab class add ada bob --out class --duration 8h --quota pods=12
    """
    classroom.validate_names(names)  # bad input fails before any call to the cluster
    classroom.duration_seconds(duration)
    layers = class_settings.local_layers(profile, quota or [], limit_range or [])
    kube = instructor(context)
    settings = class_settings.resolve(kube, layers)  # the cluster's defaults, all checked
    out.print(escape(settings.describe()), soft_wrap=True)
    _warn_if_it_does_not_fit(kube, names, settings)
    for added in classroom.add(kube, names, out_dir, duration, server, settings):
        verb = "renewed" if added.renewed else "added"
        out.print(
            f"{verb} {added.name}: namespace {classroom.namespace_of(added.name)}, "
            f"kubeconfig {added.kubeconfig} (token valid {duration})",
            soft_wrap=True,
        )
    out.print(
        "hand each learner their file; on their machine they run: "
        "export KUBECONFIG=/path/to/NAME.kubeconfig; workerlab lab reset 4 "
        f"(here: export KUBECONFIG={escape(str(out_dir.resolve()))}/NAME.kubeconfig; learners "
        "sharing one machine also export WORKERLAB_LAB_HOME=$HOME/lab-NAME, one each)",
        soft_wrap=True,
    )


def _warn_if_it_does_not_fit(
    kube: Kube, names: list[str], settings: class_settings.ClassSettings
) -> None:
    """A warning, not a refusal: a class rarely uses every quota at once, but when it does the
    last learners' pods stay Pending, and the instructor should know that before the class."""
    try:
        short = classroom.fit(kube, names, settings)
    except WorkerlabError as error:
        out.print(f"[yellow]could not compare the class with the nodes[/]: {escape(str(error))}")
        return
    for shortfall in short:
        out.print(
            f"[yellow]warning[/]: the class may not fit: {escape(shortfall.describe())}; "
            "when all work at once, the last pods stay Pending (lower the quota with --quota, "
            "or add nodes)",
            soft_wrap=True,
        )


@class_app.command()
@friendly
def remove(
    names: list[str] = NamesArg, out_dir: Path = OutOption, context: str | None = ContextOption
) -> None:
    """Remove learners: their namespace (and all in it, tokens revoked) and kubeconfig file.

    Example: workerlab class remove ada
    """
    classroom.validate_names(names)
    for line in classroom.remove(instructor(context), names, out_dir):
        out.print(f"- {escape(line)}", soft_wrap=True)


@class_app.command("list")
@friendly
def list_learners(
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    context: str | None = ContextOption,
) -> None:
    """List the learners (namespaces labelled as a workerlab learner's).

    Example: workerlab class list
    """
    names = classroom.learners(instructor(context))
    if as_json:
        print_json([{"name": n, "namespace": classroom.namespace_of(n)} for n in names])
        return
    if not names:
        out.print("no learners yet: workerlab class add NAME...")
    for name in names:
        out.print(f"{name}  ({classroom.namespace_of(name)})")


def grid_labs() -> list[classroom.GridLab]:
    """The grid's columns: every lab of the course, and whether a learner can do it."""
    return [classroom.GridLab(lab.number, lab.needs_cluster_admin) for lab in course.labs()]


@class_app.command()
@friendly
def status(
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    context: str | None = ContextOption,
) -> None:
    """The learner x lab grid: verified passes (ok), claimed ones (c), not yet (.), and the
    instructor's labs (-).

    A pass a learner's `workerlab lab check` recorded is their claim (it sits in their own
    namespace); `workerlab class check NAME N` re-runs it with your rights and, when it passes,
    marks it verified. Local labs (1, 2, 9) run on the learner's machine: their passes can only
    be claimed.

    Example: workerlab class status
    """
    standings = classroom.class_progress(instructor(context))
    labs = grid_labs()
    if as_json:
        print_json(
            {
                name: {
                    "verified": [lab.number for lab in labs if s.is_verified(lab.number)],
                    "claimed": [lab.number for lab in labs if s.only_claimed(lab.number)],
                }
                for name, s in standings.items()
            }
        )
        return
    if not standings:
        out.print("no learners yet: workerlab class add NAME...")
        return
    header, rows = classroom.grid_rows(standings, labs)
    table = Table(box=None)
    for column in header:
        table.add_column(column, justify="left" if column == "learner" else "center")
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    out.print(table)
    out.print(f"[dim]{escape(classroom.LEGEND)}[/]", soft_wrap=True)


def _clock(epoch_seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_seconds))


@class_app.command()
@friendly
def check(
    name: str = typer.Argument(..., help="the learner"),
    number: int = typer.Argument(..., help="lab number"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    context: str | None = ContextOption,
) -> None:
    """Re-run a learner's check with your rights against their namespace.

    The cluster is judged as it is now; load runs (they happen on the learner's machine) come
    from the learner's recorded pass. When the learner has moved on (the next lab's reset undid
    the result), labs 4, 5, 7 and 11 are judged from the Events kept between the lab's recorded
    start and the pass: the API server keeps them about an hour (its --event-ttl).
    Exit code 0 when every check passes, 1 when one fails.

    Example: workerlab class check ada 5
    """
    lab = course.get(number)
    if not lab.needs_cluster:
        raise WorkerlabError(
            f"lab {number} runs on the learner's own machine: there is nothing in the cluster "
            "to re-check",
            hint="workerlab class status shows their recorded pass",
        )
    admin = instructor(context)
    kube = classroom.require_learner(admin, name)
    record = classroom.progress(admin, name).get(number) or {}
    # From the learner's own start: what happened since their `lab reset N`, with their runs.
    started, passed_at = record.get("started_at"), record.get("passed_at")
    runs = record.get("runs") or []
    ctx = CheckContext(
        kube,
        started_at=started if isinstance(started, int | float) else None,
        options={"runs": runs},
    )
    checker = course.checker(lab)
    try:
        items = aimed(checker.evaluate(checker.gather(ctx)), kube.namespace)
    except WorkerlabError as error:  # e.g. demo deleted since: the present shows nothing
        if checker.audit is None:
            raise
        items = [Item("the lab's objects, as they are now", False, str(error))]
    passed = all(i.passed for i in items)
    kept: list = []  # the audit's items, when the present no longer shows the pass
    window = (
        (float(started), float(passed_at))
        if isinstance(started, int | float) and isinstance(passed_at, int | float)
        else None
    )
    if not passed and checker.audit is not None and window is not None:
        evidence = gather_evidence(kube, *window, runs)
        kept = aimed(checker.audit(evidence), kube.namespace)
        passed = all(i.passed for i in kept)
    judged = "evidence" if kept else "now"  # how the verdict was reached, pass or fail
    if passed and record:
        classroom.record_verified(admin, name, number, record)
    if as_json:
        print_json(
            {
                "learner": name,
                "lab": number,
                "recorded": bool(record),
                "verified": passed and bool(record),
                "passed": passed,
                "judged": judged,
                "items": [vars(i) for i in items],
                "evidence": [vars(i) for i in kept],
            }
        )
    else:
        out.print(
            f"{name}, lab {number}: recorded pass: {'yes' if record else 'no'}; re-run now:",
            soft_wrap=True,
        )
        render_items(number, items)
        if kept and window is not None:
            out.print(
                f"not so now (has the learner moved on?). From the Events kept between the "
                f"lab's start ({_clock(window[0])}) and the pass ({_clock(window[1])}):",
                soft_wrap=True,
            )
            render_items(number, kept)
        if passed and record:
            out.print(f"[dim]verified: {name}'s lab {number} shows as ok in class status[/]")
    if not passed:
        raise typer.Exit(EXIT_FAILED)
