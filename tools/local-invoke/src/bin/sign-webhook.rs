//! `sign-webhook [--secret-file FILE] EVENT_FILE...`: (re)signs sample PagerDuty webhooks in place.
//!
//! Each file is a Lambda Function URL request; its `x-pagerduty-signature` header is set to the
//! HMAC-SHA256 of its body (decoded first when `isBase64Encoded`) under the first secret of the
//! file, which defaults to the one local runs use: `events/slack-channel-creator/webhook-secret.txt`.
//! Edit a sample's body, then sign it again; leave out the files meant to fail verification.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use local_invoke::{WEBHOOK_SECRET_FILE, repo_root};
use serde_json::Value;
use slack_channel_creator::pagerduty::{SIGNATURE_HEADER, sign};
use slack_channel_creator::secrets::parse_webhook_secrets;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let secret_file = match args.first().map(String::as_str) {
        Some("--secret-file") if args.len() >= 2 => PathBuf::from(args.drain(..2).nth(1).unwrap_or_default()),
        _ => repo_root().join(WEBHOOK_SECRET_FILE),
    };
    if args.is_empty() {
        eprintln!("usage: sign-webhook [--secret-file FILE] EVENT_FILE...");
        return ExitCode::from(2);
    }
    let secret = match std::fs::read_to_string(&secret_file).map(|text| parse_webhook_secrets(&text)) {
        Ok(secrets) if !secrets.is_empty() => secrets.into_iter().next().unwrap_or_default(),
        Ok(_) => {
            eprintln!("{} holds no secret", secret_file.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{}: {e}", secret_file.display());
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for file in &args {
        match sign_file(file, &secret) {
            Ok(signature) => println!("{file}: {signature}"),
            Err(e) => {
                eprintln!("{file}: {e}");
                failed = true;
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn sign_file(file: &str, secret: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let mut request: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let body = request.get("body").and_then(Value::as_str).ok_or("no string `body`: not a Function URL request")?;
    let raw = if request.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        BASE64.decode(body).map_err(|e| format!("body is not base64: {e}"))?
    } else {
        body.as_bytes().to_vec()
    };
    let signature = sign(secret, &raw);
    let headers = request
        .as_object_mut()
        .and_then(|r| r.get_mut("headers"))
        .and_then(Value::as_object_mut)
        .ok_or("no `headers` object: not a Function URL request")?;
    headers.insert(SIGNATURE_HEADER.to_owned(), Value::String(signature.clone()));
    let pretty = serde_json::to_string_pretty(&request).map_err(|e| e.to_string())?;
    std::fs::write(file, format!("{pretty}\n")).map_err(|e| e.to_string())?;
    Ok(signature)
}
