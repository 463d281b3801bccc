//! `replay history`: a whole alarm history, one EventBridge "CloudWatch Alarm State Change" event
//! per line, routed and run in time order (or the file's, `--in-file-order`) on a virtual clock
//! that follows the events' timestamps and never goes back.
//!
//! Each event goes through the alarm router; each execution the router starts is run by the
//! local state-machine runner from the event's time. Executions run one after another, but the
//! emulator learns that one ended only when the replay routes the first event after its virtual
//! stop time: until then the failure counter and the router see it running, as they would live,
//! where executions overlap. (Within an execution, its later tasks see the emulator as it was at
//! the event that started it.) A restart is verified by the history itself: the alarm's state at
//! each check is the state its latest transition in the file gave it (still ALARM when the file
//! has none since).
//!
//! What AWS does around the functions ([`crate::stack`]: Lambda's retries of the router, the
//! safety nets' messages and EventBridge's retries of them) is work scheduled on the same clock,
//! done in virtual-time order between the history's events, and for `--settle` after the last.
//!
//! The summary counts what reached people (pages, notifications, recoveries, war rooms) and what
//! the noise controls kept quiet, in total and per route.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use alarm_router::{Decision, DecisionAction, Outcome as Routed};
use asl::{Definition, Outcome, Status, TraceEvent};
use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Utc};
use local_invoke::Function;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::page::Suppression;
use shared::{Alarm, AlarmState};

use crate::stack::{self, Job, SafetyNet, Schedule};
use crate::topic::{self, TopicCounts};
use crate::{ExecutionRecord, ProductTasks, ended, function_of, record_execution, run_execution, settings};

/// One line of a history file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    /// The alarm's transition time, when the line is an alarm event.
    pub at: Option<DateTime<Utc>>,
    /// The event, or why the line is not JSON.
    pub event: Result<Value, String>,
}

/// Reads a JSON Lines history: blank lines are skipped; the rest are put in time order (a line
/// whose time cannot be read keeps its place after the line before it).
pub fn read(text: &str) -> Vec<Entry> {
    let lines = text.lines().enumerate().filter(|(_, raw)| !raw.trim().is_empty()).map(|(index, raw)| {
        (index + 1, serde_json::from_str::<Value>(raw).map_err(|e| format!("line {} is not JSON: {e}", index + 1)))
    });
    in_time_order(lines.collect())
}

/// An event with its position in its file (1-based), or why that position holds no event.
pub type Positioned = (usize, Result<Value, String>);

/// Puts events in time order; an event whose time cannot be read keeps its place after the one
/// before it.
pub fn in_time_order(events: Vec<Positioned>) -> Vec<Entry> {
    let mut last = None;
    let mut entries: Vec<(Option<DateTime<Utc>>, Entry)> = Vec::new();
    for (line, event) in events {
        let at = event.as_ref().ok().and_then(|event| Alarm::from_event(event).ok()).map(|alarm| alarm.timestamp);
        last = at.or(last);
        entries.push((last, Entry { line, at, event }));
    }
    // Stable: events of the same instant keep the file's order.
    entries.sort_by_key(|(key, _)| *key);
    entries.into_iter().map(|(_, entry)| entry).collect()
}

/// The virtual clock of a history replay: the alarms' transitions, and the executions that have
/// run but whose end the replay has not reached yet.
#[derive(Debug, Default)]
pub struct Clock {
    transitions: HashMap<String, Vec<(DateTime<Utc>, AlarmState)>>,
    /// When the history deletes an alarm (a configuration change, `operation: delete`).
    deleted: HashMap<String, DateTime<Utc>>,
    pending: Mutex<Vec<ExecutionRecord>>,
}

impl Clock {
    pub fn new(entries: &[Entry]) -> Self {
        let mut transitions: HashMap<String, Vec<(DateTime<Utc>, AlarmState)>> = HashMap::new();
        let mut deleted = HashMap::new();
        for entry in entries {
            if let Ok(alarm) = entry.event.as_ref().map_err(|_| ()).and_then(|e| Alarm::from_event(e).map_err(|_| ())) {
                transitions.entry(alarm.name).or_default().push((alarm.timestamp, alarm.state));
            } else if let (Ok(event), Some(at)) = (&entry.event, entry.at)
                && event["detail-type"] == alarm_router::CONFIGURATION_CHANGE
                && event["detail"]["operation"] == "delete"
                && let Some(name) = event["detail"]["alarmName"].as_str()
            {
                deleted.insert(name.to_owned(), at);
            }
        }
        for list in transitions.values_mut() {
            list.sort_by_key(|(at, _)| *at);
        }
        Self { transitions, deleted, pending: Mutex::default() }
    }

    /// The state the history gives alarm `name` at `at`: that of its latest transition until then.
    /// Every alarm of the history that has a state at `at`, with that state.
    pub fn states_at(&self, at: DateTime<Utc>) -> Vec<(String, AlarmState)> {
        let mut states: Vec<(String, AlarmState)> = self
            .transitions
            .keys()
            .filter(|name| self.deleted.get(*name).is_none_or(|when| *when > at))
            .filter_map(|name| Some((name.clone(), self.alarm_state_at(name, at)?)))
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }

    /// The alarms the history has deleted by `at`.
    pub fn deleted_by(&self, at: DateTime<Utc>) -> Vec<String> {
        self.deleted.iter().filter(|(_, when)| **when <= at).map(|(name, _)| name.clone()).collect()
    }

