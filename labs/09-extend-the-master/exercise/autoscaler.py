"""Lab 9 exercise: the decision at the heart of an autoscaler, as a pure function.

Make `workerlab lab check 9` pass by implementing `desired_replicas` (the tests next to this file
say exactly what is expected). `workerlab lab reset 9` puts this stub back.
"""

from __future__ import annotations


def desired_replicas(
    current: int,
    utilization: list[float],
    target: float = 0.6,
    tolerance: float = 0.1,
    min_replicas: int = 1,
    max_replicas: int = 10,
) -> int:
    """How many pods the WorkerCluster should have.

    current      spec.replicas now
    utilization  per Ready pod, the fraction of its processes that were busy (0.0 .. 1.0)
    target       the utilization we aim for
    tolerance    no change while |mean / target - 1| <= tolerance (avoids flapping)
    """
    raise NotImplementedError("lab 9: implement desired_replicas")
