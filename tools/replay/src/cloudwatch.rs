//! Real alarm history, as operators can export it, turned into the events CloudWatch would have
//! sent: the output of `aws cloudwatch describe-alarm-history --history-item-type StateUpdate`
//! (optionally with `aws cloudwatch describe-alarms` for the alarms' configurations).
//!
//! Every field of an `AlarmHistoryItem` is optional in the CloudWatch API, and `HistoryData` is a
//! JSON document in a string (`{"version":"1.0","oldState":{"stateValue","stateReason"},
//! "newState":{"stateValue","stateReason","stateReasonData"}}`). An item that is not a
//! `StateUpdate` is skipped; a `StateUpdate` without an alarm name, a time or a new state is kept as
//! a named error for its position, like a junk line of a JSON Lines history.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Where the alarms live, for ARNs the history does not carry (without `describe-alarms`).
#[derive(Debug, Clone)]
pub struct Origin {
    pub account: String,
    pub region: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryFile {
    #[serde(default)]
    alarm_history_items: Vec<HistoryItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryItem {
    alarm_name: Option<String>,
    alarm_type: Option<String>,
    timestamp: Option<String>,
    history_item_type: Option<String>,
    history_data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryData {
    old_state: Option<StateData>,
    new_state: Option<StateData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateData {
    state_value: Option<String>,
    state_reason: Option<String>,
}

/// True when `text` is a `describe-alarm-history` answer rather than JSON Lines of events.
pub fn is_alarm_history(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v.get("AlarmHistoryItems").is_some_and(Value::is_array))
}

/// The alarms' configurations by name, from a `describe-alarms` answer.
pub fn configurations(text: &str) -> Result<BTreeMap<String, Value>, String> {
    let answer: Value = serde_json::from_str(text).map_err(|e| format!("not a describe-alarms answer: {e}"))?;
    let mut found = BTreeMap::new();
    for kind in ["MetricAlarms", "CompositeAlarms"] {
        for alarm in answer[kind].as_array().into_iter().flatten() {
            if let Some(name) = alarm["AlarmName"].as_str() {
                found.insert(name.to_owned(), alarm.clone());
            }
        }
    }
    if found.is_empty() {
        return Err("a describe-alarms answer lists MetricAlarms or CompositeAlarms; this one lists none".into());
    }
    Ok(found)
}

/// The events of a `describe-alarm-history` answer, each with its 1-based position in
/// `AlarmHistoryItems` (or why that item cannot be one), in the answer's order.
pub fn events(
    text: &str,
    alarms: &BTreeMap<String, Value>,
    origin: &Origin,
) -> Result<Vec<crate::history::Positioned>, String> {
    let file: HistoryFile =
        serde_json::from_str(text).map_err(|e| format!("not a describe-alarm-history answer: {e}"))?;
    Ok(file
        .alarm_history_items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.history_item_type.as_deref().is_none_or(|t| t == "StateUpdate"))
        .map(|(index, item)| (index + 1, event(index + 1, item, alarms, origin)))
        .collect())
}

fn event(
    position: usize,
    item: &HistoryItem,
    alarms: &BTreeMap<String, Value>,
    origin: &Origin,
) -> Result<Value, String> {
    let missing = |what: &str| format!("history item {position} has no {what}");
    let name = item.alarm_name.as_deref().filter(|n| !n.is_empty()).ok_or_else(|| missing("AlarmName"))?;
    let at = item.timestamp.as_deref().ok_or_else(|| missing("Timestamp"))?;
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .map_err(|e| format!("history item {position}: Timestamp {at:?}: {e}"))?
        .with_timezone(&chrono::Utc);
    let data: HistoryData = serde_json::from_str(item.history_data.as_deref().ok_or_else(|| missing("HistoryData"))?)
        .map_err(|e| format!("history item {position}: HistoryData is not JSON: {e}"))?;
    let new = data.new_state.ok_or_else(|| missing("newState in its HistoryData"))?;
    let value = new.state_value.ok_or_else(|| missing("newState.stateValue"))?;
    let config = alarms.get(name);
    let arn = config
        .and_then(|c| c["AlarmArn"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", origin.region, origin.account));
    let mut parts = arn.split(':');
    let (region, account) = (parts.nth(3).unwrap_or(&origin.region), parts.next().unwrap_or(&origin.account));
    let stamp = at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let mut detail = json!({
        "alarmName": name,
        "state": {"value": value, "reason": new.state_reason.unwrap_or_default(), "timestamp": stamp},
        "configuration": configuration(config, item.alarm_type.as_deref()),
    });
    if let Some(old) = data.old_state.and_then(|o| Some((o.state_value?, o.state_reason.unwrap_or_default()))) {
        detail["previousState"] = json!({"value": old.0, "reason": old.1});
    }
    Ok(json!({
        "version": "0",
        // The same transition always gets the same id.
        "id": format!("history-{}-{}", at.timestamp_millis(), name),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [arn],
        "detail": detail,
    }))
}

/// The event's `configuration` from a `describe-alarms` entry: description, metrics (one plain
/// metric, or the metric-math queries) or the composite rule.
fn configuration(config: Option<&Value>, alarm_type: Option<&str>) -> Value {
    let Some(config) = config else {
        return if alarm_type == Some("CompositeAlarm") { json!({"alarmRule": ""}) } else { json!({"metrics": []}) };
    };
    let mut out = Map::new();
    if let Some(description) = config["AlarmDescription"].as_str() {
        out.insert("description".into(), json!(description));
    }
    if let Some(rule) = config["AlarmRule"].as_str() {
        out.insert("alarmRule".into(), json!(rule));
        return Value::Object(out);
    }
    let dimensions = |list: &Value| -> Map<String, Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| Some((d["Name"].as_str()?.to_owned(), json!(d["Value"].as_str()?))))
            .collect()
    };
    let metrics: Vec<Value> = match config["Metrics"].as_array() {
        Some(queries) => queries
            .iter()
            .map(|q| {
                let mut query = json!({"id": q["Id"], "returnData": q["ReturnData"].as_bool().unwrap_or(true)});
                if let Some(expression) = q["Expression"].as_str() {
                    query["expression"] = json!(expression);
                }
                if let Some(stat) = q.get("MetricStat") {
                    query["metricStat"] = json!({
                        "metric": {"namespace": stat["Metric"]["Namespace"], "name": stat["Metric"]["MetricName"],
                                   "dimensions": dimensions(&stat["Metric"]["Dimensions"])},
                        "period": stat["Period"], "stat": stat["Stat"],
                    });
                }
                query
            })
            .collect(),
        None => vec![json!({
            "id": "m1",
            "metricStat": {
                "metric": {"namespace": config["Namespace"], "name": config["MetricName"],
                           "dimensions": dimensions(&config["Dimensions"])},
                "period": config["Period"],
                "stat": config["Statistic"].as_str().or(config["ExtendedStatistic"].as_str()),
            },
            "returnData": true,
        })],
    };
    out.insert("metrics".into(), Value::Array(metrics));
    Value::Object(out)
}
