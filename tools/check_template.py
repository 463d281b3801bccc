#!/usr/bin/env python3
"""Checks what makes infra/template.yaml safe to deploy, on the CloudFormation that SAM makes of it.

The SAM template is transformed offline with the installed samtranslator, as `sam validate` does
but with an empty managed-policy map and a fixed region, so nothing calls AWS. Then:

  a. the public Function URL and its permissions exist only under the HasWebhookSecrets condition;
  b. the PagerDuty webhook function has reserved concurrency;
  c. each topic is encrypted with a KMS key of the stack; the safety-net topic's key lets EventBridge
     and CloudWatch alarms use it; every role that may publish to a topic may use its key;
  d. every IAM role gets the PermissionsBoundary parameter through HasPermissionsBoundary;
  e. no policy lets a role send any SSM document but the stack's own;
  f. the dashboard's body is JSON once substituted, and names only metrics the functions emit
     (the variants of `Metric` in functions/shared/src/metrics.rs) in the namespace they emit to;
     the product's health alarms (router errors, dead-letter queue depth, executions ended without
     escalating) exist;
  g. every failure to reach people is seen by a path it cannot block: the safety-net rules and every
     CloudWatch alarm of the stack tell the safety-net topic (never the alert topic), which the stack
     encrypts with a key of its own; ExecutionEndedUnseenRule matches every Fail state of the state
     machine but the one that paged (Escalated), the failed escalation's end (EscalationFailed)
     included, and executions that timed out or were aborted.

Usage: .venv/bin/python tools/check_template.py [TEMPLATE]   (default: infra/template.yaml)
Prints every failed check and exits 1; exits 0 when all hold.
"""

import fnmatch
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

WEBHOOK_FUNCTION = "PagerDutyWebhookFunction"
WEBHOOK_CONDITION = "HasWebhookSecrets"
BOUNDARY = {"Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundary"}, {"Ref": "AWS::NoValue"}]}
KEY_USE = {"kms:GenerateDataKey*", "kms:Decrypt"}
# Documents this stack does not own, AWS's and another in the same account (the account and region
# `pattern` fills in): a grant that covers either covers any document.
FOREIGN_DOCUMENTS = (
    "arn:aws:ssm:eu-west-1::document/AWS-RunShellScript",
    "arn:aws:ssm:eu-west-1:123456789012:document/SomeoneElsesDocument",
)


def transform(path: Path) -> dict:
    template = yaml_parse(path.read_text())
    # The translator wants S3 locations instead of local paths; the code is not what is checked.
    template.get("Globals", {}).get("Function", {})["CodeUri"] = "s3://offline/code.zip"
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = "s3://offline/code.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["DefinitionUri"] = "s3://offline/definition.json"
    # The translator reads only the region from its session: a stand-in keeps AWS profiles out of it.
    offline = SimpleNamespace(region_name="eu-west-1")
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=offline)
    return translator.translate(template, parameter_values={}, get_managed_policy_map=lambda: {})


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def branches(value) -> list:
    """Both sides of a Fn::If (what either condition value may deploy), minus AWS::NoValue."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [v for side in value["Fn::If"][1:] for v in branches(side)]
    return [] if value == {"Ref": "AWS::NoValue"} else [value]


def pattern(resource) -> str:
    """An IAM resource as a glob: placeholders of pseudo parameters filled, any other reference opaque."""
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        text = as_list(resource["Fn::Sub"])[0]
    elif isinstance(resource, str):
        text = resource
    else:
        return "<" + json.dumps(resource) + ">"
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}
    return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo.get(m.group(1), f"<{m.group(1)}>"), text)


def statements(document) -> list:
    if isinstance(document, dict) and "Fn::Sub" in document:  # a JSON policy built whole with !Sub
        document = json.loads(as_list(document["Fn::Sub"])[0])
    return [s for entry in as_list(document.get("Statement", [])) for s in branches(entry)]


def role_statements(resources: dict) -> dict:
    """Each role's Allow statements: its inline policies, and the policy resources that name it."""
    found = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            roles = [logical_id]
            policies = [policy for entry in properties.get("Policies", []) for policy in branches(entry)]
            documents = [policy["PolicyDocument"] for policy in policies]
        elif resource["Type"] in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = [role.get("Ref") if isinstance(role, dict) else role
                     for role in as_list(properties.get("RoleName", properties.get("Roles", [])))]
            documents = [properties["PolicyDocument"]]
        else:
            continue
        for role in roles:
            found.setdefault(role, []).extend(s for d in documents for s in statements(d) if s.get("Effect") == "Allow")
    return found


def grants(statement: dict, action: str) -> bool:
    """Whether the statement's Action, or its NotAction, covers the action, wildcards included."""
    def covers(key: str) -> bool:
        listed = [a for a in as_list(statement.get(key, [])) if isinstance(a, str)]
        return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in listed)

    return covers("Action") or ("NotAction" in statement and not covers("NotAction"))


