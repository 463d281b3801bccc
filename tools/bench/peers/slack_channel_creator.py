"""The war room written the usual way, as `make bench`'s peer of functions/slack-channel-creator.

Same calls for a first-response escalation (events/slack-channel-creator/escalation.json): the bot
token from SSM (GetParameters, decrypted, once per cold start), then Slack's auth.test (once),
conversations.create (on name_taken: conversations.list to find the room), the topic and purpose
when they differ, users.lookupByEmail per responder and one conversations.invite, the pinned summary
(pins.list; else chat.postMessage and pins.add) and the links as bookmarks (bookmarks.list, then
bookmarks.add for those missing). Slack over urllib, as no Slack SDK ships with the runtime.
Not replicated: PagerDuty webhooks (signatures, incident events), Slack's rate limits and retries,
the time budget, archived rooms, escaping alarm text for Slack, the summary's blocks and evidence,
and the error names the state machine matches.
"""

import datetime
import json
import os
import re
import urllib.parse
import urllib.request

import boto3

ssm = boto3.client("ssm")
TOKEN = ssm.get_parameters(Names=[os.environ["SLACK_TOKEN_PARAMETER"]], WithDecryption=True)["Parameters"][0]["Value"]
SLACK_API_URL = os.environ.get("SLACK_API_URL", "https://slack.com/api/")
RESPONDERS = {"web-nginx": ["alice@example.com", "bob@example.com", "carol@example.com"]}
SUMMARY_EVENT = "war_room_summary"
SUMMARY_PREFIX = "War room: "


def slack(method, **params):
    request = urllib.request.Request(
        SLACK_API_URL + method,
        data=urllib.parse.urlencode(params).encode(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


_identity = None


def identity():
    """The bot's user id and workspace URL (auth.test, once per cold start)."""
    global _identity
    if _identity is None:
        _identity = slack("auth.test")
    return _identity


def handler(event, context):
    alarm, route, key = event["alarm"], event["route"], event["incidentKey"]
    responders = RESPONDERS.get(route["name"], [])
    since = datetime.datetime.fromisoformat(alarm["timestamp"].replace("Z", "+00:00"))
    short_id = key.rsplit("__", 1)[-1][:8].lower()
    head = f"inc-{since:%Y%m%d}-{short_id}"
    slug = re.sub(r"[^a-z0-9]+", "-", alarm["name"].lower()).strip("-")[: 80 - len(head) - 1].strip("-")
    name = f"{head}-{slug}" if slug else head
    who = f"on call: {', '.join(responders)}" if responders else "paged via the alert topic"
    topic = f"{route['severity'].upper()} · escalated: automation could not fix it · {who}"[:250]
    purpose = (
        f"Alarm {alarm['name']} in {alarm['account']} / {alarm['region']}: automation could not fix it "
        f"(route {route['name']})"
    )[:250]

    bot = identity()
    created = slack("conversations.create", name=name, is_private="false")
    if created["ok"]:
        channel = created["channel"]
    elif created.get("error") == "name_taken":
        listed = slack("conversations.list", types="public_channel", exclude_archived="false", limit="1000")
        channel = next(c for c in listed["channels"] if c["name"] == name)
    else:
        raise RuntimeError(f"conversations.create: {created.get('error')}")
    if channel.get("topic", {}).get("value") != topic:
        slack("conversations.setTopic", channel=channel["id"], topic=topic)
    if channel.get("purpose", {}).get("value") != purpose:
        slack("conversations.setPurpose", channel=channel["id"], purpose=purpose)

    users = {}
    for email in responders:
        found = slack("users.lookupByEmail", email=email)
        if found["ok"] and found["user"]["id"] != bot["user_id"]:
            users[email] = found["user"]["id"]
    if users:
        slack("conversations.invite", channel=channel["id"], users=",".join(users.values()))

    pinned = slack("pins.list", channel=channel["id"]).get("items", [])
    summary_posted = not any(
        item.get("message", {}).get("metadata", {}).get("event_type") == SUMMARY_EVENT for item in pinned
    )
    if summary_posted:
        text = (
            f"{SUMMARY_PREFIX}{alarm['name']} (escalated: automation could not fix it)\n"
            f"What fired: {alarm['reason']}\nIncident key: {key}"
        )
        metadata = {"event_type": SUMMARY_EVENT, "event_payload": {"incident": key}}
        posted = slack("chat.postMessage", channel=channel["id"], text=text, metadata=json.dumps(metadata))
        slack("pins.add", channel=channel["id"], timestamp=posted["ts"])

    notice = event.get("notice", {})
    links = [
        (f"Alarm {alarm['name']}", notice.get("alarmUrl", "")),
        ("Execution", notice.get("executionUrl", "")),
        ("Runbook", notice.get("runbookUrl", "")),
    ]
    existing = {b.get("link") for b in slack("bookmarks.list", channel_id=channel["id"]).get("bookmarks", [])}
    for title, url in links:
        if url.startswith(("https://", "http://")) and url not in existing:
            slack("bookmarks.add", channel_id=channel["id"], title=title, type="link", link=url)

    return {
        "channelId": channel["id"],
        "name": channel["name"],
        "url": f"{bot['url'].rstrip('/')}/archives/{channel['id']}",
        "created": created["ok"],
        "unarchived": False,
        "summaryPosted": summary_posted,
        "invited": list(users),
        "notInvited": [f"{e}: users_not_found" for e in responders if e not in users],
    }
