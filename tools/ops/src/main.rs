//! `first-response`: what an operator does to a running stack from a terminal.
//!
//! `first-response check [FILE]` validates a rules file without an event: the errors the functions
//! would refuse to start with, rules shadowed by earlier ones, and which rules act on
//! infrastructure. `first-response silence add|list|expire` manages silences in the stack's state
//! table: the `StateTableName` output of the deployed stack (`--table` or `STATE_TABLE`), reached
//! with the SDK's default credential chain and region, or the local emulator through
//! `AWS_ENDPOINT_URL`. `first-response what-happened ALARM` lists an alarm's recent transitions
//! with what the router decided for each and how the executions it started ended.

use std::process::ExitCode;

use alarm_router::groups::{GroupState, Groups};
use alarm_router::silences::Silences;
use chrono::{DateTime, Duration, Utc};
use clap::{Args, Parser, Subcommand};
use shared::routing::{Match, NameMatch};
use shared::silence::Silence;

#[derive(Parser)]
#[command(name = "first-response", about = "Operate a deployed first-response stack")]
struct Cli {
    /// The stack's state table (its StateTableName output).
    #[arg(long, env = "STATE_TABLE", global = true)]
    table: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a rules file: errors (exit 1), shadowed rules (warnings; exit 1 with --strict),
    /// and what each rule does, naming the rules that act on infrastructure.
    Check {
        #[arg(default_value = "infra/routes.yaml")]
        file: String,
        #[arg(long)]
        strict: bool,
    },
    /// Say what the product would do with an alarm event, and why: the rule, grouping, silences
    /// (with --table: the state table's groups and silences), paging and remediation.
    Explain {
        event: std::path::PathBuf,
        /// The rules to route with.
        #[arg(long, default_value = "infra/routes.yaml")]
        routes: String,
        /// Explain the alarm as if it changed state at this time (RFC 3339), for example inside
        /// a maintenance window or a silence; default: the event's own timestamp.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Silences: while one matches an ALARM, nobody is paged and nothing runs.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// What happened to an alarm: its recent transitions, what was decided for each (routed,
    /// grouped, silenced, remediated, paged), and how the executions it started ended.
    WhatHappened {
        /// The alarm's name or ARN.
        alarm: String,
        /// One JSON line per transition instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SilenceCommand {
    /// Add a silence; prints it as JSON.
    Add(AddArgs),
    /// List the silences (active and upcoming; --all for expired ones too), one JSON line each.
    List {
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire { id: String },
}

#[derive(Args)]
struct AddArgs {
    /// Only alarms the rules send to this route.
    #[arg(long)]
    route: Option<String>,
    /// Alarms whose name is exactly this.
    #[arg(long, conflicts_with_all = ["alarm_prefix", "alarm_regex"])]
    alarm: Option<String>,
    /// Alarms whose name starts with this.
    #[arg(long, conflicts_with = "alarm_regex")]
    alarm_prefix: Option<String>,
    /// Alarms whose name matches this regular expression.
    #[arg(long)]
    alarm_regex: Option<String>,
    /// Alarms whose metric has this dimension value: Name=value (repeatable).
    #[arg(long = "dimension", value_parser = dimension)]
    dimensions: Vec<(String, String)>,
    /// Alarms of this metric namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Why (shown on every decision it silences).
    #[arg(long)]
    reason: String,
    /// Who (default: $USER).
    #[arg(long, env = "USER")]
    author: String,
    /// When it starts (RFC 3339; default now).
    #[arg(long)]
    starts: Option<DateTime<Utc>>,
    /// How long it lasts: 90m, 4h, 2d.
    #[arg(long, value_parser = duration)]
    duration: Duration,
    /// Let remediation run while nobody is paged.
    #[arg(long)]
    allow_automation: bool,
}

fn dimension(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or("a dimension is Name=value")?;
    Ok((name.to_owned(), value.to_owned()))
}

fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| format!("{text:?}: a duration is a number and m, h or d"))?;
    match unit {
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        _ => Err(format!("{text:?}: a duration is a number and m, h or d")),
    }
}

impl AddArgs {
    fn silence(self, now: DateTime<Utc>) -> Silence {
        let alarm_name = match (self.alarm, self.alarm_prefix, self.alarm_regex) {
            (Some(exact), _, _) => Some(NameMatch::Exact(exact)),
            (_, Some(prefix), _) => Some(NameMatch::Prefix(prefix)),
            (_, _, Some(regex)) => Some(NameMatch::Regex(regex)),
            _ => None,
        };
        let starts_at = self.starts.unwrap_or(now);
        let id = format!("s-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Silence {
            id,
            conditions: Match {
                alarm_name,
                namespace: self.namespace,
                dimensions: self.dimensions.into_iter().collect(),
                ..Match::default()
            },
            route: self.route,
            author: self.author,
            reason: self.reason,
            starts_at,
            ends_at: starts_at + self.duration,
            allow_automation: self.allow_automation,
        }
    }
}

/// The ARNs of the alarms named `alarm` (an ARN is taken as it is) that have recorded decisions.
async fn alarm_arns(client: &aws_sdk_dynamodb::Client, table: &str, alarm: &str) -> Result<Vec<String>, String> {
    if alarm.starts_with("arn:") {
        return Ok(vec![alarm.to_owned()]);
    }
    // A name: the decisions items whose key ends with it (the table holds few items per alarm).
    let suffix = format!(":alarm:{alarm}");
    let mut found = Vec::new();
    let mut pages = client
        .scan()
        .table_name(table)
        .filter_expression("begins_with(pk, :decisions) AND contains(pk, :suffix)")
        .expression_attribute_values(":decisions", aws_sdk_dynamodb::types::AttributeValue::S("decisions#".into()))
        .expression_attribute_values(":suffix", aws_sdk_dynamodb::types::AttributeValue::S(suffix.clone()))
        .projection_expression("pk")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("Scan {table}: {}", shared::aws::describe(&e)))?;
        for item in page.items() {
            if let Some(arn) = item.get("pk").and_then(|v| v.as_s().ok()).and_then(|k| k.strip_prefix("decisions#"))
                && arn.ends_with(&suffix)
            {
                found.push(arn.to_owned());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// An alarm's recorded transitions, with the decision for each and how its execution ended.
async fn what_happened(
    config: &aws_config::SdkConfig,
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    alarm: &str,
    json: bool,
) -> Result<String, String> {
    let arns = alarm_arns(client, table, alarm).await?;
    if arns.is_empty() {
        return Err(format!(
            "no decisions recorded for {alarm} in {table} (kept {} days; give the ARN if the name is not the alarm's)",
            alarm_router::decisions::KEEP_DAYS
        ));
    }
    let sfn = aws_sdk_sfn::Client::new(config);
    let log = alarm_router::decisions::Decisions { client, table };
    let mut out = String::new();
    for arn in arns {
        let recorded = log.of(&arn).await.map_err(|e| e.to_string())?;
        if !json {
            out += &format!("{arn}: {} transition(s) recorded\n", recorded.len());
        }
        for entry in recorded {
            let execution = match entry.outcome.execution_arn() {
                Some(execution_arn) => match sfn.describe_execution().execution_arn(execution_arn).send().await {
                    Ok(described) => Some(serde_json::json!({
                        "executionArn": execution_arn,
                        "status": described.status().as_str(),
                        "stopDate": described.stop_date().map(|d| d.to_string()),
                    })),
                    Err(e) => Some(serde_json::json!({
                        "executionArn": execution_arn,
                        "status": format!("unknown ({})", shared::aws::describe(&e)),
                    })),
                },
                None => None,
            };
            if json {
                let mut line = serde_json::to_value(&entry).map_err(|e| e.to_string())?;
                line["execution"] = execution.clone().unwrap_or_default();
                out += &format!("{line}\n");
                continue;
            }
            let ran = execution
                .map(|e| {
                    let name = e["executionArn"]
                        .as_str()
                        .unwrap_or_default()
                        .rsplit(':')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let stopped = e["stopDate"].as_str().map(|d| format!(" at {d}")).unwrap_or_default();
                    format!("\n      execution {name}: {}{stopped}", e["status"].as_str().unwrap_or_default())
                })
                .unwrap_or_default();
            out += &format!(
                "  {}  {:<5}  {:<12} {:?}: {}{ran}\n",
                entry.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                entry.state.as_str(),
                entry.route,
                entry.action,
                entry.outcome.summary()
            );
        }
    }
    Ok(out)
}

/// What `check` prints for a rules file, and whether it passes.
fn check(file: &str, strict: bool) -> (String, bool) {
    let routes = match shared::Routes::from_file(file) {
        Ok(routes) => routes,
        Err(err) => return (format!("error: {err}\n"), false),
    };
    let mut out = format!("{file}: {} rule(s), valid\n", routes.len());
    for route in routes.routes().chain([routes.default()]) {
        let does = match (&route.remediation, route.action) {
            (Some(remediation), _) => {
                let targets = match &remediation.targets {
                    shared::Targets::InstanceIds(ids) => format!("instances {}", ids.join(", ")),
                    shared::Targets::Tag(tag) => format!("instances tagged {}={}", tag.key, tag.value),
                    shared::Targets::FromDimension(dimension) => format!("the instance the alarm's {dimension} names"),
                };
                format!("ACTS ON INFRASTRUCTURE: restarts {} on {targets}", remediation.service)
            }
            (None, action) => format!("{action:?}").to_lowercase(),
        };
        let grouped = route.group.as_ref().filter(|g| g.by == shared::routing::GroupBy::Route).map(|g| {
            let by = if g.dimensions.is_empty() { String::new() } else { format!(" and {}", g.dimensions.join(", ")) };
            format!("; groups by route{by} for {}s", g.window_seconds)
        });
        out += &format!("  {:<24} {does}{}\n", route.name, grouped.unwrap_or_default());
    }
    for window in routes.maintenance() {
        let days: Vec<String> = window.days.iter().map(|d| d.to_string().to_lowercase()).collect();
        let applies = window.routes.as_ref().map(|r| r.join(", ")).unwrap_or_else(|| "every rule".into());
        let automation = if window.allow_automation { "automation runs" } else { "no automation" };
        out += &format!(
            "  maintenance {:<12} {} {} {} for {} min: no page, {automation}, on {applies}\n",
            window.name,
            days.join(","),
            window.start.format("%H:%M"),
            window.time_zone,
            window.duration.num_minutes()
        );
    }
    let shadowed = routes.shadowed();
    for (position, name, earlier, by) in &shadowed {
        out += &format!(
            "warning: rule {position} ({name:?}) is never reached: rule {earlier} ({by:?}) matches every alarm it matches\n"
        );
    }
    (out, !strict || shadowed.is_empty())
}

/// Reads the event, the rules and (with a table) the silences and the alarm's group, then explains.
async fn explain_command(
    event: &std::path::Path,
    routes: &str,
    at: Option<DateTime<Utc>>,
    table: Option<&str>,
) -> Result<String, String> {
    let text = std::fs::read_to_string(event).map_err(|e| format!("{}: {e}", event.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", event.display()))?;
    let mut alarm = shared::Alarm::from_event(&json).map_err(|e| format!("InvalidEvent: {e}"))?;
    if let Some(at) = at {
        alarm.timestamp = at;
    }
    let routes = shared::Routes::from_file(routes).map_err(|e| e.to_string())?;
    let Some(table) = table else { return Ok(explain(&alarm, &routes, None)) };
    let config = shared::aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let silences = Silences { client: &client, table }.all().await.map_err(|e| e.to_string())?;
    let route = routes.route(&alarm);
    let group = match route.group_key(&alarm) {
        Some(key) => Groups { client: &client, table }.state(&key).await.map_err(|e| e.to_string())?,
        None => None,
    };
    Ok(explain(&alarm, &routes, Some((&silences, group))))
}

/// Every reason the product would page for, group, silence or remediate `alarm`; `state` is what
/// the table holds (its silences and the alarm's group), when it was read.
fn explain(alarm: &shared::Alarm, routes: &shared::Routes, state: Option<(&[Silence], Option<GroupState>)>) -> String {
    let route = routes.route(alarm);
    let position = routes.routes().position(|r| r.name == route.name);
    let mut out =
        format!("alarm    {} {} at {} ({:?})\n", alarm.name, alarm.state, alarm.timestamp_rfc3339(), alarm.kind);
    out += &match position {
        Some(at) => format!("rule     {} (rule {} of {}): {:?}\n", route.name, at + 1, routes.len(), route.action),
        None => format!("rule     default (no rule matched): {:?}\n", route.action),
    };
    let mut verdict = |line: String| out += &format!("{line}\n");
    if let Some(by) = &alarm.actions_suppressed_by {
        verdict(format!("verdict  nothing: composite alarm actions are suppressed by {by}"));
        return out;
    }
    if route.action == shared::Action::Ignore {
        verdict(format!("verdict  nothing: route {} ignores it", route.name));
        return out;
    }
    match alarm.state {
        shared::AlarmState::InsufficientData => verdict("verdict  nothing: INSUFFICIENT_DATA is not acted on".into()),
        shared::AlarmState::Ok => verdict(
            "verdict  recovery: announced if its ALARM was (grouped: by the group's last OK; silenced: never)".into(),
        ),
        shared::AlarmState::Alarm => {
            let remediation = route.remediation.as_ref().map(|r| format!("restart {} (under the breaker)", r.service));
            // An operator's silence first, then the rules' maintenance windows (no table needed).
            let stored =
                state.as_ref().and_then(|(silences, _)| shared::silence::silencing(silences, &route.name, alarm));
            if let Some(silence) = stored.cloned().or_else(|| routes.maintenance_silence(&route.name, alarm)) {
                let runs = if silence.allow_automation { remediation.clone() } else { None };
                verdict(format!(
                    "silence  {} by {} until {}: {:?}",
                    silence.id, silence.author, silence.ends_at, silence.reason
                ));
                verdict(format!(
                    "verdict  no page; {}",
                    runs.map(|r| format!("would {r}")).unwrap_or("nothing runs".into())
                ));
                return out;
            }
            let flapping = route.flapping;
            verdict(format!(
                "flapping more than {} changes within {} min stop automation and page once, until {} quiet min (the \
                 table's history decides; `what-happened` shows it)",
                flapping.transitions, flapping.window_minutes, flapping.quiet_minutes
            ));
            for inhibition in routes.inhibitions().iter().filter(|i| i.applies_to(&route.name, alarm)) {
                verdict(format!(
                    "inhibit  {}: no page while an alarm it names (whileAlarm) is in ALARM; the table's states decide",
                    inhibition.name
                ));
            }
            let key = route.group_key(alarm);
            let joins = match (&key, &state) {
                (None, _) => {
                    verdict("group    not grouped: handled alone".into());
                    false
                }
                (Some(key), None) => {
                    verdict(format!("group    {key} (the table was not read: give --table to know if it is open)"));
                    false
                }
                (Some(key), Some((_, Some(group)))) if group.is_open_at(alarm.timestamp) => {
                    verdict(format!(
                        "group    {key}: open, {} firing of {} alarm(s), opened by {}, {}",
                        group.firing,
                        group.members,
                        group.opened_by,
                        if group.paged { "paged" } else { "not paged yet" }
                    ));
                    true
                }
                (Some(key), Some(_)) => {
                    verdict(format!("group    {key}: none open; this ALARM would open it"));
                    false
                }
            };
            let page = match route.action {
                _ if joins => "no page (the group's)".to_owned(),
                shared::Action::Remediate => "a page only if the remediation escalates".to_owned(),
                action => format!("a page ({action:?})"),
            };
            let runs = remediation.map(|r| format!("; would {r}")).unwrap_or_default();
            verdict(format!("verdict  {page}{runs}"));
        }
    }
    out
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Check { file, strict } = &cli.command {
        let (report, passed) = check(file, *strict);
        print!("{report}");
        return if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if let Command::Explain { event, routes, at } = &cli.command {
        return match explain_command(event, routes, *at, cli.table.as_deref()).await {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("first-response: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(table) = cli.table else {
        eprintln!(
            "first-response: which state table? Give --table or STATE_TABLE: the StateTableName output of the stack \
             (aws cloudformation describe-stacks --stack-name first-response --query \
             \"Stacks[0].Outputs[?OutputKey=='StateTableName'].OutputValue\" --output text)"
        );
        return ExitCode::from(2);
    };
    let config = shared::aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let silences = Silences { client: &client, table: &table };
    let now = Utc::now();
    if let Command::WhatHappened { alarm, json } = &cli.command {
        return match what_happened(&config, &client, &table, alarm, *json).await {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("first-response: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let result = match cli.command {
        Command::Check { .. } | Command::Explain { .. } | Command::WhatHappened { .. } => return ExitCode::SUCCESS,
        Command::Silence(SilenceCommand::Add(args)) => {
            let silence = args.silence(now);
            silences.add(&silence).await.map(|()| vec![silence])
        }
        Command::Silence(SilenceCommand::List { all }) => {
            silences.all().await.map(|list| list.into_iter().filter(|s| all || s.ends_at > now).collect())
        }
        Command::Silence(SilenceCommand::Expire { id }) => silences.expire(&id, now).await.map(|s| vec![s]),
    };
    match result {
        Ok(list) => {
            for silence in list {
                println!("{}", serde_json::to_string(&silence).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("first-response: {}: {err}", <&str>::from(&err));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check, explain};
    use alarm_router::groups::GroupState;

    #[test]
    fn explain_says_the_rule_the_group_the_silence_and_the_verdict() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/alarm-router/metric-alarm.json");
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
        let alarm = shared::Alarm::from_event(&event).expect("alarm");
        let routes = shared::Routes::example().expect("routes");
        let offline = explain(&alarm, &routes, None);
        assert!(offline.contains("rule     web-nginx (rule 1 of 5): Remediate"), "{offline}");
        assert!(offline.contains("give --table"), "{offline}");
        let open = GroupState {
            firing: 3,
            members: 4,
            paged: true,
            opened_by: "web-nginx__a__1".into(),
            open_until: i64::MAX,
        };
        let joined = explain(&alarm, &routes, Some((&[], Some(open))));
        assert!(joined.contains("group    web-nginx: open, 3 firing of 4 alarm(s)"), "{joined}");
        assert!(joined.contains("verdict  no page (the group's); would restart nginx"), "{joined}");
        let silence: shared::silence::Silence = serde_json::from_value(serde_json::json!({
            "id": "s-1", "route": "web-nginx", "author": "alice", "reason": "patching",
            "startsAt": "2026-11-20T00:00:00Z", "endsAt": "2026-11-21T00:00:00Z"
        }))
        .expect("silence");
        let silenced = explain(&alarm, &routes, Some((&[silence], None)));
        assert!(
            silenced.contains("silence  s-1 by alice") && silenced.contains("verdict  no page; nothing runs"),
            "{silenced}"
        );
        assert!(offline.contains("flapping more than 6 changes within 60 min"), "{offline}");
        // The same alarm on a Saturday night (what --at does): the rules' window keeps it quiet.
        let mut saturday = alarm.clone();
        saturday.timestamp = "2026-11-21T02:30:00Z".parse().expect("time");
        let window = explain(&saturday, &routes, None);
        assert!(
            window.contains("silence  window:saturday-patching") && window.contains("verdict  no page; nothing runs"),
            "{window}"
        );
        let deployed = explain(&alarm, &shared::Routes::deployed().expect("routes"), Some((&[], None)));
        assert!(
            deployed.contains("rule     default (no rule matched): Notify") && deployed.contains("a page (Notify)"),
            "{deployed}"
        );
    }

    fn rules(yaml: &str) -> String {
        let path = std::env::temp_dir().join(format!("rules-{}.yaml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, yaml).expect("write");
        path.display().to_string()
    }

    #[test]
    fn check_names_errors_shadowed_rules_and_what_acts_on_infrastructure() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/");
        let (report, passed) = check(&format!("{root}routes.example.yaml"), true);
        assert!(passed, "{report}");
        assert!(
            report.contains(
                "web-nginx                ACTS ON INFRASTRUCTURE: restarts nginx on instances i-0a1b2c3d4e5f60718"
            ),
            "{report}"
        );
        assert!(report.contains("; groups by route for 3600s"), "{report}");
        let (report, passed) = check(&format!("{root}routes.yaml"), true);
        assert!(passed && !report.contains("ACTS ON"), "the shipped rules act on nothing: {report}");

        let shadowing = rules(
            "rules:\n  - { name: web, match: { alarmName: { prefix: web- } }, action: notify }\n  - { name: web-db, match: { alarmName: { prefix: web-db } }, action: incident }\n",
        );
        let (report, passed) = check(&shadowing, false);
        assert!(passed, "a warning alone passes: {report}");
        assert!(report.contains("warning: rule 2 (\"web-db\") is never reached: rule 1 (\"web\")"), "{report}");
        assert!(!check(&shadowing, true).1, "--strict fails on warnings");

        let (report, passed) =
            check(&rules("rules:\n  - { name: ok, action: notify }\n  - { name: x, action: remediate }\n"), false);
        assert!(!passed && report.starts_with("error: "), "{report}");
        assert!(report.contains("rule 2 (\"x\"): action remediate needs a remediation"), "{report}");
    }
}
