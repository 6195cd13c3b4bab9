//! The cluster against one node, over the query generator: a real 3-server NATS cluster, three
//! real `vigil serve --cluster` nodes (4 partitions + `sys`) and one standalone `vigil serve`,
//! fed the same events — the corpus's `auth.log` and `w3af` access log (through the HEC raw
//! endpoint, split over the three cluster nodes) and generated events with many distinct values
//! (NDJSON) — then a few hundred generated queries asked of a random cluster node and of the
//! standalone node over HTTP. The answers must agree by the merge semantics docs/cluster.md
//! states ("What is exact and what is estimated"): below the `dc` and percentile bounds, which
//! these events stay under, everything compared here is exact.
//!
//! Every event gets its own second (the corpus lines' times are rewritten, in order): the
//! documented tie rule (equal timestamps on two shards are ordered by shard sequence) then
//! never applies, so event lists, `head`, `dedup` and `sort` compare exactly too. Queries on
//! `vigil.seq` are left out: in a cluster it is the event's sequence in its shard (documented).
//!
//! The seed is printed; `VIGIL_DIFF_SEED=N` replays one. Seeds that found a bug are kept in
//! [`SEEDS`].

mod common;

#[path = "../../vigil-index/tests/querygen/mod.rs"]
mod querygen;

use std::path::PathBuf;

use common::cluster::ClusterFixture;
use common::{Server, curl, wait_until};
use querygen::{FIELDS, GROUP_FIELDS, Gen, random_event, random_query};
use serde_json::Value as Json;
use vigil_event::{Event, Timestamp, Value};

/// 2026-11-14T00:00:00Z: every event of the test falls on this day (syslog lines carry no
/// year: a day before today's makes both servers read the same year).
const DAY: i64 = 1_794_614_400;
/// The search window: that day and no more, so the audit events the searches themselves
/// write (now) are never counted.
const FROM: &str = "2026-11-14T00:00:00Z";
const TO: &str = "2026-11-15T00:00:00Z";

/// Seeds run every time (one that found a bug stays here), then one new seed per run.
/// (1796674820997736577 found a chart past its 1,000-series bound keeping the first series
/// each store saw, which differed between one node and merged shards.)
const SEEDS: &[u64] = &[1, 1796674820997736577];
/// Lines of each corpus file, and generated events (about 5,000 events in all: enough for
/// thousands of distinct values, few enough for a debug build on a busy machine).
const CORPUS_LINES: usize = 1_500;
const GENERATED: usize = 2_000;
/// Data partitions of the cluster.
const PARTITIONS: u32 = 4;
/// Queries per seed.
const QUERIES: usize = 120;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS").map(PathBuf::from);
    match dir {
        Some(d) if d.join("elastic-examples/auth_log").is_dir() => Some(d),
        _ => {
            assert!(
                std::env::var_os("VIGIL_REQUIRE_TOOLS").is_none(),
                "VIGIL_CORPUS is required (VIGIL_REQUIRE_TOOLS is set)"
            );
            common::skip("VIGIL_CORPUS not set");
            None
        }
    }
}

