//! Routing rules: which alarms get which first response.
//!
//! Rules live in `infra/routes.yaml`, are compiled into every function and validated when it
//! starts (and by a test before anything is deployed). `infra/routes.example.yaml` holds the sample
//! rules that local replays and the tests use. They are ordered and the first match wins; an
//! alarm no rule matches takes the default route, which notifies humans.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::alarm::Alarm;

/// The rules the stack deploys, compiled into every function.
pub const DEPLOYED_ROUTES_YAML: &str = include_str!("../../../infra/routes.yaml");
/// The sample rules: what `make demo`, the sample events and the tests route with.
pub const EXAMPLE_ROUTES_YAML: &str = include_str!("../../../infra/routes.example.yaml");

/// A service name reaches a shell command, so it must match this pattern exactly.
pub const SERVICE_NAME_PATTERN: &str = "^[A-Za-z0-9@._-]+$";
/// Route names become part of execution names, so they are kept short and plain.
pub const ROUTE_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,31}$";

/// [`SERVICE_NAME_PATTERN`]: one or more of `[A-Za-z0-9@._-]`.
fn is_service_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"@._-".contains(&b))
}

/// [`ROUTE_NAME_PATTERN`]: a lowercase letter or digit, then up to 31 of `[a-z0-9-]`.
/// Checks the name of a maintenance window or an inhibition rule: it appears in decisions.
pub fn check_item_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("the name must be 1-64 letters, digits, '-' or '_'".into());
    }
    Ok(())
}

fn is_route_name(text: &str) -> bool {
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=32).contains(&text.len())
        && text.bytes().next().is_some_and(plain)
        && text.bytes().all(|b| plain(b) || b == b'-')
}

/// An EC2 or managed instance id: `i-` or `mi-` and 8 to 17 lowercase hex digits.
fn is_instance_id(text: &str) -> bool {
    let hex = text.strip_prefix("i-").or_else(|| text.strip_prefix("mi-")).unwrap_or_default();
    (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A CloudWatch dimension name: 1 to 255 characters, none of them a control character or a colon.
fn is_dimension_name(text: &str) -> bool {
    (1..=255).contains(&text.len()) && !text.chars().any(|c| c.is_control() || c == ':')
}

/// An EC2 tag key or value as SSM targets take it: 1 to 128 of `[A-Za-z0-9 _.:/=+@-]`.
fn is_tag_text(text: &str) -> bool {
    (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b" _.:/=+@-".contains(&b))
}

/// A plausible e-mail address: one `@`, a local part of at most 64 characters, a dotted domain,
/// and no white space or list punctuation anywhere.
fn is_email(text: &str) -> bool {
    let clean = |part: &str| !part.is_empty() && !part.chars().any(|c| c.is_whitespace() || "@<>,;".contains(c));
    match text.split_once('@') {
        Some((local, domain)) => {
            local.chars().count() <= 64
                && clean(local)
                && clean(domain)
                && domain.split_once('.').is_some_and(|(host, rest)| !host.is_empty() && !rest.is_empty())
        }
        None => false,
    }
}

/// At most this many responders are invited to a route's war room.
pub const MAX_RESPONDERS: usize = 50;

/// Upper bound on how long one restart may take to verify; the Lambda timeout leaves room above it.
pub const MAX_REMEDIATION_TIMEOUT_SECONDS: u64 = 600;

/// Why a set of routing rules was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routing rules rejected: {0}")]
pub struct RoutesError(pub String);

/// What the router does with a matching alarm in ALARM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Run the first-response state machine: restart and verify, escalate if that fails.
    Remediate,
    /// Open an incident (Incident Manager when configured, SNS otherwise).
    Incident,
    /// Publish a notification to SNS.
    Notify,
    /// Do nothing.
    Ignore,
}

/// How urgent the alarm is; Incident Manager's impact follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Critical,
    High,
    #[default]
    Medium,
    Low,
}

impl Severity {
    /// The name as written in the routing rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    /// Incident Manager impact: 1 (critical) to 4 (low).
    pub fn impact(self) -> i32 {
        match self {
            Self::Critical => 1,
            Self::High => 2,
            Self::Medium => 3,
            Self::Low => 4,
        }
    }
}

/// How an alarm name is matched; written `{ exact: ... }`, `{ prefix: ... }` or `{ regex: ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NameMatchSpec", into = "NameMatchSpec")]
pub enum NameMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// The written form of [`NameMatch`]: exactly one of its keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NameMatchSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
}

impl TryFrom<NameMatchSpec> for NameMatch {
    type Error = String;

    fn try_from(spec: NameMatchSpec) -> Result<Self, String> {
        match (spec.exact, spec.prefix, spec.regex) {
            (Some(exact), None, None) => Ok(Self::Exact(exact)),
            (None, Some(prefix), None) => Ok(Self::Prefix(prefix)),
            (None, None, Some(regex)) => Ok(Self::Regex(regex)),
            _ => Err("alarmName takes exactly one of exact, prefix or regex".into()),
        }
    }
}

impl From<NameMatch> for NameMatchSpec {
    fn from(name: NameMatch) -> Self {
        match name {
            NameMatch::Exact(exact) => Self { exact: Some(exact), ..Self::default() },
            NameMatch::Prefix(prefix) => Self { prefix: Some(prefix), ..Self::default() },
            NameMatch::Regex(regex) => Self { regex: Some(regex), ..Self::default() },
        }
    }
}

/// Conditions on an alarm; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_name: Option<NameMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Every dimension listed must be on the alarm's metric with this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl Match {
    /// Whether every condition holds for `alarm`; a `regex` that does not compile matches nothing.
    pub fn matches(&self, alarm: &Alarm) -> bool {
        let regex = match &self.alarm_name {
            Some(NameMatch::Regex(pattern)) => match regex::RegexBuilder::new(pattern).size_limit(1 << 20).build() {
                Ok(regex) => Some(regex),
                Err(_) => return false,
            },
            _ => None,
        };
        matches(self, regex.as_ref(), alarm)
    }

    /// True when no condition is given: it matches every alarm.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// An error when the `regex`, if any, does not compile.
    pub fn check(&self) -> Result<(), String> {
        if let Some(NameMatch::Regex(pattern)) = &self.alarm_name {
            regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("alarmName regex: {e}"))?;
        }
        Ok(())
    }
}

