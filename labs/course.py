"""The course, discovered from its folders: one folder per lab, `NN-slug/` holding

- `lab.md`: the text, opened by a small front matter (`summary:`, `needs: kind|local`, for
  labs whose steps reach beyond one namespace `rights: cluster-admin`, and for labs that need
  several machines `workers: N`, the worker nodes they stop or spread over) and a
  `# Lab N — Title` heading;
- `check.py`: the checker, a module-level `CHECKER` (see `workerlab.labs.checking`);
- optionally `exercise/`: files the learner works on (lab 9).

Adding a lab is adding a folder: nothing else lists the labs.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import ModuleType

from workerlab.api.resource import LAB_NAMESPACE
from workerlab.common.errors import WorkerlabError
from workerlab.labs.checking import Checker

FOLDER = re.compile(r"^(?P<number>\d{2})-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)$")
HEADING = re.compile(r"^# Lab \d+\s*[—:-]\s*(?P<title>.+)$", re.MULTILINE)
NEEDS = ("kind", "local")
RIGHTS = ("namespace", "cluster-admin")  # namespace: a learner's namespaced rights are enough


@dataclass(frozen=True)
class Lab:
    number: int
    slug: str
    title: str
    summary: str
    needs_cluster: bool
    folder: Path
    rights: str = "namespace"
    workers: int = 0  # worker nodes the lab needs besides the control plane (0: any cluster)

    @property
    def needs_cluster_admin(self) -> bool:
        return self.rights == "cluster-admin"

    @property
    def path(self) -> Path:
        return self.folder / "lab.md"

    @property
    def exercise(self) -> Path:
        return self.folder / "exercise"


def course_dir() -> Path:
    return Path(str(resources.files("workerlab.labs")))


def split_front_matter(markdown: str) -> tuple[dict[str, str], str]:
    """(`key: value` pairs between the leading `---` lines, the text after them)."""
    if not markdown.startswith("---\n"):
        return {}, markdown
    end = markdown.find("\n---\n", 4)
    if end < 0:
        return {}, markdown
    pairs = {}
    for line in markdown[4:end].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            pairs[key.strip()] = value.strip()
    return pairs, markdown[end + 5 :].lstrip("\n")


def load_lab(folder: Path) -> Lab:
    """One lab from its folder; a malformed folder is a clear error naming what is missing."""
    match = FOLDER.match(folder.name)
    if match is None:
        raise WorkerlabError(f"{folder.name!r} is not a lab folder name (NN-slug)")
    try:
        raw = (folder / "lab.md").read_text()
    except OSError as error:
        raise WorkerlabError(f"lab {folder.name} has no readable lab.md: {error}") from None
    meta, body = split_front_matter(raw)
    heading = HEADING.search(body)
    needs = meta.get("needs", "")
    rights = meta.get("rights", "namespace")
    workers = meta.get("workers", "0")
    if (
        heading is None
        or not meta.get("summary")
        or needs not in NEEDS
        or rights not in RIGHTS
        or not workers.isdigit()
    ):
        raise WorkerlabError(
            f"{folder / 'lab.md'} must open with front matter (summary:, needs: kind|local, "
            "optional rights: namespace|cluster-admin, optional workers: N) and a "
            "'# Lab N — Title' heading"
        )
    return Lab(
        number=int(match["number"]),
        slug=match["slug"],
        title=heading["title"].strip(),
        summary=meta["summary"],
        needs_cluster=needs == "kind",
        folder=folder,
        rights=rights,
        workers=int(workers),
    )


@cache
def labs() -> tuple[Lab, ...]:
    folders = sorted(
        p for p in course_dir().iterdir() if p.is_dir() and FOLDER.match(p.name) is not None
    )
    found = tuple(load_lab(folder) for folder in folders)
    numbers = [lab.number for lab in found]
    if numbers != list(range(1, len(found) + 1)):
        raise WorkerlabError(f"the lab folders must be numbered 01..NN without gaps: {numbers}")
    return found


def get(number: int) -> Lab:
    for lab in labs():
        if lab.number == number:
            return lab
    raise WorkerlabError(
        f"there is no lab {number}: the course has labs 1..{len(labs())}",
        hint="workerlab lab list",
    )


def text(lab: Lab) -> str:
    """The lab's Markdown without its front matter."""
    try:
        return split_front_matter(lab.path.read_text())[1]
    except OSError as error:
        raise WorkerlabError(f"lab {lab.number}'s text is missing: {error}") from None


