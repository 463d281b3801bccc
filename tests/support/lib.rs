//! Helpers for the workspace-level tests: paths into the repository, and a moto server or a Slack
//! API emulator per test.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file of the repository, read as text.
pub fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sample event from `events/`.
pub fn event(relative: &str) -> serde_json::Value {
    serde_json::from_str(&read(&format!("events/{relative}"))).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A local emulator process on a free loopback port, killed when dropped.
struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    /// Starts the emulator `name` by running `relative` (a program `make setup` installs) with the
    /// arguments `args(port)` gives, and waits until it listens.
    fn start(name: &str, relative: &str, args: impl FnOnce(u16) -> Vec<String>) -> Self {
        let binary = repo_root().join(relative);
        assert!(binary.exists(), "{} is missing: run `make setup` (make test does it)", binary.display());
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(&binary)
            .args(args(port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} ({}) does not start: {e}", binary.display()));
        let mut emulator = Self { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = emulator.child.try_wait() {
                panic!("{name} exited while starting ({status}); try `make setup`, or run it by hand to see why");
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{name} did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server on a free loopback port, stopped when dropped.
pub struct MotoServer {
    _process: Emulator,
    pub endpoint: String,
}

impl MotoServer {
    /// Starts moto through `tools/moto_server.py` (moto's server plus the SSM operations it lacks,
    /// such as ListCommandInvocations) with `.venv/bin/python` (installed by `make setup`), and
    /// waits until it listens.
    pub fn start() -> Self {
        let script = repo_root().join("tools/moto_server.py");
        assert!(script.exists(), "{} is missing", script.display());
        let script = script.display().to_string();
        let process = Emulator::start("moto server (tools/moto_server.py)", ".venv/bin/python", |port| {
            vec![script, "-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()]
        });
        Self { endpoint: format!("http://127.0.0.1:{}", process.port), _process: process }
    }
}

/// A message as an SQS subscriber of the alert topic receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub subject: String,
    pub message: String,
    /// The SNS message attributes: name to value.
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl MotoServer {
    /// Calls an action of the emulator: awsJson when `target` is given (SQS), else the query
    /// protocol (SNS). The fake signature names the region moto files the call under.
    async fn call(&self, service: &str, target: Option<&str>, body: serde_json::Value) -> serde_json::Value {
        let client = http_client();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20261120/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let request = client.post(&self.endpoint).header("Authorization", authorization);
        let request = match target {
            Some(target) => request
                .header("X-Amz-Target", target)
                .header("Content-Type", "application/x-amz-json-1.0")
                .body(body.to_string()),
            None => {
                let form: Vec<(String, String)> = body
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                request.form(&form)
            }
        };
        let response = request.send().await.expect("the emulator answers");
        let status = response.status();
        let text = response.text().await.expect("an answer");
        assert!(status.is_success(), "{service} {target:?}: {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    }

    /// Creates an SQS queue, subscribes it to `topic_arn`, and returns its URL.
    pub async fn subscribe_queue(&self, topic_arn: &str, name: &str) -> String {
        let created = self.call("sqs", Some("AmazonSQS.CreateQueue"), serde_json::json!({"QueueName": name})).await;
        let url = created["QueueUrl"].as_str().expect("QueueUrl").to_owned();
        let arn = format!("arn:aws:sqs:eu-west-1:123456789012:{name}");
        self.call(
            "sns",
            None,
            serde_json::json!({"Action": "Subscribe", "TopicArn": topic_arn, "Protocol": "sqs", "Endpoint": arn}),
        )
        .await;
        url
    }

    /// Every message the queue holds now, read (and deleted) in order of arrival.
    pub async fn drain_queue(&self, queue_url: &str) -> Vec<Delivered> {
        let mut delivered = Vec::new();
        loop {
            let answer = self
                .call(
                    "sqs",
                    Some("AmazonSQS.ReceiveMessage"),
                    serde_json::json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 60}),
                )
                .await;
            let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                return delivered;
            }
            for message in messages {
                let envelope: serde_json::Value =
                    serde_json::from_str(message["Body"].as_str().expect("Body")).expect("an SNS envelope");
                let attributes = envelope["MessageAttributes"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, value)| (name.clone(), value["Value"].as_str().unwrap_or_default().to_owned()))
                    .collect();
                delivered.push(Delivered {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                    message: envelope["Message"].as_str().unwrap_or_default().to_owned(),
                    attributes,
                });
            }
        }
    }
}

/// The Slack Web API emulator (`emulate`, pinned in `tools/package.json`) on a free port, seeded
/// from `tools/slack-emulator.yaml`, stopped when dropped.
pub struct SlackEmulator {
    _process: Emulator,
    /// The Web API's base URL, ending in `/`.
    pub api_url: String,
}

impl SlackEmulator {
    /// Starts `tools/node_modules/.bin/emulate` (installed by `make setup`) and waits until it listens.
    pub fn start() -> Self {
        let seed = repo_root().join("tools/slack-emulator.yaml").display().to_string();
        let process = Emulator::start("Slack emulator (emulate)", "tools/node_modules/.bin/emulate", |port| {
            vec!["--service".into(), "slack".into(), "--port".into(), port.to_string(), "--seed".into(), seed]
        });
        Self { api_url: format!("http://127.0.0.1:{}/api/", process.port), _process: process }
    }

    /// A Web API call with this bot token; the answer must be `ok`.
    pub async fn call(&self, token: &str, method: &str, args: serde_json::Value) -> serde_json::Value {
        let answer: serde_json::Value = http_client()
            .post(format!("{}{method}", self.api_url))
            .bearer_auth(token)
            .json(&args)
            .send()
            .await
            .expect("the emulator answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(answer["ok"], true, "{method}: {answer}");
        answer
    }
}

/// An HTTP client for the emulators. The workspace builds reqwest with rustls but no crypto provider
/// of its own (the functions install ring; see `shared::aws`), so the provider is installed first.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

impl MotoServer {
    /// Every message the topic received, in order, as the emulator recorded it (id, subject,
    /// message, attributes).
    pub async fn topic_messages(&self, topic_arn: &str) -> Vec<serde_json::Value> {
        let url = format!("{}/_first_response/topic-messages?topicArn={topic_arn}", self.endpoint);
        let answer: serde_json::Value =
            http_client().get(url).send().await.expect("the emulator answers").json().await.expect("JSON");
        answer["messages"].as_array().cloned().expect("messages")
    }

    /// Arms emulator faults (`{"call", "error", "times"?, "from"?, "until"?}` each).
    pub async fn arm_faults(&self, faults: serde_json::Value) {
        let armed = http_client()
            .post(format!("{}/_first_response/faults", self.endpoint))
            .json(&serde_json::json!({ "faults": faults }))
            .send()
            .await
            .expect("the emulator answers");
        assert!(armed.status().is_success(), "faults armed: {}", armed.status());
    }

    /// Disarms every fault, and forgets the virtual clock.
    pub async fn disarm_faults(&self) {
        let disarmed = http_client()
            .delete(format!("{}/_first_response/faults", self.endpoint))
            .send()
            .await
            .expect("the emulator answers");
        assert!(disarmed.status().is_success(), "faults disarmed: {}", disarmed.status());
    }
}