/// `HH:MM:SS` of second `s` of the day.
fn clock(s: i64) -> String {
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// One batch for one endpoint.
enum Batch {
    /// HEC raw lines of a sourcetype.
    Raw(&'static str, String),
    /// NDJSON events.
    Json(String),
}

/// The events of the test, in batches, and how many events they hold. Second `1 + i` of
/// [`DAY`] belongs to the `i`-th event, corpus lines and generated ones interleaved.
fn batches(corpus: &std::path::Path, g: &mut Gen, generated: usize) -> (Vec<Batch>, usize) {
    let auth = std::fs::read_to_string(corpus.join("elastic-examples/auth_log/auth.log.part1of3"))
        .expect("auth.log");
    let access = std::fs::read_to_string(corpus.join("apache-http-logs-scans/w3af.txt"))
        .expect("w3af access log");
    let auth: Vec<&str> = auth
        .lines()
        .filter(|l| l.len() > 16 && l.is_char_boundary(15))
        .take(CORPUS_LINES)
        .collect();
    let access: Vec<&str> = access
        .lines()
        .filter(|l| l.contains("] \""))
        .take(CORPUS_LINES)
        .collect();
    let stamp = regex::Regex::new(r"\[[^\]]+\]").unwrap();
    let (mut a, mut w, mut n) = (0, 0, 0);
    let mut second = 0i64;
    let mut out = Vec::new();
    let total = auth.len() + access.len() + generated;
    while a < auth.len() || w < access.len() || n < generated {
        // A batch of up to 200 events of one kind, chosen at random among the kinds left.
        let kind = loop {
            let k = g.below(3);
            if [a < auth.len(), w < access.len(), n < generated][k] {
                break k;
            }
        };
        let size = 1 + g.below(200);
        let mut text = String::new();
        for _ in 0..size {
            second += 1;
            match kind {
                0 if a < auth.len() => {
                    // "Mar 27 13:06:56 host …": the same line at its new second.
                    text.push_str(&format!("Nov 14 {}{}\n", clock(second), &auth[a][15..]));
                    a += 1;
                }
                1 if w < access.len() => {
                    let at = format!("[14/Nov/2026:{} +0000]", clock(second));
                    text.push_str(&stamp.replace(access[w], at.as_str()));
                    text.push('\n');
                    w += 1;
                }
                2 if n < generated => {
                    let mut e = generated_event(g, n);
                    e.set_timestamp(Timestamp::from_secs(DAY + second));
                    text.push_str(&e.to_json().to_string());
                    text.push('\n');
                    n += 1;
                }
                _ => second -= 1,
            }
        }
        out.push(match kind {
            0 => Batch::Raw("linux_secure", text),
            1 => Batch::Raw("access_combined", text),
            _ => Batch::Json(text),
        });
    }
    assert!(second < 86_000, "the events fit in the day");
    (out, total)
}

/// The querygen's random event (no explicit nulls: they read as absent across shards,
/// documented), with fields of many distinct values for `dc`, `top`, percentiles and
/// `sort | head`.
fn generated_event(g: &mut Gen, n: usize) -> Event {
    let mut e = random_event(g);
    let nulls: Vec<String> = e
        .fields()
        .filter(|(_, v)| matches!(v, Value::Null))
        .map(|(k, _)| k.to_owned())
        .collect();
    for k in nulls {
        e.remove(&k);
    }
    // A float that is not finite goes out as JSON null: an explicit null, which reads as
    // absent once it crossed from a shard (documented); keep the finite ones.
    if e.get("ratio").is_some_and(|v| v.to_json().is_null()) {
        e.remove("ratio");
    }
    e.insert("session.id", format!("s{}", g.below(3000)));
    e.insert("latency", g.below(100_000) as i64);
    e.insert("req", n as i64);
    if g.chance(50) {
        e.insert("bytes", g.below(1_000_000) as i64);
    }
    e
}

/// Fields of the corpus's events and the generated ones, for the queries of [`query`].
const MORE_FIELDS: &[&str] = &[
    "source.ip",
    "user.name",
    "host.name",
    "event.action",
    "event.outcome",
    "process.name",
    "http.request.method",
    "http.response.status_code",
    "url.original",
    "user_agent.original",
    "session.id",
    "vigil.sourcetype",
];
const NUMBERS: &[&str] = &["latency", "bytes", "req", "http.response.status_code"];

/// A generated query: the index differential's generator half the time, else aggregations
/// over the corpus's fields and the many-valued generated ones.
fn query(g: &mut Gen) -> String {
    if g.chance(50) {
        return random_query(g).replace("2023-11-14T23:30:00Z", "2026-11-14T01:30:00Z");
    }
    let f = |g: &mut Gen| *g.pick(MORE_FIELDS);
    let num = |g: &mut Gen| *g.pick(NUMBERS);
    let by = |g: &mut Gen| match g.below(3) {
        0 => String::new(),
        1 => format!(" by {}", g.pick(MORE_FIELDS)),
        _ => format!(" by {}, {}", g.pick(GROUP_FIELDS), g.pick(MORE_FIELDS)),
    };
    let search = *g.pick(&[
        "",
        "sshd",
        "\"Failed password\"",
        "vigil.sourcetype=access_combined",
        "http.response.status_code>=400",
        "NOT user.name=root",
        "latency>50000",
        "GET",
        "session.id=s1*",
    ]);
    let tail = match g.below(14) {
        0 => format!(" | stats count, dc({}) as d{}", f(g), by(g)),
        1 => format!(
            " | stats median({}), perc90({}), perc99({}), p50({}){}",
            num(g),
            num(g),
            num(g),
            num(g),
            by(g)
        ),
        2 => format!(
            " | stats sum({}), min({}), max({}), avg({}){}",
            num(g),
            num(g),
            f(g),
            num(g),
            by(g)
        ),
        3 => format!(" | top limit={} {}", 1 + g.below(20), f(g)),
        4 => format!(" | rare {}", f(g)),
        5 => format!(" | sort -{} | head {}", num(g), 1 + g.below(30)),
        6 => format!(
            " | sort {}, -{} | table {}, {} | head {}",
            f(g),
            num(g),
            f(g),
            num(g),
            1 + g.below(30)
        ),
        7 => format!(
            " | timechart span={} count by {}",
            g.pick(&["10m", "1h"]),
            f(g)
        ),
        8 => format!(" | timechart span=30m dc({}), max({})", f(g), num(g)),
        9 => format!(" | dedup {} | table {}, {}", f(g), f(g), num(g)),
        10 => format!(
            " | stats count by {} | sort -count, {} | head {}",
            f(g),
            f(g),
            1 + g.below(10)
        ),
        11 => format!(" | head {} | stats count by {}", g.below(300), f(g)),
        12 => format!(" | table {}, {}, {}", f(g), g.pick(FIELDS), num(g)),
        _ => format!(
            " | stats dc(session.id) as s, dc(latency) as l, perc95(latency) as p{}",
            by(g)
        ),
    };
    format!("{search}{tail}")
}

fn search(url: &str, token: &str, text: &str, limit: usize) -> (u16, Json) {
    let r = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        Some(
            &serde_json::json!({"query": text, "from": FROM, "to": TO, "limit": limit}).to_string(),
        ),
    );
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Json::Null),
    )
}