    pub fn alarm_state_at(&self, name: &str, at: DateTime<Utc>) -> Option<AlarmState> {
        let list = self.transitions.get(name)?;
        list.iter().take_while(|(when, _)| *when <= at).last().map(|(_, state)| *state)
    }

    /// Keeps an execution's end until the replay reaches it.
    pub fn defer(&self, record: ExecutionRecord) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.push(record);
        }
    }

    /// Tells the emulator of every execution that has ended by `now`.
    pub async fn catch_up(&self, tasks: &ProductTasks, now: DateTime<Utc>) {
        let due: Vec<ExecutionRecord> = match self.pending.lock() {
            Ok(mut pending) => {
                let (due, later) = pending.drain(..).partition(|r| r.stop.is_none_or(|stop| stop <= now));
                *pending = later;
                due
            }
            Err(_) => Vec::new(),
        };
        for record in &due {
            record_execution(tasks, record).await;
        }
    }

    /// Tells the emulator of every execution still pending: the history is over.
    pub async fn finish(&self, tasks: &ProductTasks) {
        self.catch_up(tasks, DateTime::<Utc>::MAX_UTC).await;
    }
}

/// Pages the noise controls kept quiet: an ALARM that would have paged, or the escalation of an
/// execution that would have paged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    pub grouped: u64,
    pub silenced: u64,
    pub maintenance: u64,
    pub inhibited: u64,
    pub flapping: u64,
}

impl Suppressed {
    fn add(&mut self, by: Suppression) {
        *match by {
            Suppression::Grouped => &mut self.grouped,
            Suppression::Silenced => &mut self.silenced,
            Suppression::Maintenance => &mut self.maintenance,
            Suppression::Inhibited => &mut self.inhibited,
            Suppression::Flapping => &mut self.flapping,
        } += 1;
    }
}

/// What a history did, in total or for one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Events routed (a line the router refused counts; a line that is not JSON does not).
    pub events: u64,
    /// First-response executions started.
    pub executions: u64,
    /// Executions that ran the restart step.
    pub restarts: u64,
    /// Restarts whose checks passed: the execution went on to its recovery instead of escalating.
    pub verified: u64,
    /// Messages that page a human: escalations, incident alarms, a flapping alarm's one page.
    pub pages: u64,
    /// Messages for information (notify routes).
    pub notifications: u64,
    /// Incident Manager incidents opened.
    pub incidents: u64,
    /// Slack war rooms opened (distinct channels).
    pub war_rooms: u64,
    /// Recovery notices.
    pub recoveries: u64,
    /// Events a route ignores (or that change nothing, like INSUFFICIENT_DATA).
    pub ignored: u64,
    pub suppressed: Suppressed,
}

/// A line that was not handled as an alarm: its error's name and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: usize,
    pub error: String,
    pub message: String,
}

/// One event of the history and what it led to, for comparing two rule sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub line: usize,
    pub alarm: String,
    pub state: String,
    pub at: Option<DateTime<Utc>>,
    pub route: String,
    /// What it led to: paged, notified, restarted, recovery, incident, warRoom, grouped, silenced,
    /// maintenance, inhibited, flapping, ignored (comma-separated), nothing, or the error's name.
    pub did: String,
}

impl Counts {
    /// What changed from `before` to `self`, as the words of [`Transition::did`].
    fn did_since(&self, before: &Counts) -> String {
        let s = &self.suppressed;
        let b = &before.suppressed;
        let words: Vec<&str> = [
            (self.pages > before.pages, "paged"),
            (self.notifications > before.notifications, "notified"),
            (self.incidents > before.incidents, "incident"),
            (self.restarts > before.restarts, "restarted"),
            (self.war_rooms > before.war_rooms, "warRoom"),
            (self.recoveries > before.recoveries, "recovery"),
            (s.grouped > b.grouped, "grouped"),
            (s.silenced > b.silenced, "silenced"),
            (s.maintenance > b.maintenance, "maintenance"),
            (s.inhibited > b.inhibited, "inhibited"),
            (s.flapping > b.flapping, "flapping"),
            (self.ignored > before.ignored, "ignored"),
        ]
        .into_iter()
        .filter_map(|(changed, word)| changed.then_some(word))
        .collect();
        if words.is_empty() { "nothing".to_owned() } else { words.join(",") }
    }
}

/// The one JSON line `replay history` prints.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(flatten)]
    pub totals: Counts,
    pub by_route: BTreeMap<String, Counts>,
    /// Lines refused with a named error (junk lines): handled, and listed.
    pub errors: Vec<LineError>,
    /// Events whose handling failed (an emulator or configuration error): not handled.
    pub unhandled: Vec<LineError>,
    /// The virtual time the history spans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    pub wall_seconds: f64,
    pub events_per_second: f64,
    /// DynamoDB requests the emulator answered during the replay, when it can say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamodb_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamodb_calls_per_event: Option<f64>,
    /// The capacity units those requests would have consumed on AWS, by the sizes of the items
    /// they read and wrote (the emulator's count: moto itself reports a fixed figure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamodb_capacity: Option<Capacity>,
    /// Read and write units per event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamodb_capacity_per_event: Option<Capacity>,
    /// What reached the alert topic, per route, as the emulator recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reached_topic: Option<TopicCounts>,
    /// The router's invocations Lambda retried after an error, at their virtual times.
    pub lambda_retries: Vec<Retry>,
    /// The safety nets' messages: the router's on-failure destination, executions that ended
    /// without paging.
    pub safety_nets: Vec<SafetyNetMessage>,
    /// Events delivered after the clock had passed their own time (`--in-file-order`).
    pub delivered_late: u64,
    /// Where the virtual clock stopped: the last event plus the settle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_until: Option<DateTime<Utc>>,
    /// How many times the stack's scheduled work ran.
    pub scheduled_ticks: u64,
    /// Work still scheduled after the settle ended (retries not yet due).
    pub left_scheduled: u64,
    /// The war rooms' channels seen so far: a room reopened by a later execution counts once.
    #[serde(skip)]
    rooms: HashSet<String>,
    /// Every event and what it led to, in the order replayed.
    #[serde(skip)]
    pub transitions: Vec<Transition>,
}

