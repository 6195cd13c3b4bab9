//! A tiny "shop" that reports its security events to Vigil: typed OWASP constructors for the
//! events it knows, and plain `tracing` calls with target `security` for the rest.
//!
//! ```sh
//! vigil token create --role ingest --name shop      # prints TOKEN
//! VIGIL_URL=http://127.0.0.1:8080 VIGIL_TOKEN=TOKEN cargo run -p vigil-client --example shop
//! ```
//!
//! The end-to-end test (`crates/vigil/tests/client_e2e.rs`) includes this file and runs
//! [`scenario`] against a real `vigil serve`.

use std::net::IpAddr;
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use vigil_client::{Client, SecurityEvent, VigilLayer};

/// How many events one [`scenario`] round emits.
pub const EVENTS_PER_ROUND: u64 = 8;

/// One round of shop traffic: a failed and a successful login, a forbidden admin page, an
/// upload, a permissions change, a session end, and two events through `tracing`. Every event
/// carries `labels.step`, counting up from `first_step`, so order can be checked.
pub fn scenario(client: &Client, customer: &str, first_step: u64) {
    let ip: IpAddr = "203.0.113.5"
        .parse()
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mut step = first_step;
    let mut next = || {
        step += 1;
        step - 1
    };
    let typed = [
        SecurityEvent::login_fail(customer)
            .source_ip(ip)
            .user_agent("curl/8.5"),
        SecurityEvent::login_success_after_fail(customer, 1).source_ip(ip),
        SecurityEvent::authz_fail(customer, "/admin/orders").source_ip(ip),
        SecurityEvent::upload_complete(customer, "avatar.png", "image/png"),
        SecurityEvent::permissions_changed("admin", "order-42", "read", "write"),
        SecurityEvent::session_expired(customer, "logout"),
    ];
    for e in typed {
        // `send` errs only once the client is shut down.
        let _ = client.emit(e.field("labels.step", next() as i64));
    }
    tracing::warn!(
        target: "security",
        event = "input_validation_fail",
        user = customer,
        source_ip = "203.0.113.5",
        step = next(),
        "checkout form failed validation"
    );
    tracing::info!(
        security = true,
        event = "sensitive_read",
        user = customer,
        resource = "/orders/42",
        step = next(),
        "order details viewed"
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("VIGIL_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("VIGIL_TOKEN").map_err(|_| "set VIGIL_TOKEN to an ingest token")?;
    let spool = std::env::temp_dir().join("vigil-shop-spool");
    let client = Client::builder(&url, &token)
        .service("shop")
        .spool_dir(&spool)
        .build()?;
    // Security events logged with `tracing` go to Vigil too.
    let subscriber = tracing_subscriber::registry().with(VigilLayer::new(client.clone()));
    tracing::subscriber::set_global_default(subscriber)?;

    client.emit(SecurityEvent::sys_startup("shop"))?;
    scenario(&client, "alice", 0);
    client.emit(SecurityEvent::sys_shutdown("shop"))?;

    match client.shutdown(Duration::from_secs(10)).await {
        Ok(()) => println!("all {} events delivered", client.stats().delivered),
        Err(e) => println!("{e}; the rest waits in {}", spool.display()),
    }
    Ok(())
}
