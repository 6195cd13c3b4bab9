//! Search turns (`MAX_SEARCHES_IN_FLIGHT`, 4) are not held by clients that never read: an
//! export gives its turn back once its rows are in memory, before it streams them, so four
//! exports to clients that stopped reading do not lock every viewer out of search.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::common::{Server, create_token, curl};

/// Sends `GET /api/v1/export` on a connection with a tiny receive buffer, reads the answer's
/// head and then stops reading, so the server's writes stall with most of the body unsent.
fn stalled_export(addr: SocketAddr, token: &str) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut tcp: TcpStream = socket.into();
    write!(
        tcp,
        "GET /api/v1/export?format=ndjson&limit=100000&query=big HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(tcp.read(&mut byte).unwrap(), 1, "connection closed");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tcp
}

#[test]
fn exports_to_clients_that_never_read_do_not_hold_search_turns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let viewer = create_token(&data, "viewer", "viewer");
    let ingest = create_token(&data, "ingest", "sender");
    let server = Server::start(&data, &[]);
    let url = server.url.clone();

    // 1,000 events of 16 KiB: each export is ~30 MB, far more than the socket buffers hold.
    let filler = "x".repeat(16 * 1024);
    for batch in 0..5 {
        let body: String = (0..200)
            .map(|i| format!("{{\"message\":\"big {} {filler}\"}}\n", batch * 200 + i))
            .collect();
        let path = dir.path().join("batch.ndjson");
        std::fs::write(&path, body).unwrap();
        let a = curl(
            "POST",
            &format!("{url}/api/v1/ingest"),
            &[
                format!("Authorization: Bearer {ingest}"),
                "Content-Type: application/x-ndjson".into(),
                "Expect:".into(),
            ],
            Some(&format!("@{}", path.display())),
        );
        assert_eq!(a.status, 200, "{}", a.body);
    }

    let addr: SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    let stalled: Vec<TcpStream> = (0..4).map(|_| stalled_export(addr, &viewer)).collect();

    // A normal search still gets a turn (it used to wait its 10 s and get 503).
    let a = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        &[format!("Authorization: Bearer {viewer}")],
        Some(r#"{"query":"big | stats count","limit":10}"#),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["rows"][0][0], 1000, "{}", a.body);
    drop(stalled);
    server.stop();
}