impl Summary {
    fn count(&mut self, route: Option<&str>, change: impl Fn(&mut Counts)) {
        change(&mut self.totals);
        if let Some(route) = route {
            change(self.by_route.entry(route.to_owned()).or_default());
        }
    }
}

/// What one execution did for people, found in its history by the resources its tasks called
/// (not by state names), so a renamed state still counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionEffects {
    pub restarted: bool,
    /// It restarted and succeeded: the only way to success after a restart is a passed check.
    pub verified: bool,
    pub pages: u64,
    pub notifications: u64,
    pub recoveries: u64,
    pub incidents: u64,
    /// The war rooms' channel ids.
    pub war_rooms: Vec<String>,
    pub suppressed: Vec<Suppression>,
}

#[derive(Clone, Copy)]
enum Call {
    Publish(&'static str),
    Restart,
    Page,
    WarRoom,
    Incident,
    Other,
}

/// Reads [`ExecutionEffects`] from an execution's history.
pub fn execution_effects(outcome: &Outcome) -> ExecutionEffects {
    let mut effects = ExecutionEffects::default();
    let mut call = Call::Other;
    let parse = |text: Option<&Value>| -> Value {
        text.and_then(Value::as_str).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
    };
    for event in &outcome.history {
        let details = |key: &str| event.details.get(key).cloned().unwrap_or_default();
        match event.kind.as_str() {
            "LambdaFunctionScheduled" => {
                let scheduled = details("lambdaFunctionScheduledEventDetails");
                let input = parse(scheduled.get("input"));
                call = match scheduled["resource"].as_str().and_then(function_of) {
                    Some(Function::RestartAndVerify) if input["step"] == "restart" => Call::Restart,
                    // Only an escalation's page counts as kept quiet: a grouped recovery is announced
                    // by the group instead.
                    Some(Function::AlarmRouter) if input["page"] == "escalation" => Call::Page,
                    Some(Function::SlackChannelCreator) => Call::WarRoom,
                    _ => Call::Other,
                };
            }
            "TaskScheduled" => {
                let scheduled = details("taskScheduledEventDetails");
                let parameters = parse(scheduled.get("parameters"));
                call = match (scheduled["resourceType"].as_str(), scheduled["resource"].as_str()) {
                    (Some("sns"), Some("publish")) => {
                        match parameters["MessageAttributes"]["kind"]["StringValue"].as_str() {
                            Some("recovery") => Call::Publish("recovery"),
                            Some("notification") => Call::Publish("notification"),
                            _ => Call::Publish("page"),
                        }
                    }
                    (Some(service), Some("startIncident")) if service.ends_with("ssmincidents") => Call::Incident,
                    _ => Call::Other,
                };
            }
            "LambdaFunctionSucceeded" | "TaskSucceeded" => {
                let output = parse(
                    details("lambdaFunctionSucceededEventDetails")
                        .get("output")
                        .or_else(|| event.details.get("taskSucceededEventDetails").and_then(|d| d.get("output"))),
                );
                match call {
                    Call::Restart => effects.restarted = true,
                    Call::Page => {
                        if let Some(by) =
                            output.get("suppressedBy").and_then(|b| serde_json::from_value(b.clone()).ok())
                        {
                            effects.suppressed.push(by);
                        }
                    }
                    Call::WarRoom => {
                        if let Some(channel) = output["channelId"].as_str() {
                            effects.war_rooms.push(channel.to_owned());
                        }
                    }
                    Call::Incident => effects.incidents += 1,
                    Call::Publish("recovery") => effects.recoveries += 1,
                    Call::Publish("notification") => effects.notifications += 1,
                    Call::Publish(_) => effects.pages += 1,
                    _ => {}
                }
                call = Call::Other;
            }
            _ => {}
        }
    }
    effects.verified = effects.restarted && outcome.status == Status::Succeeded;
    effects
}

/// What a decision did for people, and the execution it started for the replay to run.
fn count_decision(summary: &mut Summary, decision: &Decision) -> Option<String> {
    let route = Some(decision.route.name.as_str());
    let mut run = None;
    match (&decision.action, &decision.outcome) {
        (_, Routed::StartedExecution { execution_arn, duplicate: false }) => run = Some(execution_arn.clone()),
        (_, Routed::StartedExecution { duplicate: true, .. }) => {}
        (_, Routed::OpenedIncident { .. }) => summary.count(route, |c| {
            c.incidents += 1;
            c.pages += 1;
        }),
        (DecisionAction::Notify, Routed::Published { .. }) => summary.count(route, |c| c.notifications += 1),
        (_, Routed::Published { .. }) => summary.count(route, |c| c.pages += 1),
        (_, Routed::Resolved { .. }) => summary.count(route, |c| c.recoveries += 1),
        // A suppression counts a page kept quiet: when the alarm still runs its remediation, that
        // is the execution's escalation (counted from its history), not the ALARM.
        (_, Routed::Grouped { execution_arn: Some(arn), .. }) => run = Some(arn.clone()),
        (_, Routed::Grouped { execution_arn: None, .. }) => summary.count(route, |c| c.suppressed.grouped += 1),
        (_, Routed::Silenced { execution_arn: Some(arn), .. }) => run = Some(arn.clone()),
        (_, Routed::Silenced { execution_arn: None, silence, .. }) => {
            let by = alarm_router::suppression_of(silence);
            summary.count(route, |c| c.suppressed.add(by));
        }
        (_, Routed::Flapping { message_id: Some(_), .. }) => summary.count(route, |c| c.pages += 1),
        (_, Routed::Flapping { message_id: None, .. }) => summary.count(route, |c| c.suppressed.flapping += 1),
        (_, Routed::Ignored { .. }) => summary.count(route, |c| c.ignored += 1),
        (
            _,
            Routed::LeftToExecution { .. } | Routed::AnnouncedByExecution { .. } | Routed::StillFiringInGroup { .. },
        ) => {}
    }
    run
}

/// One line of the human-readable trace for a decision made at `now` on the virtual clock; the
/// alarm's own time follows when it differs (a late delivery, or a retry).
fn describe(entry: &Entry, decision: &Decision, now: DateTime<Utc>) -> String {
    let alarm = &decision.alarm;
    let outcome = decision.outcome.summary();
    let own = if alarm.timestamp == now {
        String::new()
    } else {
        format!(" (its time {})", alarm.timestamp.format("%Y-%m-%dT%H:%M:%SZ"))
    };
    format!(
        "{} line {:>4}  {} {}{own} → {}: {outcome}",
        now.format("%Y-%m-%dT%H:%M:%SZ"),
        entry.line,
        alarm.name,
        alarm.state.as_str(),
        decision.route.name
    )
}

/// DynamoDB capacity units, read and write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub read: f64,
    pub write: f64,
}

