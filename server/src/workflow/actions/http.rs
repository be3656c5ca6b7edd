//! `http.request` and `notify.webhook`: outgoing HTTP with the process's shared client (rustls
//! with ring, as the providers use), a timeout, and cancellation.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::schema::{Exclusive, Kind, Param, Spec};
use super::{ActionError, Args, HostCheck};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read.
const MAX_BODY: usize = 10 * 1024 * 1024;
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub const REQUEST: Spec = Spec {
    name: "http.request",
    summary: "Sends an HTTP request. Fails on a status other than `expect_status` (by default, on any status outside 200–299), on a timeout, and when the run is cancelled.",
    params: &[
        Param::required("url", Kind::String, "An `http` or `https` URL."),
        Param::optional("method", Kind::Choice(METHODS), Some("GET"), "The method."),
        Param::optional("headers", Kind::StringMap, None, "Request headers."),
        Param::optional("body", Kind::Text, None, "A text body, sent as is."),
        Param::optional(
            "json",
            Kind::Any,
            None,
            "A JSON body, sent with `Content-Type: application/json` unless `headers` sets one.",
        ),
        Param::optional("timeout", Kind::Duration, Some("30s"), "Limit on the whole request."),
        Param::optional(
            "expect_status",
            Kind::Statuses,
            None,
            "The status, or statuses, that count as success.",
        ),
    ],
    exclusive: &[Exclusive { names: &["body", "json"], required: false }],
    output: "`{status, headers, body, json}`: header names in lower case (repeated headers joined with `, `), the body as text (at most 10 MiB), and `json`, the body parsed, when it is JSON (else `null`).",
};

pub const WEBHOOK: Spec = Spec {
    name: "notify.webhook",
    summary: "Posts a Slack-compatible message (`{\"text\": ...}`) to an incoming-webhook URL (Slack, Mattermost, Discord's `/slack` endpoints, ...).",
    params: &[
        Param::required("url", Kind::String, "The webhook URL."),
        Param::required("text", Kind::Text, "The message; also the fallback when `blocks` are given."),
        Param::optional("blocks", Kind::Any, None, "Slack Block Kit blocks, passed through."),
        Param::optional(
            "username",
            Kind::String,
            None,
            "The name the message is posted under, where the service allows it.",
        ),
        Param::optional("timeout", Kind::Duration, Some("30s"), "Limit on the whole request."),
    ],
    exclusive: &[],
    output: "`{status}`. A status outside 200–299 fails the step, with the reply's body in the message.",
};

/// Redirects followed at most, as reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

/// The shared client, or with `hosts`, one that judges the host of every redirect hop and
/// refuses the hop (naming it) that is not allowed.
fn client(hosts: Option<&HostCheck>) -> Result<reqwest::Client, ActionError> {
    let Some(check) = hosts.cloned() else {
        return crate::http::client().map_err(|e| ActionError::new(e.to_string()));
    };
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let hop = attempt.previous().len();
        if hop > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let host = attempt
            .url()
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        match check(&host) {
            Ok(()) => attempt.follow(),
            Err(why) => {
                let url = attempt.url().to_string();
                attempt.error(format!("redirect {hop} to {url} is refused: {why}"))
            }
        }
    });
    crate::http::client_with_redirects(policy).map_err(|e| ActionError::new(e.to_string()))
}

fn parse_url(url: &str) -> Result<reqwest::Url, ActionError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| ActionError::new(format!("`{url}` is not a valid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ActionError::new(format!("`{url}` is not an http or https URL")));
    }
    Ok(parsed)
}

/// Sends `request`, reading the whole reply, within `timeout` and until `cancel`.
async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(u16, Vec<(String, String)>, String), ActionError> {
    let timed_out = || ActionError::new(format!("{url}: no complete reply within {timeout:?}"));
    let work = async {
        let mut response = request
            .send()
            .await
            .map_err(|e| ActionError::new(format!("{url}: {}", crate::http::error_chain(&e))))?;
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
                Some((_, joined)) => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
                None => headers.push((name.as_str().to_owned(), value)),
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            ActionError::new(format!("{url}: the reply broke off: {}", crate::http::error_chain(&e)))
        })? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ActionError::new(format!("{url}: the reply is larger than {MAX_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(ActionError::new(format!("{url}: cancelled"))),
        () = tokio::time::sleep(timeout) => Err(timed_out()),
        result = work => result,
    }
}

