"""What the command line (`workerlab.cli`) and the course's checkers (`workerlab.labs`) both
stand on: kubectl pinned to one context and namespace (`kube`), the errors a learner sees
(`errors`), the cluster read as plain data (`views`, `wcstate`), the learner's local record of
lab starts and load runs (`journal`), the checkout's paths (`paths`) and load statistics
(`loadstats`). It imports neither of them: they import it."""
