//! Parse throughput per format, in lines per second on one core (no redaction, no I/O).
//! `cargo bench -p vigil-parse`; figures are recorded in docs/BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_event::Timestamp;
use vigil_parse::redact::Redactor;
use vigil_parse::{Format, ParseContext, parse_line};

fn lines(template: &dyn Fn(usize) -> String, n: usize) -> Vec<String> {
    (0..n).map(template).collect()
}

fn bench(c: &mut Criterion) {
    let ctx = ParseContext::new(Timestamp::parse("2026-11-22T12:00:00Z").unwrap(), "bench");
    let sets: Vec<(&str, Format, Vec<String>)> = vec![
        (
            "cloudtrail-record",
            Format::Auto,
            lines(
                &|i| {
                    format!(
                        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROATFQR7NSCQNEXZHIOB:i-05c3021815{i:06}","arn":"arn:aws:sts::123837392027:assumed-role/ec2-role/i-05c30218156bcc246","accountId":"123837392027","accessKeyId":"ASIATFQR7NSC{:08}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROATFQR7NSCQNEXZHIOB","arn":"arn:aws:iam::123837392027:role/ec2-role","accountId":"123837392027","userName":"ec2-role"}},"attributes":{{"creationDate":"2023-07-10T12:03:25Z","mfaAuthenticated":"false"}}}}}},"eventTime":"2023-07-10T12:{:02}:{:02}Z","eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceInformation","awsRegion":"us-east-1","sourceIPAddress":"52.45.102.{}","userAgent":"aws-sdk-go/1.41.4 (go1.18.3; linux; amd64) amazon-ssm-agent/","requestParameters":{{"instanceId":"i-05c30218156bcc246","agentStatus":"Active","platformType":"Linux"}},"responseElements":null,"requestID":"80deb483-537e-4f68-8ac7-3158da886291","eventID":"2d9189b5-cb66-4363-8ecf-cfe1ecb4{:04}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123837392027","eventCategory":"Management"}}"#,
                        i,
                        i / 60 % 60,
                        i % 60,
                        i % 250,
                        i % 10_000
                    )
                },
                10_000,
            ),
        ),
        (
            "syslog-sshd-failed",
            Format::Auto,
            lines(
                &|i| {
                    format!(
                        "<38>Nov 22 10:{:02}:{:02} bastion sshd[{}]: Failed password for invalid user admin{} from 203.0.113.{} port {} ssh2",
                        i / 60 % 60,
                        i % 60,
                        4000 + i % 1000,
                        i % 100,
                        i % 250,
                        1024 + i % 60000
                    )
                },
                10_000,
            ),
        ),
        (
            "syslog-sshd-accepted",
            Format::Syslog,
            lines(
                &|i| {
                    format!(
                        "Nov 22 10:{:02}:{:02} bastion sshd[{}]: Accepted publickey for alice from 198.51.100.{} port {} ssh2: ED25519 SHA256:abc",
                        i / 60 % 60,
                        i % 60,
                        4000 + i % 1000,
                        i % 250,
                        1024 + i % 60000
                    )
                },
                10_000,
            ),
        ),
        (
            "syslog-rfc5424",
            Format::Syslog,
            lines(
                &|i| {
                    format!(
                        "<165>1 2026-11-22T10:00:{:02}.003Z web{} app 777 ID47 [meta seq=\"{i}\"] request served in {}ms",
                        i % 60,
                        i % 10,
                        i % 500
                    )
                },
                10_000,
            ),
        ),
        (
            "syslog-sudo",
            Format::Syslog,
            lines(
                &|i| {
                    format!(
                        "<85>Nov 22 10:00:{:02} bastion sudo:    user{} : TTY=pts/{} ; PWD=/home/user ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
                        i % 60,
                        i % 20,
                        i % 9
                    )
                },
                10_000,
            ),
        ),
        (
            "combined",
            Format::Auto,
            lines(
                &|i| {
                    format!(
                        "203.0.113.{} - - [22/Nov/2026:10:00:{:02} +0000] \"GET /products/{}?page={} HTTP/1.1\" {} {} \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\"",
                        i % 250,
                        i % 60,
                        i,
                        i % 7,
                        [200, 200, 304, 404, 403][i % 5],
                        1000 + i
                    )
                },
                10_000,
            ),
        ),
        (
            "json-ecs",
            Format::Auto,
            lines(
                &|i| {
                    format!(
                        "{{\"@timestamp\":\"2026-11-22T10:00:00Z\",\"event\":{{\"action\":\"authn_login_fail:u{i}\"}},\"source\":{{\"ip\":\"198.51.100.{}\"}},\"user_agent\":{{\"original\":\"curl/8\"}}}}",
                        i % 250
                    )
                },
                10_000,
            ),
        ),
        (
            "cef",
            Format::Auto,
            lines(
                &|i| {
                    format!(
                        "CEF:0|Acme|FW|1.0|100|Blocked connection|5|src=192.0.2.{} dst=10.0.0.{} spt={} dpt=443 act=blocked msg=policy deny rule {i}",
                        i % 250,
                        i % 250,
                        1024 + i % 60000
                    )
                },
                10_000,
            ),
        ),
        (
            "logfmt",
            Format::Auto,
            lines(
                &|i| {
                    format!(
                        "time=2026-11-22T10:00:00Z level=warn msg=\"login failed\" user.name=u{i} source.ip=198.51.100.{} attempt={}",
                        i % 250,
                        i % 5
                    )
                },
                10_000,
            ),
        ),
    ];
    let mut group = c.benchmark_group("parse");
    group.sample_size(20);
    for (name, format, input) in &sets {
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                for line in input {
                    std::hint::black_box(parse_line(line.as_bytes(), *format, &ctx));
                }
            })
        });
    }
    group.finish();

    // The same lines with redaction off, to show what masking costs.
    let mut bare = ctx.clone();
    bare.redactor = None;
    let mut group = c.benchmark_group("parse-no-redaction");
    group.sample_size(20);
    for (name, format, input) in sets.iter().take(2) {
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                for line in input {
                    std::hint::black_box(parse_line(line.as_bytes(), *format, &bare));
                }
            })
        });
    }
    group.finish();

    // The cost redaction adds per event (every string field scanned).
    let redactor = Redactor::default();
    let events: Vec<_> = sets[0]
        .2
        .iter()
        .map(|l| parse_line(l.as_bytes(), Format::Auto, &ctx))
        .collect();
    let mut group = c.benchmark_group("redact");
    group.sample_size(20);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("syslog-sshd-events", |b| {
        b.iter(|| {
            for e in &events {
                let mut e = e.clone();
                std::hint::black_box(redactor.redact_event(&mut e));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
