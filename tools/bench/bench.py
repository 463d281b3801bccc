#!/usr/bin/env python3
"""`make bench`: the product's figures, each measured side by side with its peer in the same run.

A benchmark, never a test: nothing here passes or fails on a number. It prints a table and writes
every sample to target/bench/latest.json.

    bench.py snapshot --to DIR [--rev REV]    the sources the release build reads (see snapshot())
    bench.py run --src DIR --release DIR ...  the measurements, against moto and the Slack emulator
                                              (make bench starts empty ones on ports 5056 and 4004)

What `run` measures:

1. Each function as Lambda runs it: its x86_64 release binary started with AWS_LAMBDA_RUNTIME_API
   pointing at RuntimeApi below (the Lambda Runtime API on loopback), the environment Lambda sets,
   its real SDK clients and configuration, pointed at moto; against its Python peer
   (tools/bench/peers/, boto3, run by `python -m awslambdaric`) on the same Runtime API and moto.
   Cold init: process spawn to its first GET /next, and to the first invoke's response (median of
   --cold-starts). Warm: serving /next to receiving /response over --invokes invokes (median, p90).
   Peak RSS: VmHWM of /proc/PID/status after the warm invokes. The AWS (and Slack) calls each side
   made per warm invoke are counted, to show the two do the same work.
2. The arm64 release zip of each function (`zip -9` of the bootstrap `make sam-build` left).
3. The ListExecutions calls of the failure counter against 100, 1,000 and 10,000 executions.
4. `replay history` events per second on the storm sample, and the wall time of the canonical
   replay (`make demo`'s first scenario).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).resolve().parent / "peers"
FUNCTIONS = ("alarm-router", "failure-counter", "restart-and-verify", "slack-channel-creator")
SIDES = ("rust", "python")
SHORT = {"rust": "rs", "python": "py"}
REGION = "eu-west-1"
ACCOUNT = "123456789012"
TOPIC_NAME = "first-response-alerts"
SLACK_TOKEN_PARAMETER = "/first-response/slack-bot-token"
LOCAL_SLACK_TOKEN = "xoxb-first-response-local"
# The deployment goal for a function's zip: 4 MiB (4,194,304 bytes), not 4,000,000.
ZIP_GOAL_BYTES = 4 * 1024 * 1024
HISTORY_SIZES = (100, 1_000, 10_000)
MEMORY_MB = 128
RUNTIME_API = "/2018-06-01/runtime"


# ---------------------------------------------------------------------------------------------
# snapshot


# What the snapshot was taken from, for the report.
SNAPSHOT_MARK = ".bench-snapshot.json"


def snapshot(rev: str | None, dest: Path) -> None:
    """Copies the workspace's sources (the work tree's tracked and untracked, not ignored, files;
    or commit REV) to DEST, with the sample rules (infra/routes.example.yaml) as infra/routes.yaml:
    the deployed binary compiles infra/routes.yaml in, and as shipped it routes nothing to a
    remediation, so the sample events (route web-nginx) would be refused before any AWS call.

    Only files whose content changed are written, so that cargo rebuilds only what changed."""
    files: dict[str, tuple[bytes, int]] = {}
    if rev:
        archive = subprocess.run(["git", "archive", rev], cwd=REPO, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    content = tar.extractfile(member)
                    files[member.name] = (content.read() if content else b"", member.mode)
    else:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        ).stdout
        for name in filter(None, listed.decode().split("\0")):
            path = REPO / name
            if path.is_file():  # a tracked file deleted in the work tree is not copied
                files[name] = (path.read_bytes(), path.stat().st_mode & 0o777)
    files["infra/routes.yaml"] = files["infra/routes.example.yaml"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev or 'HEAD'}^{{commit}}"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    changed = not rev and bool(
        subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    )
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, (content, mode) in files.items():
        target = dest / name
        if target.is_file() and target.read_bytes() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
        written += 1
    removed = 0
    for path in sorted(dest.rglob("*"), reverse=True):
        name = path.relative_to(dest).as_posix()
        if path.is_file() and name not in files and name != SNAPSHOT_MARK:
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    source = f"commit {commit}" if rev else f"the work tree at {commit}" + (" with changes" if changed else "")
    (dest / SNAPSHOT_MARK).write_text(json.dumps({"source": source}) + "\n")
    print(
        f"{dest}: {len(files)} files of {source} ({written} written, {removed} removed), "
        "infra/routes.yaml = infra/routes.example.yaml"
    )


class BenchError(Exception):
    pass


class QuietServer(ThreadingHTTPServer):
    """A threaded loopback server that says nothing when a process it served is killed."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# ---------------------------------------------------------------------------------------------