/// The capacity the emulator has counted so far, when it can say.
async fn dynamodb_capacity(tasks: &ProductTasks) -> Option<Capacity> {
    let endpoint = tasks.config.endpoint_url()?;
    let answer =
        crate::http().get(format!("{}/_first_response/capacity", endpoint.trim_end_matches('/'))).send().await.ok()?;
    answer.error_for_status().ok()?.json().await.ok()
}

/// How many DynamoDB requests the emulator has answered, when it can say.
async fn dynamodb_calls(tasks: &ProductTasks) -> Option<u64> {
    let endpoint = tasks.config.endpoint_url()?;
    let answer =
        crate::http().get(format!("{}/_first_response/calls", endpoint.trim_end_matches('/'))).send().await.ok()?;
    let calls: HashMap<String, u64> = answer.error_for_status().ok()?.json().await.ok()?;
    Some(calls.values().sum())
}

/// How a history is delivered, and how long the virtual clock runs after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Deliver the events in the file's order, as EventBridge may, instead of sorted by time.
    pub in_file_order: bool,
    /// How long the virtual clock keeps running after the last event, for scheduled work.
    pub settle: chrono::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { in_file_order: false, settle: chrono::Duration::hours(1) }
    }
}

/// An event's delivery to the router: its index in the entries, and when on the virtual clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub entry: usize,
    /// `None` only before any event with a time: the clock has not started.
    pub at: Option<DateTime<Utc>>,
}

/// When each of `entries` (from [`read`]: in time order) is delivered, in delivery order. In
/// time order, each at its own time; in the file's order, the clock never goes back: an event
/// older than the clock is delivered at the clock's time (its payload keeps its own
/// `state.timestamp`). An event without a time is delivered when the one before it was.
pub fn deliveries(entries: &[Entry], in_file_order: bool) -> Vec<Delivery> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    if in_file_order {
        order.sort_by_key(|&index| entries.get(index).map(|e| e.line));
    }
    let mut clock: Option<DateTime<Utc>> = None;
    order
        .into_iter()
        .map(|index| {
            let own = entries.get(index).and_then(|e| e.at);
            clock = match (clock, own) {
                (Some(clock), Some(own)) => Some(clock.max(own)),
                (clock, own) => clock.or(own),
            };
            Delivery { entry: index, at: clock }
        })
        .collect()
}

/// A Lambda retry of the router: which line, which attempt (2 or 3), and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retry {
    pub line: usize,
    pub attempt: u32,
    pub at: DateTime<Utc>,
}

/// A safety net's message: which rule, when it reached the topic (or `None`: it never did), and
/// after how many deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SafetyNetMessage {
    pub rule: &'static str,
    pub first_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub attempts: u32,
}

