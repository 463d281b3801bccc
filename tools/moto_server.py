#!/usr/bin/env python3
"""The local AWS emulator: moto's server, plus two things moto 5.2.5 lacks: SSM
ListCommandInvocations, and CloudWatch over Smithy RPC v2 CBOR (what the Rust SDK speaks).

Run it like `moto_server`, with the same arguments, from the repository's .venv:

    .venv/bin/python tools/moto_server.py -H 127.0.0.1 -p 5055

moto 5.2.5 answers ssm:ListCommandInvocations with an HTML error page. This launcher adds the
operation to moto's SSM response handler before starting moto's own server entry point. It is
built from the Command objects moto's SendCommand already keeps, so every invocation it lists is
one GetCommandInvocation also knows, with the same status.

What it follows from the AWS API:
  - CommandId and InstanceId narrow the list; both are optional.
  - MaxResults is 1 to 50 (default 50) and really pages: NextToken comes back while more remain.
  - Details=true adds CommandPlugins (one per invocation, as moto runs one plugin).
  - Filters: InvokedAfter, InvokedBefore, Status, ExecutionStage and DocumentName are applied.
What it cannot know, because moto's SendCommand does not keep it: DocumentVersion is reported as
"$DEFAULT", CloudWatchOutputConfig as disabled, and InstanceName, TraceOutput and the S3 output URLs
as empty.

It also serves CloudWatch to clients that speak Smithy RPC v2 CBOR, which moto 5.2.5 does not.
The Rust SDK (aws-sdk-cloudwatch 1.140) sends every call as a POST to
/service/GraniteServiceVersion20100801/operation/<Operation> with `smithy-protocol: rpc-v2-cbor`
and a CBOR body; moto only knows CloudWatch's query and awsJson1_0 protocols. At the WSGI layer,
where moto dispatches requests to its services, such a request is rewritten into the equivalent
awsJson1_0 one (path "/", `X-Amz-Target: GraniteServiceVersion20100801.<Operation>`, JSON body,
same Authorization header, from which moto takes the region), and moto's JSON answer is encoded
back into CBOR:
  - Request: CBOR tag-1 timestamps become epoch-second numbers and byte strings base64 text, as
    awsJson expects. A gzip Content-Encoding (the SDK's request compression) is undone.
  - Response: each value is typed by the operation's output shape in botocore's CloudWatch model,
    so timestamps go out as tag 1 over epoch seconds (a float), doubles as floats, integers as
    integers and blobs as byte strings. An output with no members is an empty map.
  - Errors keep moto's status and x-amzn-query-error header; the body is a map of `__type` (the
    shape id, e.g. com.amazonaws.cloudwatch#ResourceNotFound) and `message`.
    If moto itself crashes, the answer is a 500 InternalFailure in that form.
Every other request passes through untouched.

Tests and `replay history --faults` can make the emulator fail like AWS does under load. A POST to
/_first_response/faults of {"call": "sns:Publish", "error": "Throttling", "times": 3} (or
{"faults": [...]} for several) makes the next three signed requests counted under that key (see
api-calls below) fail before moto sees them, each answered with that service's own error shape in
the protocol its SDK speaks:
  - query (SNS): 400 <ErrorResponse> with Code Throttling, or 500 InternalError (Type Receiver);
  - awsJson (DynamoDB, Step Functions, SSM): 400 {"__type": "ThrottlingException"}, or 500
    InternalServerError (DynamoDB, SSM) / InternalFailure;
  - rpcv2Cbor (CloudWatch): 400 Throttling, or 500 InternalFailure, with x-amzn-query-error;
  - REST-JSON: the x-amzn-ErrorType header.
Any other error string is sent as the code of a 400. "from" and "until" (RFC 3339) bound the fault
on the replay's virtual clock, which replay moves with a POST of {"now": ...} to
/_first_response/clock; with both times and a window, the fault ends at whichever comes first. The
older form {"target": "<X-Amz-Target>", "code": ..., "times": ...} still works. A DELETE disarms
every fault and forgets the clock; a GET lists them with how many calls each answered. Requests
signed with the access key replay-harness (replay's own calls: simulating an alarm, recording an
execution) are never faulted. Nothing is armed unless a test asks.

GET /_first_response/topic-messages?topicArn=... answers every message the topic received (moto
keeps each Publish it accepted until a reset): id, subject, text and message attributes.

The replay runner executes state machines itself, on a virtual clock; moto only records that an
execution started, and keeps it RUNNING. The runner POSTs {"executionArn": ..., "startDate":
"<RFC 3339>", "status": "SUCCEEDED" | "FAILED" | ..., "stopDate": "<RFC 3339>"} (each field but the
ARN optional) to /_first_response/execution, and moto's record of the execution takes those dates
and that status: when it started and ended on the virtual clock.

GET /_first_response/calls answers how many DynamoDB requests moto has answered, by operation
({"PutItem": 3, ...}), so that a benchmark can report calls per event. GET
/_first_response/capacity answers the capacity units those requests would have consumed on AWS
({"read": r, "write": w, "byOperation": {"PutItem": {"read": 0, "write": 3}, ...}}): moto reports
a fixed 1.0 to any request, so the units are computed here from the sizes of the items each request
read or wrote, before and after it, by the rules of the DynamoDB Developer Guide ("DynamoDB item
sizes and formats", "Read/write capacity units"): an item's size is its attribute names' and
values' bytes (a number: one byte per two significant digits, plus one; a list or map: three bytes,
plus one per element; a boolean or null: one); a write costs one unit per KB of the larger of the
item before and after (a failed condition still costs), a read one unit per 4 KB (half when
eventually consistent), and each item of a transaction twice. A Query or Scan costs its page's
scanned items, taken as their count times the average item size of the table. The table's
secondary indexes are not counted (the state table has none). GET
/_first_response/api-calls answers the same for every service, keyed by the signing name and the
operation ({"states:ListExecutions": 2, "sns:Publish": 1, ...}), whatever the protocol: the
X-Amz-Target of JSON requests, the operation in the path of CBOR ones, the Action of query ones;
GET /_first_response/api-calls?seconds, the seconds moto spent answering them. `make bench` reads
both, to count the AWS calls each function makes and to tell moto's time from the function's.

A benchmark of the failure counter needs thousands of finished executions; POST
{"stateMachineArn": ..., "executions": [{"name", "startDate", "status", "stopDate"?}, ...]} to
/_first_response/executions records them all at once, as if each had been started and had ended
at those dates (StartExecution checks every earlier name, so 10,000 one by one take minutes).

moto copies each table a DynamoDB transaction touches, whole, to roll it back if cancelled; here
only the touched items are copied deeply (the rollback is the same, the cost no longer grows with
the table: see _TouchedOnly).

DynamoDB makes every single-item write atomic: a conditional PutItem or UpdateItem checks and
writes as one step, so of two concurrent "open the group if absent" writes exactly one succeeds.
moto's server answers requests on several threads and checks a condition and writes in separate
steps, so two concurrent requests can both pass the same condition. DynamoDB requests are
therefore answered one at a time, which restores the guarantee the product relies on.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import io
import json
import threading
import re
import sys
import time
import urllib.parse
from typing import Any, Callable, Iterable

import botocore.session
import cbor2
from botocore.model import Shape

from moto.core.responses import ActionResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import Command, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

MAX_RESULTS = 50
COMMAND_ID = re.compile(r"^[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$")
FILTER_KEYS = ("InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName")
STATUSES = ("Pending", "InProgress", "Delayed", "Success", "Cancelled", "TimedOut", "Failed", "Cancelling")
EXECUTING = ("Pending", "InProgress", "Delayed", "Cancelling")
# moto's invocations carry no separate finish time; it reports a fixed five-minute run.
ELAPSED = datetime.timedelta(minutes=5)


class InvalidNextToken(SSMException):
    def __init__(self) -> None:
        super().__init__("InvalidNextToken", "The specified token isn't valid.")


class InvalidCommandId(SSMException):
    def __init__(self) -> None:
        super().__init__("InvalidCommandId", "Invalid command id.")


class InvalidFilterKey(SSMException):
    def __init__(self, key: str) -> None:
        super().__init__("InvalidFilterKey", f"The filter key {key} isn't valid.")


class InvalidFilterValue(SSMException):
    def __init__(self, key: str, value: str) -> None:
        super().__init__("InvalidFilterValue", f"The filter value {value} isn't valid for {key}.")


def _timestamp(key: str, value: str) -> datetime.datetime:
    """An ISO 8601 filter value as a naive UTC datetime, the form moto keeps."""
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilterValue(key, value) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def _matcher(filters: list[dict[str, str]]) -> Any:
    """A predicate on (command, invocation) for the request's Filters."""
    checks = []
    for item in filters or []:
        key, value = item.get("key") or item.get("Key"), item.get("value") or item.get("Value")
        if key not in FILTER_KEYS:
            raise InvalidFilterKey(str(key))
        if not value:
            raise InvalidFilterValue(key, str(value))
        if key == "InvokedAfter":
            after = _timestamp(key, value)
            checks.append(lambda c, i, t=after: c.requested_date_time >= t)
        elif key == "InvokedBefore":
            before = _timestamp(key, value)
            checks.append(lambda c, i, t=before: c.requested_date_time <= t)
        elif key == "Status":
            if value not in STATUSES:
                raise InvalidFilterValue(key, value)
            checks.append(lambda c, i, v=value: i["Status"] == v)
        elif key == "ExecutionStage":
            if value not in ("Executing", "Complete"):
                raise InvalidFilterValue(key, value)
            executing = value == "Executing"
            checks.append(lambda c, i, e=executing: (i["Status"] in EXECUTING) == e)
        else:  # DocumentName
            checks.append(lambda c, i, v=value: c.document_name == v)
    return lambda command, invocation: all(check(command, invocation) for check in checks)