/// Which instances a remediation runs on; written `{ instanceIds: [...] }`, `{ tag: { key, value } }`
/// or `{ fromDimension: InstanceId }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TargetsSpec", into = "TargetsSpec")]
pub enum Targets {
    /// These managed instances.
    InstanceIds(Vec<String>),
    /// Every managed instance carrying this EC2 tag.
    Tag(Tag),
    /// The one instance the alarm names in this dimension of its metric (`InstanceId`): the
    /// alarm's own dimension for a metric alarm, the dimension of the metric its expression reads
    /// for metric math. A composite alarm names none: it is refused when routed.
    FromDimension(String),
}

/// An EC2 tag that selects instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// The written form of [`Targets`]: exactly one of its keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_dimension: Option<String>,
}

impl TryFrom<TargetsSpec> for Targets {
    type Error = String;

    fn try_from(spec: TargetsSpec) -> Result<Self, String> {
        match (spec.instance_ids, spec.tag, spec.from_dimension) {
            (Some(ids), None, None) => Ok(Self::InstanceIds(ids)),
            (None, Some(tag), None) => Ok(Self::Tag(tag)),
            (None, None, Some(dimension)) => Ok(Self::FromDimension(dimension)),
            _ => Err("targets takes exactly one of instanceIds, tag or fromDimension".into()),
        }
    }
}

impl From<Targets> for TargetsSpec {
    fn from(targets: Targets) -> Self {
        match targets {
            Targets::InstanceIds(ids) => Self { instance_ids: Some(ids), ..Self::default() },
            Targets::Tag(tag) => Self { tag: Some(tag), ..Self::default() },
            Targets::FromDimension(dimension) => Self { from_dimension: Some(dimension), ..Self::default() },
        }
    }
}

/// Why an alarm names no instance for a `fromDimension` target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "alarm {alarm} is a composite alarm: it has no dimensions, so targets.fromDimension cannot name an instance"
    )]
    Composite { alarm: String },
    #[error("alarm {alarm} has no {dimension} dimension, so targets.fromDimension names no instance")]
    MissingDimension { alarm: String, dimension: String },
    #[error("alarm {alarm}'s metrics name more than one {dimension} ({values}): targets.fromDimension acts on one")]
    AmbiguousDimension { alarm: String, dimension: String, values: String },
    #[error(
        "alarm {alarm}'s {dimension} is {value:?}, which is not an instance id (i- or mi-, then 8 to 17 hex digits)"
    )]
    NotAnInstance { alarm: String, dimension: String, value: String },
}

impl TargetError {
    /// The error's name, as the state machine and the decision log carry it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Composite { .. } => "CompositeAlarmHasNoTarget",
            Self::MissingDimension { .. } => "TargetDimensionMissing",
            Self::AmbiguousDimension { .. } => "TargetDimensionAmbiguous",
            Self::NotAnInstance { .. } => "TargetNotAnInstance",
        }
    }
}