/// Replays `entries` (from [`read`]) through the router and `definition`, with what AWS does
/// around the functions (see [`crate::stack`]); `trace` receives the human-readable lines.
/// `tasks.history` must be the [`Clock`] of these entries.
pub async fn replay(
    tasks: &ProductTasks,
    definition: &Definition,
    entries: &[Entry],
    options: &Options,
    trace: &mut dyn FnMut(&str),
) -> Summary {
    let started = Instant::now();
    let calls_before = dynamodb_calls(tasks).await;
    let capacity_before = dynamodb_capacity(tasks).await;
    let mut summary = Summary::default();
    let sfn = aws_sdk_sfn::Client::new(&tasks.harness);
    let mut schedule = Schedule::default();
    let deliveries = deliveries(entries, options.in_file_order);
    // An event without a time before any with one is due first.
    for delivery in &deliveries {
        schedule
            .push(delivery.at.unwrap_or(DateTime::<Utc>::MIN_UTC), Job::Route { entry: delivery.entry, attempt: 1 });
    }
    let last = deliveries.iter().filter_map(|d| d.at).max();
    let end = last.and_then(|last| last.checked_add_signed(options.settle));
    let mut next_tick = deliveries
        .iter()
        .find_map(|d| d.at)
        .and_then(|first| first.checked_add_signed(chrono::Duration::seconds(stack::SCHEDULE_EVERY)));
    let mut virtual_now: Option<DateTime<Utc>> = None;
    loop {
        let due = schedule.next_due();
        if let Some(tick) =
            next_tick.filter(|tick| due.is_none_or(|due| *tick < due) && end.is_some_and(|end| *tick <= end))
        {
            scheduled_work(tasks, tick, trace).await;
            summary.scheduled_ticks += 1;
            next_tick = tick.checked_add_signed(chrono::Duration::seconds(stack::SCHEDULE_EVERY));
            continue;
        }
        let Some(due) = due else { break };
        if end.is_some_and(|end| due > end) {
            break;
        }
        let Some((due, job)) = schedule.pop() else { break };
        // The clock never goes back: work that is late happens now.
        let now = match (virtual_now, due == DateTime::<Utc>::MIN_UTC) {
            (Some(clock), _) => clock.max(due),
            (None, false) => due,
            (None, true) => Utc::now(),
        };
        if due != DateTime::<Utc>::MIN_UTC {
            virtual_now = Some(now);
            if let Some(clock) = &tasks.history {
                clock.catch_up(tasks, now).await;
            }
        }
        match job {
            Job::Route { entry: index, attempt } => {
                let Some(entry) = entries.get(index) else { continue };
                let routed =
                    route_event(tasks, definition, &sfn, entry, attempt, now, &mut schedule, &mut summary, trace).await;
                if let Err((error, message)) = routed {
                    router_failed(index, entry, attempt, now, error, message, &mut schedule, &mut summary, trace);
                }
            }
            Job::Publish { net, message, attempt, first } => {
                publish_safety_net(tasks, net, message, attempt, first, now, &mut schedule, &mut summary, trace).await;
            }
        }
    }
    summary.settled_until = end;
    summary.left_scheduled = schedule.len() as u64;
    if let Some(clock) = &tasks.history {
        clock.finish(tasks).await;
    }
    let wall = started.elapsed().as_secs_f64();
    summary.wall_seconds = (wall * 1000.0).round() / 1000.0;
    summary.events_per_second =
        if wall > 0.0 { (summary.totals.events as f64 / wall * 10.0).round() / 10.0 } else { 0.0 };
    if let (Some(before), Some(after)) = (calls_before, dynamodb_calls(tasks).await) {
        let calls = after.saturating_sub(before);
        summary.dynamodb_calls = Some(calls);
        if summary.totals.events > 0 {
            summary.dynamodb_calls_per_event =
                Some((calls as f64 / summary.totals.events as f64 * 100.0).round() / 100.0);
        }
    }
    if let (Some(before), Some(after)) = (capacity_before, dynamodb_capacity(tasks).await) {
        let spent = Capacity { read: after.read - before.read, write: after.write - before.write };
        summary.dynamodb_capacity = Some(spent);
        if summary.totals.events > 0 {
            let per = |units: f64| (units / summary.totals.events as f64 * 100.0).round() / 100.0;
            summary.dynamodb_capacity_per_event = Some(Capacity { read: per(spent.read), write: per(spent.write) });
        }
    }
    if let Some(endpoint) = tasks.config.endpoint_url() {
        match topic::messages(endpoint, &tasks.emulator.topic_arn).await {
            Ok(messages) => summary.reached_topic = Some(TopicCounts::of(&messages)),
            Err(message) => trace(&format!("replay: {message}")),
        }
    }
    summary
}