def grants_on(statement: dict, action: str, resource) -> bool:
    return grants(statement, action) and any(r in (resource, "*") for r in as_list(statement.get("Resource")))


def check_function_url(resources: dict, outputs: dict) -> list:
    errors = []
    urls = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::Url"}
    public = {
        k: r
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Permission"
        and (r["Properties"].get("Principal") == "*" or "FunctionUrlAuthType" in r["Properties"])
    }
    if not urls:
        errors.append(f"(a) no AWS::Lambda::Url: {WEBHOOK_FUNCTION} lost its FunctionUrlConfig")
    for logical_id, resource in {**urls, **public}.items():
        if resource.get("Condition") != WEBHOOK_CONDITION:
            errors.append(f"(a) {logical_id} ({resource['Type']}) must exist only under {WEBHOOK_CONDITION}")
        target = resource["Properties"].get("TargetFunctionArn", resource["Properties"].get("FunctionName"))
        if target != {"Ref": WEBHOOK_FUNCTION}:
            errors.append(f"(a) {logical_id} exposes {json.dumps(target)}, not {WEBHOOK_FUNCTION}")
    # Since late 2025 a public URL needs both: InvokeFunctionUrl, and InvokeFunction via the URL only.
    granted = {(r["Properties"]["Action"], r["Properties"].get("InvokedViaFunctionUrl")) for r in public.values()}
    for action, via_url in [("lambda:InvokeFunctionUrl", None), ("lambda:InvokeFunction", True)]:
        if (action, via_url) not in granted:
            errors.append(f"(a) the public URL lacks {action}" + (" with InvokedViaFunctionUrl" if via_url else ""))
    if outputs.get("WarRoomWebhookUrl", {}).get("Condition") != WEBHOOK_CONDITION:
        errors.append(f"(a) the output WarRoomWebhookUrl must exist, only under {WEBHOOK_CONDITION}")
    return errors


def check_reserved_concurrency(resources: dict) -> list:
    function = resources.get(WEBHOOK_FUNCTION)
    if function is None:
        return [f"(b) no {WEBHOOK_FUNCTION}"]
    if "ReservedConcurrentExecutions" not in function["Properties"]:
        return [f"(b) {WEBHOOK_FUNCTION} has no ReservedConcurrentExecutions: a webhook flood could starve escalations"]
    return []


def check_topic_key(resources: dict) -> list:
    errors = []
    topics = {k: r for k, r in resources.items() if r["Type"] == "AWS::SNS::Topic"}
    for logical_id, topic in topics.items():
        key = topic.get("Properties", {}).get("KmsMasterKeyId")
        key_id = (key.get("Ref") or (key.get("Fn::GetAtt") or [None])[0]) if isinstance(key, dict) else None
        if resources.get(key_id, {}).get("Type") != "AWS::KMS::Key":
            errors.append(f"(c) {logical_id} has KmsMasterKeyId {json.dumps(key)}, not a key of this stack")
            continue
        policy = resources[key_id]["Properties"].get("KeyPolicy", {})
        # Only the safety-net topic hears from AWS services (its rules and the health alarms).
        for service in ["events.amazonaws.com", "cloudwatch.amazonaws.com"] if {"Ref": logical_id} in SAFETY_NET else []:
            allowed = set()
            for statement in statements(policy):
                principal = statement.get("Principal")
                if statement.get("Effect") == "Allow" and isinstance(principal, dict) and service in as_list(
                    principal.get("Service", [])
                ):
                    allowed |= {a for a in KEY_USE if grants(statement, a)}
            if not KEY_USE <= allowed:
                errors.append(f"(c) the policy of {key_id} does not let {service} use it ({sorted(KEY_USE)})")
        topic_arn, key_arn = {"Ref": logical_id}, {"Fn::GetAtt": [key_id, "Arn"]}
        for role, allowed in role_statements(resources).items():
            if any(grants_on(s, "sns:Publish", topic_arn) for s in allowed):
                missing = {a for a in KEY_USE if not any(grants_on(s, a, key_arn) for s in allowed)}
                if missing:
                    errors.append(f"(c) {role} publishes to {logical_id} but may not use {key_id}: {sorted(missing)}")
    if not topics:
        errors.append("(c) no SNS topic")
    return errors


