//! What the automation does, as CloudWatch metrics: one Embedded Metric Format (EMF) line on
//! stdout per measurement, which CloudWatch Logs turns into metrics. No API call and no added
//! latency: Lambda ships stdout to the function's log group, where the extraction happens.
//!
//! Every metric carries the route as the `Route` dimension, and is also emitted without it (an
//! empty dimension set), so a dashboard or an alarm can read the total without metric math.
//! Pages avoided also carry `Reason` (grouped, silenced, maintenance, inhibited, flapping,
//! autoFixed), alone and with the route.
//!
//! Why not a crate: `metrics_cloudwatch_embedded` (0.10) installs a process-wide recorder for the
//! `metrics` facade, flushes through a mutex that panics if poisoned, and its Lambda layer pulls in
//! `lambda_http` and `tower` for a few lines of JSON per invocation. `metrique` is a framework of its
//! own. A line built with serde_json, checked by tests against the format's rules, costs nothing.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use strum::IntoStaticStr;

/// The namespace unless `METRICS_NAMESPACE` says otherwise (the template sets it per stack).
pub const DEFAULT_NAMESPACE: &str = "FirstResponse";
/// The environment variable that names the namespace.
pub const NAMESPACE_ENV: &str = "METRICS_NAMESPACE";
/// A dimension value is at most 1,024 characters (CloudWatch's limit); route names are far shorter.
const MAX_DIMENSION_VALUE: usize = 1024;
/// The dimension value of a measurement that has no route.
pub const NO_ROUTE: &str = "(none)";

/// A measurement the functions emit; the variant name is the metric's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, strum::EnumIter)]
pub enum Metric {
    /// A restart was sent to the route's targets (restart-and-verify).
    RemediationsAttempted,
    /// The restarted service is active and the alarm is OK (restart-and-verify).
    RemediationsVerified,
    /// Automation gave up and the execution escalated (the router writing the escalation page).
    RemediationsEscalated,
    /// The breaker stopped an execution before it acted (failure counter).
    BreakerTrips,
    /// A human was paged (the router).
    PagesSent,
    /// A page that would have gone out did not, for `Reason` (the router).
    PagesAvoided,
    /// Seconds from the alarm's transition to the check that verified the recovery.
    TimeToRecovery,
}

impl Metric {
    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn unit(self) -> &'static str {
        match self {
            Self::TimeToRecovery => "Seconds",
            _ => "Count",
        }
    }
}

/// Why a page was avoided: the `Reason` dimension of `PagesAvoided`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "camelCase")]
pub enum Reason {
    /// The alarm's group had paged already.
    Grouped,
    /// An operator's silence.
    Silenced,
    /// A maintenance window.
    Maintenance,
    /// An inhibiting alarm was firing.
    Inhibited,
    /// The alarm flaps: its changes are recorded quietly.
    Flapping,
    /// The automation fixed it and verified the recovery.
    AutoFixed,
}

impl From<crate::page::Suppression> for Reason {
    fn from(by: crate::page::Suppression) -> Self {
        use crate::page::Suppression;
        match by {
            Suppression::Grouped => Self::Grouped,
            Suppression::Silenced => Self::Silenced,
            Suppression::Maintenance => Self::Maintenance,
            Suppression::Inhibited => Self::Inhibited,
            Suppression::Flapping => Self::Flapping,
        }
    }
}

/// One measurement: a metric's value for a route, and a reason where the metric has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub metric: Metric,
    pub value: f64,
    pub route: String,
    pub reason: Option<Reason>,
}

impl Measurement {
    pub fn count(metric: Metric, route: &str) -> Self {
        Self { metric, value: 1.0, route: route.to_owned(), reason: None }
    }

    pub fn avoided(route: &str, reason: Reason) -> Self {
        Self { metric: Metric::PagesAvoided, value: 1.0, route: route.to_owned(), reason: Some(reason) }
    }

    /// Seconds from `from` to `to`; none when the clock says recovery came first.
    pub fn time_to_recovery(route: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<Self> {
        let seconds = (to - from).num_milliseconds() as f64 / 1000.0;
        (seconds >= 0.0).then(|| Self {
            metric: Metric::TimeToRecovery,
            value: seconds,
            route: route.to_owned(),
            reason: None,
        })
    }

    /// The EMF document of this measurement, as one line of JSON.
    pub fn to_emf(&self, namespace: &str, at: DateTime<Utc>) -> String {
        let route = bounded(if self.route.is_empty() { NO_ROUTE } else { &self.route });
        let name = self.metric.name();
        let mut dimensions = vec![json!(["Route"]), json!([])];
        let mut root = Map::new();
        root.insert("Route".into(), Value::String(route));
        if let Some(reason) = self.reason {
            dimensions.push(json!(["Reason"]));
            dimensions.push(json!(["Route", "Reason"]));
            root.insert("Reason".into(), Value::String(<&str>::from(reason).to_owned()));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": self.metric.unit()}],
                }],
            }),
        );
        root.insert(name.into(), json!(self.value));
        Value::Object(root).to_string()
    }
}

fn bounded(value: &str) -> String {
    value.chars().take(MAX_DIMENSION_VALUE).collect()
}