# the Lambda Runtime API


@dataclass
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    served: float | None = None  # perf_counter when /next was answered with this event
    answered: float | None = None  # perf_counter when its /response or /error arrived
    body: bytes = b""
    error_type: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class RuntimeApi:
    """The Lambda Runtime API for one process, on 127.0.0.1 (a random port): GET .../invocation/next
    hands out the invocations given to invoke(), POST .../invocation/ID/response and .../error end
    them, POST .../init/error records a failed init. Times are time.perf_counter()."""

    def __init__(self, function_arn: str) -> None:
        self.function_arn = function_arn
        self.pending: queue.Queue[Invocation | None] = queue.Queue()
        self.invocations: dict[str, Invocation] = {}
        self.first_next: float | None = None
        self.polled = threading.Event()
        self.init_error: bytes | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the second waits for
            # the ACK of the first, which a keep-alive client delays by up to 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != f"{RUNTIME_API}/invocation/next":
                    return self._reply(404, b'{"errorMessage":"not found"}')
                if api.first_next is None:
                    api.first_next = time.perf_counter()
                api.polled.set()
                invocation = api.pending.get()
                if invocation is None:  # shutting down: the process is gone
                    self.close_connection = True
                    return
                trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
                invocation.served = time.perf_counter()
                self._reply(
                    200,
                    invocation.event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                        "Lambda-Runtime-Trace-Id": trace,
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                now = time.perf_counter()
                parts = self.path.removeprefix(RUNTIME_API).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body
                    api.polled.set()
                    return self._reply(202, b'{"status":"OK"}')
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    invocation = api.invocations.get(parts[1])
                    if invocation is None:
                        return self._reply(400, b'{"errorMessage":"unknown request id"}')
                    invocation.answered, invocation.body = now, body
                    if parts[2] == "error":
                        invocation.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or "Unknown"
                    invocation.done.set()
                    return self._reply(202, b'{"status":"OK"}')
                self._reply(404, b'{"errorMessage":"not found"}')

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, event: bytes, timeout_s: float) -> Invocation:
        """Queues EVENT for the next GET /next and waits for its response."""
        invocation = Invocation(
            request_id=str(uuid.uuid4()), event=event, deadline_ms=int((time.time() + timeout_s) * 1000)
        )
        self.invocations[invocation.request_id] = invocation
        self.pending.put(invocation)
        if not invocation.done.wait(timeout_s + 30):
            raise BenchError(f"no response to invocation {invocation.request_id} within {timeout_s + 30:.0f} s")
        return invocation

    def close(self) -> None:
        self.pending.put(None)
        self.server.shutdown()
        self.server.server_close()




# ---------------------------------------------------------------------------------------------
# a Slack API proxy that counts calls


class SlackCounter:
    """Forwards every request to the Slack emulator and counts them by API method, so that each
    side's Slack calls can be compared (both sides go through it: the hop costs them the same)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/") + "/"
        self.calls: dict[str, int] = {}
        self.seconds = 0.0  # waiting for the emulator's answers
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the second waits for
            # the ACK of the first, which a keep-alive client delays by up to 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                method = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
                with counter.lock:
                    counter.calls[method] = counter.calls.get(method, 0) + 1
                url = counter.upstream + self.path.split("/api/", 1)[-1].lstrip("/")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                request = urllib.request.Request(url, data=body, headers=headers, method=self.command)
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, answer_headers, content = answer.status, answer.headers, answer.read()
                except urllib.error.HTTPError as error:
                    status, answer_headers, content = error.code, error.headers, error.read()
                with counter.lock:
                    counter.seconds += time.perf_counter() - started
                self.send_response(status)
                for name, value in answer_headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _forward

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.calls)

    def waited(self) -> float:
        with self.lock:
            return self.seconds

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# the emulators


class Moto:
    """The moto server of `make emulator` (tools/moto_server.py)."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.endpoint = endpoint.rstrip("/")
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        self.client = lambda service: session.client(service, endpoint_url=self.endpoint)

    def _request(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.endpoint + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=300) as answer:
            return json.loads(answer.read() or b"{}")

    def api_calls(self) -> dict[str, int]:
        try:
            return self._request("/_first_response/api-calls")
        except urllib.error.HTTPError:
            raise BenchError(
                f"{self.endpoint} does not count calls (GET /_first_response/api-calls): it is an older "
                "tools/moto_server.py; restart it with `make emulator-stop emulator`"
            ) from None

    def api_seconds(self) -> dict[str, float]:
        """The seconds moto's application spent answering each kind of call (not its HTTP server's)."""
        return self._request("/_first_response/api-calls?seconds")

    def record_executions(self, state_machine_arn: str, executions: list[dict[str, str]]) -> None:
        self._request("/_first_response/executions", {"stateMachineArn": state_machine_arn, "executions": executions})