impl Targets {
    /// The targets as they apply to one alarm: a `fromDimension` target becomes the one instance
    /// the alarm names in `dimensions` (every value the alarm's metrics give that dimension: one
    /// for a metric alarm, any number for metric math); fixed targets stay as they are.
    pub fn for_alarm<'a>(
        &self,
        alarm: &str,
        composite: bool,
        dimensions: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Targets, TargetError> {
        let Targets::FromDimension(dimension) = self else { return Ok(self.clone()) };
        if composite {
            return Err(TargetError::Composite { alarm: alarm.to_owned() });
        }
        let mut values: Vec<&str> =
            dimensions.into_iter().filter(|(name, _)| *name == dimension.as_str()).map(|(_, value)| value).collect();
        values.sort_unstable();
        values.dedup();
        match values.as_slice() {
            [] => Err(TargetError::MissingDimension { alarm: alarm.to_owned(), dimension: dimension.clone() }),
            [value] if is_instance_id(value) => Ok(Targets::InstanceIds(vec![(*value).to_owned()])),
            [value] => Err(TargetError::NotAnInstance {
                alarm: alarm.to_owned(),
                dimension: dimension.clone(),
                value: (*value).chars().take(64).collect(),
            }),
            many => Err(TargetError::AmbiguousDimension {
                alarm: alarm.to_owned(),
                dimension: dimension.clone(),
                values: many.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

/// The known first response: restart a service on the targets and verify it is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Remediation {
    pub targets: Targets,
    /// systemd unit to restart; must match [`SERVICE_NAME_PATTERN`].
    pub service: String,
    /// How long the restart and its verification may take, in seconds.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// How long the service must stay up after the restart before it is checked, in seconds.
    #[serde(default = "default_settle_seconds")]
    pub settle_seconds: u64,
    /// SSM `MaxConcurrency`: how many targets restart at once (a number or a percentage).
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: String,
    /// SSM `MaxErrors`: failures after which SSM stops sending the command.
    #[serde(default = "default_max_errors")]
    pub max_errors: String,
    /// How long, after every target reports the service active, the alarm itself has to return to
    /// OK before the restart counts as failed. Unset: the alarm's period × evaluation periods,
    /// plus a minute (see [`default_recovery_seconds`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_seconds: Option<u64>,
}

/// The longest a route may wait for its alarm to return to OK after a restart.
pub const MAX_RECOVERY_SECONDS: u64 = 1800;
/// The shortest such wait: CloudWatch evaluates most alarms once a minute.
pub const MIN_RECOVERY_SECONDS: u64 = 60;

/// How long to wait for an alarm to return to OK when its route does not say: the time the alarm
/// needs to see enough good datapoints (`period` × `evaluation_periods`) plus a minute for
/// CloudWatch's evaluation delay, within [`MIN_RECOVERY_SECONDS`]..=[`MAX_RECOVERY_SECONDS`].
/// Without a period (composite alarms), ten minutes.
pub fn default_recovery_seconds(period_seconds: Option<u64>, evaluation_periods: Option<u64>) -> u64 {
    match period_seconds {
        Some(period) => period
            .saturating_mul(evaluation_periods.unwrap_or(1).max(1))
            .saturating_add(60)
            .clamp(MIN_RECOVERY_SECONDS, MAX_RECOVERY_SECONDS),
        None => 600,
    }
}

/// Why a unit is never restarted by automation, when it is one of those; `None` for an ordinary
/// service. Restarting these powers off, reboots or isolates the host, or cuts the automation off
/// from it (the SSM agent runs the very command that restarts it).
pub fn forbidden_unit(unit: &str) -> Option<&'static str> {
    let name = unit.strip_suffix(".service").unwrap_or(unit);
    let lower = name.to_ascii_lowercase();
    if is_systemd_suffix(unit) {
        return Some(
            "only services can be restarted: targets, mounts, slices, sockets and timers change what the whole host runs",
        );
    }
    if unit.starts_with('-') {
        return Some("a name starting with '-' would be read by systemctl as an option");
    }
    if lower.starts_with("systemd-") || lower == "systemd" || lower.starts_with("init") {
        return Some("systemd's own units keep the host running; restarting them can hang or reboot it");
    }
    if ["reboot", "poweroff", "halt", "kexec", "shutdown", "emergency", "rescue"].iter().any(|w| lower.starts_with(w)) {
        return Some("this unit powers off, reboots or isolates the host");
    }
    if lower == "dbus" || lower.starts_with("dbus-") {
        return Some("restarting D-Bus breaks systemd and logind on the host");
    }
    if lower.contains("amazon-ssm-agent") || lower == "ssm-agent" {
        return Some("the SSM agent runs the restart command itself: restarting it cuts automation off from the host");
    }
    None
}

fn is_systemd_suffix(unit: &str) -> bool {
    const SUFFIXES: [&str; 11] = [
        ".target",
        ".mount",
        ".automount",
        ".slice",
        ".socket",
        ".device",
        ".swap",
        ".path",
        ".timer",
        ".scope",
        ".snapshot",
    ];
    SUFFIXES.iter().any(|suffix| unit.ends_with(suffix))
}

fn default_timeout_seconds() -> u64 {
    90
}
fn default_settle_seconds() -> u64 {
    5
}
/// One instance at a time: a restart that takes a service down everywhere at once is an outage of
/// its own, and the first failure stops the rest (with `maxErrors` 0).
fn default_max_concurrency() -> String {
    "1".to_owned()
}
fn default_max_errors() -> String {
    "0".to_owned()
}

impl Remediation {
    /// Checks every value that reaches SSM or a shell.
    pub fn validate(&self) -> Result<(), String> {
        if !is_service_name(&self.service) || self.service.len() > 128 {
            return Err(format!("service {:?} does not match {SERVICE_NAME_PATTERN} (at most 128)", self.service));
        }
        if let Some(why) = forbidden_unit(&self.service) {
            return Err(format!("service {:?} is refused: {why}", self.service));
        }
        match &self.targets {
            Targets::InstanceIds(ids) if ids.is_empty() => return Err("targets.instanceIds is empty".into()),
            Targets::InstanceIds(ids) if ids.len() > 50 => {
                return Err("targets.instanceIds lists more than 50 instances (use a tag)".into());
            }
            Targets::InstanceIds(ids) => {
                if let Some(bad) = ids.iter().find(|id| !is_instance_id(id)) {
                    return Err(format!("{bad:?} is not an instance id"));
                }
            }
            Targets::Tag(Tag { key, value }) => {
                if !is_tag_text(key) || !is_tag_text(value) {
                    return Err(format!("tag {key:?}={value:?} is not a valid EC2 tag"));
                }
            }
            Targets::FromDimension(dimension) => {
                if !is_dimension_name(dimension) {
                    return Err(format!(
                        "targets.fromDimension {dimension:?} is not a CloudWatch dimension name (1 to 255 characters, no control characters or colon)"
                    ));
                }
            }
        }
        if !(5..=MAX_REMEDIATION_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return Err(format!(
                "timeoutSeconds {} is outside 5..={MAX_REMEDIATION_TIMEOUT_SECONDS}",
                self.timeout_seconds
            ));
        }
        if self.settle_seconds > 60 || self.settle_seconds >= self.timeout_seconds {
            return Err(format!("settleSeconds {} must be at most 60 and below timeoutSeconds", self.settle_seconds));
        }
        if let Some(seconds) = self.recovery_seconds
            && !(MIN_RECOVERY_SECONDS..=MAX_RECOVERY_SECONDS).contains(&seconds)
        {
            return Err(format!(
                "recoverySeconds {seconds} is outside {MIN_RECOVERY_SECONDS}..={MAX_RECOVERY_SECONDS}"
            ));
        }
        for (field, value) in [("maxConcurrency", &self.max_concurrency), ("maxErrors", &self.max_errors)] {
            if !is_ssm_limit(value) {
                return Err(format!("{field} {value:?} is not a number or a percentage"));
            }
        }
        Ok(())
    }
}

fn is_ssm_limit(value: &str) -> bool {
    let digits = value.strip_suffix('%').unwrap_or(value);
    !digits.is_empty() && digits.len() <= 7 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// One routing rule as written in `routes.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default, rename = "match")]
    pub conditions: Match,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// E-mail addresses of the people invited to the war room when the route escalates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<String>,
    /// How the rule's alarms group into one problem; absent: every alarm is its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Grouping>,
    /// When an alarm of the rule counts as flapping; absent: the defaults ([`Flapping::default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<Flapping>,
}

/// An alarm that changed state more than `transitions` times within `windowMinutes` is flapping:
/// automation stops for it, one page says so, and it is quiet until it has not changed state for
/// `quietMinutes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Flapping {
    #[serde(default = "default_flap_transitions")]
    pub transitions: u32,
    #[serde(default = "default_flap_window")]
    pub window_minutes: u32,
    #[serde(default = "default_flap_quiet")]
    pub quiet_minutes: u32,
}

fn default_flap_transitions() -> u32 {
    6
}
fn default_flap_window() -> u32 {
    60
}
fn default_flap_quiet() -> u32 {
    30
}

impl Default for Flapping {
    /// More than 6 changes (three ALARM/OK cycles) within an hour; quiet again after 30 minutes.
    fn default() -> Self {
        Self {
            transitions: default_flap_transitions(),
            window_minutes: default_flap_window(),
            quiet_minutes: default_flap_quiet(),
        }
    }
}

impl Flapping {
    fn validate(&self) -> Result<(), String> {
        if !(2..=100).contains(&self.transitions) {
            return Err(format!("flapping.transitions {} is outside 2-100", self.transitions));
        }
        for (name, minutes) in [("windowMinutes", self.window_minutes), ("quietMinutes", self.quiet_minutes)] {
            if !(5..=1440).contains(&minutes) {
                return Err(format!("flapping.{name} {minutes} is outside 5-1440"));
            }
        }
        Ok(())
    }
}

/// How a rule's alarms group into one problem, paged once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grouping {
    /// `route`: the route's alarms are one group (one per combination of `dimensions` values).
    pub by: GroupBy,
    /// Metric dimensions whose values split the route's group (`AutoScalingGroupName`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<String>,
    /// How long a group stays open after its last ALARM, even if a member never returns to OK.
    #[serde(default = "default_group_window")]
    pub window_seconds: u64,
}

/// What a group is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupBy {
    /// Every alarm of the route (split by `dimensions`, when given).
    Route,
    /// Every alarm alone: no grouping (the same as leaving `group` out).
    Alarm,
}

