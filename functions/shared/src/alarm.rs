//! The alarm model: a tolerant reading of EventBridge "CloudWatch Alarm State Change" events.
//!
//! `aws_lambda_events`' own alarm types reject metric-math, anomaly-detection and some composite
//! alarms, and read a missing state as `OK`; here every alarm kind CloudWatch sends is accepted,
//! and anything that is not a well-formed alarm state change is an [`InvalidEvent`].

use std::collections::BTreeMap;
use std::fmt;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The EventBridge `detail-type` of every CloudWatch alarm state change.
pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// Why an event is not an alarm state change the product can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid alarm event: {0}")]
pub struct InvalidEvent(pub String);

impl InvalidEvent {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// What kind of CloudWatch alarm fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AlarmKind {
    Metric,
    MetricMath,
    AnomalyDetection,
    Composite,
}

/// The state an alarm moved into (or out of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmState {
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// The state as CloudWatch writes it: `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ALARM" => Some(Self::Alarm),
            "OK" => Some(Self::Ok),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "ALARM",
            Self::Ok => "OK",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alarm state change, as the router, the state machine and the responders see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    pub name: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub kind: AlarmKind,
    pub state: AlarmState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<AlarmState>,
    pub reason: String,
    /// When the alarm entered `state`, RFC 3339 in UTC.
    pub timestamp: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    /// The composite rule, for composite alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_rule: Option<String>,
    /// Why CloudWatch suppressed this composite alarm's actions, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_suppressed_by: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Alarm {
    /// Reads an EventBridge event; anything but a well-formed alarm state change is refused.
    pub fn from_event(event: &Value) -> Result<Self, InvalidEvent> {
        if !event.is_object() {
            return Err(InvalidEvent::new("the event is not a JSON object"));
        }
        let envelope: EventBridgeEvent<Value> = serde_json::from_value(event.clone())
            .map_err(|e| InvalidEvent::new(format!("not an EventBridge event: {e}")))?;
        if envelope.detail_type != ALARM_DETAIL_TYPE {
            return Err(InvalidEvent::new(format!(
                "detail-type is {:?}, expected {ALARM_DETAIL_TYPE:?}",
                envelope.detail_type
            )));
        }
        let detail: AlarmDetail = serde_json::from_value(envelope.detail)
            .map_err(|e| InvalidEvent::new(format!("alarm detail is malformed: {e}")))?;

        let name = detail
            .alarm_name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| InvalidEvent::new("detail.alarmName is missing"))?;
        let state = detail.state.ok_or_else(|| InvalidEvent::new("detail.state is missing"))?;
        let state_value = state.value.as_deref().ok_or_else(|| InvalidEvent::new("detail.state.value is missing"))?;
        let state_value = AlarmState::parse(state_value)
            .ok_or_else(|| InvalidEvent::new(format!("detail.state.value {state_value:?} is not an alarm state")))?;
        let timestamp = state
            .timestamp
            .as_deref()
            .map(parse_cloudwatch_time)
            .transpose()?
            .or(envelope.time)
            .ok_or_else(|| InvalidEvent::new("detail.state.timestamp is missing"))?;
        let previous_state = detail.previous_state.and_then(|p| p.value).and_then(|v| AlarmState::parse(&v));

        let account = envelope.account.unwrap_or_default();
        let region = envelope.region.unwrap_or_default();
        let arn = envelope
            .resources
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.contains(":alarm:"))
            .unwrap_or_else(|| format!("arn:aws:cloudwatch:{region}:{account}:alarm:{name}"));

        let configuration = detail.configuration.unwrap_or_default();
        let kind = configuration.kind();
        let metric = configuration.primary_metric();
        let (namespace, metric_name, dimensions) = match metric {
            Some(m) => (m.namespace.clone(), m.name.clone(), m.dimensions.clone()),
            None => (None, None, BTreeMap::new()),
        };

        Ok(Alarm {
            name,
            arn,
            account,
            region,
            kind,
            state: state_value,
            previous_state,
            reason: state.reason.unwrap_or_default(),
            timestamp,
            description: configuration.description.filter(|d| !d.is_empty()),
            namespace,
            metric_name,
            dimensions,
            alarm_rule: configuration.alarm_rule,
            actions_suppressed_by: state.actions_suppressed_by.filter(|s| !s.is_empty()),
            tags: BTreeMap::new(),
        })
    }

    /// The alarm's page in the CloudWatch console.
    pub fn console_url(&self) -> String {
        let region = if self.region.is_empty() { "us-east-1" } else { &self.region };
        format!(
            "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
            url_path_escape(&self.name)
        )
    }

    /// The state timestamp as RFC 3339 with milliseconds, the form used in keys and messages.
    pub fn timestamp_rfc3339(&self) -> String {
        self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// CloudWatch writes `2019-10-02T17:04:40.985+0000`; RFC 3339 is accepted too.
fn parse_cloudwatch_time(text: &str) -> Result<DateTime<Utc>, InvalidEvent> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| InvalidEvent::new(format!("detail.state.timestamp {text:?} is not a timestamp")))
}