/// An answer as compared: columns, rows, truncation and message; not how long it took nor how
/// many events were read. Event rows lose what is per node by design: `vigil.seq` (the shard's
/// sequence in a cluster) and the time of arrival.
fn comparable(mut v: Json) -> Json {
    if let Some(o) = v.as_object_mut() {
        o.remove("took_ms");
        o.remove("scanned");
    }
    let drop_keys = |o: &mut serde_json::Map<String, Json>| {
        for k in PER_NODE {
            o.remove(*k);
        }
    };
    let columns: Vec<String> = v["columns"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|s| s.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    let keep: Vec<bool> = columns
        .iter()
        .map(|c| !PER_NODE.contains(&c.as_str()))
        .collect();
    if let Some(rows) = v["rows"].as_array_mut() {
        for row in rows {
            if let Some(cells) = row.as_array_mut() {
                let mut i = 0;
                cells.retain(|_| {
                    i += 1;
                    keep.get(i - 1).copied().unwrap_or(true)
                });
                for cell in cells {
                    if let Some(o) = cell.as_object_mut() {
                        drop_keys(o);
                    }
                }
            }
        }
    }
    if let Some(c) = v["columns"].as_array_mut() {
        c.retain(|s| !PER_NODE.contains(&s.as_str().unwrap_or("")));
    }
    v
}

/// Fields that differ between a cluster and a single node by design: the sequence (the
/// shard's in a cluster), when and through which token an event arrived (each server has its
/// own tokens), and what only a cluster records (the node that took it, its stream sequence,
/// the shard that stores it).
const PER_NODE: &[&str] = &[
    "vigil.seq",
    "vigil.received",
    "vigil.sender",
    "vigil.node",
    "vigil.stream.seq",
    "vigil.shard",
];

/// Where two answers first differ, briefly (whole answers can be megabytes).
fn difference(cluster: &Json, alone: &Json) -> String {
    let short = |v: &Json| {
        let t = v.to_string();
        if t.len() > 600 {
            format!("{}…", &t[..t.floor_char_boundary(600)])
        } else {
            t
        }
    };
    for key in ["columns", "truncated", "message"] {
        if cluster[key] != alone[key] {
            return format!(
                "{key}: cluster {} vs one node {}",
                short(&cluster[key]),
                short(&alone[key])
            );
        }
    }
    let empty = Vec::new();
    let (a, b) = (
        cluster["rows"].as_array().unwrap_or(&empty),
        alone["rows"].as_array().unwrap_or(&empty),
    );
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            return format!(
                "row {i} of {}/{}: cluster {} vs one node {}",
                a.len(),
                b.len(),
                short(x),
                short(y)
            );
        }
    }
    format!("{} rows on the cluster vs {} on one node", a.len(), b.len())
}

