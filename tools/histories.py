#!/usr/bin/env python3
"""Writes the sample alarm histories of events/histories/ for `replay history`.

Each file is JSON Lines: one EventBridge "CloudWatch Alarm State Change" event per line, shaped like
the single sample events of events/alarm-router/. The histories are generated rather than written
by hand so that their numbers (200 hosts, one transition every four minutes) stay exact:

    python3 tools/histories.py                      # rewrites events/histories/*.jsonl and faults/*/history.jsonl
    python3 tools/histories.py storm 1000 OUT.jsonl # a storm of 1,000 alarms in one group (make bench-history)

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


def storm(hosts: int = 200) -> list[dict]:
    start = datetime.datetime(2026, 11, 20, 4, 0, 0, tzinfo=datetime.timezone.utc)
    before = start - datetime.timedelta(days=1)
    events = []
    for host in range(hosts):
        name = f"web-nginx-down-host-{host:03d}"
        # 200 alarms in two minutes (and as densely for other sizes)
        fired = start + datetime.timedelta(milliseconds=host * 600)
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


FAULTS = OUT / "faults"
FAULT_DAY = datetime.datetime(2026, 12, 1, 4, 0, 0, tzinfo=datetime.timezone.utc)


def at_minute(minutes: float) -> datetime.datetime:
    return FAULT_DAY + datetime.timedelta(seconds=round(minutes * 60))


def http_5xx(name: str) -> dict:
    return {
        "metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count",
                   "dimensions": {"LoadBalancer": f"app/{name}/0123456789abcdef"}},
        "period": 60,
        "stat": "Sum",
    }


def fault_event(name: str, state: str, minutes: float, since: float, description: str) -> dict:
    previous = "OK" if state == "ALARM" else "ALARM"
    return event(name, state, previous, at_minute(minutes), at_minute(since), description, http_5xx(name))


def deleted(name: str, minutes: float, since: float, description: str) -> dict:
    """The "CloudWatch Alarm Configuration Change" event of an alarm deleted while in ALARM."""
    fired = fault_event(name, "ALARM", since, since - 1440, description)
    at = at_minute(minutes)
    return {
        **fired,
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/delete/{stamp(at)}")),
        "detail-type": "CloudWatch Alarm Configuration Change",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {
            "alarmName": name,
            "operation": "delete",
            "state": fired["detail"]["state"],
            "configuration": fired["detail"]["configuration"],
        },
    }


def fault_samples() -> dict[str, list[dict]]:
    """The histories of events/histories/faults/: each folder also holds its plan and rules."""
    checkout = "checkout returns 5xx in one availability zone"
    payments = "payments API returns 5xx"
    return {
        # Three zones of one grouped route fire within a minute, and recover 20 minutes later.
        "grouped-first-page-throttled": [
            fault_event("checkout-5xx-eu-west-1a", "ALARM", 0, -1440, checkout),
            fault_event("checkout-5xx-eu-west-1b", "ALARM", 0.5, -1440, checkout),
            fault_event("checkout-5xx-eu-west-1c", "ALARM", 0.75, -1440, checkout),
            fault_event("checkout-5xx-eu-west-1a", "OK", 20, 0, checkout),
            fault_event("checkout-5xx-eu-west-1b", "OK", 21, 0.5, checkout),
            fault_event("checkout-5xx-eu-west-1c", "OK", 22, 0.75, checkout),
        ],
        # One API host's gunicorn stops; the restart does not bring the alarm back (it stays in
        # ALARM for 40 minutes), so the execution escalates while SNS throttles.
        "escalation-publish-fails": [
            event("api-gunicorn-down-host-1", "ALARM", "OK", at_minute(0), at_minute(-1440),
                  "gunicorn is not running on an API host", nginx(1)),
            event("api-gunicorn-down-host-1", "OK", "ALARM", at_minute(40), at_minute(0),
                  "gunicorn is not running on an API host", nginx(1)),
        ],
        # The OK (line 1) reaches the router before the ALARM it ends (line 2), ten minutes late.
        "late-alarm-after-ok": [
            fault_event("search-latency-p99", "OK", 10, 0, "search p99 latency above 2 s"),
            fault_event("search-latency-p99", "ALARM", 0, -1440, "search p99 latency above 2 s"),
        ],
        # The region alarm inhibits the queue alarms; then it is deleted while still in ALARM.
        "inhibitor-deleted": [
            fault_event("region-eu-west-1-degraded", "ALARM", 0, -1440, "the region is degraded"),
            fault_event("queue-depth-orders", "ALARM", 1, -1440, "orders queue is backing up"),
            fault_event("queue-depth-payments", "ALARM", 2, -1440, "payments queue is backing up"),
            deleted("region-eu-west-1-degraded", 5, 0, "the region is degraded"),
        ],
        # A group with a one-minute window: two members still fire when it ends, then a third
        # alarm of the route fires; all recover later.
        "group-window-ends-while-firing": [
            fault_event("payments-api-5xx-a", "ALARM", 0, -1440, payments),
            fault_event("payments-api-5xx-b", "ALARM", 0.5, -1440, payments),
            fault_event("payments-api-5xx-c", "ALARM", 5, -1440, payments),
            fault_event("payments-api-5xx-a", "OK", 20, 0, payments),
            fault_event("payments-api-5xx-b", "OK", 21, 0.5, payments),
            fault_event("payments-api-5xx-c", "OK", 22, 5, payments),
        ],
    }


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


def write_to(path: pathlib.Path, events: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for item in events:
            out.write(json.dumps(item, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    import sys

    # `histories.py storm HOSTS OUT`: a storm of HOSTS alarms in one group, for make bench-history.
    if len(sys.argv) == 4 and sys.argv[1] == "storm":
        write_to(pathlib.Path(sys.argv[3]), storm(int(sys.argv[2])))
        sys.exit(0)
    for folder, events in fault_samples().items():
        write_to(FAULTS / folder / "history.jsonl", events)
    write("storm.jsonl", storm())
    write("flapping-hour.jsonl", flapping_hour())
    write("maintenance-night.jsonl", maintenance_night())
    write_json("describe-alarm-history.json", alarm_history(maintenance_night()))
    write_json("describe-alarms.json", describe_alarms(maintenance_night()))
