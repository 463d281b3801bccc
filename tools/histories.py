#!/usr/bin/env python3
"""Writes the sample alarm histories of events/histories/ for `replay history`.

Each file is JSON Lines: one EventBridge "CloudWatch Alarm State Change" event per line, shaped like
the single sample events of events/alarm-router/. The histories are generated rather than written
by hand so that their numbers (200 hosts, one transition every four minutes) stay exact:

    python3 tools/histories.py          # rewrites events/histories/*.jsonl

- storm.jsonl: a shared dependency fails; 200 web hosts' nginx alarms fire within two minutes
  (route web-nginx, grouped by route), and return to OK when it is back, 25 minutes later.
- flapping-hour.jsonl: one web host's nginx alarm changes state every four minutes for an hour.
- maintenance-night.jsonl: the Saturday patching of ten web hosts (the saturday-patching window of
  infra/routes.example.yaml covers it), then a real failure after the window.
- describe-alarm-history.json and describe-alarms.json: the same night as an operator exports it
  (`aws cloudwatch describe-alarm-history --history-item-type StateUpdate` and `aws cloudwatch
  describe-alarms`, shapes from the CloudWatch API reference: newest item first, HistoryData a JSON
  document in a string); `replay history` gives the same decisions for both forms.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "events" / "histories"
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def stamp(at: datetime.datetime) -> str:
    """CloudWatch's own timestamp form: milliseconds and a +0000 offset."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def event(
    name: str,
    state: str,
    previous: str,
    at: datetime.datetime,
    since: datetime.datetime,
    description: str,
    metric: dict,
) -> dict:
    reason = (
        "Threshold Crossed: 1 out of the last 1 datapoints was less than the threshold (1.0)."
        if state == "ALARM"
        else "Threshold Crossed: 1 out of the last 1 datapoints was not less than the threshold (1.0)."
    )
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{state}/{stamp(at)}")),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": reason, "timestamp": stamp(at)},
            "previousState": {"value": previous, "reason": "previous", "timestamp": stamp(since)},
            "configuration": {
                "description": description,
                "metrics": [{"id": "m1", "metricStat": metric, "returnData": True}],
            },
        },
    }


def nginx(host: int) -> dict:
    return {
        "metric": {
            "namespace": "CWAgent",
            "name": "procstat_lookup_pid_count",
            "dimensions": {"pattern": "nginx", "AutoScalingGroupName": "web", "host": f"web-{host:03d}"},
        },
        "period": 60,
        "stat": "Minimum",
    }


def storm() -> list[dict]:
    start = datetime.datetime(2026, 11, 20, 4, 0, 0, tzinfo=datetime.timezone.utc)
    before = start - datetime.timedelta(days=1)
    events = []
    for host in range(200):
        name = f"web-nginx-down-host-{host:03d}"
        fired = start + datetime.timedelta(milliseconds=host * 600)  # 200 alarms in two minutes
        back = start + datetime.timedelta(minutes=25, milliseconds=host * 600)
        events.append(event(name, "ALARM", "OK", fired, before, "nginx is not running on a web host", nginx(host)))
        events.append(event(name, "OK", "ALARM", back, fired, "nginx is not running on a web host", nginx(host)))
    return events


def flapping_hour() -> list[dict]:
    start = datetime.datetime(2026, 11, 21, 14, 0, 0, tzinfo=datetime.timezone.utc)
    name = "web-nginx-flaky-host-017"
    metric = nginx(17)
    events, since, state = [], start - datetime.timedelta(days=1), "OK"
    for step in range(16):  # every four minutes, an hour long
        at = start + datetime.timedelta(minutes=4 * step)
        previous, state = state, ("ALARM" if state == "OK" else "OK")
        events.append(event(name, state, previous, at, since, "nginx is not running on a web host", metric))
        since = at
    return events