def calls_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(after) if after.get(k, 0) != before.get(k, 0)}


def restart_document_content() -> str:
    """The SSM document infra/template.yaml deploys (CloudFormation's tags are not needed to read it)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((REPO / "infra/template.yaml").read_text(), Loader=Loader)
    return json.dumps(template["Resources"]["RestartServiceDocument"]["Properties"]["Content"])


@dataclass
class Resources:
    """What one side works against in moto, apart from the other side's: its own state table,
    state machine and SSM document (so neither side finds the other's executions or groups; moto
    ignores ListCommands' filters, so both find the first restart command of the incident). The
    alert topic, the Slack token parameter and the Slack room are shared."""

    topic_arn: str
    state_table: str
    state_machine_arn: str
    document: str


def prepare(moto: Moto, run_id: str) -> dict[str, Resources]:
    sns, dynamodb, sfn, ssm = (moto.client(s) for s in ("sns", "dynamodb", "stepfunctions", "ssm"))
    topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    ssm.put_parameter(Name=SLACK_TOKEN_PARAMETER, Value=LOCAL_SLACK_TOKEN, Type="SecureString", Overwrite=True)
    content = restart_document_content()
    resources = {}
    for side in SIDES:
        name = f"bench-{run_id}-{side}"
        dynamodb.create_table(
            TableName=f"{name}-state",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        machine = sfn.create_state_machine(
            name=name, definition=MINIMAL_DEFINITION, roleArn=f"arn:aws:iam::{ACCOUNT}:role/bench"
        )["stateMachineArn"]
        ssm.create_document(
            Name=f"{name}-restart", Content=content, DocumentType="Command", DocumentFormat="JSON"
        )
        resources[side] = Resources(topic_arn, f"{name}-state", machine, f"{name}-restart")
    return resources


# moto never runs a definition; the functions only need the state machine to exist.
MINIMAL_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


# ---------------------------------------------------------------------------------------------
# running a function as Lambda does


@dataclass
class Function:
    name: str
    event: bytes
    env: dict[str, str]
    timeout_s: int


def functions_for(src: Path, resources: Resources, slack_url: str) -> list[Function]:
    """Each function with its sample event and the environment infra/template.yaml gives it
    (parameters at their defaults), pointed at this side's resources."""
    events = src / "events"

    def event(path: str, **fields: str) -> bytes:
        document = json.loads((events / path).read_text())
        document.update(fields)
        return json.dumps(document).encode()

    return [
        Function(
            "alarm-router",
            event("alarm-router/metric-alarm.json"),
            {
                "STATE_MACHINE_ARN": resources.state_machine_arn,
                "ALERT_TOPIC_ARN": resources.topic_arn,
                "RESPONSE_PLAN_ARN": "",
                "STATE_TABLE": resources.state_table,
            },
            30,
        ),
        Function(
            "failure-counter",
            event("failure-counter/count-request.json", stateMachineArn=resources.state_machine_arn),
            {"FAILURE_WINDOW_SECONDS": "300", "FAILURE_THRESHOLD": "5", "TOTAL_FAILURE_THRESHOLD": "20"},
            30,
        ),
        Function(
            "restart-and-verify",
            event("restart-and-verify/restart-request.json"),
            {"RESTART_DOCUMENT": resources.document},
            60,
        ),
        Function(
            "slack-channel-creator",
            event("slack-channel-creator/escalation.json"),
            {
                "SLACK_TOKEN_PARAMETER": SLACK_TOKEN_PARAMETER,
                "PAGERDUTY_TOKEN_PARAMETER": "",
                "SLACK_CHANNEL_PRIVATE": "false",
                "ARCHIVE_ON_RESOLVE": "true",
                "SLACK_API_URL": slack_url,
            },
            30,
        ),
    ]


def lambda_env(function: Function, side: str, api: RuntimeApi, moto: str, handler: str) -> dict[str, str]:
    """The environment Lambda gives a function (documented reserved variables), plus the
    function's own; nothing of the caller's environment but PATH."""
    name = f"bench-{function.name}"
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023"
        if side == "rust"
        else f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{today}/[$LATEST]{uuid.uuid4().hex}",
        # The template's LoggingConfig (LogFormat: JSON) makes Lambda set this.
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": moto,
        "LAMBDA_TASK_ROOT": str(PEERS) if side == "python" else "/var/task",
        **function.env,
    }


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    api: RuntimeApi
    spawned: float
    log: Path

    def wait_ready(self, timeout_s: float = 60) -> float:
        """Seconds from spawn to the first GET /next."""
        end = time.monotonic() + timeout_s
        while not self.api.polled.wait(0.01):
            if self.process.poll() is not None or time.monotonic() > end:
                break
        if self.api.first_next is None or self.api.init_error is not None:
            self.stop()
            detail = (self.api.init_error or b"").decode(errors="replace")
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise BenchError(f"{self.log.stem} did not start: {detail}\n{tail}")
        return self.api.first_next - self.spawned

    def invoke(self, function: Function) -> Invocation:
        invocation = self.api.invoke(function.event, function.timeout_s)
        if invocation.error_type is not None:
            self.stop()
            raise BenchError(
                f"{self.log.stem} answered {invocation.error_type}: {invocation.body.decode(errors='replace')[:2000]}"
            )
        return invocation

    def memory_kib(self) -> dict[str, int]:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {key: int(fields[key].split()[0]) for key in ("VmHWM", "VmRSS") if key in fields}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.api.close()