def check_permissions_boundary(resources: dict) -> list:
    roles = {k: r for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    errors = [
        f"(d) role {k} has PermissionsBoundary {json.dumps(r['Properties'].get('PermissionsBoundary'))},"
        f" not {json.dumps(BOUNDARY)}"
        for k, r in roles.items()
        if r["Properties"].get("PermissionsBoundary") != BOUNDARY
    ]
    return errors if roles else ["(d) no IAM role at all: the transform changed, adapt this check"]


def check_send_command(resources: dict) -> list:
    errors = []
    for role, allowed in role_statements(resources).items():
        for statement in (s for s in allowed if grants(s, "ssm:SendCommand")):
            if "NotResource" in statement:
                errors.append(f"(e) {role} may use ssm:SendCommand with NotResource")
            for entry in as_list(statement.get("Resource", [])):
                for granted in map(pattern, branches(entry)):
                    if any(fnmatch.fnmatchcase(document, granted) for document in FOREIGN_DOCUMENTS):
                        errors.append(f"(e) {role} may use ssm:SendCommand on any document: {granted}")
    return errors


HEALTH_ALARMS = ("RouterErrorsAlarm", "RouterDeadLetterQueueAlarm", "ExecutionsEndedUnescalatedAlarm")
METRICS_SOURCE = Path(__file__).resolve().parent.parent / "functions/shared/src/metrics.rs"


def emitted_metrics() -> set:
    """The metric names the functions emit: the variants of `pub enum Metric`."""
    source = METRICS_SOURCE.read_text()
    body = source[source.index("pub enum Metric {"):]
    body = body[: body.index("\n}")]
    return set(re.findall(r"^\s{4}([A-Z][A-Za-z]+),$", body, re.MULTILINE))


def check_dashboard(resources: dict) -> list:
    errors = []
    dashboards = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    if len(dashboards) != 1:
        return [f"(f) expected one dashboard, found {len(dashboards)}"]
    body = dashboards[0]["Properties"]["DashboardBody"]
    if "Fn::Sub" not in body:
        return ["(f) the dashboard body is not a !Sub: adapt this check"]
    text, variables = (body["Fn::Sub"], {}) if isinstance(body["Fn::Sub"], str) else body["Fn::Sub"]
    namespace = variables.get("Namespace")
    if namespace != {"Fn::Sub": "FirstResponse/${AWS::StackName}"}:
        errors.append(f"(f) the dashboard reads namespace {namespace}, not the functions' FirstResponse/<stack>")
    for function in ("AlarmRouterFunction", "FailureCounterFunction", "RestartAndVerifyFunction"):
        given = resources[function]["Properties"].get("Environment", {}).get("Variables", {}).get("METRICS_NAMESPACE")
        if given != {"Fn::Sub": "FirstResponse/${AWS::StackName}"}:
            errors.append(f"(f) {function} does not emit to FirstResponse/<stack> (METRICS_NAMESPACE: {given})")
    try:
        parsed = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: "NS" if m.group(1) == "Namespace" else "x", text))
    except json.JSONDecodeError as error:
        return errors + [f"(f) the dashboard body is not JSON: {error}"]
    known = emitted_metrics()
    if not known:
        return errors + [f"(f) no Metric variants found in {METRICS_SOURCE}: adapt this check"]
    named = set()
    for widget in parsed.get("widgets", []):
        for metric in widget.get("properties", {}).get("metrics", []):
            if metric and metric[0] == "NS":
                named.add(metric[1])
            elif metric and isinstance(metric[0], dict):
                named.update(re.findall(r'MetricName="([A-Za-z]+)"', metric[0].get("expression", "")))
    for name in sorted(named - known):
        errors.append(f"(f) the dashboard shows {name}, which no function emits")
    for name in sorted(known - named):
        errors.append(f"(f) the functions emit {name}, which the dashboard does not show")
    for alarm in HEALTH_ALARMS:
        if resources.get(alarm, {}).get("Type") != "AWS::CloudWatch::Alarm":
            errors.append(f"(f) health alarm {alarm} is missing")
    return errors


ALERT_TOPIC = {"Ref": "AlertTopic"}
# The safety-net topic: the stack's own, or the one the SafetyNetTopicArn parameter names.
SAFETY_NET = ({"Ref": "SafetyNetTopic"}, {"Ref": "SafetyNetTopicArn"})
SAFETY_NET_RULES = ("RouterFailureRule", "ExecutionEndedUnseenRule")
UNSEEN_RULE = "ExecutionEndedUnseenRule"
# The one Fail state whose execution has paged: every other end must reach the safety net.
PAGED = "Escalated"
ESCALATION_FAILED = "EscalationFailed"
ASL = Path(__file__).resolve().parent.parent / "statemachines/first-response.asl.json"