def maintenance_night() -> list[dict]:
    # Saturday 21 November 2026, 02:00-04:00 Europe/Dublin (UTC+0 in winter), the saturday-patching
    # window of infra/routes.example.yaml: ten web hosts are patched and rebooted one after another;
    # then, after the window, one host's nginx fails for real and is restarted.
    night = datetime.datetime(2026, 11, 21, 2, 0, 0, tzinfo=datetime.timezone.utc)
    before = night - datetime.timedelta(days=1)
    description = "nginx is not running on a web host"
    events = []
    for host in range(10):
        name = f"web-nginx-down-host-{host:03d}"
        down = night + datetime.timedelta(minutes=10 * host + 5)
        up = down + datetime.timedelta(minutes=6)
        events.append(event(name, "ALARM", "OK", down, before, description, nginx(host)))
        events.append(event(name, "OK", "ALARM", up, down, description, nginx(host)))
    after = night + datetime.timedelta(hours=2, minutes=30)
    name = "web-nginx-down-host-003"
    events.append(event(name, "ALARM", "OK", after, before, description, nginx(3)))
    events.append(event(name, "OK", "ALARM", after + datetime.timedelta(minutes=3), after, description, nginx(3)))
    return events


def aws_time(stamp_text: str) -> str:
    """The AWS CLI's timestamp form: 2026-11-21T02:05:00.000000+00:00."""
    at = datetime.datetime.strptime(stamp_text, "%Y-%m-%dT%H:%M:%S.%f%z")
    return at.isoformat(timespec="microseconds")


def alarm_history(events: list[dict]) -> dict:
    """A describe-alarm-history answer holding these transitions, newest first."""
    items = []
    for item in events:
        detail = item["detail"]
        new, old = detail["state"], detail["previousState"]
        data = {
            "version": "1.0",
            "oldState": {"stateValue": old["value"], "stateReason": old["reason"]},
            "newState": {
                "stateValue": new["value"],
                "stateReason": new["reason"],
                "stateReasonData": {
                    "version": "1.0",
                    "queryDate": new["timestamp"],
                    "startDate": new["timestamp"],
                    "statistic": "Minimum",
                    "period": 60,
                    "recentDatapoints": [0.0 if new["value"] == "ALARM" else 1.0],
                    "threshold": 1.0,
                    "evaluatedDatapoints": [{"timestamp": new["timestamp"], "sampleCount": 1.0, "value": 0.0}],
                },
            },
        }
        items.append(
            {
                "AlarmName": detail["alarmName"],
                "AlarmType": "MetricAlarm",
                "Timestamp": aws_time(new["timestamp"]),
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old['value']} to {new['value']}",
                "HistoryData": json.dumps(data, separators=(",", ":")),
            }
        )
    # A configuration change too, as the API returns without the filter: replay skips it.
    items.append(
        {
            "AlarmName": events[0]["detail"]["alarmName"],
            "AlarmType": "MetricAlarm",
            "Timestamp": aws_time(events[0]["detail"]["previousState"]["timestamp"]),
            "HistoryItemType": "ConfigurationUpdate",
            "HistorySummary": "Alarm updated",
            "HistoryData": "{}",
        }
    )
    items.sort(key=lambda i: i["Timestamp"], reverse=True)
    return {"AlarmHistoryItems": items}


def describe_alarms(events: list[dict]) -> dict:
    """A describe-alarms answer for the alarms of these events."""
    alarms = {}
    for item in events:
        detail = item["detail"]
        metric = detail["configuration"]["metrics"][0]["metricStat"]
        alarms[detail["alarmName"]] = {
            "AlarmName": detail["alarmName"],
            "AlarmArn": item["resources"][0],
            "AlarmDescription": detail["configuration"]["description"],
            "ActionsEnabled": True,
            "StateValue": "OK",
            "MetricName": metric["metric"]["name"],
            "Namespace": metric["metric"]["namespace"],
            "Statistic": metric["stat"],
            "Dimensions": [{"Name": k, "Value": v} for k, v in metric["metric"]["dimensions"].items()],
            "Period": metric["period"],
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "LessThanThreshold",
        }
    return {"MetricAlarms": list(alarms.values()), "CompositeAlarms": []}


def write_json(name: str, value: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / name, "w", encoding="utf-8") as out:
        json.dump(value, out, indent=2)
        out.write("\n")


def write(name: str, events: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / name, "w", encoding="utf-8") as out:
        for item in events:
            out.write(json.dumps(item, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    write("storm.jsonl", storm())
    write("flapping-hour.jsonl", flapping_hour())
    write("maintenance-night.jsonl", maintenance_night())
    write_json("describe-alarm-history.json", alarm_history(maintenance_night()))
    write_json("describe-alarms.json", describe_alarms(maintenance_night()))