def _invocation(command: Command, invocation: dict[str, Any], details: bool) -> dict[str, Any]:
    """One CommandInvocation, shaped like the AWS API's."""
    result: dict[str, Any] = {
        "CommandId": command.command_id,
        "InstanceId": invocation["InstanceId"],
        "InstanceName": "",
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": "$DEFAULT",
        "RequestedDateTime": command.requested_date_time,
        "Status": invocation["Status"],
        "StatusDetails": invocation["StatusDetails"],
        "TraceOutput": "",
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [],
        "ServiceRole": command.service_role_arn,
        "NotificationConfig": command.notification_config,
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
    }
    if details:
        result["CommandPlugins"] = [
            {
                "Name": invocation["PluginName"],
                "Status": invocation["Status"],
                "StatusDetails": invocation["StatusDetails"],
                "ResponseCode": invocation["ResponseCode"],
                "ResponseStartDateTime": command.requested_date_time,
                "ResponseFinishDateTime": command.requested_date_time + ELAPSED,
                # Like AWS: the first 2,500 characters of the plugin's output.
                "Output": (invocation.get("StandardOutputContent") or "")[:2500],
                "StandardOutputUrl": "",
                "StandardErrorUrl": "",
                "OutputS3Region": command.output_s3_region,
                "OutputS3BucketName": command.output_s3_bucket_name,
                "OutputS3KeyPrefix": command.output_s3_key_prefix,
            }
        ]
    return result


