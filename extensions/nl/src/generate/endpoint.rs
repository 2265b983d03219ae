//! The OpenAI-compatible backend (`ask_endpoint`): the conversation goes to
//! `POST {ask_endpoint}/chat/completions` — OpenAI, or a server speaking its API such as
//! llama.cpp's `llama-server`, vLLM or Ollama — and the first choice's message is the answer.
//!
//! The request is greedy (`temperature` 0) and capped at [`MAX_ANSWER_TOKENS`]; it must be
//! answered by the generation deadline, and the response body may hold at most
//! [`MAX_RESPONSE_BYTES`]. Anything else the endpoint says — a refused key, an unknown
//! model, an overloaded server, a body that is not a chat completion — becomes the refusal's
//! reason, in the endpoint's own words where it gives some.

use std::time::Instant;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};

use super::{Generate, Turn, MAX_ANSWER_TOKENS};

/// A response larger than this is not a chat completion of [`MAX_ANSWER_TOKENS`] tokens.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// How much of an error body a refusal quotes.
const QUOTED_ERROR_CHARS: usize = 300;

/// Where and whom to ask.
#[derive(Clone)]
pub struct EndpointConfig {
    /// The API's base (`https://api.openai.com/v1`, `http://127.0.0.1:8080/v1`), or the full
    /// `…/chat/completions` address.
    pub url: String,
    /// The `model` of each request.
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A chat-completions endpoint, ready to ask (`Debug` hides the key: the header is sensitive).
#[derive(Debug)]
pub struct Endpoint {
    client: reqwest::Client,
    completions: Url,
    model: String,
    authorization: Option<HeaderValue>,
}

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Result<Endpoint, String> {
        let base = Url::parse(&config.url).map_err(|e| format!("ask_endpoint {:?} is not a URL: {e}", config.url))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("ask_endpoint {:?} must be an http:// or https:// address", config.url));
        }
        let completions = if base.path().trim_end_matches('/').ends_with("/chat/completions") {
            base
        } else {
            let joined = format!("{}/chat/completions", base.as_str().trim_end_matches('/'));
            Url::parse(&joined).map_err(|e| format!("ask_endpoint {:?}: {e}", config.url))?
        };
        if config.model.trim().is_empty() {
            return Err("ask_endpoint_model must name the model to ask".into());
        }
        let authorization = match &config.api_key {
            None => None,
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| "ask_api_key holds characters an HTTP header cannot carry".to_string())?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        // rustls needs one process-wide crypto provider; several are linked in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().build().map_err(|e| format!("ask_endpoint: {e}"))?;
        Ok(Endpoint { client, completions, model: config.model, authorization })
    }

    async fn ask(&self, turns: &[Turn<'_>], deadline: Instant) -> Result<String, String> {
        let messages: Vec<Value> = turns.iter().map(|t| json!({ "role": t.role, "content": t.text })).collect();
        let body = json!({
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": MAX_ANSWER_TOKENS,
            "stream": false,
        });
        let left = deadline.saturating_duration_since(Instant::now());
        let mut request = self
            .client
            .post(self.completions.clone())
            .timeout(left)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let mut response = request.send().await.map_err(|e| self.failed(&e, left))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failed(&e, left))? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(refused(status, &bytes));
        }
        content(&bytes)
    }

    fn failed(&self, error: &reqwest::Error, allowed: std::time::Duration) -> String {
        if error.is_timeout() {
            format!("no answer from {} within {:.1} s", self.completions, allowed.as_secs_f64())
        } else if error.is_connect() {
            format!("cannot reach {}: {}", self.completions, chain(error))
        } else {
            format!("the request to {} failed: {}", self.completions, chain(error))
        }
    }
}

impl Generate for Endpoint {
    fn answer(&self, turns: &[Turn], deadline: Instant) -> Result<String, String> {
        // Translators run on a blocking thread of the server's runtime.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.block_on(self.ask(turns, deadline)),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(self.ask(turns, deadline)),
        }
    }

    fn describe(&self) -> String {
        format!("the model {} at {}", self.model, self.completions)
    }
}

/// An error and its causes, as one line (reqwest's own message omits the cause).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A non-success answer as a reason: the status, and the endpoint's `error.message` (OpenAI's
/// shape) or the start of its body.
fn refused(status: StatusCode, body: &[u8]) -> String {
    let said = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| match &v["error"] {
            Value::String(message) => Some(message.clone()),
            error => error["message"].as_str().map(str::to_string),
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(QUOTED_ERROR_CHARS).collect());
    let hint = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => " (check ask_api_key)",
        StatusCode::NOT_FOUND => " (check ask_endpoint and ask_endpoint_model)",
        _ => "",
    };
    format!("the endpoint answered HTTP {status}{hint}: {}", said.trim())
}

/// The first choice's message text of a chat completion.
fn content(body: &[u8]) -> Result<String, String> {
    let not_completion = || {
        let start: String = String::from_utf8_lossy(body).chars().take(QUOTED_ERROR_CHARS).collect();
        format!("the endpoint's answer is not a chat completion: {start:?}")
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| not_completion())?;
    let message = &value["choices"][0]["message"];
    if message.is_null() {
        return Err(not_completion());
    }
    match message["content"].as_str() {
        Some(text) if !text.trim().is_empty() => Ok(text.to_string()),
        _ => Err(format!("the endpoint answered with an empty message (finish_reason {})", value["choices"][0]["finish_reason"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> EndpointConfig {
        EndpointConfig { url: url.into(), model: "m".into(), api_key: None }
    }

    #[test]
    fn the_completions_address_is_derived_from_the_base() {
        let at = |url: &str| Endpoint::new(config(url)).map(|e| e.completions.to_string());
        assert_eq!(at("http://127.0.0.1:8080/v1").unwrap(), "http://127.0.0.1:8080/v1/chat/completions");
        assert_eq!(at("https://api.openai.com/v1/").unwrap(), "https://api.openai.com/v1/chat/completions");
        assert_eq!(at("http://h/v1/chat/completions").unwrap(), "http://h/v1/chat/completions");
        assert!(at("ftp://h/v1").unwrap_err().contains("http://"));
        assert!(at("not a url").unwrap_err().contains("not a URL"));
        assert!(Endpoint::new(EndpointConfig { model: " ".into(), ..config("http://h/v1") }).unwrap_err().contains("ask_endpoint_model"));
    }

    #[test]
    fn answers_and_refusals_are_read_in_the_endpoints_words() {
        let completion = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"SELECT 1"},"finish_reason":"stop"}]}"#;
        assert_eq!(content(completion).unwrap(), "SELECT 1");
        assert!(content(br#"{"choices":[{"message":{"content":null},"finish_reason":"length"}]}"#).unwrap_err().contains("empty message"));
        assert!(content(b"<html>gateway</html>").unwrap_err().contains("not a chat completion"));
        let openai = br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
        assert_eq!(refused(StatusCode::UNAUTHORIZED, openai), "the endpoint answered HTTP 401 Unauthorized (check ask_api_key): Incorrect API key provided");
        assert!(refused(StatusCode::BAD_GATEWAY, b"upstream down").ends_with(": upstream down"));
    }

    #[test]
    fn the_key_is_not_shown() {
        let shown = format!("{:?}", EndpointConfig { api_key: Some("sk-secret".into()), ..config("http://h") });
        assert!(!shown.contains("sk-secret") && shown.contains("<set>"), "{shown}");
    }
}