/// The stack's scheduled work at `at` on the virtual clock, every [`stack::SCHEDULE_EVERY`] from
/// the first event until the settle ends. The stack schedules nothing yet; the router's
/// reconciler (which closes what the state table holds open once the alarms say it is over) is
/// to be invoked from here, as EventBridge Scheduler would invoke it, so that what it sends
/// reaches the topic and is counted like anything else.
async fn scheduled_work(tasks: &ProductTasks, at: DateTime<Utc>, trace: &mut dyn FnMut(&str)) {
    // CloudWatch holds each alarm of the history in the state the history gives it at `at`.
    if let Some(clock) = &tasks.history {
        for (name, state) in clock.states_at(at) {
            let state = match state {
                AlarmState::Alarm => StateValue::Alarm,
                AlarmState::Ok => StateValue::Ok,
                AlarmState::InsufficientData => StateValue::InsufficientData,
            };
            if let Err(message) =
                tasks.set_alarm(&name, state, "replay: its state in the replayed history", (None, None)).await
            {
                trace(&format!("replay: could not put {name} into the emulator's CloudWatch: {message}"));
            }
        }
        let deleted = clock.deleted_by(at);
        if !deleted.is_empty()
            && let Err(message) = tasks.delete_alarms(&deleted).await
        {
            trace(&format!("replay: could not delete {deleted:?} from the emulator's CloudWatch: {message}"));
        }
    }
    if let Some(faults) = &tasks.faults {
        faults.tell(at).await;
    }
    let request = serde_json::json!({"reconcile": {"at": at.to_rfc3339()}});
    let time = at.format("%Y-%m-%dT%H:%M:%SZ");
    match local_invoke::invoke_at(Function::AlarmRouter, request, &tasks.config, &tasks.emulator, at).await {
        Ok(answer) => {
            let count = |field: &str| answer[field].as_array().map(Vec::len).unwrap_or_default();
            let (decisions, recoveries, cleared) =
                (count("decisions"), count("recoveries"), count("inhibitorsCleared"));
            if decisions + recoveries + cleared > 0 {
                trace(&format!(
                    "{time}            reconciler: {decisions} transition(s) closed, {recoveries} recovery(ies) told, \
                     {cleared} inhibitor(s) cleared"
                ));
            }
        }
        Err(diagnostic) => {
            trace(&format!("{time}            reconciler: {}: {}", diagnostic.error_type, diagnostic.error_message))
        }
    }
}

/// Routes one delivery of `entry` at `now` and runs the execution it starts; the router's error,
/// if it failed.
#[allow(clippy::too_many_arguments)]
async fn route_event(
    tasks: &ProductTasks,
    definition: &Definition,
    sfn: &aws_sdk_sfn::Client,
    entry: &Entry,
    attempt: u32,
    now: DateTime<Utc>,
    schedule: &mut Schedule,
    summary: &mut Summary,
    trace: &mut dyn FnMut(&str),
) -> Result<(), (String, String)> {
    let event = match &entry.event {
        Ok(event) => event.clone(),
        Err(message) => {
            trace(&format!("line {:>4}  InvalidEvent: {message}", entry.line));
            let error = LineError { line: entry.line, error: "InvalidEvent".into(), message: message.clone() };
            summary.errors.push(error);
            return Ok(());
        }
    };
    if attempt == 1 {
        if let Some(at) = entry.at {
            summary.from = Some(summary.from.map_or(at, |from| from.min(at)));
            summary.to = Some(summary.to.map_or(at, |to| to.max(at)));
            if at < now {
                summary.delivered_late += 1;
            }
        }
        summary.totals.events += 1;
    } else {
        summary.lambda_retries.push(Retry { line: entry.line, attempt, at: now });
        trace(&format!(
            "{} line {:>4}  Lambda retries the router (attempt {attempt} of {})",
            now.format("%Y-%m-%dT%H:%M:%SZ"),
            entry.line,
            stack::LAMBDA_RETRY_DELAYS.len() + 1
        ));
    }
    let before = summary.totals.clone();
    let alarm = Alarm::from_event(&event).ok();
    let mut transition = Transition {
        line: entry.line,
        alarm: alarm.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
        state: alarm.as_ref().map(|a| a.state.as_str().to_owned()).unwrap_or_default(),
        at: entry.at,
        route: String::new(),
        did: String::new(),
    };
    if let Some(faults) = &tasks.faults {
        faults.tell(now).await;
    }
    let routed = local_invoke::invoke_at(Function::AlarmRouter, event, &tasks.config, &tasks.emulator, now).await;
    let decision = routed.map_err(|d| (d.error_type, d.error_message)).and_then(|value| {
        serde_json::from_value::<Decision>(value)
            .map_err(|e| ("ConfigError".to_owned(), format!("the router's answer is not a decision: {e}")))
    });
    let decision = match decision {
        Ok(decision) => decision,
        Err((error, message)) => {
            trace(&format!("{} line {:>4}  {error}: {message}", now.format("%Y-%m-%dT%H:%M:%SZ"), entry.line));
            transition.did = error.clone();
            // One transition per line: a failure Lambda will retry is not one yet.
            let last_attempt = usize::try_from(attempt).is_ok_and(|a| a > stack::LAMBDA_RETRY_DELAYS.len());
            if error == "InvalidEvent" || last_attempt {
                summary.transitions.push(transition);
            }
            if error == "InvalidEvent" {
                // Not an alarm state change: the stack's rule would not have delivered it.
                summary.errors.push(LineError { line: entry.line, error, message });
                return Ok(());
            }
            return Err((error, message));
        }
    };
    // Routed once: a success is never retried.
    summary.by_route.entry(decision.route.name.clone()).or_default().events += 1;
    trace(&describe(entry, &decision, now));
    transition.route = decision.route.name.clone();
    if let Some(execution_arn) = count_decision(summary, &decision) {
        summary.count(Some(&decision.route.name), |c| c.executions += 1);
        let ran = run_one(tasks, definition, sfn, &execution_arn, now, summary, &decision, trace).await;
        match ran {
            Ok(Some((message, stopped))) => {
                // EventBridge sends the status change when the execution stops, on the virtual clock.
                let net = SafetyNet::ExecutionEndedUnseen;
                schedule.push(stopped, Job::Publish { net, message, attempt: 1, first: stopped });
            }
            Ok(None) => {}
            Err(message) => {
                trace(&format!("line {:>4}  ConfigError: {message}", entry.line));
                summary.unhandled.push(LineError { line: entry.line, error: "ConfigError".into(), message });
            }
        }
    }
    transition.did = summary.totals.did_since(&before);
    summary.transitions.push(transition);
    Ok(())
}