fn post(url: &str, path: &str, auth: &str, content_type: &str, body: &str) -> common::Answer {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, body.as_bytes()).unwrap();
    curl(
        "POST",
        &format!("{url}{path}"),
        &[
            auth.to_owned(),
            format!("Content-Type: {content_type}"),
            "Expect:".to_owned(),
        ],
        Some(&format!("@{}", file.path().display())),
    )
}

fn send(url: &str, token: &str, batch: &Batch) {
    let r = match batch {
        Batch::Raw(sourcetype, text) => post(
            url,
            &format!("/services/collector/raw?sourcetype={sourcetype}"),
            &format!("Authorization: Splunk {token}"),
            "text/plain",
            text,
        ),
        Batch::Json(text) => post(
            url,
            "/api/v1/ingest",
            &format!("Authorization: Bearer {token}"),
            "application/x-ndjson",
            text,
        ),
    };
    assert_eq!(r.status, 200, "{url}: {}", r.body);
}

/// `batch` split into one batch per data partition its events go to, in the order of the
/// partitions, each keeping its events' order (parsed here as the server parses them).
///
/// A request whose events go to several shards is published as one message per shard, so the
/// stream — and every cluster answer that runs `sort`, `dedup` or `table` over events, where
/// the order events arrived in breaks ties — has them grouped by shard, not in the order the
/// request listed them (docs/cluster.md, "Ties across shards"). Sending each shard's events
/// as their own request gives both servers the same arrival order.
fn by_partition(batch: Batch, partitions: u32) -> Vec<Batch> {
    let ctx = vigil_parse::ParseContext {
        peer: Some(std::net::IpAddr::from([127, 0, 0, 1])),
        ..vigil_parse::ParseContext::new(Timestamp::from_secs(DAY + 20 * 86_400), "test")
    };
    let (text, events) = match &batch {
        Batch::Raw(sourcetype, text) => (
            text,
            vigil_ingest::decode::hec_raw(
                text.as_bytes(),
                &vigil_ingest::decode::HecRawMeta {
                    sourcetype: Some((*sourcetype).to_owned()),
                    source: None,
                    host: None,
                    index: None,
                },
                &ctx,
            ),
        ),
        Batch::Json(text) => (
            text,
            vigil_ingest::decode::ndjson(text.as_bytes(), vigil_parse::Format::Json, &ctx),
        ),
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), events.len(), "one event per line");
    let mut groups = vec![String::new(); partitions as usize];
    for (line, event) in lines.iter().zip(&events) {
        let p = vigil_cluster::partition::partition_of(event, partitions) as usize;
        groups[p].push_str(line);
        groups[p].push('\n');
    }
    groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|g| match &batch {
            Batch::Raw(sourcetype, _) => Batch::Raw(sourcetype, g),
            Batch::Json(_) => Batch::Json(g),
        })
        .collect()
}