class Launcher:
    """Starts one side's function as Lambda would."""

    def __init__(self, release: Path, moto: str, logs: Path) -> None:
        self.release, self.moto, self.logs = release.resolve(), moto, logs
        logs.mkdir(parents=True, exist_ok=True)

    def command(self, function: Function, side: str) -> tuple[list[str], str, Path]:
        if side == "rust":
            return [str(self.release / function.name)], "bootstrap", self.release
        module = function.name.replace("-", "_")
        return [sys.executable, "-m", "awslambdaric", f"{module}.handler"], f"{module}.handler", PEERS

    def start(self, function: Function, side: str, label: str) -> Running:
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench-{function.name}"
        api = RuntimeApi(arn)
        command, handler, cwd = self.command(function, side)
        env = lambda_env(function, side, api, self.moto, handler)
        if side == "python":
            env["PYTHONPATH"] = str(PEERS)
        log = self.logs / f"{function.name}-{side}-{label}.log"
        with log.open("wb") as out:
            spawned = time.perf_counter()
            process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        return Running(process, api, spawned, log)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10, method="inclusive")[8] if len(samples) > 1 else samples[0]


def measure_function(
    launcher: Launcher,
    functions: dict[str, Function],
    moto: Moto,
    slack: SlackCounter,
    cold_starts: int,
    invokes: int,
) -> dict[str, Any]:
    """One function, both sides: an untimed first invoke each (so that both measure the same
    steady state: the execution, group, command or room exists), then cold starts alternating the
    side that goes first, then one warm process per side."""
    name = functions["rust"].name
    result: dict[str, Any] = {"function": name}
    for side in SIDES:
        running = launcher.start(functions[side], side, "prime")
        try:
            running.wait_ready()
            running.invoke(functions[side])
        finally:
            running.stop()
    cold: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for attempt in range(cold_starts):
        for side in SIDES if attempt % 2 == 0 else tuple(reversed(SIDES)):
            running = launcher.start(functions[side], side, f"cold{attempt}")
            try:
                init = running.wait_ready()
                first = running.invoke(functions[side])
            finally:
                running.stop()
            assert first.answered is not None and first.served is not None
            cold[side].append(
                {
                    "initMs": ms(init),
                    "firstResponseMs": ms(first.answered - running.spawned),
                    "firstInvokeMs": ms(first.answered - first.served),
                }
            )
    for side in SIDES:
        running = launcher.start(functions[side], side, "warm")
        try:
            running.wait_ready()
            running.invoke(functions[side])
            aws_before, slack_before = moto.api_calls(), slack.counts()
            moto_before, slack_waited = moto.api_seconds(), slack.waited()
            durations = []
            for _ in range(invokes):
                invocation = running.invoke(functions[side])
                assert invocation.answered is not None and invocation.served is not None
                durations.append(invocation.answered - invocation.served)
            aws_calls, slack_calls = calls_between(aws_before, moto.api_calls()), calls_between(slack_before, slack.counts())
            moto_seconds = sum(calls_between(moto_before, moto.api_seconds()).values())
            slack_seconds = slack.waited() - slack_waited
            memory = running.memory_kib()
            response = json.loads(invocation.body or b"null")
        finally:
            running.stop()
        samples = cold[side]
        result[side] = {
            "coldStarts": samples,
            "initMs": statistics.median(s["initMs"] for s in samples),
            "firstResponseMs": statistics.median(s["firstResponseMs"] for s in samples),
            "warmInvokesMs": [ms(d) for d in durations],
            "warmP50Ms": ms(statistics.median(durations)),
            "warmP90Ms": ms(p90(durations)),
            "peakRssKiB": memory.get("VmHWM"),
            "rssKiB": memory.get("VmRSS"),
            "motoMsPerInvoke": ms(moto_seconds / invokes),
            "slackEmulatorMsPerInvoke": ms(slack_seconds / invokes),
            "emulatorsMsPerInvoke": ms((moto_seconds + slack_seconds) / invokes),
            "awsCallsPerInvoke": {k: round(v / invokes, 2) for k, v in aws_calls.items()},
            "slackCallsPerInvoke": {k: round(v / invokes, 2) for k, v in slack_calls.items()},
            "lastResponse": response,
        }
    binary = launcher.release / name
    result["rust"]["binaryBytes"] = binary.stat().st_size
    result["rust"]["binaryStripped"] = is_stripped(binary)
    result["ratios"] = {
        key: round(result["python"][key] / result["rust"][key], 1) if result["rust"][key] else None
        for key in ("initMs", "firstResponseMs", "warmP50Ms", "warmP90Ms", "peakRssKiB")
    }
    return result


