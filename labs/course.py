"""The course's table of contents: one entry per lab, its text file and whether it needs kind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workerlab.labs.errors import WorkerlabError
from workerlab.labs.paths import content_dir


@dataclass(frozen=True)
class Lab:
    number: int
    slug: str
    title: str
    summary: str
    needs_cluster: bool = True

    @property
    def path(self) -> Path:
        return content_dir() / f"{self.number:02d}-{self.slug}.md"


LABS: tuple[Lab, ...] = (
    Lab(
        1,
        "one-vs-many",
        "One process vs many",
        "a CPU-bound request blocks everyone with 1 process, not with N",
        needs_cluster=False,
    ),
    Lab(
        2,
        "in-pod-master",
        "The in-pod master",
        "kill a process, watch the arbiter fork a new one; scale live with TTIN/TTOU",
        needs_cluster=False,
    ),
    Lab(
        3,
        "install-the-master",
        "Installing the master",
        "CRD, RBAC and operator; your first WorkerCluster, its status, conditions and events",
    ),
    Lab(
        4,
        "self-healing",
        "Self-healing",
        "delete pods and crash processes: who healed it? and a crash loop reported as Degraded",
    ),
    Lab(
        5,
        "scaling",
        "Scaling",
        "kubectl scale (pods) and processesPerPod (processes), load spread over both",
    ),
    Lab(
        6,
        "load-balancing",
        "Load balancing",
        "Service (per connection) vs the seed's nginx upstream (per request)",
    ),
    Lab(
        7,
        "zero-downtime-rollout",
        "Zero-downtime rollout",
        "change the pod template under load and count failed requests (target 0)",
    ),
    Lab(
        8,
        "state-sharing",
        "State sharing",
        "per-process counters disagree; with Redis they agree and no increment is lost",
    ),
    Lab(
        9,
        "extend-the-master",
        "Extend the master",
        "implement an autoscaler decision for the operator and make its failing tests pass",
        needs_cluster=False,
    ),
    Lab(
        10,
        "failure-drills",
        "Failure drills",
        "kill the operator mid-scale, cut the API server: what keeps serving, what converges",
    ),
)


def get(number: int) -> Lab:
    for lab in LABS:
        if lab.number == number:
            return lab
    raise WorkerlabError(
        f"there is no lab {number}: the course has labs 1..{len(LABS)}", hint="workerlab lab list"
    )


def text(lab: Lab) -> str:
    try:
        return lab.path.read_text()
    except OSError as error:
        raise WorkerlabError(f"lab {lab.number}'s text is missing: {error}") from None


def _fenced_blocks(markdown: str, section: str, language: str) -> list[str]:
    """Code blocks of one language under one `## section` (until the next `## `)."""
    blocks, inside_section, current = [], False, None
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


def steps(lab: Lab) -> str:
    """The lab's runnable steps: every ```sh block under `## Steps`, in order."""
    return "".join(_fenced_blocks(text(lab), "Steps", "sh"))


def solution_code(lab: Lab) -> str:
    """The ```python block under `## Solution`, where a lab's solution is code (lab 9)."""
    return "".join(_fenced_blocks(text(lab), "Solution", "python"))