fn count(url: &str, token: &str) -> Option<u64> {
    search(url, token, "| stats count", 10).1["rows"][0][0].as_u64()
}

#[test]
fn generated_queries_answer_the_same_on_the_cluster_and_on_one_node() {
    let Some(corpus) = corpus() else { return };
    let started = std::time::Instant::now();
    let Some(mut fx) = ClusterFixture::new(3, PARTITIONS) else {
        return;
    };
    fx.start_all();
    let (shipper, analyst) = (
        fx.token("ingest", "shipper"),
        fx.token("analyst", "analyst"),
    );
    let single_dir = fx.dir.path().join("single");
    let single = Server::start(&single_dir, &[]);
    let single_shipper = common::create_token(&single_dir, "ingest", "shipper");
    let single_analyst = common::create_token(&single_dir, "analyst", "analyst");
    let urls: Vec<String> = fx.nodes.iter().map(|n| n.url()).collect();

    // The same events into both: each batch through one cluster node in turn, and the node.
    let mut g = Gen(0x5eed);
    let (batches, total) = batches(&corpus, &mut g, GENERATED);
    let batches: Vec<Batch> = batches
        .into_iter()
        .flat_map(|b| by_partition(b, PARTITIONS))
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for (i, batch) in batches.iter().enumerate() {
                send(&urls[i % 3], &shipper, batch);
            }
        });
        for batch in &batches {
            send(&single.url, &single_shipper, batch);
        }
    });
    let total = total as u64;
    assert!(
        wait_until(120, || count(&single.url, &single_analyst) == Some(total)
            && urls.iter().all(|u| count(u, &analyst) == Some(total))),
        "every node counts {total} events: single {:?}, cluster {:?}",
        count(&single.url, &single_analyst),
        urls.iter().map(|u| count(u, &analyst)).collect::<Vec<_>>()
    );

    eprintln!(
        "cluster_differential: {total} events in {} requests, counted everywhere after {:?}",
        batches.len(),
        started.elapsed()
    );
    let mut seeds = SEEDS.to_vec();
    let fresh = std::env::var("VIGIL_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    seeds.push(fresh);
    let mut compared = 0;
    let mut refused = 0;
    for seed in seeds {
        eprintln!("cluster_differential: seed {seed} (VIGIL_DIFF_SEED={seed} replays it)");
        let mut g = Gen(seed);
        for q in 0..QUERIES {
            let text = query(&mut g);
            if text.contains("vigil.seq") {
                continue;
            }
            let limit = *g.pick(&[3, 50, 1000]);
            let node = g.below(3);
            let (s1, alone) = search(&single.url, &single_analyst, &text, limit);
            let (s2, cluster) = search(&urls[node], &analyst, &text, limit);
            assert_eq!(
                s1, s2,
                "seed {seed}: {text:?} (limit {limit}): status on one node vs the cluster: {alone} vs {cluster}"
            );
            if s1 != 200 {
                refused += 1;
                continue;
            }
            let (alone, cluster) = (comparable(alone), comparable(cluster));
            if cluster != alone {
                panic!(
                    "seed {seed}, query {q}: {text:?} (limit {limit}, asked of n{node}): the cluster differs from one node: {}",
                    difference(&cluster, &alone)
                );
            }
            compared += 1;
        }
    }
    eprintln!(
        "cluster_differential: {compared} answers compared, {refused} refused on both, in {:?} in all",
        started.elapsed()
    );
    assert!(
        compared > QUERIES,
        "only {compared} queries answered on both"
    );
}