def is_stripped(binary: Path) -> bool | None:
    try:
        described = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return "not stripped" not in described and "stripped" in described


# ---------------------------------------------------------------------------------------------
# 2. the arm64 zips


AARCH64 = 0xB7  # ELF e_machine


def arm64_bootstrap(name: str) -> Path | None:
    """The arm64 bootstrap `make sam-build` (or `make deploy-fn`) left for NAME, if any."""
    logical = "".join(part.capitalize() for part in name.split("-")) + "Function"
    for path in (
        REPO / "target/lambda-release/lambda" / name / "bootstrap",
        REPO / "infra/.aws-sam/build" / logical / "bootstrap",
        REPO / ".aws-sam/build" / logical / "bootstrap",
    ):
        if path.is_file():
            header = path.read_bytes()[:20]
            if header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == AARCH64:
                return path
    return None


# What a function's binary is built from: a bootstrap older than the last commit touching these
# is not the current code's.
BUILD_INPUTS = ("Cargo.toml", "Cargo.lock", "functions", "infra/routes.yaml")


def last_code_change() -> tuple[str, float] | None:
    """The newest commit that changed what the functions are built from, and its time."""
    done = subprocess.run(
        ["git", "log", "-1", "--format=%h %ct", "--", *BUILD_INPUTS], cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0 or not done.stdout.strip():
        return None
    commit, at = done.stdout.split()
    return commit, float(at)


def measure_zips() -> list[dict[str, Any]]:
    results = []
    changed = last_code_change()
    for name in FUNCTIONS:
        bootstrap = arm64_bootstrap(name)
        if bootstrap is None:
            results.append({"function": name, "built": False})
            continue
        with tempfile.TemporaryDirectory() as work:
            shutil.copy2(bootstrap, Path(work) / "bootstrap")
            subprocess.run(["zip", "-9", "-q", "function.zip", "bootstrap"], cwd=work, check=True)
            size = (Path(work) / "function.zip").stat().st_size
        built = datetime.datetime.fromtimestamp(bootstrap.stat().st_mtime, datetime.timezone.utc)
        results.append(
            {
                "function": name,
                "built": True,
                "bootstrap": str(bootstrap.relative_to(REPO)),
                "builtAt": built.isoformat(timespec="seconds"),
                "bootstrapBytes": bootstrap.stat().st_size,
                "zipBytes": size,
                "goalBytes": ZIP_GOAL_BYTES,
                "withinGoal": size <= ZIP_GOAL_BYTES,
                # The bootstrap predates this commit's changes to the functions: stale.
                "olderThanCommit": changed[0] if changed and bootstrap.stat().st_mtime < changed[1] else None,
            }
        )
    return results


# ---------------------------------------------------------------------------------------------
# 3. the breaker's cost against history


def seeded_history(count: int, now: datetime.datetime) -> list[dict[str, str]]:
    """COUNT finished executions, one started every minute going back from now, each 90 s long;
    every seventh failed; nine in ten of route web-nginx, the rest of route app-fleet."""
    executions = []
    for i in range(count):
        started = now - datetime.timedelta(seconds=120 + 60 * i)
        route = "web-nginx" if i % 10 else "app-fleet"
        digest = hashlib.sha256(f"{count}-{i}".encode()).hexdigest()[:20]
        executions.append(
            {
                "name": f"{route}__bench-history-{i:05d}__{digest}",
                "startDate": started.isoformat(),
                "stopDate": (started + datetime.timedelta(seconds=90)).isoformat(),
                "status": "FAILED" if i % 7 == 0 else "SUCCEEDED",
            }
        )
    return executions


def measure_breaker(launcher: Launcher, function: Function, moto: Moto, run_id: str) -> list[dict[str, Any]]:
    sfn = moto.client("stepfunctions")
    machines = {}
    for count in HISTORY_SIZES:
        arn = sfn.create_state_machine(
            name=f"bench-{run_id}-history-{count}",
            definition=MINIMAL_DEFINITION,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/bench",
        )["stateMachineArn"]
        seeding = time.perf_counter()
        moto.record_executions(arn, seeded_history(count, datetime.datetime.now(datetime.timezone.utc)))
        machines[count] = (arn, time.perf_counter() - seeding)
    running = launcher.start(function, "rust", "history")
    results = []
    try:
        running.wait_ready()
        running.invoke(function)  # the process's first invoke, untimed: connections, lazy setup
        for count, (arn, seeding_s) in machines.items():
            event = json.loads(function.event)
            event["stateMachineArn"] = arn
            before = moto.api_calls()
            invocation = running.api.invoke(json.dumps(event).encode(), function.timeout_s)
            calls = calls_between(before, moto.api_calls())
            answer = json.loads(invocation.body or b"null")
            if invocation.error_type:
                raise BenchError(f"failure-counter on {count} executions: {invocation.error_type}: {answer}")
            assert invocation.answered is not None and invocation.served is not None
            results.append(
                {
                    "executions": count,
                    "listExecutionsCalls": calls.get("states:ListExecutions", 0),
                    "describeExecutionCalls": calls.get("states:DescribeExecution", 0),
                    "otherCalls": {k: v for k, v in calls.items() if k not in ("states:ListExecutions", "states:DescribeExecution")},
                    "pagesRead": answer.get("pagesRead"),
                    "count": answer.get("count"),
                    "totalCount": answer.get("totalCount"),
                    "invokeMs": ms(invocation.answered - invocation.served),
                    "seedingS": round(seeding_s, 2),
                }
            )
    finally:
        running.stop()
    return results


# ---------------------------------------------------------------------------------------------
# 4. replay


def measure_replay(replay: Path, src: Path, moto: Moto, slack: str, runs: int) -> dict[str, Any]:
    """`replay history` on the storm sample (what `make bench-history` runs), and the canonical
    replay of `make demo` (metric-alarm.json, then its OK, which closes the group for the next)."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_REGION": REGION,
        "SLACK_API_URL": slack,
        "ROUTES_FILE": "infra/routes.example.yaml",
    }

    def run(*args: str) -> tuple[float, str]:
        started = time.perf_counter()
        done = subprocess.run([str(replay), *args], cwd=src, env=env, capture_output=True, text=True)
        return time.perf_counter() - started, done.stdout

    canonical = []
    for _ in range(runs):
        wall, out = run("event", "events/alarm-router/metric-alarm.json")
        last = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        if last.get("status") != "SUCCEEDED":
            raise BenchError(f"the canonical replay did not succeed: {out[-1000:]}")
        canonical.append(ms(wall))
        run("event", "events/alarm-router/metric-ok.json", "--quiet")
    moto_before = sum(moto.api_seconds().values())
    wall, out = run("history", "--quiet", "events/histories/storm.jsonl")
    moto_seconds = sum(moto.api_seconds().values()) - moto_before
    summary = json.loads(out.strip().splitlines()[-1])
    return {
        "binary": str(replay),
        "canonicalReplayMs": canonical,
        "canonicalReplayMedianMs": statistics.median(canonical),
        "storm": {
            "events": summary.get("events"),
            "wallSeconds": summary.get("wallSeconds"),
            "eventsPerSecond": summary.get("eventsPerSecond"),
            "dynamodbCalls": summary.get("dynamodbCalls"),
            "dynamodbCallsPerEvent": summary.get("dynamodbCallsPerEvent"),
            "processWallSeconds": round(wall, 2),
            "motoSeconds": round(moto_seconds, 2),
        },
    }


# ---------------------------------------------------------------------------------------------
# the machine, the table


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        fields = dict(line.split("=", 1) for line in release.read_text().splitlines() if "=" in line)
        os_name = f"{fields.get('PRETTY_NAME', '').strip(chr(34))}, Linux {platform.release()}"
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    from importlib.metadata import version

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memoryGiB": round(memory_kib / 1024 / 1024, 1),
        "os": os_name,
        "loadAverage": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "boto3": version("boto3"),
        "botocore": version("botocore"),
        "awslambdaric": version("awslambdaric"),
        "rustc": rustc,
    }


def calls_text(calls: dict[str, float]) -> str:
    return str(round(sum(calls.values()), 2)).removesuffix(".0")


def table(report: dict[str, Any]) -> str:
    """The report as text, at most 116 characters wide."""
    lines = []
    host = report["machine"]
    lines.append(
        f"make bench, {report['date']}: {host['nproc']} x {host['cpu']}, {host['memoryGiB']} GiB, {host['os']}"
    )
    lines.append(report["sources"])
    lines.append(
        f"{host['rustc']}; Python {host['python']}, boto3 {host['boto3']}, awslambdaric {host['awslambdaric']}"
    )
    lines.append(
        f"moto and the Slack emulator on the same cores; load average {host['loadAverage'][0]} before, "
        f"{host['loadAverageAfter'][0]} after"
    )
    if report.get("functions"):
        settings = report["settings"]
        lines += [
            "",
            "Each function's x86_64 release binary (rs) and its Python 3 peer under awslambdaric (py), as Lambda runs",
            f"them. init and 1st resp: median of {settings['coldStarts']} cold starts; warm: {settings['invokes']} "
            "invokes; emulators ms and calls: per warm",
            "invoke, the time moto and the Slack emulator took to answer, and the AWS+Slack calls made.",
            f"{'function':<22}{'side':<6}{'init ms':>8}{'1st resp ms':>12}{'warm p50 ms':>12}{'warm p90 ms':>12}"
            f"{'peak RSS MiB':>13}{'emulators ms':>13}{'calls':>7}",
        ]
        for result in report["functions"]:
            for side in SIDES:
                r = result[side]
                calls = f"{calls_text(r['awsCallsPerInvoke'])}+{calls_text(r['slackCallsPerInvoke'])}"
                lines.append(
                    f"{result['function'] if side == 'rust' else '':<22}{SHORT[side]:<6}{r['initMs']:>8.1f}"
                    f"{r['firstResponseMs']:>12.1f}{r['warmP50Ms']:>12.2f}{r['warmP90Ms']:>12.2f}"
                    f"{(r['peakRssKiB'] or 0) / 1024:>13.1f}{r['emulatorsMsPerInvoke']:>13.2f}{calls:>7}"
                )
            ratio = result["ratios"]
            cell = lambda key: f"{ratio[key]}x" if ratio[key] is not None else "-"
            lines.append(
                f"{'':<22}{'py/rs':<6}{cell('initMs'):>8}{cell('firstResponseMs'):>12}{cell('warmP50Ms'):>12}"
                f"{cell('warmP90Ms'):>12}{cell('peakRssKiB'):>13}"
            )
        sizes = [f"{r['function']} {r['rust']['binaryBytes']:,}" for r in report["functions"]]
        lines.append(f"x86_64 binaries, stripped, bytes: {'; '.join(sizes[:2])};")
        lines.append(f"  {'; '.join(sizes[2:])}")
    if report.get("zips") is not None:
        lines += [
            "",
            f"arm64 release zips (zip -9 of the bootstrap make sam-build left); goal 4 MiB = {ZIP_GOAL_BYTES:,} bytes",
        ]
        for z in report["zips"]:
            if z["built"]:
                verdict = "within 4 MiB" if z["withinGoal"] else "OVER 4 MiB"
                decimal = "within" if z["zipBytes"] <= 4_000_000 else "over"
                stale = f", STALE: older than {z['olderThanCommit']}" if z.get("olderThanCommit") else ""
                built = z["builtAt"].replace("T", " ")[:16]
                lines.append(
                    f"  {z['function']:<22}{z['zipBytes']:>10,} bytes {z['zipBytes'] / ZIP_GOAL_BYTES:>6.1%}  {verdict}, "
                    f"{decimal} 4,000,000  (built {built}{stale})"
                )
            else:
                lines.append(f"  {z['function']:<22}not built: run make sam-build")
        if any(z.get("olderThanCommit") for z in report["zips"]):
            lines.append(
                "  (STALE: built before that commit changed the functions' code or dependencies; "
                "make sam-build for today's sizes)"
            )
    if report.get("breaker"):
        lines += ["", "failure-counter against execution history (goal: constant, at most 2 ListExecutions calls)"]
        lines.append(f"  {'executions':>10}{'ListExecutions':>16}{'DescribeExecution':>19}{'pages':>7}{'invoke ms':>11}")
        for b in report["breaker"]:
            lines.append(
                f"  {b['executions']:>10,}{b['listExecutionsCalls']:>16}{b['describeExecutionCalls']:>19}"
                f"{b['pagesRead']:>7}{b['invokeMs']:>11.1f}"
            )
    if report.get("replay"):
        r = report["replay"]
        s = r["storm"]
        lines += [
            "",
            f"replay, release build: the storm history, {s['events']} events in {s['wallSeconds']} s = "
            f"{s['eventsPerSecond']} events/s, {s['dynamodbCallsPerEvent']} DynamoDB calls per event",
            f"  (moto answering: {s['motoSeconds']} s, summed over its requests)",
            f"  the canonical replay (metric-alarm.json, make demo's first scenario): median "
            f"{r['canonicalReplayMedianMs']:.0f} ms wall of {len(r['canonicalReplayMs'])} "
            f"({', '.join(f'{x:.0f}' for x in r['canonicalReplayMs'])})",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    src, release = Path(args.src).resolve(), Path(args.release).resolve()
    moto = Moto(args.moto)
    moto.api_calls()  # fails early, with what to do, against an older emulator
    run_id = uuid.uuid4().hex[:8]
    out = Path(args.out)
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "sources": describe_sources(src),
        "settings": {"coldStarts": args.cold_starts, "invokes": args.invokes, "memoryMb": MEMORY_MB},
    }
    parts = set(args.only.split(",")) if args.only else {"functions", "zips", "breaker", "replay"}
    launcher = Launcher(release, moto.endpoint, out.parent / "logs")
    slack = SlackCounter(args.slack)
    try:
        resources = prepare(moto, run_id)
        if "functions" in parts:
            report["functions"] = []
            per_side = {side: functions_for(src, resources[side], slack.url) for side in SIDES}
            for index, name in enumerate(FUNCTIONS):
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                functions = {side: per_side[side][index] for side in SIDES}
                report["functions"].append(
                    measure_function(launcher, functions, moto, slack, args.cold_starts, args.invokes)
                )
        if "zips" in parts:
            report["zips"] = measure_zips()
        if "breaker" in parts:
            print("measuring the failure counter against history ...", file=sys.stderr, flush=True)
            counter = functions_for(src, resources["rust"], slack.url)[1]
            report["breaker"] = measure_breaker(launcher, counter, moto, run_id)
        if "replay" in parts:
            print("measuring replay ...", file=sys.stderr, flush=True)
            report["replay"] = measure_replay(release / "replay", src, moto, args.slack, args.replays)
    finally:
        slack.close()
    report["machine"]["loadAverageAfter"] = [round(x, 2) for x in os.getloadavg()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"\n(every sample: {out})")
    return 0


def describe_sources(src: Path) -> str:
    mark = src / SNAPSHOT_MARK
    source = json.loads(mark.read_text())["source"] if mark.exists() else "unknown sources"
    return f"binaries built from {source}, with the sample rules (infra/routes.example.yaml) compiled in"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    snap = commands.add_parser("snapshot", help="copy the sources the release build reads")
    snap.add_argument("--to", required=True)
    snap.add_argument("--rev", default="", help="a commit; default: the work tree")
    measure = commands.add_parser("run", help="measure")
    measure.add_argument("--src", required=True, help="the snapshot the binaries were built from")
    measure.add_argument("--release", required=True, help="the directory of the x86_64 release binaries")
    measure.add_argument("--moto", default="http://127.0.0.1:5055")
    measure.add_argument("--slack", default="http://127.0.0.1:4003/api/")
    measure.add_argument("--out", default=str(REPO / "target/bench/latest.json"))
    measure.add_argument("--cold-starts", type=int, default=5)
    measure.add_argument("--invokes", type=int, default=50)
    measure.add_argument("--replays", type=int, default=3, help="canonical replays (median)")
    measure.add_argument("--only", default="", help="comma-separated: functions,zips,breaker,replay")
    args = parser.parse_args()
    try:
        if args.command == "snapshot":
            snapshot(args.rev or None, Path(args.to))
            return 0
        return run(args)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
