"""restart-and-verify written the usual way, as `make bench`'s peer of functions/restart-and-verify.

Same AWS calls for a restart step: ListCommands of the product's document sent since the execution
could have started, looking for this incident's command (a retried step resumes it), else one
SendCommand to the route's targets. The CloudWatch client is created too, as the check step uses it.
Not replicated: the check step (invocations, the alarm's state, deadlines), the deployed rules (a
dict stands in for them), the refusal of inputs whose remediation differs from the rules, the error
names the state machine matches.
"""

import datetime
import os

import boto3

ssm = boto3.client("ssm")
cloudwatch = boto3.client("cloudwatch")

DOCUMENT = os.environ["RESTART_DOCUMENT"]
LOOKBACK_SECONDS = 4500
REMEDIATIONS = {
    "web-nginx": {
        "instanceIds": ["i-0a1b2c3d4e5f60718", "i-0f1e2d3c4b5a69788"],
        "service": "nginx",
        "timeoutSeconds": 90,
        "settleSeconds": 5,
        "maxConcurrency": "1",
        "maxErrors": "0",
    },
}


def handler(event, context):
    route = event["route"]["name"]
    remediation = REMEDIATIONS[route]
    key = event["incidentKey"]
    if event["step"] != "restart" or not key.startswith(route + "__"):
        raise ValueError("only the restart step of the input's own route is handled here")
    now = datetime.datetime.fromisoformat(event["now"].replace("Z", "+00:00"))
    since = (now - datetime.timedelta(seconds=LOOKBACK_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    comment = f"first-response {key}"
    command_id = None
    filters = [{"key": "DocumentName", "value": DOCUMENT}, {"key": "InvokedAfter", "value": since}]
    for page in ssm.get_paginator("list_commands").paginate(Filters=filters):
        found = [c["CommandId"] for c in page["Commands"] if c.get("Comment") == comment]
        if found:
            command_id = found[0]
            break
    resumed = command_id is not None
    if not resumed:
        sent = ssm.send_command(
            DocumentName=DOCUMENT,
            Comment=comment,
            TimeoutSeconds=max(remediation["timeoutSeconds"], 30),
            Parameters={
                "unit": [remediation["service"]],
                "settleSeconds": [str(remediation["settleSeconds"])],
                "executionTimeout": [str(remediation["timeoutSeconds"])],
            },
            InstanceIds=remediation["instanceIds"],
            MaxConcurrency=remediation["maxConcurrency"],
            MaxErrors=remediation["maxErrors"],
        )
        command_id = sent["Command"]["CommandId"]
    return {
        "stage": "restarting",
        "verified": False,
        "summary": f"{'resumed the restart of' if resumed else 'restarting'} {remediation['service']} on "
        f"{', '.join(remediation['instanceIds'])}; waiting for every target to report it",
        "commandId": command_id,
        "service": remediation["service"],
        "sentAt": event["now"],
        "resumed": resumed,
        "instances": [],
        "checks": 0,
        "waitSeconds": remediation["settleSeconds"] + 5,
    }
