"""The WorkerCluster's shared vocabulary, standard library only.

Every name the operator, the worker, the CLI and the course's checkers agree on is defined once
here: the resource's group/version/kind, its labels, condition types and event reasons
(`resource`), readers of the objects the API server returns (`objects`), the record a
worker's arbiter publishes on `GET /processes` (`processes`), and which requests are the
machinery's rather than the learner's (`traffic`).
"""
