"""The alarm router written the usual way, as `make bench`'s peer of functions/alarm-router.

Same AWS calls for an ALARM of a remediate route that groups its alarms (the sample
events/alarm-router/metric-alarm.json): the flap history (UpdateItem), the silences (GetItem), the
alarm's silenced mark (DeleteItem), the group (a conditional PutItem, then UpdateItem to join it),
StartExecution named by the incident key, and the decision record (UpdateItem).
Not replicated: the rule language (one dict holds the sample rules this event needs), the other
alarm kinds, OK and INSUFFICIENT_DATA, notify/incident routes, pages, maintenance windows,
inhibition, flapping's page, Incident Manager, the SNS fallback, and the error names the state
machine and EventBridge see (errors here are plain exceptions).
"""

import datetime
import hashlib
import json
import os
import re

import boto3

sfn = boto3.client("stepfunctions")
dynamodb = boto3.client("dynamodb")

STATE_MACHINE_ARN = os.environ["STATE_MACHINE_ARN"]
STATE_TABLE = os.environ["STATE_TABLE"]
ROUTES = [
    {
        "name": "web-nginx",
        "prefix": "web-nginx-",
        "action": "remediate",
        "severity": "high",
        "runbookUrl": "https://runbooks.example.com/web/nginx-down",
        "remediation": {
            "targets": {"instanceIds": ["i-0a1b2c3d4e5f60718", "i-0f1e2d3c4b5a69788"]},
            "service": "nginx",
            "timeoutSeconds": 90,
            "settleSeconds": 5,
            "maxConcurrency": "1",
            "maxErrors": "0",
        },
        "group": {"by": "route", "windowSeconds": 3600},
    },
]
DEFAULT_ROUTE = {"name": "default", "prefix": "", "action": "notify", "severity": "medium"}
FLAP_TRANSITIONS, FLAP_WINDOW = 6, datetime.timedelta(hours=1)
WEEK, MONTH = 7 * 24 * 3600, 30 * 24 * 3600


def handler(event, context):
    alarm = parse_alarm(event)
    route = next((r for r in ROUTES if alarm["name"].startswith(r["prefix"])), DEFAULT_ROUTE)
    key = incident_key(route["name"], alarm)
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    if alarm["state"] != "ALARM" or route["action"] != "remediate":
        raise NotImplementedError("only an ALARM of a remediate route is handled here")

    pk = {"S": f"flap#{alarm['arn']}"}
    flaps = dynamodb.update_item(
        TableName=STATE_TABLE,
        Key={"pk": pk},
        UpdateExpression="ADD transitions :change SET #ttl = :ttl",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={
            ":change": {"SS": [f"{alarm['timestamp']}|{alarm['state']}"]},
            ":ttl": {"N": str(now + WEEK)},
        },
        ReturnValues="ALL_NEW",
    )["Attributes"]
    at = parse_time(alarm["timestamp"])
    recent = [t for t in flaps["transitions"]["SS"] if at - FLAP_WINDOW < parse_time(t.split("|")[0]) <= at]
    if len(recent) > FLAP_TRANSITIONS or "flappingSince" in flaps:
        raise NotImplementedError("flapping is not handled here")

    silences = dynamodb.get_item(TableName=STATE_TABLE, Key={"pk": {"S": "silences"}}, ConsistentRead=True)
    if silences.get("Item", {}).get("silences", {}).get("M"):
        raise NotImplementedError("silences are not handled here")
    dynamodb.delete_item(TableName=STATE_TABLE, Key={"pk": {"S": f"alarm#{alarm['arn']}"}}, ReturnValues="ALL_OLD")

    group = join_group(route, alarm, key, now)
    outcome = start_execution(alarm, route, key)
    action = "remediate" if group in ("opened", "redelivered") else "group"

    entry = f"d|{alarm['timestamp']}|{alarm['state']}"
    recorded = {
        "at": alarm["timestamp"],
        "state": alarm["state"],
        "route": route["name"],
        "action": action,
        "outcome": outcome,
        "incidentKey": key,
        "decidedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    dynamodb.update_item(
        TableName=STATE_TABLE,
        Key={"pk": {"S": f"decisions#{alarm['arn']}"}},
        UpdateExpression="SET #entry = if_not_exists(#entry, :entry), #ttl = :ttl ADD entries :one",
        ExpressionAttributeNames={"#entry": entry, "#ttl": "ttl"},
        ExpressionAttributeValues={
            ":entry": {"S": json.dumps(recorded)},
            ":ttl": {"N": str(max(now, int(at.timestamp())) + MONTH)},
            ":one": {"N": "1"},
        },
        ReturnValues="UPDATED_NEW",
    )
    return {"action": action, "route": public(route), "incidentKey": key, "alarm": alarm, "outcome": outcome}