def matches(pattern, value) -> bool:
    """Whether an EventBridge event pattern (the subset this template uses) matches an event."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, wanted in pattern.items():
            if key == "$or":
                if not any(matches(branch, value) for branch in wanted):
                    return False
            elif not matches(wanted, value.get(key)):
                return False
        return True
    if isinstance(pattern, list):
        return any(matches_one(p, value) for p in pattern)
    raise ValueError(f"unexpected pattern {pattern!r}")


def matches_one(pattern, value) -> bool:
    if isinstance(pattern, dict) and "anything-but" in pattern:
        excluded = as_list(pattern["anything-but"])
        return value is not None and value not in excluded
    if isinstance(pattern, dict) and "prefix" in pattern:
        return isinstance(value, str) and value.startswith(pattern["prefix"])
    if isinstance(pattern, dict) and "exists" in pattern:
        return (value is not None) == pattern["exists"]
    if isinstance(pattern, dict) and len(pattern) == 1 and next(iter(pattern)) not in ("Ref", "Fn::GetAtt", "Fn::Sub"):
        raise ValueError(f"unsupported pattern operator {pattern!r}: teach check (g) about it")
    return pattern == value


def fail_errors() -> dict:
    """The Fail states of the state machine and the error each ends the execution with."""
    definition = json.loads(ASL.read_text())
    return {name: state.get("Error") for name, state in definition["States"].items() if state["Type"] == "Fail"}


def execution_ended(status: str, error=None) -> dict:
    return {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"stateMachineArn": {"Ref": "FirstResponseStateMachine"}, "status": status, "error": error},
    }


def check_safety_nets(resources: dict) -> list:
    errors = []

    def tells(where: str, values) -> None:
        told = [b for v in values for b in branches(v)]
        if ALERT_TOPIC in told:
            errors.append(f"(g) {where} tells the alert topic: a failure of that topic or its key would silence it")
        elif not told or any(t not in SAFETY_NET for t in told):
            errors.append(f"(g) {where} tells {json.dumps(told)}, not the safety-net topic")

    for rule in SAFETY_NET_RULES:
        targets = resources.get(rule, {}).get("Properties", {}).get("Targets")
        if not targets:
            errors.append(f"(g) safety-net rule {rule} is missing or has no target")
            continue
        tells(f"safety-net rule {rule}", [t["Arn"] for t in targets])
    alarms = {k: r for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    for logical_id, alarm in alarms.items():
        properties = alarm["Properties"]
        tells(f"alarm {logical_id}", properties.get("AlarmActions", []))
        if "OKActions" in properties:
            tells(f"alarm {logical_id} (OK)", properties["OKActions"])

    topic = resources.get("SafetyNetTopic")
    if topic is None:
        errors.append("(g) no SafetyNetTopic")
    else:
        key = topic.get("Properties", {}).get("KmsMasterKeyId")
        alert_key = resources.get("AlertTopic", {}).get("Properties", {}).get("KmsMasterKeyId")
        if key is None or key == alert_key:
            errors.append(f"(g) SafetyNetTopic is encrypted with {json.dumps(key)}: it needs a key of its own")

    pattern = resources.get(UNSEEN_RULE, {}).get("Properties", {}).get("EventPattern")
    if pattern is None:
        return errors + [f"(g) {UNSEEN_RULE} has no event pattern"]
    ends = fail_errors()
    if ESCALATION_FAILED not in ends.values():
        errors.append(f"(g) no Fail state of {ASL.name} ends with {ESCALATION_FAILED}: a failed page would end unseen")
    cases = [(f"a {status} execution", execution_ended(status), True) for status in ("TIMED_OUT", "ABORTED")]
    cases += [("a failed task's error", execution_ended("FAILED", "States.TaskFailed"), True)]
    cases += [
        (f"Fail state {name} ({error})", execution_ended("FAILED", error), error != PAGED)
        for name, error in sorted(ends.items())
    ]
    try:
        for what, event, seen in cases:
            if matches(pattern, event) != seen:
                errors.append(f"(g) {UNSEEN_RULE} {'misses' if seen else 'catches'} {what}")
    except ValueError as unsupported:
        errors.append(f"(g) {UNSEEN_RULE}: {unsupported}")
    return errors


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "infra/template.yaml")
    try:
        template = transform(path)
    except InvalidDocumentException as invalid:
        print(f"{path}: SAM cannot transform it: " + " ".join(str(c) for c in invalid.causes), file=sys.stderr)
        return 1
    resources, outputs = template["Resources"], template.get("Outputs", {})
    errors = (
        check_function_url(resources, outputs)
        + check_reserved_concurrency(resources)
        + check_topic_key(resources)
        + check_permissions_boundary(resources)
        + check_send_command(resources)
        + check_dashboard(resources)
        + check_safety_nets(resources)
    )
    for error in errors:
        print(f"{path}: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{path}: public URL only with a webhook secret, reserved webhook concurrency, encrypted topic,"
          f" boundary on {sum(r['Type'] == 'AWS::IAM::Role' for r in resources.values())} roles,"
          " no SendCommand on foreign documents, a dashboard of the emitted metrics, and safety nets and health"
          " alarms on the safety-net topic, which sees every end but Escalated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