/// What Lambda does when the router's attempt `attempt` on `entry` failed at `now`: retry it
/// later, or after the last retry, send the invocation record to the on-failure destination,
/// where `RouterFailureRule` turns it into a message on the topic.
#[allow(clippy::too_many_arguments)]
fn router_failed(
    index: usize,
    entry: &Entry,
    attempt: u32,
    now: DateTime<Utc>,
    error: String,
    message: String,
    schedule: &mut Schedule,
    summary: &mut Summary,
    trace: &mut dyn FnMut(&str),
) {
    let retry = usize::try_from(attempt).ok().and_then(|a| stack::LAMBDA_RETRY_DELAYS.get(a.saturating_sub(1)));
    if let Some(delay) = retry {
        let at = now + chrono::Duration::seconds(*delay);
        trace(&format!("      └ Lambda retries it at {} ({error})", at.format("%Y-%m-%dT%H:%M:%SZ")));
        schedule.push(at, Job::Route { entry: index, attempt: attempt + 1 });
        return;
    }
    let event = entry.event.as_ref().cloned().unwrap_or_default();
    let text = stack::router_failure_message(&event, &error, &message, now);
    let net = SafetyNet::RouterFailure;
    trace(&format!("      └ the router failed {attempt} times: the on-failure destination tells {}", net.rule()));
    schedule.push(now, Job::Publish { net, message: text, attempt: 1, first: now });
    let message = format!("after {attempt} attempts: {message}");
    summary.unhandled.push(LineError { line: entry.line, error, message });
}

/// One delivery by a safety-net rule of its message to the topic at `now`; EventBridge retries
/// a failed one (see [`stack::eventbridge_retry_delay`]) for up to a day.
#[allow(clippy::too_many_arguments)]
async fn publish_safety_net(
    tasks: &ProductTasks,
    net: SafetyNet,
    message: String,
    attempt: u32,
    first: DateTime<Utc>,
    now: DateTime<Utc>,
    schedule: &mut Schedule,
    summary: &mut Summary,
    trace: &mut dyn FnMut(&str),
) {
    if let Some(faults) = &tasks.faults {
        faults.tell(now).await;
    }
    // EventBridge's own delivery: one request per attempt, retried on the virtual clock below.
    let config = aws_sdk_sns::config::Builder::from(&tasks.config)
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
        .build();
    let sent = aws_sdk_sns::Client::from_conf(config)
        .publish()
        .topic_arn(&tasks.emulator.safety_net_topic_arn)
        .message(&message)
        .send()
        .await;
    let at = now.format("%Y-%m-%dT%H:%M:%SZ");
    let record = |published_at| SafetyNetMessage { rule: net.rule(), first_at: first, published_at, attempts: attempt };
    match sent {
        Ok(_) => {
            trace(&format!("{at}            {} published its page to the topic (delivery {attempt})", net.rule()));
            summary.safety_nets.push(record(Some(now)));
        }
        Err(err) => {
            let next = now + stack::eventbridge_retry_delay(attempt);
            let error = shared::aws::error_code(&err).unwrap_or("SdkClientException").to_owned();
            if next <= first + chrono::Duration::seconds(stack::EVENTBRIDGE_MAX_AGE) {
                trace(&format!(
                    "{at}            {} could not publish ({error}); EventBridge retries at {}",
                    net.rule(),
                    next.format("%H:%M:%S")
                ));
                schedule.push(next, Job::Publish { net, message, attempt: attempt + 1, first });
            } else {
                trace(&format!("{at}            {} could not publish ({error}); EventBridge gives up", net.rule()));
                summary.safety_nets.push(record(None));
            }
        }
    }
}

/// Runs the execution the router started at `now`, from the input Step Functions recorded.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    tasks: &ProductTasks,
    definition: &Definition,
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    now: DateTime<Utc>,
    summary: &mut Summary,
    decision: &Decision,
    trace: &mut dyn FnMut(&str),
) -> Result<Option<(String, DateTime<Utc>)>, String> {
    let input = crate::recorded_input(sfn, execution_arn).await?;
    let name = execution_arn.rsplit(':').next().unwrap_or_default();
    let mut settings = settings(&tasks.emulator.state_machine_arn, name);
    settings.start_time = now;
    // Started at the event's time on the virtual clock, running until the replay reaches its end.
    let mut record = ExecutionRecord { execution_arn: execution_arn.to_owned(), start: now, stop: None, status: None };
    record_execution(tasks, &record).await;
    let mut observe = |event: &TraceEvent| {
        if let Some(faults) = &tasks.faults {
            faults.observe(event);
        }
    };
    let outcome = run_execution(tasks, None, definition, &settings, input, &mut observe).await;
    record = ended(&settings, &outcome);
    let unseen = record
        .stop
        .and_then(|stop| stack::execution_ended_unseen_message(name, execution_arn, &outcome, stop).map(|m| (m, stop)));
    let effects = execution_effects(&outcome);
    let route = Some(decision.route.name.as_str());
    summary.count(route, |c| {
        c.restarts += u64::from(effects.restarted);
        c.verified += u64::from(effects.verified);
        c.pages += effects.pages;
        c.notifications += effects.notifications;
        c.recoveries += effects.recoveries;
        c.incidents += effects.incidents;
        for by in &effects.suppressed {
            c.suppressed.add(*by);
        }
    });
    for channel in &effects.war_rooms {
        if summary.rooms.insert(channel.clone()) {
            summary.count(route, |c| c.war_rooms += 1);
        }
    }
    let mut said = Vec::new();
    if effects.restarted {
        said.push("restarted".to_owned());
    }
    for (n, what) in [
        (effects.pages, "paged"),
        (effects.recoveries, "recovery announced"),
        (effects.war_rooms.len() as u64, "war room"),
    ] {
        if n > 0 {
            said.push(what.to_owned());
        }
    }
    for by in &effects.suppressed {
        said.push(format!("page kept quiet ({by:?})").to_lowercase());
    }
    trace(&format!(
        "      └ {name}: {:?} after {:.0}s{}{}",
        outcome.status,
        outcome.virtual_duration.as_secs_f64(),
        if said.is_empty() { "" } else { ": " },
        said.join(", ")
    ));
    if let Some(clock) = &tasks.history {
        clock.defer(record);
    } else {
        record_execution(tasks, &record).await;
    }
    Ok(unseen)
}

