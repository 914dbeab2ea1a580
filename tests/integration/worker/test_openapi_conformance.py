"""schemathesis against the worker's own OpenAPI document, served by a real worker on 127.0.0.1.

Every documented operation is called with generated inputs (valid and invalid, plus methods the
document does not list) and each answer is checked against the document: status codes, media
types, bodies, the Allow header. Lab mode is off, so /crash, /hang and /leak are not in the
document and are never called.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 15  # per operation and phase: bounded, about a minute in all
# /work/cpu and /work/io accept up to 5 s and 30 s: valid values are capped so a run stays short.
# Invalid ones (negative, too large, not a number) are still sent as generated.
WORK_MS_CAP = 20


@pytest.fixture(scope="module")
def worker_api(plain_worker):
    return schemathesis.openapi.from_url(f"{plain_worker.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("worker_api")


def cap_work(case) -> None:
    if not case.path.startswith("/work/") or not isinstance(case.query, dict):
        return
    ms = case.query.get("ms")
    valid = isinstance(ms, int) or (isinstance(ms, str) and ms.isdigit())
    limit = {"/work/cpu": 5_000, "/work/io": 30_000}[case.path]
    if valid and WORK_MS_CAP < int(ms) <= limit:
        case.query["ms"] = WORK_MS_CAP


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_worker_answers_as_its_openapi_document_says(case):
    cap_work(case)
    case.call_and_validate(timeout=15)