/// The default [`Grouping::window_seconds`]: an hour.
pub const DEFAULT_GROUP_WINDOW_SECONDS: u64 = 3600;
const GROUP_WINDOW_RANGE: std::ops::RangeInclusive<u64> = 60..=86_400;

fn default_group_window() -> u64 {
    DEFAULT_GROUP_WINDOW_SECONDS
}

impl Grouping {
    fn validate(&self) -> Result<(), String> {
        if !GROUP_WINDOW_RANGE.contains(&self.window_seconds) {
            return Err(format!(
                "group.windowSeconds {} is outside {}-{}",
                self.window_seconds,
                GROUP_WINDOW_RANGE.start(),
                GROUP_WINDOW_RANGE.end()
            ));
        }
        if self.by == GroupBy::Alarm && !self.dimensions.is_empty() {
            return Err("group.dimensions only split groups of by: route".into());
        }
        if let Some(bad) = self.dimensions.iter().find(|d| d.is_empty() || d.len() > 255) {
            return Err(format!("group.dimensions: {bad:?} is not a dimension name (1-255 characters)"));
        }
        Ok(())
    }

    /// The key of the group `alarm` belongs to on `route`; `None` when alarms are not grouped.
    /// `<route>` alone, or `<route>/<Dimension>=<value>,...` with the values of `dimensions`
    /// (`-` for a dimension the alarm's metric does not have).
    pub fn key(&self, route: &str, alarm: &Alarm) -> Option<String> {
        if self.by == GroupBy::Alarm {
            return None;
        }
        if self.dimensions.is_empty() {
            return Some(route.to_owned());
        }
        let values: Vec<String> = self
            .dimensions
            .iter()
            .map(|d| format!("{d}={}", alarm.dimensions.get(d).map(String::as_str).unwrap_or("-")))
            .collect();
        Some(format!("{route}/{}", values.join(",")))
    }
}

/// The fallback when no rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultRule {
    #[serde(default = "default_action")]
    pub action: Action,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
}

fn default_action() -> Action {
    Action::Notify
}

impl Default for DefaultRule {
    fn default() -> Self {
        Self { action: Action::Notify, severity: Severity::Medium, runbook_url: None }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    default: DefaultRule,
    #[serde(default)]
    maintenance: Vec<crate::maintenance::WindowSpec>,
    #[serde(default)]
    inhibit: Vec<crate::inhibition::Inhibition>,
}

/// The matched rule, as carried in the incident document (`route`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub name: String,
    pub action: Action,
    pub severity: Severity,
    /// Incident Manager impact derived from the severity.
    pub impact: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
    /// E-mail addresses of the people invited to the war room when the route escalates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<String>,
    /// How the route's alarms group; absent: every alarm alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Grouping>,
    /// When its alarms count as flapping (the defaults when the rule says nothing).
    #[serde(default)]
    pub flapping: Flapping,
}

impl Route {
    /// The key of the group `alarm` belongs to on this route; `None` when it is not grouped.
    pub fn group_key(&self, alarm: &Alarm) -> Option<String> {
        self.group.as_ref().and_then(|g| g.key(&self.name, alarm))
    }

    fn of(rule: &Rule) -> Self {
        Self {
            name: rule.name.clone(),
            action: rule.action,
            severity: rule.severity,
            impact: rule.severity.impact(),
            runbook_url: rule.runbook_url.clone(),
            remediation: rule.remediation.clone(),
            responders: rule.responders.clone(),
            group: rule.group.clone(),
            flapping: rule.flapping.unwrap_or_default(),
        }
    }
}

/// The name of the route taken when no rule matches.
pub const DEFAULT_ROUTE_NAME: &str = "default";

/// A validated, ordered set of routing rules.
#[derive(Debug, Clone)]
pub struct Routes {
    rules: Vec<(Rule, Option<Regex>)>,
    default: DefaultRule,
    maintenance: Vec<crate::maintenance::MaintenanceWindow>,
    inhibitions: Vec<crate::inhibition::Inhibition>,
}

