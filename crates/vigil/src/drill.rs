//! `vigil drill SCENARIO`: runs an incident-response drill on the running server
//! (`POST /api/v1/drills`) and prints its report; `vigil drill --list` lists the scenarios.
//! Exit 0: every step passed; 1: a step failed (the report says which and why); 2: the drill
//! could not run.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

/// Arguments of `vigil drill`.
#[derive(clap::Args)]
pub struct DrillArgs {
    /// The scenario: ssh-brute-force, web-scan, sudo-escalation, windows-credential-dumping,
    /// insider-probing, or one of yours (`drills/*.toml` beside a rule directory).
    #[arg(required_unless_present = "list")]
    scenario: Option<String>,
    /// List the scenarios and the recent reports instead.
    #[arg(long)]
    list: bool,
    /// How long the drill waits for its alerts, notifications and bans (default: the
    /// server's `[drills] timeout`, 60 s).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The running server's HTTP address.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        env = "VIGIL_SERVER"
    )]
    server: String,
    /// An admin or analyst API token (`vigil token create --role analyst`); or set VIGIL_TOKEN.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "VIGIL_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
}

/// `vigil drill …`.
pub fn run(args: DrillArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: DrillArgs) -> Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base = args.server.trim_end_matches('/');
    let Some(token) = &args.token else {
        bail!("an API token is needed: --token TOKEN or VIGIL_TOKEN (see `vigil token create`)");
    };
    let request = match (&args.scenario, args.list) {
        (Some(name), false) => client
            .post(format!("{base}/api/v1/drills"))
            .json(&serde_json::json!({"scenario": name, "timeout": args.timeout})),
        _ => client.get(format!("{base}/api/v1/drills")),
    };
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("reaching {base} (is `vigil serve` running?)"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        bail!(
            "{status}: {}",
            body["error"].as_str().unwrap_or("request refused")
        );
    }
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
    } else if args.scenario.is_none() || args.list {
        for s in body["scenarios"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "{:<28} {:>3} events  {}",
                s["name"].as_str().unwrap_or(""),
                s["events"],
                s["title"].as_str().unwrap_or("")
            )?;
        }
        for r in body["reports"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "{}  {:<28} {}",
                r["run"].as_str().unwrap_or(""),
                r["scenario"].as_str().unwrap_or(""),
                if r["passed"] == true {
                    "passed"
                } else {
                    "FAILED"
                }
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    } else {
        print_report(&mut out, &body)?;
    }
    Ok(if body["passed"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(out: &mut impl Write, r: &serde_json::Value) -> Result<()> {
    writeln!(
        out,
        "drill {} ({}): {}",
        r["run"].as_str().unwrap_or(""),
        r["scenario"].as_str().unwrap_or(""),
        if r["passed"] == true {
            "PASSED"
        } else {
            "FAILED"
        }
    )?;
    for s in r["steps"].as_array().into_iter().flatten() {
        let latency = s["latency_ms"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |l| format!("{l:.1} ms"));
        writeln!(
            out,
            "  {:<7} {:>10}  {}: {}",
            s["status"].as_str().unwrap_or(""),
            latency,
            s["name"].as_str().unwrap_or(""),
            s["detail"].as_str().unwrap_or("")
        )?;
    }
    if let Some(seq) = r["seq"].as_u64() {
        writeln!(out, "  report recorded in the ledger at seq {seq}")?;
    }
    Ok(())
}