def list_command_invocations(
    self: SimpleSystemManagerBackend,
    command_id: str | None,
    instance_id: str | None,
    filters: list[dict[str, str]],
    details: bool,
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The invocations matching the request, one page, and the token of the next page if any.

    Commands are listed oldest first, so a token (the offset of the next item) stays valid when new
    commands arrive between pages.
    """
    if max_results is None:
        max_results = MAX_RESULTS
    if not 1 <= max_results <= MAX_RESULTS:
        raise ValidationException(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value {'less' if max_results > MAX_RESULTS else 'greater'} "
            f"than or equal to {MAX_RESULTS if max_results > MAX_RESULTS else 1}"
        )
    if command_id is not None and not COMMAND_ID.match(command_id):
        raise InvalidCommandId()
    matches = _matcher(filters)
    found = [
        (command, invocation)
        for command in self._commands
        if command_id is None or command.command_id == command_id
        for invocation in command.invocations
        if (instance_id is None or invocation["InstanceId"] == instance_id) and matches(command, invocation)
    ]
    start = 0
    if next_token:
        if not next_token.isdigit() or int(next_token) > len(found):
            raise InvalidNextToken()
        start = int(next_token)
    end = start + max_results
    page = [_invocation(command, invocation, details) for command, invocation in found[start:end]]
    return page, (str(end) if end < len(found) else None)


def list_command_invocations_response(self: SimpleSystemManagerResponse) -> ActionResult:
    invocations, next_token = self.ssm_backend.list_command_invocations(
        command_id=self._get_param("CommandId"),
        instance_id=self._get_param("InstanceId"),
        filters=self._get_param("Filters", []),
        details=bool(self._get_param("Details", False)),
        max_results=self._get_int_param("MaxResults"),
        next_token=self._get_param("NextToken"),
    )
    response: dict[str, Any] = {"CommandInvocations": invocations}
    if next_token is not None:
        response["NextToken"] = next_token
    return ActionResult(response)


class _TouchedOnly:
    """moto's DynamoDB backend copies every table a transaction touches, whole and deeply, to roll
    it back if the transaction is cancelled: a cost that grows with the table, paid by every
    TransactWriteItems (a storm's thousandth alarm waited for a copy of the other 999 members).
    This stands in for the `copy` module inside moto's DynamoDB models: a table is copied with
    its items dict copied shallowly and only the items this transaction touches copied deeply,
    which rolls back exactly the same; everything else is the `copy` module's."""

    touched: dict[str, set[Any]] = {}

    def __getattr__(self, name: str) -> Any:
        import copy

        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        import collections
        import copy

        from moto.dynamodb.models.table import Table

        if not isinstance(value, Table) or value.name not in self.touched:
            return copy.deepcopy(value, memo)
        touched = self.touched[value.name]
        clone = copy.copy(value)
        items: Any = collections.defaultdict(dict)
        for hash_key, stored in value.items.items():
            if hash_key not in touched:
                items[hash_key] = dict(stored) if value.has_range_key else stored
            else:
                items[hash_key] = copy.deepcopy(stored)
        clone.items = items
        return clone


def _transact_write_items(original: Callable[..., Any]) -> Callable[..., Any]:
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        from moto.dynamodb.models.dynamo_type import DynamoType

        touched: dict[str, set[Any]] = {}
        for entry in transact_items:
            for kind, op in entry.items():
                name = op.get("TableName", "")
                table = self.tables.get(name)
                if table is None:
                    continue
                key = (op.get("Item") if kind == "Put" else op.get("Key")) or {}
                if table.hash_key_attr in key:
                    touched.setdefault(name, set()).add(DynamoType(key[table.hash_key_attr]))
        _TouchedOnly.touched = touched
        try:
            return original(self, transact_items)
        finally:
            _TouchedOnly.touched = {}

    return transact_write_items


def install() -> None:
    """Adds ListCommandInvocations to moto's SSM backend and response handler, and makes DynamoDB
    transactions copy only what they touch (once)."""
    if getattr(SimpleSystemManagerResponse, "list_command_invocations", None) is not None:
        return
    SimpleSystemManagerBackend.list_command_invocations = list_command_invocations  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.list_command_invocations = list_command_invocations_response  # type: ignore[attr-defined]
    import moto.dynamodb.models as dynamodb_models

    dynamodb_models.copy = _TouchedOnly()  # type: ignore[assignment]
    backend = dynamodb_models.DynamoDBBackend
    backend.transact_write_items = _transact_write_items(backend.transact_write_items)  # type: ignore[method-assign]


CBOR_SERVICE = "GraniteServiceVersion20100801"
CBOR_PATH = re.compile(rf"^/service/{CBOR_SERVICE}/operation/([A-Za-z0-9]+)$")
CBOR_ERROR_NAMESPACE = "com.amazonaws.cloudwatch"
CBOR_HEADERS = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
# moto's headers that describe its JSON body, not the CBOR one sent instead.
JSON_ONLY_HEADERS = {"content-type", "content-length", "x-amzn-errortype"}
_cloudwatch_model: Any = None


def _operation_output(operation: str) -> Shape | None:
    global _cloudwatch_model
    if _cloudwatch_model is None:
        _cloudwatch_model = botocore.session.get_session().get_service_model("cloudwatch")
    try:
        return _cloudwatch_model.operation_model(operation).output_shape
    except Exception:  # an operation botocore does not know: encode the JSON as it is
        return None


def _cbor_to_json(value: Any) -> Any:
    """A decoded CBOR request value as awsJson carries it."""
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return value.value
    if isinstance(value, datetime.datetime):  # cbor2 decodes tag 1 itself
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _cbor_to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cbor_to_json(item) for item in value]
    return value


def _json_to_cbor(value: Any, shape: Shape | None) -> Any:
    """A value of moto's JSON answer, typed for CBOR by its shape in the model (if known)."""
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {key: _json_to_cbor(item, shape.members.get(key)) for key, item in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_json_to_cbor(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: _json_to_cbor(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return cbor2.CBORTag(1, float(value))
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _cbor_error(status: int, body: bytes, headers: list[tuple[str, str]]) -> dict[str, Any]:
    """moto's error (a JSON __type/message, or an HTML page) as the rpcv2Cbor error map."""
    try:
        error = json.loads(body)
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("__type") or dict((k.lower(), v) for k, v in headers).get("x-amzn-errortype")
    code = code or ("InternalFailure" if status >= 500 else "ValidationError")
    # moto's awsJson1_0 form is "GraniteServiceVersion20100801#Code"; keep only Code.
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    message = error.get("message") or error.get("Message") or body.decode("utf-8", "replace")[:500]
    return {"__type": f"{CBOR_ERROR_NAMESPACE}#{code}", "message": message}


EXECUTION_PATH = "/_first_response/execution"
CALLS_PATH = "/_first_response/calls"


def _date(value: str) -> datetime.datetime:
    """An RFC 3339 date as the naive UTC datetime moto keeps (and sorts executions by)."""
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def _execution(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """Records when a locally replayed execution started and how it ended (a POST of
    {"executionArn", "startDate"?, "status"?, "stopDate"?} to EXECUTION_PATH), so that
    ListExecutions and DescribeExecution answer as Step Functions would; else None. moto itself
    never ends an execution, and dates it by the wall clock."""
    if environ.get("PATH_INFO") != EXECUTION_PATH or environ.get("REQUEST_METHOD") != "POST":
        return None
    from moto.stepfunctions.models import stepfunctions_backends

    length = int(environ.get("CONTENT_LENGTH") or 0)
    update = json.loads(environ["wsgi.input"].read(length) or b"{}")
    arn = update["executionArn"]
    region, account = arn.split(":")[3], arn.split(":")[4]
    try:
        execution = stepfunctions_backends[account][region].describe_execution(arn)
    except Exception as error:  # no such execution: say so, as a 404
        body = json.dumps({"error": f"{error}"}).encode()
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [body]
    if "startDate" in update:
        execution.start_date = _date(update["startDate"])
    if "status" in update:
        execution.status = update["status"]
    if "stopDate" in update:
        execution.stop_date = _date(update["stopDate"])
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]


def _calls(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """The DynamoDB requests answered so far, by operation (a GET of CALLS_PATH); else None."""
    if environ.get("PATH_INFO") != CALLS_PATH or environ.get("REQUEST_METHOD") != "GET":
        return None
    with _dynamodb:
        body = json.dumps(_dynamodb_calls).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


EXECUTIONS_PATH = "/_first_response/executions"


def _executions(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """Records many finished executions of one state machine at once (a POST to EXECUTIONS_PATH of
    {"stateMachineArn", "executions": [{"name", "startDate", "status"?, "stopDate"?, "input"?}]}),
    as if each had been started and ended at those dates; else None. A name the state machine has
    already used is refused, as StartExecution would, and then nothing is recorded."""
    if environ.get("PATH_INFO") != EXECUTIONS_PATH or environ.get("REQUEST_METHOD") != "POST":
        return None
    from moto.stepfunctions.models import Execution, stepfunctions_backends

    length = int(environ.get("CONTENT_LENGTH") or 0)
    request = json.loads(environ["wsgi.input"].read(length) or b"{}")
    arn = request["stateMachineArn"]
    region, account = arn.split(":")[3], arn.split(":")[4]

    def refuse(status: str, message: str) -> list[bytes]:
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps({"error": message}).encode()]

    try:
        machine = stepfunctions_backends[account][region].describe_state_machine(arn)
    except Exception as error:  # no such state machine
        return refuse("404 Not Found", f"{error}")
    used = {execution.name for execution in machine.executions}
    recorded = []
    for item in request.get("executions", []):
        if item["name"] in used:
            return refuse("409 Conflict", f"execution name {item['name']!r} is already used")
        used.add(item["name"])
        execution = Execution(
            region_name=region,
            account_id=account,
            state_machine_name=machine.name,
            execution_name=item["name"],
            state_machine_arn=machine.arn,
            execution_input=item.get("input", "{}"),
        )
        execution.start_date = _date(item["startDate"])
        execution.status = item.get("status", "SUCCEEDED")
        if "stopDate" in item:
            execution.stop_date = _date(item["stopDate"])
        recorded.append(execution)
    machine.executions.extend(recorded)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"recorded": len(recorded)}).encode()]


API_CALLS_PATH = "/_first_response/api-calls"
# The service's signing name, from the SigV4 credential scope of the Authorization header.
SIGNING_NAME = re.compile(r"Credential=[^/,]+/[0-9]{8}/[^/,]+/([^/,]+)/aws4_request")
_api_calls_lock = threading.Lock()
_api_calls: dict[str, int] = {}
_api_seconds: dict[str, float] = {}


def _operation(environ: dict[str, Any]) -> str:
    """The operation an AWS API request calls, by its protocol: the X-Amz-Target of awsJson, the
    path of rpcv2Cbor, the Action of the query protocol (in the query string or the form body,
    which is read and put back), else the method and path of a REST protocol."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    cbor = CBOR_PATH.match(environ.get("PATH_INFO", ""))
    if cbor:
        return cbor.group(1)
    action = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not action and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return action[0]
    return f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"


def _api_call(environ: dict[str, Any]) -> str | None:
    """The key a signed AWS API request is counted under, "<signing name>:<operation>"; None for
    moto's own pages and these endpoints, which carry no signature."""
    signed = SIGNING_NAME.search(environ.get("HTTP_AUTHORIZATION", ""))
    return f"{signed.group(1)}:{_operation(environ)}" if signed else None


def _count_api_call(key: str, seconds: float) -> None:
    with _api_calls_lock:
        _api_calls[key] = _api_calls.get(key, 0) + 1
        _api_seconds[key] = _api_seconds.get(key, 0.0) + seconds


def _api_call_counts(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """The AWS API requests answered so far, by service and operation (a GET of API_CALLS_PATH),
    or with ?seconds the time spent answering them; else None."""
    if environ.get("PATH_INFO") != API_CALLS_PATH or environ.get("REQUEST_METHOD") != "GET":
        return None
    with _api_calls_lock:
        answer = _api_seconds if "seconds" in environ.get("QUERY_STRING", "") else _api_calls
        body = json.dumps(answer, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


FAULTS_PATH = "/_first_response/faults"
CLOCK_PATH = "/_first_response/clock"
# The faults armed, in the order armed; each a dict of: call (the "<signing name>:<operation>" key
# of _api_call) or target (an X-Amz-Target), error (Throttling | InternalError, or an error code to
# send as it is), times (how many more calls it fails; None: no limit), and from/until (naive UTC
# datetimes on the virtual clock; None: no bound).
_faults: list[dict[str, Any]] = []
_faults_lock = threading.Lock()
# The replay's virtual time, as it last said (POST CLOCK_PATH); None: faults ignore time.
_virtual_now: list[datetime.datetime | None] = [None]
# What each plan error is called, by protocol and service: (HTTP status, code).
QUERY_ERRORS = {"Throttling": (400, "Throttling"), "InternalError": (500, "InternalError")}
JSON_ERRORS = {"Throttling": (400, "ThrottlingException"), "InternalError": (500, "InternalFailure")}
# awsJson services that model their own 500 (DynamoDB, SSM: InternalServerError).
JSON_INTERNAL_ERRORS = {"dynamodb": "InternalServerError", "ssm": "InternalServerError"}
CBOR_ERRORS = {"Throttling": (400, "Throttling"), "InternalError": (500, "InternalFailure")}
FAULT_MESSAGES = {"Throttling": "Rate exceeded", "InternalError": "We encountered an internal error. Please try again."}
STATUS_TEXT = {400: "400 Bad Request", 500: "500 Internal Server Error"}


def _json_body(environ: dict[str, Any]) -> Any:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return json.loads(environ["wsgi.input"].read(length) or b"{}")


def _arm(fault: dict[str, Any]) -> dict[str, Any]:
    """A fault as POSTed ({"call" | "target", "error" | "code", "times"?, "from"?, "until"?}), kept."""
    times = fault.get("times", 1 if "from" not in fault and "until" not in fault else None)
    return {
        "call": fault.get("call"),
        "target": fault.get("target"),
        "error": fault.get("error") or fault.get("code") or "Throttling",
        "times": None if times is None else int(times),
        "from": _date(fault["from"]) if fault.get("from") else None,
        "until": _date(fault["until"]) if fault.get("until") else None,
        "answered": 0,
    }


# The access key of replay's own calls (simulating alarms, recording executions): never faulted.
HARNESS_CREDENTIAL = "Credential=replay-harness/"


def _armed_for(environ: dict[str, Any]) -> dict[str, Any] | None:
    """The first armed fault this request falls under, now on the virtual clock, counted; else None."""
    if HARNESS_CREDENTIAL in environ.get("HTTP_AUTHORIZATION", ""):
        return None
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    key = None
    with _faults_lock:
        now = _virtual_now[0]
        for fault in _faults:
            if fault["target"] is not None and fault["target"] != target:
                continue
            if fault["call"] is not None:
                if key is None:
                    key = _api_call(environ) or ""
                if fault["call"] != key:
                    continue
            if fault["times"] is not None and fault["times"] <= 0:
                continue
            if now is not None and (
                (fault["from"] is not None and now < fault["from"])
                or (fault["until"] is not None and now >= fault["until"])
            ):
                continue
            if now is None and fault["from"] is not None:
                continue  # a fault of the virtual clock waits for the clock
            if fault["times"] is not None:
                fault["times"] -= 1
            fault["answered"] += 1
            return fault
    return None


def _fault_answer(environ: dict[str, Any], error: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error `error` as the service of this request words it, in the protocol its SDK speaks."""
    signed = SIGNING_NAME.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = signed.group(1) if signed else ""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    request_id = "fault-" + str(len(_faults))
    message = FAULT_MESSAGES.get(error, error) + " (fault injected by the test)"
    if CBOR_PATH.match(environ.get("PATH_INFO", "")):
        status, code = CBOR_ERRORS.get(error, (400, error))
        body = cbor2.dumps({"__type": f"{CBOR_ERROR_NAMESPACE}#{code}", "message": message})
        fault_type = "Sender" if status < 500 else "Receiver"
        headers = CBOR_HEADERS + [("x-amzn-query-error", f"{code};{fault_type}")]
        return status, headers, body
    if target:
        status, code = JSON_ERRORS.get(error, (400, error))
        if error == "InternalError":
            code = JSON_INTERNAL_ERRORS.get(service, code)
        content_type = environ.get("CONTENT_TYPE") or "application/x-amz-json-1.0"
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, [("Content-Type", content_type), ("x-amzn-RequestId", request_id)], body
    if _operation(environ).startswith(("GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "HEAD ")):
        status, code = JSON_ERRORS.get(error, (400, error))  # a REST-JSON service
        body = json.dumps({"message": message}).encode()
        return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body
    status, code = QUERY_ERRORS.get(error, (400, error))
    fault_type = "Sender" if status < 500 else "Receiver"
    namespace = {"sns": "http://sns.amazonaws.com/doc/2010-03-31/"}.get(service, "")
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault_type}</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return status, [("Content-Type", "text/xml")], body


def _fault(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """Arms faults (POST to FAULTS_PATH: one fault, or {"faults": [...]}; DELETE disarms all and a
    GET lists them), moves the virtual clock (POST {"now": RFC 3339} to CLOCK_PATH), or answers a
    request with an armed fault; else None."""
    path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
    if path == CLOCK_PATH and method == "POST":
        now = _json_body(environ).get("now")
        with _faults_lock:
            _virtual_now[0] = _date(now) if now else None
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]
    if path == FAULTS_PATH:
        if method == "POST":
            request = _json_body(environ)
            armed = [_arm(f) for f in request.get("faults", [request])]
            with _faults_lock:
                _faults.extend(armed)
        elif method == "DELETE":
            with _faults_lock:
                _faults.clear()
                _virtual_now[0] = None
        with _faults_lock:
            listed = [
                {k: (v.isoformat() + "Z" if isinstance(v, datetime.datetime) else v) for k, v in f.items()}
                for f in _faults
            ]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"faults": listed}).encode()]
    if _api_call(environ) is None:
        return None
    armed = _armed_for(environ)
    if armed is None:
        return None
    status, headers, body = _fault_answer(environ, armed["error"])
    start_response(STATUS_TEXT.get(status, f"{status} Error"), headers + [("Content-Length", str(len(body)))])
    return [body]


TOPIC_MESSAGES_PATH = "/_first_response/topic-messages"


def _topic_messages(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """What a topic received, in order (a GET of TOPIC_MESSAGES_PATH?topicArn=...): each message's
    id, subject, text and message attributes (name: value); else None. It is moto's own record of
    every Publish it accepted, kept until the emulator is reset."""
    if environ.get("PATH_INFO") != TOPIC_MESSAGES_PATH or environ.get("REQUEST_METHOD") != "GET":
        return None
    from moto.sns.models import sns_backends

    arn = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("topicArn", [""])[0]
    parts = arn.split(":")
    topic = None
    if len(parts) == 6:
        topic = sns_backends[parts[4]][parts[3]].topics.get(arn)
    if topic is None:
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [json.dumps({"error": f"no topic {arn!r}"}).encode()]
    messages = []
    for message_id, message, subject, attributes, _group in topic.sent_notifications:
        values = {}
        for name, value in (attributes or {}).items():
            if isinstance(value, dict):
                value = value.get("Value", value.get("StringValue"))
            values[name] = value
        messages.append({"messageId": message_id, "subject": subject, "message": message, "attributes": values})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"messages": messages}).encode()]


DYNAMODB_TARGET = "DynamoDB_20120810."
_dynamodb = threading.Lock()
_dynamodb_calls: dict[str, int] = {}
# Capacity units by operation: {"PutItem": {"read": 0.0, "write": 3.0}, ...}
_dynamodb_capacity: dict[str, dict[str, float]] = {}
CAPACITY_PATH = "/_first_response/capacity"
REGION_OF = re.compile(r"Credential=[^/,]+/[0-9]{8}/([^/,]+)/")


def _number_size(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one."""
    mantissa = text.lower().split("e")[0].lstrip("+-").replace(".", "").strip("0")
    return (max(len(mantissa), 1) + 1) // 2 + 1


def _value_size(value: dict[str, Any]) -> int:
    """A DynamoDB JSON value's size in bytes, by the Developer Guide's rules."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(base64.b64decode(inner)) if isinstance(inner, str) else len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in inner)
    if kind == "NS":
        return sum(_number_size(v) for v in inner)
    if kind == "BS":
        return sum(len(base64.b64decode(v)) if isinstance(v, str) else len(v) for v in inner)
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in inner.items())
    return 0


def _item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in (item or {}).items())


def _units(size: int, unit: int) -> int:
    return max(1, -(-size // unit))


def _table(environ: dict[str, Any], name: str) -> Any:
    """moto's table of that name, in the request's region (any account moto holds)."""
    from moto.dynamodb.models import dynamodb_backends

    found = REGION_OF.search(environ.get("HTTP_AUTHORIZATION", ""))
    region = found.group(1) if found else "us-east-1"
    for account in list(dynamodb_backends.keys()):
        backend = dynamodb_backends[account].get(region)
        if backend is not None and name in backend.tables:
            return backend.tables[name]
    return None


def _stored(environ: dict[str, Any], name: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The item stored under `key` (DynamoDB JSON), or None."""
    table = _table(environ, name)
    if table is None:
        return None
    try:
        hash_key = key.get(table.hash_key_attr)
        range_key = key.get(table.range_key_attr) if table.range_key_attr else None
        from moto.dynamodb.models.dynamo_type import DynamoType

        item = table.get_item(DynamoType(hash_key), DynamoType(range_key) if range_key else None)
    except Exception:  # a malformed request: moto answers it with its own error
        return None
    return item.to_json()["Attributes"] if item is not None else None


def _key_of(environ: dict[str, Any], name: str, item: dict[str, Any]) -> dict[str, Any]:
    table = _table(environ, name)
    if table is None:
        return {}
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return {n: item[n] for n in names if n in item}


def _writes(environ: dict[str, Any], operation: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
    """The items a write request touches: (table, key, how many times its units count)."""
    if operation in ("PutItem",):
        return [(body.get("TableName", ""), _key_of(environ, body.get("TableName", ""), body.get("Item", {})), 1)]
    if operation in ("UpdateItem", "DeleteItem"):
        return [(body.get("TableName", ""), body.get("Key", {}), 1)]
    if operation == "TransactWriteItems":
        touched = []
        for entry in body.get("TransactItems", []):
            for kind, op in entry.items():
                name = op.get("TableName", "")
                key = _key_of(environ, name, op.get("Item", {})) if kind == "Put" else op.get("Key", {})
                touched.append((name, key, 2))
        return touched
    if operation == "BatchWriteItem":
        touched = []
        for name, requests in body.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    touched.append((name, _key_of(environ, name, request["PutRequest"].get("Item", {})), 1))
                elif "DeleteRequest" in request:
                    touched.append((name, request["DeleteRequest"].get("Key", {}), 1))
        return touched
    return []


def _reads(environ: dict[str, Any], operation: str, body: dict[str, Any], answer: dict[str, Any]) -> float:
    """The read units a request consumed, from what it read."""
    strong = 1.0 if body.get("ConsistentRead") else 0.5
    if operation == "GetItem":
        return _units(_item_size(_stored(environ, body.get("TableName", ""), body.get("Key", {}))), 4096) * strong
    if operation == "TransactGetItems":
        gets = [entry.get("Get", {}) for entry in body.get("TransactItems", [])]
        return sum(2 * _units(_item_size(_stored(environ, g.get("TableName", ""), g.get("Key", {}))), 4096) for g in gets)
    if operation == "BatchGetItem":
        total = 0.0
        for name, request in body.get("RequestItems", {}).items():
            weight = 1.0 if request.get("ConsistentRead") else 0.5
            for key in request.get("Keys", []):
                total += _units(_item_size(_stored(environ, name, key)), 4096) * weight
        return total
    if operation in ("Query", "Scan"):
        table = _table(environ, body.get("TableName", ""))
        items = list(table.all_items()) if table is not None else []
        average = sum(_item_size(i.to_json()["Attributes"]) for i in items) / len(items) if items else 0
        return _units(int(average * int(answer.get("ScannedCount", 0))), 4096) * strong
    return 0.0


def _one_at_a_time(
    operation: str, environ: dict[str, Any], answer: Callable[[], Iterable[bytes]]
) -> list[bytes]:
    """The whole answer to a DynamoDB request, computed while no other DynamoDB request runs, and
    the capacity it would have consumed on AWS counted."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    with _dynamodb:
        _dynamodb_calls[operation] = _dynamodb_calls.get(operation, 0) + 1
        touched = _writes(environ, operation, body)
        before = [_item_size(_stored(environ, name, key)) for name, key, _ in touched]
        chunks = answer()
        try:
            result = [b"".join(chunks)]
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        try:
            answered = json.loads(result[0] or b"{}")
        except ValueError:
            answered = {}
        after = [_item_size(_stored(environ, name, key)) for name, key, _ in touched]
        write = sum(times * _units(max(b, a), 1024) for (_, _, times), b, a in zip(touched, before, after))
        read = _reads(environ, operation, body, answered)
        spent = _dynamodb_capacity.setdefault(operation, {"read": 0.0, "write": 0.0})
        spent["read"] += read
        spent["write"] += write
        return result


def _capacity(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """The capacity units the DynamoDB requests answered so far would have consumed (a GET of
    CAPACITY_PATH); else None."""
    if environ.get("PATH_INFO") != CAPACITY_PATH or environ.get("REQUEST_METHOD") != "GET":
        return None
    with _dynamodb:
        by_operation = {op: dict(units) for op, units in _dynamodb_capacity.items()}
    body = {
        "read": sum(u["read"] for u in by_operation.values()),
        "write": sum(u["write"] for u in by_operation.values()),
        "byOperation": by_operation,
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


class CborDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, with CloudWatch rpcv2Cbor requests translated to awsJson1_0 and back,
    the faults a test armed answered before moto sees the request, DynamoDB requests answered
    one at a time, and every AWS request counted by operation."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = _api_call(environ)
        if key is None:
            return self._dispatch(environ, start_response)
        started = time.perf_counter()
        answer = self._dispatch(environ, start_response)
        if isinstance(answer, list):
            chunks = answer
        else:  # moto's answer may be lazy: compute it here, timed
            try:
                chunks = [b"".join(answer)]
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        _count_api_call(key, time.perf_counter() - started)
        return chunks

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answered = (
            _fault(environ, start_response)
            or _topic_messages(environ, start_response)
            or _execution(environ, start_response)
            or _executions(environ, start_response)
            or _calls(environ, start_response)
            or _capacity(environ, start_response)
            or _api_call_counts(environ, start_response)
        )
        if answered is not None:
            return answered
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(DYNAMODB_TARGET):
            operation = target[len(DYNAMODB_TARGET) :]
            return _one_at_a_time(
                operation, environ, lambda: super(CborDispatcher, self).__call__(environ, start_response)
            )
        match = CBOR_PATH.match(environ.get("PATH_INFO", ""))
        if not match or environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor":
            return super().__call__(environ, start_response)
        operation = match.group(1)

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        payload = json.dumps(_cbor_to_json(cbor2.loads(raw)) if raw else {}).encode()

        forwarded = dict(environ)
        for key in ("HTTP_SMITHY_PROTOCOL", "HTTP_CONTENT_ENCODING", "HTTP_ACCEPT"):
            forwarded.pop(key, None)
        forwarded.update(
            {
                "PATH_INFO": "/",
                "RAW_URI": "/",
                "REQUEST_URI": "/",
                "QUERY_STRING": "",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(payload)),
                "HTTP_X_AMZ_TARGET": f"{CBOR_SERVICE}.{operation}",
                "wsgi.input": io.BytesIO(payload),
            }
        )
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer["status"], answer["headers"] = status, headers
            return lambda data: None  # moto returns its body; it never calls write()

        try:
            chunks = super().__call__(forwarded, capture)
            try:
                body = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        except Exception as error:  # moto crashed: answer in CBOR, as a JSON client would get a 500
            answer = {"status": "500 INTERNAL SERVER ERROR", "headers": []}
            body = json.dumps({"__type": "InternalFailure", "message": f"moto: {error!r}"}).encode()

        status = int(answer["status"].split(" ", 1)[0])
        if status >= 300:
            result: Any = _cbor_error(status, body, answer["headers"])
        else:
            result = _json_to_cbor(json.loads(body) if body.strip() else {}, _operation_output(operation))
        encoded = cbor2.dumps(result)
        headers = [(k, v) for k, v in answer["headers"] if k.lower() not in JSON_ONLY_HEADERS]
        headers += CBOR_HEADERS + [("Content-Length", str(len(encoded)))]
        start_response(answer["status"], headers)
        return [encoded]


if __name__ == "__main__":
    install()
    import moto.server
    from moto.server import main

    # moto.server.main builds its app from this name; serve CBOR clients through the subclass.
    moto.server.DomainDispatcherApplication = CborDispatcher  # type: ignore[misc]
    main(sys.argv[1:])
