//! Request bodies and the shared path of every ingest route into the pipeline.

#[allow(unused_imports)]
use super::*;

// ---- bodies ---------------------------------------------------------------------------------

/// The request body, gunzipped if `Content-Encoding: gzip`, within the size limit. The error is
/// the response to send (a rare path, so its size does not matter).
#[allow(clippy::result_large_err)]
pub(super) fn body_bytes(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<u8>, Response> {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                state.ingest.metrics.http_rejected.add("too_large", 1);
                return Err(error(
                    status,
                    format!(
                        "request body exceeds the {}-byte limit; send smaller batches",
                        state.max_body_bytes
                    ),
                ));
            }
            return Err(error(status, rejection.body_text()));
        }
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let limit = state.max_body_bytes as u64;
    flate2::read::MultiGzDecoder::new(&body[..])
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("gzip body: {e}")))?;
    if out.len() as u64 > limit {
        state.ingest.metrics.http_rejected.add("too_large", 1);
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "decompressed body exceeds the {}-byte limit",
                state.max_body_bytes
            ),
        ));
    }
    Ok(out)
}

/// The request body parsed as JSON into `T`, or the 400 answer: `expected SHAPE: REASON`,
/// where `shape` shows what the route takes (`{"text"}`) and the reason is serde's (which
/// field, which line and column). One place for every JSON route's "parse the body or 400".
#[allow(clippy::result_large_err)]
pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    shape: &str,
) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("expected {shape}: {e}")))
}

/// `vigil.sender` of what `principal` sends: `api:NAME/ID` (names may repeat, ids do not).
pub(super) fn sender_of(principal: &vigil_auth::Principal) -> String {
    format!("api:{}/{}", principal.name, principal.id)
}

pub(super) fn context(state: &AppState, source: String, peer: SocketAddr) -> ParseContext {
    let now = Timestamp::now();
    ParseContext {
        received: now,
        reference: now,
        source,
        keep_original: state.keep_original,
        peer: Some(peer.ip()),
        redactor: state.ingest.redactor(),
    }
}

/// Appends the events of one request as one ledger append and waits until they are durable:
/// stored whole (one range of consecutive sequence numbers, none of another sender's between)
/// or not at all (429 when the ledger is behind, 413 over [`crate::pipeline::MAX_REQUEST_EVENTS`] events, 503
/// when the ledger cannot write). Returns the range, none when the request held no events.
pub(super) async fn store(
    state: &AppState,
    mut events: Vec<Event>,
    listener: vigil_ingest::Listener,
    mark: Option<&crate::idempotency::Mark>,
    sender: &vigil_auth::Principal,
) -> Result<Vec<std::ops::Range<u64>>, IngestError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // Who sent them, as authenticated (after parsing: input cannot claim `vigil.*`).
    let sender = sender_of(sender);
    for e in &mut events {
        e.insert(vigil_event::field::VIGIL_SENDER, sender.as_str());
    }
    let pending = state
        .ingest
        .append_marked(events, listener, HTTP_PATIENCE, mark)
        .await?;
    Ok(vec![pending.durable().await?])
}

pub(super) fn count_parse_errors(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| e.has_tag(vigil_event::tag::PARSE_ERROR))
        .count()
}

/// A parser panicked on a request body: nothing of it was stored.
pub(super) struct ParserPanic;

/// Parses a request body on the blocking pool. A parser that panics (a bug, never the
/// sender's fault) answers [`ParserPanic`], which every ingest route turns into 503 with
/// `Retry-After` — never "accepted 0" or a 400, which a sender takes as final and drops its
/// data — and counts (`vigil_http_rejected_total{reason="parser_panic"}`).
pub(super) async fn parse_off_runtime<T: Send + 'static>(
    state: &AppState,
    body: Vec<u8>,
    parse: impl FnOnce(Vec<u8>) -> T + Send + 'static,
) -> Result<T, ParserPanic> {
    let parsed = tokio::task::spawn_blocking(move || {
        parser_fault(&body);
        parse(body)
    })
    .await;
    match parsed {
        Ok(t) => Ok(t),
        Err(e) => {
            state.ingest.metrics.http_rejected.add("parser_panic", 1);
            tracing::error!(
                "a parser failed on a request body (nothing stored; the sender is told to retry): {e}"
            );
            Err(ParserPanic)
        }
    }
}

/// The `Retry-After` of [`ParserPanic`] answers, in seconds.
pub(super) const PARSER_PANIC_RETRY_AFTER: HeaderValue = HeaderValue::from_static("5");

/// Test builds only: panics like a faulty parser when the body holds the marker in
/// `VIGIL_TEST_PARSER_PANIC` (how the end-to-end tests reach the path above).
#[cfg(debug_assertions)]
fn parser_fault(body: &[u8]) {
    if let Ok(marker) = std::env::var("VIGIL_TEST_PARSER_PANIC")
        && !marker.is_empty()
        && body.windows(marker.len()).any(|w| w == marker.as_bytes())
    {
        panic!("injected parser fault (VIGIL_TEST_PARSER_PANIC)");
    }
}

#[cfg(not(debug_assertions))]
fn parser_fault(_body: &[u8]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Comment {
        text: String,
    }

    #[tokio::test]
    async fn json_body_parses_or_answers_400_naming_the_shape_and_the_reason() {
        let c: Comment = json_body(br#"{"text": "hi"}"#, r#"{"text"}"#).unwrap();
        assert_eq!(c.text, "hi");
        for bad in [
            &b""[..],
            b"{",
            br#"{"text": 1}"#,
            br#"{"text": "a", "x": 1}"#,
        ] {
            let r = json_body::<Comment>(bad, r#"{"text"}"#).unwrap_err();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains(r#"expected {\"text\"}: "#), "{text}");
        }
    }
}
