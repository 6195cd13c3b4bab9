//! Empty syslog datagrams (issue 13, defect 14): a datagram holding nothing (or only a line
//! end) is no message; it used to be stored as an empty event, so anyone could write events
//! with no content into the ledger. It is dropped and counted in `vigil_udp_empty_total`.

use std::net::{SocketAddr, UdpSocket};

use crate::common::{Server, create_token, curl, ledger_events, wait_until};

#[test]
fn empty_udp_datagrams_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "viewer", "watch");
    let server = Server::start(dir.path(), &["--syslog-udp", "127.0.0.1:0"]);
    let udp: SocketAddr = server
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("vigil: listening syslog udp://"))
        .and_then(|a| a.trim().parse().ok())
        .expect("the UDP address in the log");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in [&b""[..], b"\n", b"\r\n", b"", b"\n"] {
        socket.send_to(datagram, udp).unwrap();
    }
    socket
        .send_to(b"<13>Oct 11 22:14:15 host app: after the empty ones", udp)
        .unwrap();
    let from_udp = || {
        ledger_events(dir.path())
            .into_iter()
            .filter(|e| e.get_str("vigil.source") == Some("syslog-udp"))
            .collect::<Vec<_>>()
    };
    assert!(wait_until(20, || !from_udp().is_empty()));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let stored = from_udp();
    assert_eq!(
        stored.len(),
        1,
        "only the real message is stored: {stored:?}"
    );
    assert!(
        stored[0]
            .get_str("message")
            .is_some_and(|m| m.contains("after the empty ones"))
    );
    let metrics = curl(
        "GET",
        &format!("{}/metrics", server.url),
        &[format!("Authorization: Bearer {token}")],
        None,
    );
    assert!(
        metrics.body.lines().any(|l| l == "vigil_udp_empty_total 5"),
        "{}",
        metrics.body
    );
}