impl Routes {
    /// Parses and validates rules; any problem names the rule it is in.
    pub fn from_yaml(text: &str) -> Result<Self, RoutesError> {
        let file: RoutesFile = serde_yaml_ng::from_str(text).map_err(|e| RoutesError(e.to_string()))?;
        if file.default.action == Action::Remediate {
            return Err(RoutesError("the default rule cannot remediate: it has no targets".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut rules = Vec::with_capacity(file.rules.len());
        for (index, rule) in file.rules.into_iter().enumerate() {
            let fail = |why: String| RoutesError(format!("rule {} ({:?}): {why}", index + 1, rule.name));
            if !is_route_name(&rule.name) || rule.name == DEFAULT_ROUTE_NAME {
                return Err(fail(format!(
                    "the name must match {ROUTE_NAME_PATTERN} and not be {DEFAULT_ROUTE_NAME:?}"
                )));
            }
            if !seen.insert(rule.name.clone()) {
                return Err(fail("the name is used twice".into()));
            }
            match (&rule.action, &rule.remediation) {
                (Action::Remediate, None) => return Err(fail("action remediate needs a remediation".into())),
                (Action::Remediate, Some(remediation)) => remediation.validate().map_err(fail)?,
                (_, Some(_)) => return Err(fail("only action remediate takes a remediation".into())),
                (_, None) => {}
            }
            validate_responders(&rule.responders).map_err(fail)?;
            if let Some(group) = &rule.group {
                group.validate().map_err(fail)?;
            }
            if let Some(flapping) = &rule.flapping {
                flapping.validate().map_err(fail)?;
            }
            let regex = match &rule.conditions.alarm_name {
                Some(NameMatch::Regex(pattern)) => Some(
                    regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| fail(format!("alarmName regex: {e}")))?,
                ),
                _ => None,
            };
            rules.push((rule, regex));
        }
        let mut names: Vec<&str> = rules.iter().map(|(rule, _)| rule.name.as_str()).collect();
        names.push(DEFAULT_ROUTE_NAME);
        let mut maintenance = Vec::with_capacity(file.maintenance.len());
        for (index, spec) in file.maintenance.iter().enumerate() {
            let fail = |why: String| RoutesError(format!("maintenance window {} ({:?}): {why}", index + 1, spec.name));
            let window = spec.validate(&names).map_err(fail)?;
            if maintenance.iter().any(|w: &crate::maintenance::MaintenanceWindow| w.name == window.name) {
                return Err(fail("the name is used twice".into()));
            }
            maintenance.push(window);
        }
        let mut inhibitions: Vec<crate::inhibition::Inhibition> = Vec::with_capacity(file.inhibit.len());
        for (index, inhibition) in file.inhibit.into_iter().enumerate() {
            let fail = |why: String| RoutesError(format!("inhibit rule {} ({:?}): {why}", index + 1, inhibition.name));
            inhibition.validate(&names).map_err(fail)?;
            if inhibitions.iter().any(|i| i.name == inhibition.name) {
                return Err(fail("the name is used twice".into()));
            }
            inhibitions.push(inhibition);
        }
        Ok(Self { rules, default: file.default, maintenance, inhibitions })
    }

    /// The inhibition rules, in the file's order.
    pub fn inhibitions(&self) -> &[crate::inhibition::Inhibition] {
        &self.inhibitions
    }

    /// The maintenance windows, in the file's order.
    pub fn maintenance(&self) -> &[crate::maintenance::MaintenanceWindow] {
        &self.maintenance
    }

    /// The first maintenance window that covers `alarm` on `route` at the alarm's time, as the
    /// silence it acts as.
    pub fn maintenance_silence(&self, route: &str, alarm: &Alarm) -> Option<crate::silence::Silence> {
        self.maintenance.iter().find_map(|window| window.silence_for(route, alarm))
    }

    /// The rules compiled into this build (`infra/routes.yaml`).
    pub fn deployed() -> Result<Self, RoutesError> {
        Self::from_yaml(DEPLOYED_ROUTES_YAML)
    }

    /// The sample rules (`infra/routes.example.yaml`).
    pub fn example() -> Result<Self, RoutesError> {
        Self::from_yaml(EXAMPLE_ROUTES_YAML).map_err(|e| RoutesError(format!("infra/routes.example.yaml: {}", e.0)))
    }

    /// The rules in the file at `path`.
    pub fn from_file(path: &str) -> Result<Self, RoutesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RoutesError(format!("{path}: {e}")))?;
        Self::from_yaml(&text).map_err(|e| RoutesError(format!("{path}: {}", e.0)))
    }

    /// The first rule that matches the alarm, or the default route.
    pub fn route(&self, alarm: &Alarm) -> Route {
        self.rules
            .iter()
            .find(|(rule, regex)| matches(&rule.conditions, regex.as_ref(), alarm))
            .map(|(rule, _)| Route::of(rule))
            .unwrap_or_else(|| self.default_route())
    }

    /// The route of this name as the deployed rules define it: what a function that acts on a route
    /// uses, whatever its input says. `None` for a name no rule has.
    pub fn by_name(&self, name: &str) -> Option<Route> {
        if name == DEFAULT_ROUTE_NAME {
            return Some(self.default_route());
        }
        self.rules.iter().find(|(rule, _)| rule.name == name).map(|(rule, _)| Route::of(rule))
    }

    /// Every rule's remediation, by route name.
    pub fn remediations(&self) -> impl Iterator<Item = (&str, &Remediation)> {
        self.rules.iter().filter_map(|(rule, _)| Some((rule.name.as_str(), rule.remediation.as_ref()?)))
    }