@cache
def check_module(lab: Lab) -> ModuleType:
    """The lab's `check.py`, imported from its folder (a folder name is not a module name)."""
    name = f"workerlab.labs._check_{lab.number:02d}"
    spec = importlib.util.spec_from_file_location(name, lab.folder / "check.py")
    if spec is None or spec.loader is None:
        raise WorkerlabError(f"lab {lab.number} has no check.py in {lab.folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def checker(lab: Lab) -> Checker:
    found = getattr(check_module(lab), "CHECKER", None)
    if not isinstance(found, Checker):
        raise WorkerlabError(f"{lab.folder / 'check.py'} defines no CHECKER")
    return found


@dataclass(frozen=True)
class Segment:
    """A run of prose, or one fenced code block (its fence lines included) kept verbatim."""

    text: str
    is_code: bool


# Where a lab's text names the solo lab's namespace: kubectl's flag, a raw API path, YAML. The
# name must end there (`workerlab-metrics`, `workerlab.dev` are other things).
NAMESPACE_MENTIONS = re.compile(
    rf"(?P<lead>(?:\s-n|--namespace)[ =]|/namespaces/|\bnamespace: )"
    rf"{re.escape(LAB_NAMESPACE)}(?![\w.-])"
)


def for_namespace(markdown: str, namespace: str | None) -> str:
    """The text with every command aimed at `namespace` instead of the solo lab's `workerlab`:
    what a learner in `learner-ada` pastes must work there, verbatim."""
    if not namespace or namespace == LAB_NAMESPACE:
        return markdown
    return NAMESPACE_MENTIONS.sub(lambda m: f"{m['lead']}{namespace}", markdown)


def segments(markdown: str) -> list[Segment]:
    """The text cut at its fenced code blocks, so a renderer can leave the code untouched."""
    found: list[Segment] = []
    current: list[str] = []
    in_code = False
    for line in markdown.splitlines(keepends=True):
        if line.startswith("```"):
            if in_code:
                current.append(line)
                found.append(Segment("".join(current), is_code=True))
                current, in_code = [], False
                continue
            if current:
                found.append(Segment("".join(current), is_code=False))
            current, in_code = [line], True
        else:
            current.append(line)
    if current:
        found.append(Segment("".join(current), is_code=in_code))
    return found


def fold_solution(markdown: str, note: str) -> str:
    """The text with its `## Solution` section (up to the next `## `) replaced by `note`."""
    kept: list[str] = []
    folding = False
    for segment in segments(markdown):
        if segment.is_code:
            if not folding:
                kept.append(segment.text)
            continue
        for line in segment.text.splitlines(keepends=True):
            if line.startswith("## "):
                folding = line[3:].strip().lower() == "solution"
                kept.append(line)
                if folding:
                    kept.append(f"\n{note}\n\n")
            elif not folding:
                kept.append(line)
    return "".join(kept)


def _fenced_blocks(markdown: str, section: str, language: str) -> list[str]:
    """Code blocks of one language under one `## section` (until the next `## `)."""
    blocks: list[str] = []
    inside_section = False
    current: list[str] | None = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            inside_section = line[3:].strip().lower() == section.lower()
            continue
        if current is not None:
            if line.startswith("```"):
                blocks.append("\n".join(current) + "\n")
                current = None
            else:
                current.append(line)
        elif inside_section and line.strip() == f"```{language}":
            current = []
    return blocks


def steps(lab: Lab, namespace: str | None = None) -> str:
    """The lab's runnable steps: every ```sh block under `## Steps`, in order, aimed at
    `namespace` as `workerlab lab show` prints them there."""
    return for_namespace("".join(_fenced_blocks(text(lab), "Steps", "sh")), namespace)


def question_steps(lab: Lab) -> str:
    """The commands that explore the lab's questions: every ```sh block under `## Questions`,
    in order. They run after the steps, in the same shell (the course tests run them too)."""
    return "".join(_fenced_blocks(text(lab), "Questions", "sh"))


def solution_code(lab: Lab) -> str:
    """The ```python block under `## Solution`, where a lab's solution is code (lab 9)."""
    return "".join(_fenced_blocks(text(lab), "Solution", "python"))