pub async fn request(
    args: &Args<'_>,
    cancel: &CancellationToken,
    hosts: Option<&HostCheck>,
) -> Result<Value, ActionError> {
    let url = args.need_str("url")?;
    let parsed = parse_url(url)?;
    let method = args.str("method").unwrap_or("GET");
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| ActionError::new(format!("`{method}` is not an HTTP method")))?;
    let timeout = args.duration("timeout").unwrap_or(DEFAULT_TIMEOUT);
    let mut request = client(hosts)?.request(method, parsed);
    let headers = args.string_map("headers").unwrap_or_default();
    let mut has_content_type = false;
    for (name, value) in &headers {
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(body) = args.text("body") {
        request = request.body(body);
    } else if let Some(json) = args.value("json") {
        if !has_content_type {
            request = request.header("content-type", "application/json");
        }
        request = request.body(json.to_string());
    }
    let (status, headers, body) = send(request, url, timeout, cancel).await?;
    let expected = match args.value("expect_status") {
        Some(Value::Array(codes)) => codes.iter().filter_map(Value::as_u64).collect(),
        Some(code) => code.as_u64().into_iter().collect(),
        None => Vec::new(),
    };
    let ok = if expected.is_empty() {
        (200..300).contains(&status)
    } else {
        expected.contains(&u64::from(status))
    };
    if !ok {
        let wanted = if expected.is_empty() {
            "a 2xx status".to_owned()
        } else {
            expected.iter().map(u64::to_string).collect::<Vec<_>>().join(" or ")
        };
        return Err(ActionError::new(format!(
            "{url} answered {status}, expected {wanted}: {}",
            snippet(&body)
        )));
    }
    let json = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
    let headers: Map<String, Value> = headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(json!({"status": status, "headers": headers, "body": body, "json": json}))
}

pub async fn webhook(
    args: &Args<'_>,
    cancel: &CancellationToken,
    hosts: Option<&HostCheck>,
) -> Result<Value, ActionError> {
    let url = args.need_str("url")?;
    let parsed = parse_url(url)?;
    let mut payload = json!({"text": args.need_text("text")?});
    if let Some(blocks) = args.value("blocks") {
        payload["blocks"] = blocks.clone();
    }
    if let Some(username) = args.str("username") {
        payload["username"] = json!(username);
    }
    let request =
        client(hosts)?.post(parsed).header("content-type", "application/json").body(payload.to_string());
    let timeout = args.duration("timeout").unwrap_or(DEFAULT_TIMEOUT);
    let (status, _, body) = send(request, url, timeout, cancel).await?;
    if !(200..300).contains(&status) {
        return Err(ActionError::new(format!("the webhook answered {status}: {}", snippet(&body))));
    }
    Ok(json!({"status": status}))
}