def join_group(route, alarm, key, now):
    """Opens the route's group, or joins it: 'opened', 'redelivered' or 'joined'."""
    pk = {"S": f"group#{route['name']}"}
    at = int(parse_time(alarm["timestamp"]).timestamp())
    open_until = at + route["group"]["windowSeconds"]
    ttl = max(open_until, now) + WEEK
    try:
        dynamodb.put_item(
            TableName=STATE_TABLE,
            Item={
                "pk": pk,
                "kind": {"S": "group"},
                "firing": {"SS": [alarm["arn"]]},
                "seen": {"SS": [alarm["arn"]]},
                "openedBy": {"S": key},
                "firstAlarmArn": {"S": alarm["arn"]},
                "openedAt": {"S": alarm["timestamp"]},
                "lastAlarmAt": {"S": alarm["timestamp"]},
                "openUntil": {"N": str(open_until)},
                "paged": {"BOOL": False},
                "ttl": {"N": str(ttl)},
            },
            ConditionExpression="attribute_not_exists(pk) OR attribute_not_exists(firing) OR openUntil < :at",
            ExpressionAttributeValues={":at": {"N": str(at)}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return "opened"
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass
    joined = dynamodb.update_item(
        TableName=STATE_TABLE,
        Key={"pk": pk},
        UpdateExpression="ADD firing :alarm, seen :alarm SET lastAlarmAt = :at, openUntil = :until, #ttl = :ttl",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={
            ":alarm": {"SS": [alarm["arn"]]},
            ":at": {"S": alarm["timestamp"]},
            ":until": {"N": str(open_until)},
            ":ttl": {"N": str(ttl)},
        },
        ReturnValues="ALL_NEW",
    )["Attributes"]
    return "redelivered" if joined["openedBy"]["S"] == key else "joined"


def start_execution(alarm, route, key):
    execution_arn = f"{STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:', 1)}:{key}"
    region = alarm["region"]
    document = {
        "alarm": alarm,
        "route": public(route),
        "incidentKey": key,
        "notice": {
            "recoveredSubject": f"[RECOVERED] {alarm['name']} (automation restarted it)"[:100],
            "escalatedSubject": f"[ESCALATED] {alarm['name']}: automation could not fix it"[:100],
            "alarmUrl": f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{alarm['name']}",
            "executionUrl": f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}",
            "runbookUrl": route.get("runbookUrl", "none configured for this route"),
        },
    }
    try:
        started = sfn.start_execution(stateMachineArn=STATE_MACHINE_ARN, name=key, input=json.dumps(document))
        return {"did": "startedExecution", "executionArn": started["executionArn"], "duplicate": False}
    except sfn.exceptions.ExecutionAlreadyExists:
        return {"did": "startedExecution", "executionArn": execution_arn, "duplicate": True}


def parse_alarm(event):
    if event.get("detail-type") != "CloudWatch Alarm State Change":
        raise ValueError("not a CloudWatch alarm state change")
    detail = event["detail"]
    name, state = detail["alarmName"], detail["state"]
    metric = detail.get("configuration", {}).get("metrics", [{}])[0].get("metricStat", {}).get("metric", {})
    arn = next((r for r in event.get("resources", []) if ":alarm:" in r), None)
    return {
        "name": name,
        "arn": arn or f"arn:aws:cloudwatch:{event['region']}:{event['account']}:alarm:{name}",
        "account": event["account"],
        "region": event["region"],
        "kind": "metric",
        "state": state["value"],
        "previousState": detail.get("previousState", {}).get("value"),
        "reason": state.get("reason", ""),
        "timestamp": parse_time(state["timestamp"]).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "description": detail.get("configuration", {}).get("description"),
        "namespace": metric.get("namespace"),
        "metricName": metric.get("name"),
        "dimensions": metric.get("dimensions", {}),
    }


def incident_key(route_name, alarm):
    digest = hashlib.sha256(f"{alarm['arn']}\n{alarm['state']}\n{alarm['timestamp']}".encode()).hexdigest()[:20]
    room = 80 - len(route_name) - 20 - 4
    slug = re.sub(r"[^A-Za-z0-9]+", "-", alarm["name"])[:room].strip("-") or "alarm"
    return f"{route_name}__{slug}__{digest}"


def parse_time(text):
    return datetime.datetime.fromisoformat(re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text.replace("Z", "+00:00")))


def public(route):
    return {k: v for k, v in route.items() if k != "prefix"}
