//! `replay`: run the product's state machines offline, step by step, on a virtual clock.
//!
//! The trace goes to stderr; the final result is one JSON line on stdout. The exit code is 0 only
//! when the execution SUCCEEDED (or, for `replay event`, when the router started none).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use asl::mocks::TestCase;
use asl::{Outcome, Status, TraceEvent};
use clap::{Args, Parser, Subcommand};
use local_invoke::{ACCOUNT, DEFAULT_ENDPOINT, DEFAULT_REGION, Emulator, Function, STATE_MACHINE_NAME, TOPIC_NAME};
use replay::report::{self, Report, Run};
use replay::{
    ProductTasks, SimulatedAlarm, TraceWriter, execute, execution_history, load_definition, settings, unsupported_tasks,
};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "replay", about = "Replay alarms and state machines offline, on a virtual clock")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a state machine definition on an input document.
    Run {
        definition: PathBuf,
        /// The execution input (a JSON file).
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        options: RunOptions,
    },
    /// Route an alarm event with the alarm router, then run the execution it starts.
    Event {
        event: PathBuf,
        /// The definition the router's execution runs.
        #[arg(long, default_value = "statemachines/first-response.asl.json")]
        definition: PathBuf,
        #[command(flatten)]
        options: RunOptions,
    },
    /// Route a whole alarm history (JSON Lines of EventBridge alarm events) in time order, run
    /// the executions it starts on a virtual clock that follows the events, and print a summary.
    History(HistoryArgs),
    /// Print a state machine as a Mermaid flowchart.
    Diagram { definition: PathBuf },
}

#[derive(Args)]
struct HistoryArgs {
    /// One EventBridge "CloudWatch Alarm State Change" event per line, or the JSON of
    /// `aws cloudwatch describe-alarm-history --history-item-type StateUpdate`.
    file: PathBuf,
    /// The JSON of `aws cloudwatch describe-alarms`: the alarms' ARNs, descriptions and metrics,
    /// for a describe-alarm-history file (without it: ARNs in --account and AWS_REGION).
    #[arg(long)]
    alarms: Option<PathBuf>,
    /// The account of alarms the history names without an ARN.
    #[arg(long, default_value = ACCOUNT)]
    account: String,
    /// The rules to route with (default: `ROUTES_FILE`, else infra/routes.example.yaml).
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Run the same history under these rules too, and print every transition they treat
    /// differently, then the totals side by side. The limits apply to these rules.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Exit 3 when the rules (those of --compare, when given) page more than this.
    #[arg(long)]
    max_pages: Option<u64>,
    /// Exit 3 when the rules (those of --compare, when given) restart more than this.
    #[arg(long)]
    max_restarts: Option<u64>,
    /// The definition the router's executions run.
    #[arg(long, default_value = "statemachines/first-response.asl.json")]
    definition: PathBuf,
    /// Also write the replay as one self-contained HTML page to this file: the totals, a timeline
    /// of each route, the counts per route and, with --compare, what the second rules do differently.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// No trace; only the summary line.
    #[arg(long)]
    quiet: bool,
    /// Keep what the emulator holds (silences added with `first-response silence add`, groups,
    /// executions); by default it is reset first, so a history always gives the same summary.
    #[arg(long, conflicts_with = "compare")]
    keep_state: bool,
    /// Inject failures: a YAML or JSON plan of `faults: [{line, call, seconds, times, error}]`
    /// (see the README). Router failures they cause are listed, and do not change the exit code.
    #[arg(long, value_name = "PLAN.yaml")]
    faults: Option<PathBuf>,
    /// Deliver the events in the file's order (as EventBridge may) instead of sorted by time; the
    /// virtual clock never goes back.
    #[arg(long)]
    in_file_order: bool,
    /// How long the virtual clock keeps running after the last event, for Lambda's retries and
    /// the stack's scheduled work: 1h, 90m, 30s, 0s.
    #[arg(long, default_value = "1h", value_parser = settle_duration)]
    settle: chrono::Duration,
}