    fn default_route(&self) -> Route {
        Route {
            name: DEFAULT_ROUTE_NAME.to_owned(),
            action: self.default.action,
            severity: self.default.severity,
            impact: self.default.severity.impact(),
            runbook_url: self.default.runbook_url.clone(),
            remediation: None,
            responders: Vec::new(),
            group: None,
            flapping: Flapping::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Rules no alarm can reach, because an earlier rule matches every alarm they match:
    /// `(position, name, position of the earlier rule, its name)`, positions counted from 1.
    pub fn shadowed(&self) -> Vec<(usize, String, usize, String)> {
        let mut found = Vec::new();
        for (later, (rule, _)) in self.rules.iter().enumerate() {
            if let Some((earlier, (first, _))) =
                self.rules[..later].iter().enumerate().find(|(_, (e, _))| covers(&e.conditions, &rule.conditions))
            {
                found.push((later + 1, rule.name.clone(), earlier + 1, first.name.clone()));
            }
        }
        found
    }

    /// Every rule, in order, as the routes they make.
    pub fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.rules.iter().map(|(rule, _)| Route::of(rule))
    }

    /// The route taken when no rule matches.
    pub fn default(&self) -> Route {
        self.default_route()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Responders are e-mail addresses (the war room looks them up in Slack), each listed once.
fn validate_responders(responders: &[String]) -> Result<(), String> {
    if responders.len() > MAX_RESPONDERS {
        return Err(format!("responders lists more than {MAX_RESPONDERS} addresses"));
    }
    if let Some(bad) = responders.iter().find(|r| !is_email(r)) {
        return Err(format!("responder {bad:?} is not an e-mail address"));
    }
    let unique: std::collections::BTreeSet<String> = responders.iter().map(|r| r.to_lowercase()).collect();
    if unique.len() != responders.len() {
        return Err("responders lists an address twice".into());
    }
    Ok(())
}

/// Whether every alarm `narrow` matches is matched by `wide` too (conservatively: a regex covers
/// only the same regex, or an exact name it matches).
fn covers(wide: &Match, narrow: &Match) -> bool {
    let name = match (&wide.alarm_name, &narrow.alarm_name) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(NameMatch::Exact(w)), Some(NameMatch::Exact(n))) => w == n,
        (Some(NameMatch::Prefix(w)), Some(NameMatch::Exact(n) | NameMatch::Prefix(n))) => n.starts_with(w.as_str()),
        (Some(NameMatch::Regex(w)), Some(NameMatch::Regex(n))) => w == n,
        (Some(NameMatch::Regex(w)), Some(NameMatch::Exact(n))) => regex::Regex::new(w).is_ok_and(|r| r.is_match(n)),
        _ => false,
    };
    let same = |w: &Option<String>, n: &Option<String>| w.is_none() || w == n;
    name && same(&wide.namespace, &narrow.namespace)
        && same(&wide.metric_name, &narrow.metric_name)
        && same(&wide.account, &narrow.account)
        && same(&wide.region, &narrow.region)
        && wide.dimensions.iter().all(|(k, v)| narrow.dimensions.get(k) == Some(v))
}

fn matches(conditions: &Match, regex: Option<&Regex>, alarm: &Alarm) -> bool {
    let name_ok = match &conditions.alarm_name {
        None => true,
        Some(NameMatch::Exact(name)) => alarm.name == *name,
        Some(NameMatch::Prefix(prefix)) => alarm.name.starts_with(prefix.as_str()),
        Some(NameMatch::Regex(_)) => regex.is_some_and(|r| r.is_match(&alarm.name)),
    };
    let equal = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    name_ok
        && equal(&conditions.namespace, alarm.namespace.as_deref())
        && equal(&conditions.metric_name, alarm.metric_name.as_deref())
        && equal(&conditions.account, Some(alarm.account.as_str()))
        && equal(&conditions.region, Some(alarm.region.as_str()))
        && conditions.dimensions.iter().all(|(k, v)| alarm.dimensions.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::{AlarmKind, AlarmState};

    fn alarm(name: &str) -> Alarm {
        Alarm {
            name: name.to_owned(),
            arn: format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            kind: AlarmKind::Metric,
            state: AlarmState::Alarm,
            previous_state: None,
            reason: "Threshold Crossed".into(),
            timestamp: "2026-11-20T04:02:11.309Z".parse().expect("timestamp"),
            description: None,
            namespace: Some("CWAgent".into()),
            metric_name: Some("procstat_lookup_pid_count".into()),
            dimensions: [("pattern".to_owned(), "nginx".to_owned())].into(),
            alarm_rule: None,
            actions_suppressed_by: None,
            tags: BTreeMap::new(),
        }
    }

    const RULES: &str = r#"
rules:
  - name: exact-db
    match: { alarmName: { exact: db-down } }
    action: incident
    severity: critical
  - name: nginx
    match:
      alarmName: { prefix: web- }
      namespace: CWAgent
      dimensions: { pattern: nginx }
    action: remediate
    remediation:
      targets: { tag: { key: Role, value: web } }
      service: nginx
    runbookUrl: https://runbooks.example.com/nginx
  - name: batch
    match: { alarmName: { regex: "^batch-[0-9]+$" }, region: eu-west-1 }
    action: ignore
default:
  action: notify
"#;

    #[test]
    fn the_first_matching_rule_wins() {
        let routes = Routes::from_yaml(RULES).expect("valid rules");
        let route = routes.route(&alarm("web-nginx-down"));
        assert_eq!(route.name, "nginx");
        assert_eq!(route.action, Action::Remediate);
        assert_eq!(route.remediation.expect("remediation").timeout_seconds, 90);
        assert_eq!(routes.route(&alarm("db-down")).severity, Severity::Critical);
        assert_eq!(routes.route(&alarm("batch-42")).action, Action::Ignore);
    }

    #[test]
    fn every_condition_must_hold() {
        let routes = Routes::from_yaml(RULES).expect("valid rules");
        let mut other_dimension = alarm("web-nginx-down");
        other_dimension.dimensions.insert("pattern".into(), "apache".into());
        assert_eq!(routes.route(&other_dimension).name, DEFAULT_ROUTE_NAME);
        let mut other_region = alarm("batch-42");
        other_region.region = "us-east-1".into();
        assert_eq!(routes.route(&other_region).name, DEFAULT_ROUTE_NAME);
    }

    #[test]
    fn unmatched_alarms_take_the_default_which_notifies() {
        let routes = Routes::from_yaml("rules: []").expect("valid rules");
        let route = routes.route(&alarm("anything"));
        assert_eq!((route.name.as_str(), route.action), (DEFAULT_ROUTE_NAME, Action::Notify));
    }

    #[test]
    fn hostile_service_names_are_rejected_at_load() {
        for service in ["nginx; rm -rf /", "$(reboot)", "ng inx", "nginx\n", "`id`", "nginx'", ""] {
            let yaml = format!(
                "rules:\n  - name: r\n    action: remediate\n    remediation:\n      targets: {{ instanceIds: [i-0123456789abcdef0] }}\n      service: {}\n",
                serde_json::to_string(service).expect("json string")
            );
            let err = Routes::from_yaml(&yaml).expect_err(service);
            assert!(err.0.contains("does not match"), "{service:?}: {err}");
        }
    }

    #[test]
    fn responders_are_carried_into_the_route() {
        let yaml = "rules:\n  - name: web\n    action: notify\n    responders: [alice@example.com, bob@example.com]\n";
        let route = Routes::from_yaml(yaml).expect("valid rules").route(&alarm("web-nginx-down"));
        assert_eq!(route.responders, ["alice@example.com", "bob@example.com"]);
        let json =
            serde_json::to_value(Routes::from_yaml("rules: []").expect("rules").route(&alarm("x"))).expect("json");
        assert!(json.get("responders").is_none(), "an empty list is not serialized: {json}");
    }

    #[test]
    fn responders_must_be_e_mail_addresses() {
        for responders in
            ["[alice]", "['<alice@example.com>']", "['a@b@example.com']", "[a@example.com, A@example.com]"]
        {
            let yaml = format!("rules:\n  - name: web\n    action: notify\n    responders: {responders}\n");
            let err = Routes::from_yaml(&yaml).expect_err(responders);
            assert!(err.0.contains("rule 1 (\"web\")"), "{responders}: {err}");
        }
    }

    #[test]
    fn remediate_without_targets_is_rejected() {
        let err = Routes::from_yaml("rules:\n  - name: r\n    action: remediate\n").expect_err("invalid");
        assert!(err.0.contains("needs a remediation"), "{err}");
    }

    #[test]
    fn malformed_rules_are_rejected_with_their_name() {
        let cases = [
            ("rules:\n  - name: Bad Name\n    action: notify\n", "must match"),
            ("rules:\n  - name: a\n    action: notify\n  - name: a\n    action: ignore\n", "used twice"),
            ("rules:\n  - name: a\n    action: reboot\n", "unknown variant"),
            ("rules:\n  - name: a\n    match: { alarmName: { regex: '(' } }\n    action: notify\n", "regex"),
            ("rules:\n  - name: a\n    match: { alarmNme: { exact: x } }\n    action: notify\n", "unknown field"),
            ("default: { action: remediate }\n", "cannot remediate"),
            (
                "rules:\n  - name: a\n    action: remediate\n    remediation:\n      targets: { instanceIds: [i-0123456789abcdef0] }\n      service: nginx\n      timeoutSeconds: 3600\n",
                "timeoutSeconds",
            ),
            (
                "rules:\n  - name: a\n    action: remediate\n    remediation:\n      targets: { instanceIds: ['i-1; reboot'] }\n      service: nginx\n",
                "not an instance id",
            ),
        ];
        for (yaml, expected) in cases {
            let err = Routes::from_yaml(yaml).expect_err(yaml);
            assert!(err.0.contains(expected), "{yaml}: {err}");
        }
    }

    fn from_dimension_rule(dimension: &str) -> String {
        format!(
            "rules:\n  - name: per-host\n    action: remediate\n    remediation:\n      targets: {{ fromDimension: {dimension} }}\n      service: nginx\n"
        )
    }

    #[test]
    fn a_from_dimension_target_is_read_written_back_and_checked() {
        let routes = Routes::from_yaml(&from_dimension_rule("InstanceId")).expect("rules");
        let remediation = routes.by_name("per-host").and_then(|r| r.remediation).expect("remediation");
        assert_eq!(remediation.targets, Targets::FromDimension("InstanceId".into()));
        let written = serde_json::to_value(&remediation.targets).expect("json");
        assert_eq!(written, serde_json::json!({"fromDimension": "InstanceId"}));
        for bad in ["''", "'a:b'"] {
            let err = Routes::from_yaml(&from_dimension_rule(bad)).expect_err(bad);
            assert!(err.0.contains("not a CloudWatch dimension name"), "{bad}: {err}");
        }
        let both = "rules:\n  - name: r\n    action: remediate\n    remediation:\n      targets: { fromDimension: InstanceId, instanceIds: [i-0123456789abcdef0] }\n      service: nginx\n";
        let err = Routes::from_yaml(both).expect_err("two kinds of target");
        assert!(err.0.contains("exactly one of instanceIds, tag or fromDimension"), "{err}");
    }

    #[test]
    fn a_from_dimension_target_is_the_one_instance_the_alarm_names() {
        let target = Targets::FromDimension("InstanceId".into());
        let one = target.for_alarm("cpu", false, [("InstanceId", "i-0123456789abcdef0"), ("Other", "x")]);
        assert_eq!(one, Ok(Targets::InstanceIds(vec!["i-0123456789abcdef0".into()])));
        // Metric math: the same instance read by two metrics is one target.
        let math = target.for_alarm(
            "m",
            false,
            [("InstanceId", "i-0123456789abcdef0"), ("InstanceId", "i-0123456789abcdef0")],
        );
        assert_eq!(math, Ok(Targets::InstanceIds(vec!["i-0123456789abcdef0".into()])));
        let cases: [(Result<Targets, TargetError>, &str); 4] = [
            (target.for_alarm("c", true, []), "CompositeAlarmHasNoTarget"),
            (target.for_alarm("m", false, [("AutoScalingGroupName", "web")]), "TargetDimensionMissing"),
            (
                target.for_alarm(
                    "m",
                    false,
                    [("InstanceId", "i-0123456789abcdef0"), ("InstanceId", "i-0fedcba9876543210")],
                ),
                "TargetDimensionAmbiguous",
            ),
            (target.for_alarm("m", false, [("InstanceId", "i-1; reboot")]), "TargetNotAnInstance"),
        ];
        for (answer, name) in cases {
            let err = answer.expect_err(name);
            assert_eq!(err.name(), name, "{err}");
        }
        // Fixed targets do not depend on the alarm.
        let fixed = Targets::InstanceIds(vec!["i-0123456789abcdef0".into()]);
        assert_eq!(fixed.for_alarm("c", true, []), Ok(fixed.clone()));
    }

    /// A value check, what it must accept, and what it must refuse.
    type CheckCase<'a> = (fn(&str) -> bool, &'a [&'a str], &'a [&'a str]);

    #[test]
    fn value_checks_accept_exactly_what_their_patterns_describe() {
        let (route_32, route_33, tag_129) = ("a".repeat(32), "a".repeat(33), "t".repeat(129));
        let cases: [CheckCase; 5] = [
            (
                is_service_name,
                &["nginx", "php8.2-fpm", "getty@tty1", "a_b"],
                &["", "ng inx", "nginx;", "ngïnx", "$(x)"],
            ),
            (is_route_name, &["web", "0", "web-nginx", &route_32], &["", "-web", "Web", "web_x", &route_33]),
            (
                is_instance_id,
                &["i-0a1b2c3d", "i-0a1b2c3d4e5f60718", "mi-0123456789abcdef0"],
                &["i-0A1B2C3D", "i-0a1b2c3", "x-0a1b2c3d", "i-0a1b2c3d4e5f607189"],
            ),
            (is_tag_text, &["Role", "web server", "aws:cloudformation:stack-name"], &["", "a;b", "tag\n", &tag_129]),
            (
                is_email,
                &["alice@example.com", "on.call+web@ops.example.co.uk"],
                &["alice", "a@b", "@example.com", "a b@example.com", "a@@example.com", "a@example.com,b@example.com"],
            ),
        ];
        for (check, good, bad) in cases {
            for text in good {
                assert!(check(text), "{text:?} should pass");
            }
            for text in bad {
                assert!(!check(text), "{text:?} should fail");
            }
        }
    }

    #[test]
    fn units_that_power_off_reboot_or_isolate_a_host_are_refused_with_the_reason() {
        let refused = [
            ("multi-user.target", "only services"),
            ("rescue.target", "only services"),
            ("home.mount", "only services"),
            ("systemd-poweroff", "systemd's own"),
            ("systemd-reboot.service", "systemd's own"),
            ("systemd-journald", "systemd's own"),
            ("reboot", "reboots"),
            ("poweroff.service", "reboots"),
            ("emergency", "isolates"),
            ("dbus", "D-Bus"),
            ("amazon-ssm-agent", "SSM agent"),
            ("-H", "option"),
            ("init", "systemd's own"),
            ("snap.amazon-ssm-agent.amazon-ssm-agent.service", "SSM agent"),
        ];
        for (unit, why) in refused {
            let yaml = format!(
                "rules:\n  - name: r\n    action: remediate\n    remediation:\n      targets: {{ instanceIds: [i-0123456789abcdef0] }}\n      service: {unit}\n"
            );
            let err = Routes::from_yaml(&yaml).expect_err(unit);
            assert!(err.0.contains("is refused") && err.0.contains(why), "{unit}: {err}");
        }
        for unit in ["nginx", "nginx.service", "php8.2-fpm", "getty@tty1", "sshd", "docker.service"] {
            assert_eq!(forbidden_unit(unit), None, "{unit}");
        }
    }

    #[test]
    fn a_route_is_found_by_name_exactly_as_the_rules_define_it() {
        let routes = Routes::from_yaml(RULES).expect("valid rules");
        let route = routes.by_name("nginx").expect("nginx");
        assert_eq!(route, routes.route(&alarm("web-nginx-down")));
        assert_eq!(routes.by_name("default").map(|r| r.action), Some(Action::Notify));
        assert_eq!(routes.by_name("no-such-route"), None);
        assert_eq!(routes.remediations().map(|(name, _)| name).collect::<Vec<_>>(), ["nginx"]);
    }

    #[test]
    fn remediation_defaults_restart_one_instance_at_a_time() {
        let routes = Routes::from_yaml(RULES).expect("valid rules");
        let remediation = routes.by_name("nginx").and_then(|r| r.remediation).expect("remediation");
        assert_eq!((remediation.max_concurrency.as_str(), remediation.max_errors.as_str()), ("1", "0"));
        assert_eq!(remediation.recovery_seconds, None);
    }

    #[test]
    fn recovery_waits_for_the_alarm_to_see_enough_good_datapoints() {
        assert_eq!(default_recovery_seconds(Some(60), Some(3)), 240);
        assert_eq!(default_recovery_seconds(Some(10), Some(1)), 70);
        assert_eq!(default_recovery_seconds(Some(3600), Some(24)), MAX_RECOVERY_SECONDS);
        assert_eq!(default_recovery_seconds(None, None), 600);
        let yaml = "rules:\n  - name: r\n    action: remediate\n    remediation:\n      targets: { instanceIds: [i-0123456789abcdef0] }\n      service: nginx\n      recoverySeconds: 5\n";
        assert!(Routes::from_yaml(yaml).expect_err("too short").0.contains("recoverySeconds"));
    }

    #[test]
    fn a_rule_an_earlier_one_covers_is_reported_as_shadowed() {
        let routes = Routes::from_yaml(
            "rules:\n\
             - { name: web, match: { alarmName: { prefix: web- } }, action: notify }\n\
             - { name: web-nginx, match: { alarmName: { prefix: web-nginx- } }, action: notify }\n\
             - { name: rds, match: { namespace: AWS/RDS }, action: notify }\n\
             - { name: rds-prod, match: { namespace: AWS/RDS, dimensions: { DBInstanceIdentifier: prod } }, action: incident }\n\
             - { name: api, match: { alarmName: { exact: api-5xx } }, action: notify }\n\
             - { name: everything, action: notify }\n\
             - { name: after-everything, match: { region: eu-west-1 }, action: notify }\n",
        )
        .expect("routes");
        assert_eq!(
            routes.shadowed(),
            [
                (2, "web-nginx".to_owned(), 1, "web".to_owned()),
                (4, "rds-prod".to_owned(), 3, "rds".to_owned()),
                (7, "after-everything".to_owned(), 6, "everything".to_owned()),
            ]
        );
        assert!(Routes::example().expect("example").shadowed().is_empty(), "the sample rules shadow nothing");
    }

    #[test]
    fn rule_errors_say_the_rules_position_counted_from_one() {
        let err = Routes::from_yaml("rules:\n  - { name: ok, action: notify }\n  - { name: Bad, action: notify }\n")
            .expect_err("bad name");
        assert!(err.0.starts_with("rule 2 (\"Bad\")"), "{err}");
    }

    #[test]
    fn flapping_has_defaults_and_its_settings_are_checked() {
        let rule = |flapping: &str| {
            format!("rules:\n  - name: r\n    match: {{ alarmName: {{ prefix: r- }} }}\n    action: notify\n{flapping}")
        };
        let routes = Routes::from_yaml(&rule("")).expect("defaults");
        assert_eq!(routes.by_name("r").expect("r").flapping, Flapping::default());
        assert_eq!(routes.default().flapping, Flapping { transitions: 6, window_minutes: 60, quiet_minutes: 30 });
        let custom = Routes::from_yaml(&rule("    flapping: { transitions: 4, windowMinutes: 20 }\n")).expect("custom");
        assert_eq!(
            custom.by_name("r").expect("r").flapping,
            Flapping { transitions: 4, window_minutes: 20, quiet_minutes: 30 }
        );
        for (flapping, named) in [
            ("    flapping: { transitions: 1 }\n", "transitions"),
            ("    flapping: { windowMinutes: 2 }\n", "windowMinutes"),
            ("    flapping: { quietMinutes: 5000 }\n", "quietMinutes"),
            ("    flapping: { often: true }\n", "often"),
        ] {
            let err = Routes::from_yaml(&rule(flapping)).expect_err(flapping);
            assert!(err.0.contains(named), "{flapping}: {err}");
        }
    }

    #[test]
    fn group_settings_are_checked_when_the_rules_load() {
        let rule = |group: &str| {
            format!(
                "rules:\n  - name: r\n    match: {{ alarmName: {{ prefix: r- }} }}\n    action: notify\n    group: {group}\n"
            )
        };
        assert!(Routes::from_yaml(&rule("{ by: route }")).is_ok());
        assert!(Routes::from_yaml(&rule("{ by: route, dimensions: [AvailabilityZone], windowSeconds: 60 }")).is_ok());
        for (group, named) in [
            ("{ by: route, windowSeconds: 10 }", "windowSeconds"),
            ("{ by: route, windowSeconds: 100000 }", "windowSeconds"),
            ("{ by: alarm, dimensions: [AvailabilityZone] }", "dimensions"),
            ("{ by: route, dimensions: [\"\"] }", "dimensions"),
            ("{ by: host }", "by"),
            ("{ by: route, every: 5 }", "every"),
        ] {
            let err = Routes::from_yaml(&rule(group)).expect_err(group);
            assert!(err.0.contains(named), "{group}: {err}");
        }
    }

    #[test]
    fn the_shipped_rules_only_notify_and_the_example_rules_are_valid() {
        // Deploying the stack as it comes must not act on anyone's instances.
        let deployed = Routes::deployed().expect("infra/routes.yaml must load");
        let alarm = crate::Alarm::from_event(
            &serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(format!(
                    "{}/../../events/alarm-router/metric-alarm.json",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .expect("sample"),
            )
            .expect("json"),
        )
        .expect("alarm");
        let route = deployed.route(&alarm);
        assert_eq!((route.action, route.remediation.is_none()), (Action::Notify, true), "{route:?}");
        assert!(deployed.is_empty(), "infra/routes.yaml ships without rules");
        let example = Routes::example().expect("infra/routes.example.yaml must load");
        assert!(example.by_name("web-nginx").is_some_and(|r| r.action == Action::Remediate));
    }
}
