//! `POST /v1/logs`: OpenTelemetry logs over OTLP/HTTP, in protobuf
//! (`application/x-protobuf`) or OTLP/JSON (`application/json`), gzip or not. The answer is in
//! the request's encoding: an `ExportLogsServiceResponse` once the records are durable, or a
//! `google.rpc.Status` with 400 (never retried by exporters), 413, 429 or 503 with
//! `Retry-After` (retried).

#[allow(unused_imports)]
use super::*;

use prost::Message as _;

/// Which encoding a request (and so its answer) uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

fn answer(encoding: Encoding, status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

fn status_answer(encoding: Encoding, status: StatusCode, code: i32, message: String) -> Response {
    let body = match encoding {
        Encoding::Protobuf => vigil_otlp::Status { code, message }.encode_to_vec(),
        Encoding::Json => json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    };
    answer(encoding, status, body)
}

pub(super) async fn otlp_logs(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let encoding = if content_type.starts_with("application/x-protobuf")
        || content_type.starts_with("application/protobuf")
    {
        Encoding::Protobuf
    } else if content_type.starts_with("application/json") {
        Encoding::Json
    } else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "OTLP/HTTP takes Content-Type application/x-protobuf or application/json",
        );
    };
    let body = match body_bytes(&state, &headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    state.ingest.metrics.bytes.add("otlp", body.len() as u64);
    let ctx = context(&state, format!("otlp:{}", principal.name), peer);
    let decoded = parse_off_runtime(&state, body, move |body| match encoding {
        Encoding::Protobuf => vigil_otlp::decode_protobuf(&body, &ctx),
        Encoding::Json => vigil_otlp::decode_json(&body, &ctx),
    })
    .await;
    let decoded = match decoded {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            state.ingest.metrics.http_rejected.add("otlp_malformed", 1);
            return status_answer(encoding, StatusCode::BAD_REQUEST, 3, e.to_string());
        }
        Err(_) => {
            let mut r = status_answer(
                encoding,
                StatusCode::SERVICE_UNAVAILABLE,
                14,
                "log records not stored: the parser failed on this request; retry later".into(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, PARSER_PANIC_RETRY_AFTER);
            return r;
        }
    };
    match store(
        &state,
        decoded.events,
        vigil_ingest::Listener::Otlp,
        None,
        &principal,
    )
    .await
    {
        Ok(_) => {
            let response = vigil_otlp::response(decoded.dropped);
            let body = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => match &response.partial_success {
                    None => b"{}".to_vec(),
                    Some(p) => json!({"partialSuccess": {"rejectedLogRecords": p.rejected_log_records.to_string(), "errorMessage": p.error_message}})
                        .to_string()
                        .into_bytes(),
                },
            };
            answer(encoding, StatusCode::OK, body)
        }
        Err(IngestError::Overloaded) => {
            state.ingest.metrics.http_rejected.add("overloaded", 1);
            let mut r = status_answer(
                encoding,
                StatusCode::TOO_MANY_REQUESTS,
                8,
                "the ledger is behind; retry".into(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(e) => ingest_failure(&state, e),
    }
}
