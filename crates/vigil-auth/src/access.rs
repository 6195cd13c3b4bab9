//! The role table: who may call which route, stated once. The server's route guard
//! (`vigil-server`'s `http::route_guard`) looks every routed request up here ([`lookup`]) and
//! authenticates and authorises it as the table says, refusing routes the table lacks; the
//! handlers check nothing themselves. The test that walks every route anonymously and with
//! every role (`crates/vigil/tests/ui_security.rs`) checks the answers against this table, and
//! a unit test in `vigil-server` checks that every route the router declares is in it.

use crate::token::Role;

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, the login page and its assets, the login action.
    Public,
    /// The UI shell: a browser session of a role that may read; otherwise a redirect to the
    /// login page (or 403 for a session whose role cannot read).
    UiSession,
    /// A browser session of any role (session info, logout).
    SessionOnly,
    /// Read events, alerts, rules, integrity: admin, analyst, viewer.
    Read,
    /// Change alerts, run a verification: admin, analyst.
    Triage,
    /// Ban and unban by hand: admin, analyst.
    Ban,
    /// Send events: admin, ingest.
    Ingest,
    /// Manage accounts and tokens: admin.
    Admin,
    /// CrowdSec bouncer endpoints: bouncer keys in `X-Api-Key` only (403 otherwise, as the
    /// CrowdSec LAPI answers).
    Bouncer,
}

impl Access {
    /// Whether an authenticated caller of `role` may use a route of this kind.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::SessionOnly => true,
            Access::UiSession | Access::Read => role.can_read(),
            Access::Triage => role.can_triage(),
            Access::Ban => role.can_ban(),
            Access::Ingest => role.can_ingest(),
            Access::Admin => role.can_administer(),
            Access::Bouncer => role.can_bounce(),
        }
    }
}

/// One route and what it asks.
#[derive(Debug, Clone, Copy)]
pub struct RouteAccess {
    /// HTTP method.
    pub method: &'static str,
    /// Path as the router declares it (`{id}` for parameters).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn r(method: &'static str, path: &'static str, access: Access) -> RouteAccess {
    RouteAccess {
        method,
        path,
        access,
    }
}

