//! Writes realistic mixed security logs for benchmarks: sshd/sudo/su/PAM/cron syslog
//! (`auth.log`), combined-format web access (`access.log`) and OWASP-vocabulary application
//! events as JSON lines (`app.json`), over seven days, with brute-force sources, scanners and a
//! handful of needle lines (the user `zz9needle`) for rare-term searches.
//!
//! ```text
//! cargo run --release -p vigil --example gen_logs -- OUT_DIR [LINES] [SEED]
//! ```
//!
//! Deterministic for a seed; no dependencies (its own splitmix64).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    /// Skewed towards small values: a few addresses and users dominate, like real traffic.
    fn skewed(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as u64).saturating_sub(1).min(n - 1)
    }
}

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar", "peggy", "trent", "victor", "walter", "deploy", "backup", "postgres", "www-data",
];
const GUESSES: &[&str] = &[
    "root", "admin", "test", "user", "oracle", "ubuntu", "pi", "guest", "ftpuser", "git",
    "support", "nagios", "hadoop", "mysql", "postgres", "jenkins",
];
const HOSTS: &[&str] = &[
    "web-1",
    "web-2",
    "web-3",
    "db-1",
    "bastion",
    "mail",
    "ci-runner",
];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/login",
    "/logout",
    "/api/v1/orders",
    "/api/v1/users/me",
    "/static/app.js",
    "/static/app.css",
    "/images/logo.png",
    "/search?q=shoes",
    "/cart",
    "/checkout",
    "/account/settings",
    "/favicon.ico",
    "/robots.txt",
];
const SCAN_PATHS: &[&str] = &[
    "/wp-login.php",
    "/.env",
    "/phpmyadmin/",
    "/admin/config.php",
    "/.git/config",
    "/cgi-bin/test.cgi",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/server-status",
    "/../../etc/passwd",
    "/actuator/health",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/8.5.0",
    "python-requests/2.31.0",
];
const SCANNER_AGENTS: &[&str] = &["sqlmap/1.8", "Nikto/2.5.0", "masscan/1.3", "zgrab/0.x"];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn ip(rng: &mut Rng, pool: u64) -> String {
    let n = rng.skewed(pool) as u32;
    // Spread over a few public-looking /8s.
    let first = [203u32, 198, 45, 185, 91, 103, 177, 31][(n % 8) as usize];
    format!(
        "{first}.{}.{}.{}",
        (n >> 3) & 255,
        (n >> 11) & 255,
        1 + (n >> 19) % 254
    )
}

