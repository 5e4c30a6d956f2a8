"""A check for .ci/schemathesis, in place of schemathesis's own positive_data_acceptance.

A request the OpenAPI document calls valid must be accepted, with two exceptions the document
cannot express, both answered 422 by the server as the contract says:
- a reference to something that does not exist (`projectId`, `parentId`, `relatedIssueId`…:
  code `…_not_found`): the request is well-formed, the database has no such row;
- promoting the version that is already active (`already_active`): its state refuses it;
- a list whose items must differ by one field (`duplicate`: skill files named twice): JSON
  Schema's uniqueItems compares whole items;
- a field one role of token takes and the others do not (`not_ingest`: a project or widget
  origins on a token that is not `ingest`), and the shape of a widget origin
  (`invalid_origin`: scheme://host[:port]) inside a list of strings.
"""

import schemathesis
from schemathesis.core.failures import Failure

ACCEPTED = {401, 403, 404, 409, 429}
STATE_CODES = {"already_active", "duplicate", "not_ingest", "invalid_origin"}


class ValidRequestRefused(Failure):
    def __init__(self, operation: str, status: int, body: str) -> None:
        super().__init__(
            operation=operation,
            title="A valid request was refused",
            message=f"The document calls this request valid, but the server answered {status}: {body[:400]}",
        )


@schemathesis.check
def valid_requests_are_accepted(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in ACCEPTED:
        return None
    if status == 422:
        try:
            code = response.json().get("code", "")
        except Exception:
            code = ""
        if code.endswith("_not_found") or code in STATE_CODES:
            return None
    raise ValidRequestRefused(case.operation.label, status, response.text)