/// A duration of whole seconds, minutes, hours or days, combined: 1h, 90m, 1h30m, 0s.
fn settle_duration(text: &str) -> Result<chrono::Duration, String> {
    let invalid = || format!("InvalidDuration: {text:?} is not like 1h, 90m, 1h30m or 0s");
    let mut total = chrono::Duration::zero();
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let part = n.checked_mul(unit).map(chrono::Duration::seconds).ok_or_else(invalid)?;
        total = total.checked_add(&part).ok_or_else(invalid)?;
        digits.clear();
    }
    if !digits.is_empty() || text.trim().is_empty() {
        return Err(invalid());
    }
    Ok(total)
}

#[derive(Args)]
struct RunOptions {
    /// Mocked task responses, in the Step Functions Local MockConfigFile format.
    #[arg(long, requires = "test_case")]
    mocks: Option<PathBuf>,
    /// The test case of the mock file to apply.
    #[arg(long, requires = "mocks")]
    test_case: Option<String>,
    /// Write the execution history, in AWS's event shape, to this file (a path that cannot be
    /// written is refused before anything runs).
    #[arg(long)]
    history: Option<PathBuf>,
    /// No trace; only the final JSON line.
    #[arg(long)]
    quiet: bool,
    /// Seconds after the restart at which the simulated alarm returns to OK (nothing evaluates
    /// metrics offline, so replay sets the alarm's state in the emulator before each check).
    #[arg(long, default_value_t = 60, conflicts_with = "alarm_stays")]
    alarm_recovers_after: u64,
    /// The simulated alarm never returns to OK: the restart cannot be verified.
    #[arg(long)]
    alarm_stays: bool,
}

impl RunOptions {
    fn simulated_alarm(&self) -> SimulatedAlarm {
        SimulatedAlarm { recovers_after: (!self.alarm_stays).then_some(self.alarm_recovers_after) }
    }

