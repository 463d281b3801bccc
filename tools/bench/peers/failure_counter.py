"""The failure counter written the usual way, as `make bench`'s peer of functions/failure-counter.

Same AWS calls for a count request: ListExecutions of the state machine, 100 per page, newest start
first, until a start date older than the window start minus the execution timeout; FAILED,
TIMED_OUT and ABORTED executions that stopped inside the window count, per route (the execution
name's prefix) and in total.
Not replicated: the deployed rules (a set of route names stands in for them), the error names the
state machine matches (errors here are plain exceptions), the validation of the input's fields.
"""

import datetime
import os

import boto3

sfn = boto3.client("stepfunctions")

WINDOW_SECONDS = int(os.environ.get("FAILURE_WINDOW_SECONDS", "300"))
THRESHOLD = int(os.environ.get("FAILURE_THRESHOLD", "5"))
TOTAL_THRESHOLD = int(os.environ.get("TOTAL_FAILURE_THRESHOLD", "20"))
EXECUTION_TIMEOUT_SECONDS = 4500
REMEDIATING_ROUTES = {"web-nginx", "app-fleet"}
FAILED = {"FAILED", "TIMED_OUT", "ABORTED"}


def handler(event, context):
    route = event["route"]["name"]
    if route not in REMEDIATING_ROUTES:
        raise ValueError(f"route {route!r} does not remediate")
    now = datetime.datetime.now(datetime.timezone.utc)
    window_start = now - datetime.timedelta(seconds=WINDOW_SECONDS)
    oldest_start = window_start - datetime.timedelta(seconds=EXECUTION_TIMEOUT_SECONDS)
    count = total = pages_read = 0
    recent = []
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=event["stateMachineArn"], PaginationConfig={"PageSize": 100}):
        pages_read += 1
        executions = page["executions"]
        for execution in executions:
            if execution["startDate"] < oldest_start:
                break
            stopped = execution.get("stopDate")
            if stopped is None or stopped < window_start or execution["status"] not in FAILED:
                continue
            total += 1
            if execution["name"].split("__", 1)[0] == route:
                count += 1
                if len(recent) < 10:
                    recent.append(execution["executionArn"])
        else:
            continue
        break
    reason = None
    if count > THRESHOLD:
        reason = f"route {route} failed {count} times in the last {WINDOW_SECONDS}s (threshold {THRESHOLD})"
    elif total > TOTAL_THRESHOLD:
        reason = f"first response failed {total} times across all routes in the last {WINDOW_SECONDS}s"
    return {
        "route": route,
        "count": count,
        "totalCount": total,
        "windowSeconds": WINDOW_SECONDS,
        "windowStart": window_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "threshold": THRESHOLD,
        "totalThreshold": TOTAL_THRESHOLD,
        "breakerOpen": reason is not None,
        "reason": reason,
        "recentFailedExecutions": recent,
        "pagesRead": pages_read,
    }