/// A transition two rule sets treat differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub line: usize,
    pub alarm: String,
    pub state: String,
    pub at: Option<DateTime<Utc>>,
    /// Route and what happened under the first rule set, then under the second.
    pub a: String,
    pub b: String,
}

/// Every transition `a` and `b` (two replays of the same history) treat differently: another
/// route, or another outcome.
pub fn compare(a: &Summary, b: &Summary) -> Vec<Difference> {
    a.transitions
        .iter()
        .zip(&b.transitions)
        .filter(|(x, y)| x.route != y.route || x.did != y.did)
        .map(|(x, y)| Difference {
            line: x.line,
            alarm: x.alarm.clone(),
            state: x.state.clone(),
            at: x.at,
            a: format!("{}: {}", x.route, x.did),
            b: format!("{}: {}", y.route, y.did),
        })
        .collect()
}

/// The comparison for a person: the differing transitions (the first 50), then the totals side
/// by side.
pub fn comparison_table(a_name: &str, b_name: &str, a: &Summary, b: &Summary, differences: &[Difference]) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{} transition(s) differ between A = {a_name} and B = {b_name}\n", differences.len());
    for d in differences.iter().take(50) {
        let at = d.at.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default();
        let _ = writeln!(out, "  {at} line {:>4}  {} {}\n      A {}\n      B {}", d.line, d.alarm, d.state, d.a, d.b);
    }
    if differences.len() > 50 {
        let _ = writeln!(out, "  … and {} more (all of them are in the JSON on stdout)", differences.len() - 50);
    }
    let (x, y) = (&a.totals, &b.totals);
    let rows = [
        ("events", x.events, y.events),
        ("executions", x.executions, y.executions),
        ("restarts", x.restarts, y.restarts),
        ("restarts verified", x.verified, y.verified),
        ("pages", x.pages, y.pages),
        ("notifications", x.notifications, y.notifications),
        ("incidents", x.incidents, y.incidents),
        ("war rooms", x.war_rooms, y.war_rooms),
        ("recoveries", x.recoveries, y.recoveries),
        ("ignored", x.ignored, y.ignored),
        ("kept quiet: grouped", x.suppressed.grouped, y.suppressed.grouped),
        ("kept quiet: silenced", x.suppressed.silenced, y.suppressed.silenced),
        ("kept quiet: maintenance", x.suppressed.maintenance, y.suppressed.maintenance),
        ("kept quiet: inhibited", x.suppressed.inhibited, y.suppressed.inhibited),
        ("kept quiet: flapping", x.suppressed.flapping, y.suppressed.flapping),
    ];
    let _ = writeln!(out, "{:<24} {:>8} {:>8}", "", "A", "B");
    for (name, a, b) in rows {
        let mark = if a == b { "" } else { "  *" };
        let _ = writeln!(out, "{name:<24} {a:>8} {b:>8}{mark}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: usize, at: &str) -> Entry {
        let at = DateTime::parse_from_rfc3339(at).ok().map(|t| t.with_timezone(&Utc));
        Entry { line, at, event: Ok(Value::Null) }
    }

    #[test]
    fn in_the_files_order_the_clock_never_goes_back() {
        // Read in time order: the ALARM of line 2 (04:00) before the OK of line 1 (04:10).
        let entries = [entry(2, "2026-12-01T04:00:00Z"), entry(1, "2026-12-01T04:10:00Z"), entry(3, "")];
        let at = |d: &Delivery| (entries[d.entry].line, d.at.map(|t| t.format("%H:%M").to_string()));
        let sorted: Vec<_> = deliveries(&entries, false).iter().map(at).collect();
        let in_file: Vec<_> = deliveries(&entries, true).iter().map(at).collect();
        let (four, ten) = (Some("04:00".to_owned()), Some("04:10".to_owned()));
        assert_eq!(sorted, [(2, four), (1, ten.clone()), (3, ten.clone())]);
        assert_eq!(in_file, [(1, ten.clone()), (2, ten.clone()), (3, ten)]);
    }
}
