//! Sending a scenario's events to this server's own listeners, as any sender would: syslog
//! over TCP (one connection, LF-framed) and UDP (one datagram per event), and
//! `POST /api/v1/ingest` with a token of role `ingest` made for the run and revoked after it.

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use vigil_auth::token::Role;
use vigil_event::Timestamp;

use super::DrillService;
use super::scenario::{DrillListener, Fill, Scenario, render};

/// How long connecting to or writing to a listener may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends every event of `scenario` in order; for each nonce, when it was sent or why not.
pub(super) async fn send_all(
    service: &DrillService,
    scenario: &Scenario,
    run: &str,
    nonces: &[String],
    ip: IpAddr,
) -> Vec<(String, Result<Timestamp, String>)> {
    let mut out = Vec::with_capacity(nonces.len());
    let mut nonces = nonces.iter();
    let token = if scenario
        .events
        .iter()
        .any(|e| e.listener == DrillListener::Http)
    {
        let (accounts, name) = (service.accounts.clone(), format!("{run}-ingest"));
        match tokio::task::spawn_blocking(move || accounts.create_token(&name, Role::Ingest)).await
        {
            Ok(Ok((_, secret))) => Ok(secret),
            Ok(Err(e)) => Err(format!("no ingest token for the run: {e}")),
            Err(e) => Err(format!("no ingest token for the run: {e}")),
        }
    } else {
        Err("no HTTP event".into())
    };
    let mut tcp: Option<tokio::net::TcpStream> = None;
    for entry in &scenario.events {
        if entry.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(entry.delay_ms)).await;
        }
        let mut texts = Vec::with_capacity(entry.repeat);
        for i in 0..entry.repeat {
            let nonce = nonces.next().expect("one nonce per event").clone();
            let text = render(
                &entry.text,
                &Fill {
                    nonce: &nonce,
                    ip,
                    i,
                    now: chrono::Utc::now(),
                },
            );
            texts.push((nonce, text));
        }
        match entry.listener {
            DrillListener::SyslogTcp => {
                let addr = service.targets.syslog_tcp.expect("checked by run");
                for (nonce, text) in texts {
                    let result = async {
                        if tcp.is_none() {
                            let s = tokio::time::timeout(
                                SEND_TIMEOUT,
                                tokio::net::TcpStream::connect(addr),
                            )
                            .await
                            .map_err(|_| format!("connecting to {addr} timed out"))?
                            .map_err(|e| format!("connecting to syslog TCP {addr}: {e}"))?;
                            tcp = Some(s);
                        }
                        let s = tcp.as_mut().expect("connected above");
                        let line = format!("{text}\n");
                        tokio::time::timeout(SEND_TIMEOUT, s.write_all(line.as_bytes()))
                            .await
                            .map_err(|_| format!("writing to {addr} timed out"))?
                            .map_err(|e| format!("writing to syslog TCP {addr}: {e}"))?;
                        Ok(Timestamp::now())
                    }
                    .await;
                    if result.is_err() {
                        tcp = None;
                    }
                    out.push((nonce, result));
                }
            }
            DrillListener::SyslogUdp => {
                let addr = service.targets.syslog_udp.expect("checked by run");
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = tokio::net::UdpSocket::bind(bind).await;
                for (nonce, text) in texts {
                    let result = match &socket {
                        Ok(s) => s
                            .send_to(text.as_bytes(), addr)
                            .await
                            .map(|_| Timestamp::now())
                            .map_err(|e| format!("sending to syslog UDP {addr}: {e}")),
                        Err(e) => Err(format!("a UDP socket: {e}")),
                    };
                    out.push((nonce, result));
                }
            }
            DrillListener::Http => {
                let result = match &token {
                    Ok(token) => post(service, token, entry.format.as_deref(), &texts).await,
                    Err(e) => Err(e.clone()),
                };
                for (nonce, _) in texts {
                    out.push((nonce, result.clone()));
                }
            }
        }
    }
    if let Some(mut s) = tcp {
        let _ = s.shutdown().await;
    }
    if token.is_ok() {
        let (accounts, name) = (service.accounts.clone(), format!("{run}-ingest"));
        let revoked =
            tokio::task::spawn_blocking(move || accounts.revoke_token(&name).map(|_| ())).await;
        if !matches!(revoked, Ok(Ok(()))) {
            tracing::error!(
                "drill {run}: revoking its ingest token {run}-ingest failed: revoke it by hand (vigil token revoke)"
            );
        }
    }
    out
}

/// One `POST /api/v1/ingest` of an entry's events; when the request started, once it is
/// answered 200 (durable).
async fn post(
    service: &DrillService,
    token: &str,
    format: Option<&str>,
    texts: &[(String, String)],
) -> Result<Timestamp, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let addr = service.targets.http.expect("checked by run");
    let scheme = if service.targets.http_tls {
        "https"
    } else {
        "http"
    };
    let mut url = format!("{scheme}://{addr}/api/v1/ingest");
    if let Some(f) = format {
        url.push_str(&format!("?format={f}"));
    }
    // The server's own listener on loopback, often with its self-signed certificate.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(SEND_TIMEOUT)
        .build()
        .map_err(|e| format!("an HTTP client: {e}"))?;
    let body: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
    // Sent when the request starts: the 200 comes only once the events are durable.
    let started = Timestamp::now();
    let response = client
        .post(&url)
        .bearer_auth(token)
        .header("Content-Type", "text/plain")
        .body(body.join("\n"))
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(started)
    } else {
        let text = response.text().await.unwrap_or_default();
        Err(format!(
            "POST {url}: {status}: {}",
            text.chars().take(300).collect::<String>()
        ))
    }
}