/// Civil date from days since the epoch (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map_or("bench-data", String::as_str));
    let lines: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let mut rng = Rng(args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42));
    std::fs::create_dir_all(&out)?;
    let mut auth = BufWriter::with_capacity(1 << 20, File::create(out.join("auth.log"))?);
    let mut access = BufWriter::with_capacity(1 << 20, File::create(out.join("access.log"))?);
    let mut app = BufWriter::with_capacity(1 << 20, File::create(out.join("app.json"))?);

    let start: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let span: i64 = 7 * 86_400;
    let needle_every = (lines / 7).max(1);
    let mut pid = 1000u64;
    for i in 0..lines {
        let t = start + (i as i64 * span) / lines as i64;
        let (y, mo, d) = civil(t.div_euclid(86_400));
        let sec = t.rem_euclid(86_400);
        let (hh, mm, ss) = (sec / 3600, (sec / 60) % 60, sec % 60);
        let host = *rng.pick(HOSTS);
        pid += 1 + rng.below(3);
        let needle = i % needle_every == needle_every / 2;
        match rng.below(100) {
            // Web access, 45%: mostly customers, some scanners.
            0..=44 => {
                let scanner = rng.below(100) < 6;
                let (addr, path, status, agent) = if scanner {
                    (
                        ip(&mut rng, 300),
                        *rng.pick(SCAN_PATHS),
                        *rng.pick(&[404, 404, 403, 400, 301]),
                        *rng.pick(SCANNER_AGENTS),
                    )
                } else {
                    (
                        ip(&mut rng, 40_000),
                        *rng.pick(PATHS),
                        *rng.pick(&[200, 200, 200, 200, 304, 302, 404, 403, 500]),
                        *rng.pick(AGENTS),
                    )
                };
                let method = *rng.pick(&["GET", "GET", "GET", "POST", "HEAD"]);
                let bytes = if status == 304 {
                    0
                } else {
                    200 + rng.below(40_000)
                };
                let user = if needle { "zz9needle" } else { "-" };
                writeln!(
                    access,
                    "{addr} - {user} [{d:02}/{}/{y}:{hh:02}:{mm:02}:{ss:02} +0000] \"{method} {path} HTTP/1.1\" {status} {bytes} \"-\" \"{agent}\"",
                    MONTHS[mo as usize - 1]
                )?;
            }
            // System auth, 35%.
            45..=79 => {
                let stamp = format!("{} {d:2} {hh:02}:{mm:02}:{ss:02}", MONTHS[mo as usize - 1]);
                let addr = ip(&mut rng, 5_000);
                let port = 1024 + rng.below(64_000);
                let line = match rng.below(20) {
                    0..=8 => format!(
                        "sshd[{pid}]: Failed password for invalid user {} from {addr} port {port} ssh2",
                        if needle {
                            "zz9needle"
                        } else {
                            rng.pick(GUESSES)
                        }
                    ),
                    9..=11 => format!(
                        "sshd[{pid}]: Failed password for {} from {addr} port {port} ssh2",
                        rng.pick(USERS)
                    ),
                    12..=13 => format!(
                        "sshd[{pid}]: Accepted publickey for {} from {addr} port {port} ssh2: ED25519 SHA256:{:016x}",
                        rng.pick(USERS),
                        rng.next()
                    ),
                    14 => format!(
                        "sshd[{pid}]: Accepted password for {} from {addr} port {port} ssh2",
                        rng.pick(USERS)
                    ),
                    15 => format!(
                        "sshd[{pid}]: Invalid user {} from {addr} port {port}",
                        rng.pick(GUESSES)
                    ),
                    16 => format!(
                        "sudo: {} : TTY=pts/{} ; PWD=/home/{0} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
                        rng.pick(USERS),
                        rng.below(8)
                    ),
                    17 => format!(
                        "sshd[{pid}]: pam_unix(sshd:session): session opened for user {} by (uid=0)",
                        rng.pick(USERS)
                    ),
                    18 => format!(
                        "CRON[{pid}]: pam_unix(cron:session): session closed for user {}",
                        rng.pick(&["root", "backup"])
                    ),
                    _ => format!("su: (to root) {} on pts/{}", rng.pick(USERS), rng.below(8)),
                };
                writeln!(auth, "{stamp} {host} {line}")?;
            }
            // Application events, 20%: the OWASP logging vocabulary as JSON.
            _ => {
                let user = if needle { "zz9needle" } else { rng.pick(USERS) };
                let addr = ip(&mut rng, 20_000);
                let (event, level, extra) = match rng.below(10) {
                    0..=3 => ("authn_login_success", "INFO", String::new()),
                    4..=5 => ("authn_login_fail", "WARN", String::new()),
                    6 => (
                        "authz_fail",
                        "CRITICAL",
                        format!(r#","resource":"/api/v1/accounts/{}""#, rng.below(10_000)),
                    ),
                    7 => ("session_created", "INFO", String::new()),
                    8 => (
                        "input_validation_fail",
                        "WARN",
                        format!(r#","field":"{}""#, rng.pick(&["email", "qty", "zip"])),
                    ),
                    _ => (
                        "sensitive_read",
                        "WARN",
                        format!(r#","resource":"/reports/{}""#, rng.below(500)),
                    ),
                };
                writeln!(
                    app,
                    r#"{{"datetime":"{y}-{mo:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z","appid":"shop","event":"{event}:{user}","level":"{level}","description":"User {user} {event}","source_ip":"{addr}","hostname":"{host}"{extra}}}"#
                )?;
            }
        }
    }
    auth.flush()?;
    access.flush()?;
    app.flush()?;
    eprintln!("wrote {lines} lines to {}", out.display());
    Ok(())
}