fn url_path_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: Option<String>,
    state: Option<StateDetail>,
    previous_state: Option<StateDetail>,
    configuration: Option<Configuration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateDetail {
    value: Option<String>,
    reason: Option<String>,
    timestamp: Option<String>,
    actions_suppressed_by: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Configuration {
    description: Option<String>,
    #[serde(default)]
    metrics: Vec<MetricDataQuery>,
    alarm_rule: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricDataQuery {
    expression: Option<String>,
    metric_stat: Option<MetricStat>,
    #[serde(default)]
    return_data: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricStat {
    metric: Option<Metric>,
}

#[derive(Debug, Deserialize)]
struct Metric {
    namespace: Option<String>,
    name: Option<String>,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

impl Configuration {
    fn kind(&self) -> AlarmKind {
        if self.alarm_rule.is_some() {
            return AlarmKind::Composite;
        }
        let expressions = || self.metrics.iter().filter_map(|m| m.expression.as_deref());
        if expressions().any(|e| e.to_ascii_uppercase().contains("ANOMALY_DETECTION_BAND")) {
            AlarmKind::AnomalyDetection
        } else if expressions().next().is_some() {
            AlarmKind::MetricMath
        } else {
            AlarmKind::Metric
        }
    }

    /// The metric the alarm is about: the returned metric if it is a plain one, else the first.
    fn primary_metric(&self) -> Option<&Metric> {
        let plain = || self.metrics.iter().filter_map(|m| Some((m, m.metric_stat.as_ref()?.metric.as_ref()?)));
        plain().find(|(q, _)| q.return_data.unwrap_or(true)).or_else(|| plain().next()).map(|(_, metric)| metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metric_alarm_event() -> Value {
        json!({
            "version": "0",
            "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": "123456789012",
            "time": "2026-11-20T04:02:11Z",
            "region": "eu-west-1",
            "resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:web-nginx-down"],
            "detail": {
                "alarmName": "web-nginx-down",
                "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-11-20T04:02:11.309+0000"},
                "previousState": {"value": "OK", "reason": "ok", "timestamp": "2026-11-19T22:00:00.000+0000"},
                "configuration": {
                    "description": "nginx is not answering",
                    "metrics": [{
                        "id": "m1",
                        "metricStat": {"metric": {"namespace": "CWAgent", "name": "procstat_lookup_pid_count",
                            "dimensions": {"pattern": "nginx", "InstanceId": "i-0abc"}}, "period": 60, "stat": "Minimum"},
                        "returnData": true
                    }]
                }
            }
        })
    }

    #[test]
    fn reads_a_metric_alarm() {
        let alarm = Alarm::from_event(&metric_alarm_event()).expect("valid");
        assert_eq!(alarm.kind, AlarmKind::Metric);
        assert_eq!(alarm.state, AlarmState::Alarm);
        assert_eq!(alarm.previous_state, Some(AlarmState::Ok));
        assert_eq!(alarm.arn, "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:web-nginx-down");
        assert_eq!(alarm.namespace.as_deref(), Some("CWAgent"));
        assert_eq!(alarm.dimensions.get("pattern").map(String::as_str), Some("nginx"));
        assert_eq!(alarm.timestamp_rfc3339(), "2026-11-20T04:02:11.309Z");
    }

    #[test]
    fn a_missing_state_is_refused_rather_than_read_as_ok() {
        let mut event = metric_alarm_event();
        event["detail"].as_object_mut().expect("object").remove("state");
        let err = Alarm::from_event(&event).expect_err("must be refused");
        assert!(err.0.contains("state is missing"), "{err}");
    }

    #[test]
    fn an_unknown_state_is_refused() {
        let mut event = metric_alarm_event();
        event["detail"]["state"]["value"] = json!("ON_FIRE");
        let err = Alarm::from_event(&event).expect_err("must be refused");
        assert!(err.0.contains("ON_FIRE"), "{err}");
    }

    #[test]
    fn another_detail_type_is_refused() {
        let mut event = metric_alarm_event();
        event["detail-type"] = json!("EC2 Instance State-change Notification");
        assert!(Alarm::from_event(&event).is_err());
    }

    #[test]
    fn non_objects_are_refused() {
        for junk in [json!("ALARM"), json!(42), json!(null), json!([metric_alarm_event()])] {
            let err = Alarm::from_event(&junk).expect_err("must be refused");
            assert!(err.0.contains("not a JSON object"), "{err}");
        }
    }

    #[test]
    fn an_rfc3339_state_timestamp_is_accepted() {
        let mut event = metric_alarm_event();
        event["detail"]["state"]["timestamp"] = json!("2026-11-20T05:02:11.309+01:00");
        let alarm = Alarm::from_event(&event).expect("valid");
        assert_eq!(alarm.timestamp_rfc3339(), "2026-11-20T04:02:11.309Z");
    }

    #[test]
    fn console_url_escapes_the_alarm_name() {
        let mut event = metric_alarm_event();
        event["detail"]["alarmName"] = json!("a b/c#d");
        let alarm = Alarm::from_event(&event).expect("valid");
        assert!(alarm.console_url().ends_with("alarm/a%20b%2Fc%23d"), "{}", alarm.console_url());
    }
}