/// The start of a reply, for error messages.
fn snippet(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None if body.is_empty() => "(empty body)".to_owned(),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Outcome, run_async};
    use serde_json::{Value, json};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// Bound on any wait; never reached when the code under test works.
    const BOUND: Duration = Duration::from_secs(30);

    /// A request as the local server read it.
    #[derive(Debug)]
    struct Seen {
        head: String,
        body: String,
    }

    /// A one-connection-per-reply HTTP/1.1 server on 127.0.0.1 answering each request with the
    /// next of `replies` (`None`: read the request and never answer). It stops when the test's
    /// runtime ends. Every request read is sent on the returned channel.
    async fn server(replies: Vec<Option<String>>) -> (String, mpsc::UnboundedReceiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (seen, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut replies = replies.into_iter();
            let mut current = replies.next();
            while let Some(reply) = current.take() {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then as many body bytes as Content-Length says. A client that
                // gives up before sending a whole request does not use up a reply.
                let read = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).into_owned();
                    let Some(end) = text.find("\r\n\r\n") else { continue };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0usize);
                    if data.len() >= end + 4 + length {
                        break Some((text[..end].to_owned(), text[end + 4..end + 4 + length].to_owned()));
                    }
                };
                let Some((head, body)) = read else {
                    current = Some(reply);
                    continue;
                };
                current = replies.next();
                let _ = seen.send(Seen { head, body });
                match reply {
                    Some(reply) => {
                        let _ = stream.write_all(reply.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    // Keep the connection open, unanswered, until the runtime ends.
                    None => {
                        tokio::spawn(async move {
                            let _keep = stream;
                            std::future::pending::<()>().await;
                        });
                    }
                }
            }
        });
        (url, received)
    }

    fn reply(status: &str, headers: &[&str], body: &str) -> Option<String> {
        let mut text =
            format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
        for h in headers {
            text.push_str(h);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text.push_str(body);
        Some(text)
    }

    async fn next(received: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
        tokio::time::timeout(BOUND, received.recv()).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn requests_and_their_replies() {
        let (url, mut received) = server(vec![
            reply(
                "200 OK",
                &["content-type: application/json", "x-a: 1", "x-a: 2"],
                r#"{"ok":true,"n":[1,2]}"#,
            ),
            reply("201 Created", &[], "made"),
            reply("404 Not Found", &[], "no such thing"),
            reply("404 Not Found", &[], "gone"),
        ])
        .await;
        let ws = tempfile::tempdir().unwrap();

        let got = run_async(
            ws.path(),
            "http.request",
            json!({
                "url": format!("{url}/items?q=1"),
                "method": "POST",
                "headers": {"Authorization": "Bearer t"},
                "json": {"name": "x"},
            }),
        )
        .await
        .ok();
        assert_eq!(got["status"], 200);
        assert_eq!(got["json"], json!({"ok": true, "n": [1, 2]}));
        assert_eq!(got["headers"]["x-a"], "1, 2");
        let seen = next(&mut received).await;
        assert!(seen.head.starts_with("POST /items?q=1 HTTP/1.1"), "{}", seen.head);
        let head = seen.head.to_ascii_lowercase();
        assert!(head.contains("authorization: bearer t"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(serde_json::from_str::<Value>(&seen.body).unwrap(), json!({"name": "x"}));

        let got = run_async(ws.path(), "http.request", json!({"url": url, "method": "PUT", "body": "plain"}))
            .await
            .ok();
        assert_eq!(
            (got["status"].clone(), got["body"].clone(), got["json"].clone()),
            (json!(201), json!("made"), Value::Null)
        );
        assert_eq!(next(&mut received).await.body, "plain");

        let failed = run_async(ws.path(), "http.request", json!({"url": url})).await.err();
        assert!(failed.contains("answered 404, expected a 2xx status: no such thing"), "{failed}");
        let accepted =
            run_async(ws.path(), "http.request", json!({"url": url, "expect_status": [200, 404]})).await.ok();
        assert_eq!(accepted["body"], "gone");
    }

    #[tokio::test]
    async fn timeouts_cancellation_and_bad_urls() {
        let (url, _received) = server(vec![None]).await;
        let ws = tempfile::tempdir().unwrap();
        let timed_out =
            run_async(ws.path(), "http.request", json!({"url": url, "timeout": "200ms"})).await.err();
        assert!(timed_out.contains("no complete reply within 200ms"), "{timed_out}");

        let (url, mut received) = server(vec![None]).await;

        let ctx = super::super::tests::context(ws.path());
        let cancel = ctx.cancel.clone();
        let with = json!({"url": url, "timeout": "30s"});
        let with = with.as_object().unwrap().clone();
        let running = tokio::spawn(async move { super::super::run("http.request", &with, &ctx).await });
        next(&mut received).await;
        cancel.cancel();
        let got = tokio::time::timeout(BOUND, running).await.unwrap().unwrap();
        assert!(got.unwrap_err().message.ends_with("cancelled"));

        for (bad, message) in [("ftp://x/y", "not an http or https URL"), ("not a url", "is not a valid URL")]
        {
            let got = run_async(ws.path(), "http.request", json!({"url": bad})).await.err();
            assert!(got.contains(message), "{got}");
        }
        assert_eq!(
            run_async(ws.path(), "http.request", json!({"url": "http://x", "body": "a", "json": {}})).await,
            Outcome::Err(
                "invalid parameters for `http.request`: `json`: give only one of `body` and `json`".into()
            )
        );
    }

    #[tokio::test]
    async fn webhooks_post_slack_json() {
        let (url, mut received) =
            server(vec![reply("200 OK", &[], "ok"), reply("400 Bad Request", &[], "invalid_payload")]).await;
        let ws = tempfile::tempdir().unwrap();
        let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*done*"}}]);
        let got = run_async(
            ws.path(),
            "notify.webhook",
            json!({"url": format!("{url}/services/T/B/X"), "text": "Build done", "blocks": blocks, "username": "acas"}),
        )
        .await;
        assert_eq!(got, Outcome::Ok(json!({"status": 200})));
        let seen = next(&mut received).await;
        assert!(seen.head.starts_with("POST /services/T/B/X HTTP/1.1"), "{}", seen.head);
        assert_eq!(
            serde_json::from_str::<Value>(&seen.body).unwrap(),
            json!({"text": "Build done", "blocks": blocks, "username": "acas"})
        );
        let failed = run_async(ws.path(), "notify.webhook", json!({"url": url, "text": "x"})).await.err();
        assert_eq!(failed, "the webhook answered 400: invalid_payload");
    }
}
