//! Classifying AWS SDK errors: what is worth retrying, and a message that keeps the cause chain.

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// True for throttling, timeouts, connection failures and 5xx answers: the call may succeed later.
pub fn is_transient<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = service.raw().status().as_u16();
            THROTTLING_ERRORS.contains(&code) || TRANSIENT_ERRORS.contains(&code) || status == 429 || status >= 500
        }
        _ => false,
    }
}

/// The service's error code, if the service answered with one.
pub fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// The error with its whole cause chain, never just "service error".
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    DisplayErrorContext(err).to_string()
}

/// The HTTPS client of every SDK client the product makes: rustls with ring and the platform's
/// root certificates. (The SDK's `default-https-client` feature, off in this workspace, would link
/// aws-lc instead, which makes each Lambda zip about half a megabyte larger.)
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The SDK configuration a function loads at start: region and credentials from the environment
/// (as Lambda sets them; `AWS_ENDPOINT_URL` too, for local runs), and [`https_client`].
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client()).load().await
}

/// Makes ring the process's rustls crypto provider, for HTTP clients other than the SDK's (reqwest
/// is built without one of its own). Idempotent: a provider installed already stays.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