    /// Refuses, before anything runs, options that could only fail once the execution has run.
    fn check(&self) -> Result<(), String> {
        match &self.history {
            Some(path) => execution_history::check_destination(path).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Writes the execution history when `--history` asks for it.
    fn write_history(&self, outcome: &Outcome) -> Result<(), String> {
        match &self.history {
            Some(path) => execution_history::write(path, outcome).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    lambda_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Diagram { definition } => diagram(&definition),
        Command::Run { definition, input, options } => run(&definition, &input, &options).await,
        Command::Event { event, definition, options } => event_command(&event, &definition, &options).await,
        Command::History(args) => history_command(&args).await,
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("replay: {message}");
            ExitCode::from(2)
        }
    }
}

/// Handler logs go to stderr, quietly, so they do not drown the trace.
fn lambda_tracing() {
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: set before any other thread exists.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
    lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
}

fn region() -> String {
    shared::optional_env("AWS_REGION").unwrap_or_else(|| DEFAULT_REGION.to_owned())
}

/// The alert topic's ARN in the emulator, before the emulator is asked.
fn default_topic_arn() -> String {
    format!("arn:aws:sns:{}:{ACCOUNT}:{TOPIC_NAME}", region())
}

/// Refuses, before anything runs, a definition the executor would refuse once the emulator is set up.
fn check_definition(definition: &Path) -> Result<(), String> {
    load_definition(definition, &region(), &default_topic_arn()).map(|_| ()).map_err(|e| e.to_string())
}

fn diagram(definition: &Path) -> Result<ExitCode, String> {
    let definition = load_definition(definition, &region(), &default_topic_arn()).map_err(|e| e.to_string())?;
    print!("{}", asl::diagram::mermaid(&definition));
    Ok(ExitCode::SUCCESS)
}

/// The emulator's clients and resources; `required` says whether running on without it makes sense.
async fn product_tasks(required: bool, alarm: SimulatedAlarm) -> Result<ProductTasks, String> {
    let endpoint = shared::optional_env("AWS_ENDPOINT_URL").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
    let config = local_invoke::emulator_config(&endpoint).await;
    let emulator = match Emulator::prepare(&config).await {
        Ok(emulator) => emulator,
        Err(e) if required => return Err(e),
        Err(e) => {
            eprintln!("replay: warning: {e}; tasks that call AWS will fail");
            Emulator {
                topic_arn: default_topic_arn(),
                safety_net_topic_arn: default_topic_arn()
                    .replace(local_invoke::TOPIC_NAME, local_invoke::SAFETY_NET_TOPIC_NAME),
                state_machine_arn: format!("arn:aws:states:{}:{ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}", region()),
                state_table: local_invoke::STATE_TABLE_NAME.to_owned(),
                slack_api_url: local_invoke::local_slack_api_url(),
                routes_file: None,
            }
        }
    };
    Ok(ProductTasks::new(config, emulator, alarm))
}

fn mocks(options: &RunOptions, definition: &Path) -> Result<Option<TestCase>, String> {
    let (Some(file), Some(case)) = (&options.mocks, &options.test_case) else { return Ok(None) };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let machine =
        definition.file_name().and_then(|n| n.to_str()).map(|n| n.trim_end_matches(".json").trim_end_matches(".asl"));
    TestCase::load(&text, machine, case).map(Some).map_err(|e| e.to_string())
}

async fn run(definition_path: &Path, input: &Path, options: &RunOptions) -> Result<ExitCode, String> {
    options.check()?;
    check_definition(definition_path)?;
    let input: Value = std::fs::read_to_string(input)
        .map_err(|e| format!("{}: {e}", input.display()))
        .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("{}: {e}", input.display())))?;
    let tasks = product_tasks(false, options.simulated_alarm()).await?;
    let name = format!("replay-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
    let outcome = replay_execution(&tasks, definition_path, options, input, &name).await?;
    println!("{}", outcome.summary());
    options.write_history(&outcome)?;
    Ok(exit_code(&outcome))
}

async fn event_command(event: &Path, definition_path: &Path, options: &RunOptions) -> Result<ExitCode, String> {
    options.check()?;
    check_definition(definition_path)?;
    let text = std::fs::read_to_string(event).map_err(|e| format!("{}: {e}", event.display()))?;
    let payload: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", event.display()))?;
    let tasks = product_tasks(true, options.simulated_alarm()).await?;
    let routed = local_invoke::invoke(Function::AlarmRouter, payload, &tasks.config, &tasks.emulator).await;
    let decision = match routed {
        Ok(decision) => decision,
        Err(diagnostic) => {
            eprintln!("alarm-router failed: {}: {}", diagnostic.error_type, diagnostic.error_message);
            let result = json!({"router": {"error": diagnostic.error_type, "cause": diagnostic.error_message}});
            println!("{result}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let brief = json!({
        "action": decision["action"], "route": decision["route"]["name"],
        "incidentKey": decision["incidentKey"], "outcome": decision["outcome"],
    });
    if !options.quiet {
        eprintln!("alarm-router decided: {brief}");
    }
    let Some(execution_arn) = decision["outcome"]["executionArn"].as_str() else {
        println!("{}", json!({"decision": brief}));
        return Ok(ExitCode::SUCCESS);
    };
    // Run exactly what the router started: the input Step Functions recorded.
    let sfn = aws_sdk_sfn::Client::new(&tasks.config);
    let input = replay::recorded_input(&sfn, execution_arn).await?;
    let name = execution_arn.rsplit(':').next().unwrap_or(STATE_MACHINE_NAME).to_owned();
    let outcome = replay_execution(&tasks, definition_path, options, input, &name).await?;
    let mut result = outcome.summary();
    result["decision"] = brief;
    println!("{result}");
    options.write_history(&outcome)?;
    Ok(exit_code(&outcome))
}

/// The events of a history file: JSON Lines of EventBridge events, or describe-alarm-history JSON.
fn history_entries(args: &HistoryArgs) -> Result<Vec<replay::history::Entry>, String> {
    let file = &args.file;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let entries = if replay::cloudwatch::is_alarm_history(&text) {
        let alarms = match &args.alarms {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
                replay::cloudwatch::configurations(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Default::default(),
        };
        let origin = replay::cloudwatch::Origin { account: args.account.clone(), region: region() };
        let events =
            replay::cloudwatch::events(&text, &alarms, &origin).map_err(|e| format!("{}: {e}", file.display()))?;
        replay::history::in_time_order(events)
    } else if args.alarms.is_some() {
        return Err(format!("--alarms goes with describe-alarm-history output; {} is JSON Lines", file.display()));
    } else {
        replay::history::read(&text)
    };
    if entries.is_empty() {
        return Err(format!("{} has no events", file.display()));
    }
    Ok(entries)
}

/// The rules file `path` names, checked now with the loader's own errors rather than once per event.
fn rules_file(path: &Path) -> Result<String, String> {
    let path = path.to_string_lossy().into_owned();
    shared::Routes::from_file(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Replays `entries` under the rules in `routes` (the default rules when `None`).
async fn replay_history_once(
    args: &HistoryArgs,
    entries: &[replay::history::Entry],
    routes: Option<String>,
    plan: Option<&replay::faults::Plan>,
) -> Result<replay::history::Summary, String> {
    if !args.keep_state {
        reset_emulator().await?;
    }
    let mut tasks = product_tasks(true, SimulatedAlarm::default()).await?;
    tasks.emulator.routes_file = routes.clone();
    tasks.history = Some(replay::history::Clock::new(entries));
    let options = replay::history::Options { in_file_order: args.in_file_order, settle: args.settle };
    if let Some(endpoint) = tasks.config.endpoint_url() {
        // Faults of an earlier run never carry over; a plan's are armed at their virtual times.
        let clock = replay::faults::FaultClock::new(endpoint);
        let deliveries = replay::history::deliveries(entries, options.in_file_order);
        let delivered_at =
            |line: usize| deliveries.iter().find(|d| entries.get(d.entry).is_some_and(|e| e.line == line))?.at;
        let armed = plan.map(|plan| plan.armed(delivered_at)).unwrap_or_default();
        clock.arm(armed).await?;
        if plan.is_some() {
            tasks.faults = Some(clock);
        }
    }
    let definition =
        load_definition(&args.definition, &region(), &tasks.emulator.topic_arn).map_err(|e| e.to_string())?;
    let unsupported = unsupported_tasks(&definition, None);
    if !unsupported.is_empty() {
        return Err(format!("replay cannot run these tasks: {}", unsupported.join(", ")));
    }
    let quiet = args.quiet;
    if !quiet {
        let rules = routes.as_deref().unwrap_or("the default rules");
        eprintln!("replaying {} event(s) of {} under {rules}", entries.len(), args.file.display());
    }
    let mut trace = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let summary = replay::history::replay(&tasks, &definition, entries, &options, &mut trace).await;
    if !quiet && let Some(topic) = &summary.reached_topic {
        eprint!("{}", topic.table());
    }
    Ok(summary)
}

/// Exit code 3 and why, when `summary` exceeds a limit the command was given.
fn over_limits(args: &HistoryArgs, summary: &replay::history::Summary) -> Option<String> {
    let totals = &summary.totals;
    let pages = args
        .max_pages
        .filter(|max| totals.pages > *max)
        .map(|max| format!("{} pages > --max-pages {max}", totals.pages));
    let restarts = args
        .max_restarts
        .filter(|max| totals.restarts > *max)
        .map(|max| format!("{} restarts > --max-restarts {max}", totals.restarts));
    let over: Vec<String> = pages.into_iter().chain(restarts).collect();
    (!over.is_empty()).then(|| over.join("; "))
}

/// The rules a replay routed with, as the report names them.
fn rules_label(routes: Option<&str>) -> String {
    match (routes, shared::optional_env("ROUTES_FILE")) {
        (Some(routes), _) => routes.to_owned(),
        (None, Some(file)) => format!("{file} (ROUTES_FILE)"),
        (None, None) => "infra/routes.example.yaml (the default rules)".to_owned(),
    }
}

/// Writes the HTML report when `--report` asks for one.
fn write_report(
    args: &HistoryArgs,
    a: Run,
    compared: Option<(Run, &[replay::history::Difference])>,
) -> Result<(), String> {
    let Some(path) = &args.report else { return Ok(()) };
    let history = args.file.to_string_lossy();
    let html = report::render(&Report { history: &history, generated_at: chrono::Utc::now(), a, compared });
    report::write(path, &html).map_err(|e| e.to_string())?;
    if !args.quiet {
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

async fn history_command(args: &HistoryArgs) -> Result<ExitCode, String> {
    if let Some(path) = &args.report {
        report::check_destination(path).map_err(|e| e.to_string())?;
    }
    check_definition(&args.definition)?;
    let entries = history_entries(args)?;
    let routes = args.routes.as_deref().map(rules_file).transpose()?;
    let compare = args.compare.as_deref().map(rules_file).transpose()?;
    let event_lines: Vec<usize> = entries.iter().map(|e| e.line).collect();
    let plan = args
        .faults
        .as_deref()
        .map(|path| replay::faults::Plan::load(path, &event_lines))
        .transpose()
        .map_err(|e| e.to_string())?;
    let first = replay_history_once(args, &entries, routes.clone(), plan.as_ref()).await?;
    let a_rules = rules_label(routes.as_deref());
    let Some(compare) = compare else {
        println!("{}", serde_json::to_string(&first).map_err(|e| e.to_string())?);
        write_report(args, Run { rules: &a_rules, summary: &first }, None)?;
        if let Some(why) = over_limits(args, &first) {
            eprintln!("replay: over the limit: {why}");
            return Ok(ExitCode::from(3));
        }
        // With a fault plan, a router that fails is what the replay shows, not a failure of it.
        let handled = first.unhandled.is_empty() || plan.is_some();
        return Ok(if handled { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    };
    let second = replay_history_once(args, &entries, Some(compare.clone()), plan.as_ref()).await?;
    let comparison = replay::history::compare(&first, &second);
    let name = |routes: Option<&str>| routes.unwrap_or("default rules").to_owned();
    eprintln!(
        "{}",
        replay::history::comparison_table(
            &name(routes.as_deref()),
            &name(Some(&compare)),
            &first,
            &second,
            &comparison
        )
    );
    let result = json!({
        "a": {"routes": name(routes.as_deref()), "summary": first},
        "b": {"routes": name(Some(&compare)), "summary": second},
        "differences": comparison,
    });
    println!("{result}");
    let b = Run { rules: &compare, summary: &second };
    write_report(args, Run { rules: &a_rules, summary: &first }, Some((b, &comparison)))?;
    if let Some(why) = over_limits(args, &second) {
        eprintln!("replay: {compare} is over the limit: {why}");
        return Ok(ExitCode::from(3));
    }
    Ok(if first.unhandled.is_empty() && second.unhandled.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Empties the local emulator (moto's own reset), so that a history starts from nothing.
async fn reset_emulator() -> Result<(), String> {
    let endpoint = shared::optional_env("AWS_ENDPOINT_URL").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
    let url = format!("{}/moto-api/reset", endpoint.trim_end_matches('/'));
    replay::http()
        .post(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map(|_| ())
        .map_err(|e| format!("could not reset the emulator at {url} (is it running? `make emulator` starts it): {e}"))
}

async fn replay_execution(
    tasks: &ProductTasks,
    definition_path: &Path,
    options: &RunOptions,
    input: Value,
    name: &str,
) -> Result<Outcome, String> {
    let definition =
        load_definition(definition_path, &region(), &tasks.emulator.topic_arn).map_err(|e| e.to_string())?;
    let case = mocks(options, definition_path)?;
    let unsupported = unsupported_tasks(&definition, case.as_ref());
    if !unsupported.is_empty() {
        return Err(format!("replay cannot run these tasks; mock them: {}", unsupported.join(", ")));
    }
    let settings = settings(&tasks.emulator.state_machine_arn, name);
    let mut writer = TraceWriter::default();
    let quiet = options.quiet;
    if !quiet {
        let case_name = case.as_ref().map(|c| format!(" with mocks {}", c.name)).unwrap_or_default();
        eprintln!("replaying {}{case_name} as execution {name}", definition_path.display());
        eprintln!("{}", TraceWriter::header());
    }
    let mut sink = |event: &TraceEvent| {
        if !quiet && let Some(line) = writer.line(event) {
            eprintln!("{line}");
        }
    };
    let outcome = execute(tasks, case.as_ref(), &definition, &settings, input, &mut sink).await;
    if !quiet {
        eprintln!(
            "{:?} after {:.3}s of virtual time, {:.3}s of wall time",
            outcome.status,
            outcome.virtual_duration.as_secs_f64(),
            outcome.wall_duration.as_secs_f64()
        );
    }
    Ok(outcome)
}

fn exit_code(outcome: &Outcome) -> ExitCode {
    if outcome.status == Status::Succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