/// The namespace from the environment, or the default.
pub fn namespace() -> String {
    std::env::var(NAMESPACE_ENV)
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

/// Writes one EMF line per measurement to stdout, where Lambda collects it. A line is written
/// whole (stdout is locked per line), so log lines of other threads cannot split it.
pub fn emit(measurements: &[Measurement]) {
    if measurements.is_empty() {
        return;
    }
    let namespace = namespace();
    let now = Utc::now();
    for measurement in measurements {
        println!("{}", measurement.to_emf(&namespace, now));
    }
}

/// Checks one line against the rules of CloudWatch's EMF specification that a document must meet
/// for metrics to be extracted, on the parsed JSON and independently of how `to_emf` builds it. For
/// the functions' tests and for tools that read the lines back.
pub fn check_emf(line: &str) -> Result<Value, String> {
    const UNITS: &[&str] = &["Seconds", "Milliseconds", "Count", "None", "Percent", "Bytes"];
    let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if line.contains('\n') {
        return Err("an EMF document is one log line".into());
    }
    let root = doc.as_object().ok_or("the root is not an object")?;
    let aws = root.get("_aws").and_then(Value::as_object).ok_or("no _aws object")?;
    let timestamp = aws.get("Timestamp").ok_or("no _aws.Timestamp")?;
    if !timestamp.is_u64() {
        return Err("_aws.Timestamp is not milliseconds since the epoch".into());
    }
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no _aws.CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("CloudWatchMetrics is empty".into());
    }
    for directive in directives {
        let namespace = directive.get("Namespace").and_then(Value::as_str).ok_or("a directive has no Namespace")?;
        if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with("AWS/") {
            return Err(format!("namespace {namespace:?} is not allowed"));
        }
        let sets = directive.get("Dimensions").and_then(Value::as_array).ok_or("a directive has no Dimensions")?;
        for set in sets {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > 30 {
                return Err("a dimension set has more than 30 dimensions".into());
            }
            for key in set {
                let key = key.as_str().ok_or("a dimension key is not a string")?;
                let value = root.get(key).ok_or_else(|| format!("dimension {key} is not a member of the root"))?;
                let value = value.as_str().ok_or_else(|| format!("dimension {key}'s value is not a string"))?;
                if value.is_empty() || value.chars().count() > 1024 {
                    return Err(format!("dimension {key}'s value is empty or too long"));
                }
            }
        }
        let metrics = directive.get("Metrics").and_then(Value::as_array).ok_or("a directive has no Metrics")?;
        if metrics.is_empty() || metrics.len() > 100 {
            return Err("a directive has no metrics or more than 100".into());
        }
        for metric in metrics {
            let name = metric.get("Name").and_then(Value::as_str).ok_or("a metric has no Name")?;
            let value = root.get(name).ok_or_else(|| format!("metric {name} is not a member of the root"))?;
            if !value.is_number() {
                return Err(format!("metric {name}'s value is not a number"));
            }
            if let Some(unit) = metric.get("Unit") {
                let unit = unit.as_str().ok_or("a Unit is not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("unit {unit} is not a CloudWatch unit"));
                }
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    fn at() -> DateTime<Utc> {
        "2026-11-28T04:00:00Z".parse().unwrap()
    }

    #[test]
    fn every_metric_and_reason_makes_a_valid_emf_line() {
        for metric in Metric::iter() {
            let line = Measurement::count(metric, "web-nginx").to_emf(DEFAULT_NAMESPACE, at());
            let doc = check_emf(&line).unwrap_or_else(|e| panic!("{metric:?}: {e}: {line}"));
            assert_eq!(doc["Route"], "web-nginx");
            assert_eq!(doc[metric.name()], 1.0);
            assert_eq!(doc["_aws"]["Timestamp"], at().timestamp_millis());
            assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Route"], []]));
        }
        for reason in Reason::iter() {
            let line = Measurement::avoided("web-nginx", reason).to_emf("Team/FirstResponse", at());
            let doc = check_emf(&line).unwrap_or_else(|e| panic!("{reason:?}: {e}: {line}"));
            assert_eq!(doc["Reason"], <&str>::from(reason));
            assert_eq!(doc["PagesAvoided"], 1.0);
            assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Team/FirstResponse");
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["Route"], [], ["Reason"], ["Route", "Reason"]])
            );
        }
    }

    #[test]
    fn the_checker_refuses_what_cloudwatch_would_not_extract() {
        let good = Measurement::count(Metric::PagesSent, "web").to_emf(DEFAULT_NAMESPACE, at());
        let mut doc: Value = serde_json::from_str(&good).unwrap();
        doc.as_object_mut().unwrap().remove("Route");
        assert!(check_emf(&doc.to_string()).unwrap_err().contains("dimension Route"));
        let mut doc: Value = serde_json::from_str(&good).unwrap();
        doc["PagesSent"] = json!("1");
        assert!(check_emf(&doc.to_string()).unwrap_err().contains("not a number"));
        let mut doc: Value = serde_json::from_str(&good).unwrap();
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Pages");
        assert!(check_emf(&doc.to_string()).unwrap_err().contains("not a CloudWatch unit"));
        assert!(check_emf("{\"PagesSent\": 1}").unwrap_err().contains("_aws"));
    }

    #[test]
    fn time_to_recovery_is_seconds_and_never_negative() {
        let alarm: DateTime<Utc> = "2026-11-28T03:58:30Z".parse().unwrap();
        let measured = Measurement::time_to_recovery("web", alarm, at()).unwrap();
        assert_eq!(measured.value, 90.0);
        let doc = check_emf(&measured.to_emf(DEFAULT_NAMESPACE, at())).unwrap();
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"], "Seconds");
        assert_eq!(Measurement::time_to_recovery("web", at(), alarm), None);
    }

    #[test]
    fn a_missing_route_is_named_and_a_long_one_bounded() {
        let doc = check_emf(&Measurement::count(Metric::PagesSent, "").to_emf(DEFAULT_NAMESPACE, at())).unwrap();
        assert_eq!(doc["Route"], NO_ROUTE);
        let long = "r".repeat(5000);
        let doc = check_emf(&Measurement::count(Metric::PagesSent, &long).to_emf(DEFAULT_NAMESPACE, at())).unwrap();
        assert_eq!(doc["Route"].as_str().unwrap().len(), 1024);
    }
}