/// Every route of the router. `GET /` answers browsers (no `Authorization`) with a redirect to
/// the UI and Elasticsearch shippers (with credentials) as an ingest route.
pub const ROUTES: &[RouteAccess] = &[
    r("GET", "/healthz", Access::Public),
    // C2SP tlog-witness: the log's signature authenticates (rate-limited per address).
    r("POST", "/witness/add-checkpoint", Access::Public),
    r("GET", "/api/v1/witness", Access::Read),
    r("GET", "/login", Access::Public),
    r("GET", "/assets/login.js", Access::Public),
    r("GET", "/assets/vigil.css", Access::Public),
    r("GET", "/favicon.ico", Access::Public),
    r("POST", "/api/v1/login", Access::Public),
    r("GET", "/services/collector/health", Access::Public),
    r("GET", "/services/collector/health/1.0", Access::Public),
    r("GET", "/ui", Access::Public),
    r("GET", "/ui/", Access::UiSession),
    r("GET", "/api/v1/session", Access::SessionOnly),
    r("POST", "/api/v1/logout", Access::SessionOnly),
    r("POST", "/api/v1/password", Access::SessionOnly),
    r("GET", "/api/v1/users", Access::Admin),
    r("POST", "/api/v1/users", Access::Admin),
    r("DELETE", "/api/v1/users/{name}", Access::Admin),
    r("GET", "/api/v1/tokens", Access::Admin),
    r("POST", "/api/v1/tokens", Access::Admin),
    r("DELETE", "/api/v1/tokens/{id}", Access::Admin),
    r("GET", "/assets/app.js", Access::Read),
    r("GET", "/metrics", Access::Read),
    r("GET", "/api/v1/checkpoint", Access::Read),
    r("GET", "/api/v1/key", Access::Read),
    r("GET", "/api/v1/integrity", Access::Read),
    r("POST", "/api/v1/search", Access::Read),
    r("GET", "/api/v1/export", Access::Read),
    r("GET", "/api/v1/alerts", Access::Read),
    r("GET", "/api/v1/alerts/{id}", Access::Read),
    r("GET", "/api/v1/rules", Access::Read),
    // Why an event did or did not match a rule: reads a stored event, changes nothing.
    r("POST", "/api/v1/rules/trace", Access::Read),
    // Drills: the scenarios and reports are read; running one sends (marked) events through
    // the listeners and raises alerts, so analysts and admins only.
    r("GET", "/api/v1/drills", Access::Read),
    r("POST", "/api/v1/drills", Access::Triage),
    r("GET", "/api/v1/exceptions", Access::Read),
    // Saved searches and dashboard panels: every reader keeps their own; the handler lets only
    // analysts and admins save, change or remove shared ones (audited).
    r("GET", "/api/v1/saved-searches", Access::Read),
    r("POST", "/api/v1/saved-searches", Access::Read),
    r("POST", "/api/v1/saved-searches/{id}", Access::Read),
    r("DELETE", "/api/v1/saved-searches/{id}", Access::Read),
    // Rule exceptions silence detections: analysts and admins, audited.
    r("POST", "/api/v1/exceptions", Access::Triage),
    r("DELETE", "/api/v1/exceptions/{id}", Access::Triage),
    // Cases: everyone who reads sees them; analysts and admins change them (audited).
    r("GET", "/api/v1/cases", Access::Read),
    r("GET", "/api/v1/cases/{id}", Access::Read),
    r("POST", "/api/v1/cases", Access::Triage),
    r("POST", "/api/v1/cases/{id}", Access::Triage),
    r("POST", "/api/v1/cases/{id}/comments", Access::Triage),
    r("POST", "/api/v1/cases/{id}/alerts", Access::Triage),
    r("POST", "/api/v1/cases/{id}/events", Access::Triage),
    // One address, account or host across every source (a search; audited).
    r("GET", "/api/v1/entity/{kind}/{value}", Access::Read),
    r("GET", "/api/v1/coverage", Access::Read),
    r("GET", "/api/v1/coverage/navigator", Access::Read),
    r("GET", "/api/v1/cluster", Access::Read),
    r("GET", "/api/v1/decisions", Access::Read),
    r("GET", "/api/v1/proof/inclusion", Access::Read),
    r("GET", "/api/v1/report/{framework}", Access::Read),
    r("GET", "/api/v1/sources", Access::Read),
    r("GET", "/api/v1/intel", Access::Read),
    r("POST", "/api/v1/alerts/{id}", Access::Triage),
    r("POST", "/api/v1/integrity/verify", Access::Triage),
    r("POST", "/api/v1/decisions", Access::Ban),
    r("DELETE", "/api/v1/decisions/{id}", Access::Ban),
    r("POST", "/api/v1/ingest", Access::Ingest),
    r("POST", "/services/collector", Access::Ingest),
    r("POST", "/services/collector/event", Access::Ingest),
    r("POST", "/services/collector/event/1.0", Access::Ingest),
    r("POST", "/services/collector/raw", Access::Ingest),
    r("POST", "/services/collector/raw/1.0", Access::Ingest),
    r("POST", "/v1/logs", Access::Ingest),
    r(
        "POST",
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Access::Ingest,
    ),
    r("POST", "/_bulk", Access::Ingest),
    r("POST", "/{index}/_bulk", Access::Ingest),
    r("GET", "/", Access::Ingest),
    r("GET", "/v1/decisions/stream", Access::Bouncer),
    r("GET", "/v1/decisions", Access::Bouncer),
];

/// What the table says of a routed request: `method` as sent (`HEAD` is looked up as `GET`, as
/// the router answers it) and `path` as the router declares it (its `MatchedPath`). `None`
/// for a route missing from the table, which the server refuses (deny by default).
pub fn lookup(method: &str, path: &str) -> Option<&'static RouteAccess> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_get_what_the_table_says() {
        assert!(Access::Read.allows(Role::Viewer));
        assert!(!Access::Triage.allows(Role::Viewer));
        assert!(!Access::Read.allows(Role::Ingest));
        assert!(!Access::Read.allows(Role::Bouncer));
        assert!(Access::Ingest.allows(Role::Admin));
        assert!(!Access::Ingest.allows(Role::Analyst));
        assert!(!Access::Bouncer.allows(Role::Admin));
    }

    #[test]
    fn lookup_maps_head_to_get_and_knows_nothing_else() {
        assert_eq!(lookup("GET", "/metrics").unwrap().access, Access::Read);
        assert_eq!(lookup("HEAD", "/").unwrap().access, Access::Ingest);
        assert_eq!(
            lookup("POST", "/api/v1/alerts/{id}").unwrap().access,
            Access::Triage
        );
        assert!(lookup("PUT", "/api/v1/alerts/{id}").is_none());
        assert!(
            lookup("GET", "/api/v1/alerts/7").is_none(),
            "templates, not paths"
        );
        assert!(lookup("GET", "/api/v1/nothing").is_none());
    }
}
