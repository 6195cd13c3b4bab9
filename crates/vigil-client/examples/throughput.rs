//! How fast `vigil-client` hands events to Vigil: the benchmark behind `bench/client-throughput`.
//!
//! ```sh
//! throughput URL TOKEN EVENTS SPOOL_DIR [BATCH_EVENTS]
//! ```
//!
//! 1. *live*: a client with a spool sends `EVENTS` login failures as fast as the application
//!    can call `emit`, then flushes; prints the time `emit` took per event (the application's
//!    cost) and the delivery rate until everything is durable in Vigil.
//! 2. *backlog*: a client whose Vigil is unreachable (`127.0.0.1:9`) puts `EVENTS` into the
//!    spool; a new client on that spool, pointed at `URL`, delivers the backlog (each spool
//!    batch is recorded in the `inflight` file before it is posted); prints the drain rate.

use std::time::{Duration, Instant};

use vigil_client::{Client, SecurityEvent};

fn usage() -> ! {
    eprintln!("usage: throughput URL TOKEN EVENTS SPOOL_DIR [BATCH_EVENTS]");
    std::process::exit(2);
}

fn events(client: &Client, n: u64) {
    for i in 0..n {
        let event = SecurityEvent::login_fail(&format!("user{}", i % 1000))
            .source_ip(std::net::IpAddr::from([203, 0, 113, (i % 250) as u8]))
            .field("labels.step", i as i64);
        if client.emit(event).is_err() {
            eprintln!("the client closed early");
            std::process::exit(1);
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, token, n, spool, batch) = match args.as_slice() {
        [_, url, token, n, spool] => (url, token, n, spool, "500"),
        [_, url, token, n, spool, batch] => (url, token, n, spool, batch.as_str()),
        _ => usage(),
    };
    let (Ok(n), Ok(batch)) = (n.parse::<u64>(), batch.parse::<usize>()) else {
        usage()
    };
    let spool = std::path::PathBuf::from(spool);
    let _ = std::fs::remove_dir_all(&spool);

    // 1. Live.
    let client = Client::builder(url, token)
        .service("throughput")
        .batch_max_events(batch)
        .batch_max_bytes(64 << 20)
        .spool_dir(spool.join("live"))
        .build()
        .expect("client");
    let start = Instant::now();
    events(&client, n);
    let emitted = start.elapsed();
    client
        .flush_timeout(Duration::from_secs(600))
        .await
        .expect("flush");
    let delivered = start.elapsed();
    let s = client.stats();
    client
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    println!(
        "live: {n} events; emit {:.2} µs/event; delivered in {:.2} s = {:.0} events/s; \
         spilled {}, queue high water {}, retries {}",
        emitted.as_secs_f64() * 1e6 / n as f64,
        delivered.as_secs_f64(),
        n as f64 / delivered.as_secs_f64(),
        s.spilled,
        s.queue_high_water,
        s.retries
    );
    assert_eq!(s.delivered, n, "{s:?}");

    // 2. Backlog: fill the spool while Vigil is unreachable, then drain it.
    let offline = Client::builder("http://127.0.0.1:9", token)
        .service("throughput-backlog")
        .spool_dir(spool.join("backlog"))
        .queue_capacity(1000)
        .backoff(Duration::from_secs(3600), Duration::from_secs(3600))
        .build()
        .expect("client");
    let start = Instant::now();
    events(&offline, n);
    let spooled_in = start.elapsed();
    let _ = offline.shutdown(Duration::from_millis(100)).await;
    let bytes = offline.stats().spool_bytes;
    drop(offline);
    let drain = Client::builder(url, token)
        .batch_max_events(batch)
        .batch_max_bytes(64 << 20)
        .spool_dir(spool.join("backlog"))
        .build()
        .expect("client");
    let start = Instant::now();
    drain
        .shutdown(Duration::from_secs(600))
        .await
        .expect("drain");
    let drained = start.elapsed();
    let s = drain.stats();
    println!(
        "backlog: {n} events ({:.1} MB) spooled at {:.2} µs/event; drained in {:.2} s = {:.0} events/s",
        bytes as f64 / 1e6,
        spooled_in.as_secs_f64() * 1e6 / n as f64,
        drained.as_secs_f64(),
        n as f64 / drained.as_secs_f64()
    );
    assert_eq!(s.delivered, n, "{s:?}");
    let _ = std::fs::remove_dir_all(&spool);
}
