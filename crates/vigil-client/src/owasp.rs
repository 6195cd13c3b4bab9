//! Typed constructors for the OWASP logging vocabulary
//! (<https://cheatsheetseries.owasp.org/cheatsheets/Logging_Vocabulary_Cheat_Sheet.html>).
//!
//! Every constructor returns a [`SecurityEvent`] builder; [`SecurityEvent::into_event`] gives the
//! [`Event`] with these ECS fields:
//!
//! | field | value |
//! |---|---|
//! | `event.kind` | `event` |
//! | `event.action` | the OWASP name (`authn_login_fail`) |
//! | `event.code` | the OWASP event string (`authn_login_fail:alice`) |
//! | `vigil.owasp.args` | the part after `:` (what Vigil's JSON parser keeps too) |
//! | `event.category`, `event.type`, `event.outcome` | ECS allowed values, the same table as Vigil's parser (`vigil_parse::json::owasp_classification`); no outcome where it is not known |
//! | `log.level` | the cheat sheet's level: `info`, `warn` or `critical` |
//! | `event.severity` | OCSF `severity_id` of that level: info 1, warn 3, critical 5 |
//! | `user.name` | the actor, when there is one |
//! | `user.target.name`, `file.name`, `url.path`, `event.reason`, … | the subject, when there is one |
//! | `message` | a sentence in the cheat sheet's description style |
//!
//! Builder methods add `source.ip`, `user_agent.original`, `url.path`, `service.name`, the time,
//! and any other field.

use std::net::IpAddr;

use vigil_event::{Event, Timestamp, Value};

/// The cheat sheet's level of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `INFO`.
    Info,
    /// `WARN`.
    Warn,
    /// `CRITICAL`.
    Critical,
}

impl Level {
    /// The `log.level` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Critical => "critical",
        }
    }

    /// The `event.severity` value (OCSF `severity_id`: 1 informational, 3 medium, 5 critical).
    pub fn severity(self) -> i64 {
        match self {
            Level::Info => 1,
            Level::Warn => 3,
            Level::Critical => 5,
        }
    }
}

/// How one vocabulary name is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The OWASP name, e.g. `authn_login_fail`.
    pub name: &'static str,
    /// The cheat sheet's level.
    pub level: Level,
    /// `event.category`.
    pub category: &'static str,
    /// `event.type`.
    pub kind: &'static str,
    /// `event.outcome`; `unknown` is not written.
    pub outcome: &'static str,
}

const fn s(
    name: &'static str,
    level: Level,
    category: &'static str,
    kind: &'static str,
    outcome: &'static str,
) -> Spec {
    Spec {
        name,
        level,
        category,
        kind,
        outcome,
    }
}

use Level::{Critical, Info, Warn};

/// Every vocabulary name this crate knows, with its classification.
pub const SPECS: &[Spec] = &[
    s(
        "authn_login_success",
        Info,
        "authentication",
        "start",
        "success",
    ),
    s(
        "authn_login_successafterfail",
        Info,
        "authentication",
        "start",
        "success",
    ),
    s(
        "authn_login_fail",
        Warn,
        "authentication",
        "start",
        "failure",
    ),
    s(
        "authn_login_fail_max",
        Warn,
        "authentication",
        "start",
        "failure",
    ),
    s(
        "authn_login_lock",
        Warn,
        "authentication",
        "info",
        "failure",
    ),
    s("authn_password_change", Info, "iam", "change", "success"),
    s(
        "authn_password_change_fail",
        Critical,
        "iam",
        "change",
        "failure",
    ),
    s(
        "authn_impossible_travel",
        Critical,
        "authentication",
        "info",
        "unknown",
    ),
    s("authn_token_created", Info, "iam", "creation", "success"),
    s("authn_token_revoked", Info, "iam", "deletion", "success"),
    s(
        "authn_token_reuse",
        Critical,
        "authentication",
        "info",
        "failure",
    ),
    s("authn_token_delete", Warn, "iam", "deletion", "success"),
    s("authz_fail", Critical, "iam", "denied", "failure"),
    s("authz_change", Warn, "iam", "change", "success"),
    s("authz_admin", Warn, "iam", "admin", "success"),
    s("crypt_decrypt_fail", Warn, "process", "error", "failure"),
    s("crypt_encrypt_fail", Warn, "process", "error", "failure"),
    s(
        "excess_rate_limit_exceeded",
        Warn,
        "intrusion_detection",
        "denied",
        "failure",
    ),
    s("upload_complete", Info, "file", "creation", "success"),
    s("upload_stored", Info, "file", "creation", "success"),
    s("upload_validation", Info, "file", "info", "unknown"),
    s("upload_delete", Info, "file", "deletion", "success"),
    s(
        "input_validation_fail",
        Warn,
        "intrusion_detection",
        "info",
        "failure",
    ),
    s(
        "malicious_excess_404",
        Warn,
        "intrusion_detection",
        "indicator",
        "unknown",
    ),
    s(
        "malicious_extraneous",
        Critical,
        "intrusion_detection",
        "indicator",
        "unknown",
    ),
    s(
        "malicious_attack_tool",
        Critical,
        "intrusion_detection",
        "indicator",
        "unknown",
    ),
    s(
        "malicious_cors",
        Critical,
        "intrusion_detection",
        "indicator",
        "unknown",
    ),
    s(
        "malicious_direct_reference",
        Critical,
        "intrusion_detection",
        "indicator",
        "unknown",
    ),
    s(
        "privilege_permissions_changed",
        Warn,
        "iam",
        "change",
        "success",
    ),
    s("sensitive_create", Warn, "database", "creation", "success"),
    s("sensitive_read", Warn, "database", "access", "success"),
    s("sensitive_update", Warn, "database", "change", "success"),
    s("sensitive_delete", Warn, "database", "deletion", "success"),
    s(
        "sequence_fail",
        Critical,
        "intrusion_detection",
        "indicator",
        "unknown",
    ),
    s("session_created", Info, "session", "start", "success"),
    s("session_renewed", Info, "session", "info", "success"),
    s("session_expired", Info, "session", "end", "success"),
    s(
        "session_use_after_expire",
        Critical,
        "session",
        "denied",
        "failure",
    ),
    s("sys_startup", Warn, "process", "start", "success"),
    s("sys_shutdown", Warn, "process", "end", "success"),
    s("sys_restart", Warn, "process", "change", "success"),
    s("sys_crash", Warn, "process", "end", "failure"),
    s(
        "sys_monitor_disabled",
        Warn,
        "configuration",
        "change",
        "success",
    ),
    s(
        "sys_monitor_enabled",
        Warn,
        "configuration",
        "change",
        "success",
    ),
    s("user_created", Warn, "iam", "creation", "success"),
    s("user_updated", Warn, "iam", "change", "success"),
    s("user_archived", Warn, "iam", "deletion", "success"),
    s("user_deleted", Warn, "iam", "deletion", "success"),
];

/// The classification of a vocabulary name (`None` for a name this crate does not know).
pub fn spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// A security event being built. Finish with [`SecurityEvent::into_event`] or hand it straight
/// to [`crate::Client::send`].
#[derive(Debug, Clone)]
pub struct SecurityEvent {
    event: Event,
}

impl SecurityEvent {
    /// An event of vocabulary name `name` (known or not): `actor` goes to `user.name`, `args` are
    /// the OWASP arguments after the actor (in `event.code` and `vigil.owasp.args`).
    pub fn custom(name: &str, actor: Option<&str>, args: &[&str], message: String) -> Self {
        let mut event = Event::new(Timestamp::now());
        event.insert("event.kind", "event");
        event.insert("event.action", name);
        let mut all: Vec<&str> = Vec::new();
        if let Some(a) = actor {
            all.push(a);
        }
        all.extend(args.iter().copied());
        if all.is_empty() {
            event.insert("event.code", name);
        } else {
            let joined = all.join(",");
            event.insert("event.code", format!("{name}:{joined}"));
            event.insert("vigil.owasp.args", joined);
        }
        if let Some(spec) = spec(name) {
            event.insert("event.category", spec.category);
            event.insert("event.type", spec.kind);
            if spec.outcome != "unknown" {
                event.insert("event.outcome", spec.outcome);
            }
            event.insert("log.level", spec.level.as_str());
            event.insert("event.severity", spec.level.severity());
        }
        if let Some(a) = actor.filter(|a| !a.is_empty()) {
            event.insert("user.name", a);
        }
        event.insert("message", message);
        SecurityEvent { event }
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.event.insert(key, value);
        self
    }

    // ---- builder methods -----------------------------------------------------------------

    /// `source.ip`: the client's address.
    pub fn source_ip(self, ip: IpAddr) -> Self {
        self.with("source.ip", ip)
    }

    /// `user_agent.original`.
    pub fn user_agent(self, ua: &str) -> Self {
        self.with("user_agent.original", ua)
    }

    /// `url.path`: the resource the event is about.
    pub fn url_path(self, path: &str) -> Self {
        self.with("url.path", path)
    }

    /// `http.request.method`.
    pub fn http_method(self, method: &str) -> Self {
        self.with("http.request.method", method)
    }

    /// `service.name`: the application id (the client fills it in when not set).
    pub fn service(self, app_id: &str) -> Self {
        self.with("service.name", app_id)
    }

    /// `host.name`.
    pub fn host(self, name: &str) -> Self {
        self.with("host.name", name)
    }

    /// `message`, replacing the default sentence.
    pub fn message(self, message: &str) -> Self {
        self.with("message", message)
    }

    /// The event time (default: when the constructor ran).
    pub fn at(mut self, time: Timestamp) -> Self {
        self.event.set_timestamp(time);
        self
    }

    /// Any other field, under its dotted ECS name.
    pub fn field(self, key: &str, value: impl Into<Value>) -> Self {
        self.with(key, value)
    }

    /// The finished event.
    pub fn into_event(self) -> Event {
        self.event
    }

    /// The event built so far.
    pub fn event(&self) -> &Event {
        &self.event
    }

    // ---- authn -----------------------------------------------------------------------------

    /// `authn_login_success:userid` — a successful login.
    pub fn login_success(user: &str) -> Self {
        Self::custom(
            "authn_login_success",
            Some(user),
            &[],
            format!("User {user} login successfully"),
        )
    }

    /// `authn_login_successafterfail:userid,retries` — a login that succeeded after failures.
    pub fn login_success_after_fail(user: &str, retries: u32) -> Self {
        let r = retries.to_string();
        Self::custom(
            "authn_login_successafterfail",
            Some(user),
            &[&r],
            format!("User {user} login successfully after {retries} failures"),
        )
        .with("vigil.owasp.retries", retries)
    }

    /// `authn_login_fail:userid` — a failed login.
    pub fn login_fail(user: &str) -> Self {
        Self::custom(
            "authn_login_fail",
            Some(user),
            &[],
            format!("User {user} login failed"),
        )
    }

    /// `authn_login_fail_max:userid,maxlimit` — the failed-login limit was reached.
    pub fn login_fail_max(user: &str, max: u32) -> Self {
        let m = max.to_string();
        Self::custom(
            "authn_login_fail_max",
            Some(user),
            &[&m],
            format!("User {user} reached the login fail limit of {max}"),
        )
        .with("vigil.owasp.max", max)
    }

    /// `authn_login_lock:userid,reason` — an account was locked (`maxretries`, …).
    pub fn login_lock(user: &str, reason: &str) -> Self {
        Self::custom(
            "authn_login_lock",
            Some(user),
            &[reason],
            format!("User {user} login locked because {reason}"),
        )
        .with("event.reason", reason)
    }

    /// `authn_password_change:userid` — a password was changed.
    pub fn password_change(user: &str) -> Self {
        Self::custom(
            "authn_password_change",
            Some(user),
            &[],
            format!("User {user} has successfully changed their password"),
        )
    }

    /// `authn_password_change_fail:userid` — a password change failed.
    pub fn password_change_fail(user: &str) -> Self {
        Self::custom(
            "authn_password_change_fail",
            Some(user),
            &[],
            format!("User {user} failed to change their password"),
        )
    }

    /// `authn_impossible_travel:userid,region1,region2` — one user active in two far-apart
    /// places at once.
    pub fn impossible_travel(user: &str, region1: &str, region2: &str) -> Self {
        Self::custom(
            "authn_impossible_travel",
            Some(user),
            &[region1, region2],
            format!("User {user} is logged in from {region1} and {region2} at the same time"),
        )
    }

    /// `authn_token_created:userid,entitlements` — an API token was created.
    pub fn token_created(user: &str, entitlements: &str) -> Self {
        Self::custom(
            "authn_token_created",
            Some(user),
            &[entitlements],
            format!("A token has been created for {user} with {entitlements}"),
        )
    }

    /// `authn_token_revoked:userid,tokenid` — a token was revoked.
    pub fn token_revoked(user: &str, token_id: &str) -> Self {
        Self::custom(
            "authn_token_revoked",
            Some(user),
            &[token_id],
            format!("Token ID {token_id} was revoked for user {user}"),
        )
    }

    /// `authn_token_reuse:userid,tokenid` — a revoked token was used again.
    pub fn token_reuse(user: &str, token_id: &str) -> Self {
        Self::custom(
            "authn_token_reuse",
            Some(user),
            &[token_id],
            format!(
                "User {user} attempted to use token ID {token_id} which was previously revoked"
            ),
        )
    }

    /// `authn_token_delete:appid` — a token was deleted.
    pub fn token_delete(app_id: &str) -> Self {
        Self::custom(
            "authn_token_delete",
            None,
            &[app_id],
            format!("The token for {app_id} has been deleted"),
        )
    }

    // ---- authz -----------------------------------------------------------------------------

    /// `authz_fail:userid,resource` — access to a resource without entitlement.
    pub fn authz_fail(user: &str, resource: &str) -> Self {
        Self::custom(
            "authz_fail",
            Some(user),
            &[resource],
            format!("User {user} attempted to access a resource without entitlement"),
        )
        .with("url.path", resource)
    }

    /// `authz_change:userid,from,to` — a user's entitlements changed.
    pub fn authz_change(user: &str, from: &str, to: &str) -> Self {
        Self::custom(
            "authz_change",
            Some(user),
            &[from, to],
            format!("User {user} access was changed from {from} to {to}"),
        )
    }

    /// `authz_admin:userid,event` — an administrator did something.
    pub fn authz_admin(user: &str, what: &str) -> Self {
        Self::custom(
            "authz_admin",
            Some(user),
            &[what],
            format!("Administrator {user} has {what}"),
        )
    }

    // ---- crypt -----------------------------------------------------------------------------

    /// `crypt_decrypt_fail:userid` — decryption failed.
    pub fn decrypt_fail(user: &str) -> Self {
        Self::custom(
            "crypt_decrypt_fail",
            Some(user),
            &[],
            format!("Decryption failed for user {user}"),
        )
    }

    /// `crypt_encrypt_fail:userid` — encryption failed.
    pub fn encrypt_fail(user: &str) -> Self {
        Self::custom(
            "crypt_encrypt_fail",
            Some(user),
            &[],
            format!("Encryption failed for user {user}"),
        )
    }

    // ---- excess ----------------------------------------------------------------------------

    /// `excess_rate_limit_exceeded:userid,max` — a rate limit was hit.
    pub fn rate_limit_exceeded(user: &str, max: u32) -> Self {
        let m = max.to_string();
        Self::custom(
            "excess_rate_limit_exceeded",
            Some(user),
            &[&m],
            format!("User {user} has exceeded max:{max} requests"),
        )
        .with("vigil.owasp.max", max)
    }

    // ---- upload ----------------------------------------------------------------------------

    /// `upload_complete:userid,filename,type` — a file upload finished.
    pub fn upload_complete(user: &str, filename: &str, mime_type: &str) -> Self {
        Self::custom(
            "upload_complete",
            Some(user),
            &[filename, mime_type],
            format!("User {user} has completed an upload of {filename}"),
        )
        .with("file.name", filename)
        .with("file.mime_type", mime_type)
    }

    /// `upload_stored:filename,from,to` — an uploaded file was stored under a new name.
    pub fn upload_stored(filename: &str, from: &str, to: &str) -> Self {
        Self::custom(
            "upload_stored",
            None,
            &[filename, from, to],
            format!("File {filename} was stored from {from} to {to}"),
        )
        .with("file.name", filename)
        .with("file.path", to)
    }

    /// `upload_validation:filename,check:result` — an uploaded file was checked (virus scan,
    /// image validation …); a result other than `passed` makes it critical.
    pub fn upload_validation(filename: &str, check: &str, result: &str) -> Self {
        let check_result = format!("{check}:{result}");
        let mut e = Self::custom(
            "upload_validation",
            None,
            &[filename, &check_result],
            format!("File {filename} validation by {check}: {result}"),
        )
        .with("file.name", filename);
        if result.eq_ignore_ascii_case("passed") {
            e = e.with("event.outcome", "success");
        } else {
            e = e
                .with("event.outcome", "failure")
                .with("log.level", Critical.as_str())
                .with("event.severity", Critical.severity());
        }
        e
    }

    /// `upload_delete:userid,fileid` — an uploaded file was deleted.
    pub fn upload_delete(user: &str, file_id: &str) -> Self {
        Self::custom(
            "upload_delete",
            Some(user),
            &[file_id],
            format!("User {user} has deleted {file_id}"),
        )
        .with("file.name", file_id)
    }

    // ---- input -----------------------------------------------------------------------------

    /// `input_validation_fail:(fields),userid` — server-side input validation failed.
    pub fn input_validation_fail(fields: &[&str], user: &str) -> Self {
        let list = format!("({})", fields.join(","));
        Self::custom(
            "input_validation_fail",
            None,
            &[&list, user],
            format!("User {user} submitted data that failed validation"),
        )
        .with("user.name", user)
        .with(
            "vigil.owasp.fields",
            Value::List(fields.iter().map(|f| Value::from(*f)).collect()),
        )
    }

    // ---- malicious -------------------------------------------------------------------------

    /// `malicious_excess_404:userid|IP,useragent` — many requests for missing resources.
    pub fn malicious_excess_404(who: &str, user_agent: &str) -> Self {
        Self::malicious("malicious_excess_404", who, &[user_agent])
            .message(&format!(
                "A user at {who} has generated a large number of 404 requests"
            ))
            .user_agent(user_agent)
    }

    /// `malicious_extraneous:userid|IP,inputname,useragent` — input the application never
    /// asks for.
    pub fn malicious_extraneous(who: &str, input: &str, user_agent: &str) -> Self {
        Self::malicious("malicious_extraneous", who, &[input, user_agent])
            .message(&format!(
                "User {who} included field {input} in the request which is not handled by this service"
            ))
            .user_agent(user_agent)
    }

    /// `malicious_attack_tool:userid|IP,toolname,useragent` — a known attack tool.
    pub fn malicious_attack_tool(who: &str, tool: &str, user_agent: &str) -> Self {
        Self::malicious("malicious_attack_tool", who, &[tool, user_agent])
            .message(&format!(
                "Attack traffic indicating use of {tool} from {who}"
            ))
            .user_agent(user_agent)
            .field("threat.software.name", tool)
    }

    /// `malicious_cors:userid|IP,useragent,referer` — an illegal cross-origin request.
    pub fn malicious_cors(who: &str, user_agent: &str, referer: &str) -> Self {
        Self::malicious("malicious_cors", who, &[user_agent, referer])
            .message(&format!(
                "An illegal cross-origin request from {referer} was referred by {who}"
            ))
            .user_agent(user_agent)
            .field("http.request.referrer", referer)
    }

    /// `malicious_direct_reference:userid|IP,useragent` — direct object reference tampering.
    pub fn malicious_direct_reference(who: &str, user_agent: &str) -> Self {
        Self::malicious("malicious_direct_reference", who, &[user_agent])
            .message(&format!(
                "User {who} attempted to access an object to which they are not authorized"
            ))
            .user_agent(user_agent)
    }

    /// The `malicious_*` events name a user or an address: an address goes to `source.ip`.
    fn malicious(name: &str, who: &str, args: &[&str]) -> Self {
        match who.parse::<IpAddr>() {
            Ok(ip) => {
                let mut all = vec![who];
                all.extend(args);
                Self::custom(name, None, &all, String::new()).source_ip(ip)
            }
            Err(_) => Self::custom(name, Some(who), args, String::new()),
        }
    }

    // ---- privilege -------------------------------------------------------------------------

    /// `privilege_permissions_changed:userid,object,fromlevel,tolevel` — permissions of an
    /// object changed.
    pub fn permissions_changed(user: &str, object: &str, from: &str, to: &str) -> Self {
        Self::custom(
            "privilege_permissions_changed",
            Some(user),
            &[object, from, to],
            format!("User {user} has changed permission level on {object} from {from} to {to}"),
        )
        .with("vigil.owasp.object", object)
    }

    // ---- sensitive data --------------------------------------------------------------------

    fn sensitive(name: &str, verb: &str, user: &str, object: &str) -> Self {
        Self::custom(
            name,
            Some(user),
            &[object],
            format!("User {user} {verb} {object}"),
        )
        .with("vigil.owasp.object", object)
    }

    /// `sensitive_create:userid,object` — sensitive data was created.
    pub fn sensitive_create(user: &str, object: &str) -> Self {
        Self::sensitive(
            "sensitive_create",
            "created a new sensitive object",
            user,
            object,
        )
    }

    /// `sensitive_read:userid,object` — sensitive data was read.
    pub fn sensitive_read(user: &str, object: &str) -> Self {
        Self::sensitive("sensitive_read", "read sensitive object", user, object)
    }

    /// `sensitive_update:userid,object` — sensitive data was changed.
    pub fn sensitive_update(user: &str, object: &str) -> Self {
        Self::sensitive(
            "sensitive_update",
            "modified sensitive object",
            user,
            object,
        )
    }

    /// `sensitive_delete:userid,object` — sensitive data was deleted.
    pub fn sensitive_delete(user: &str, object: &str) -> Self {
        Self::sensitive(
            "sensitive_delete",
            "marked sensitive object for deletion:",
            user,
            object,
        )
    }

    // ---- sequence --------------------------------------------------------------------------

    /// `sequence_fail:userid` — a business flow was taken out of order.
    pub fn sequence_fail(user: &str) -> Self {
        Self::custom(
            "sequence_fail",
            Some(user),
            &[],
            format!(
                "User {user} has reached a part of the application out of the normal application flow"
            ),
        )
    }

    // ---- session ---------------------------------------------------------------------------

    /// `session_created:userid` — a session started.
    pub fn session_created(user: &str) -> Self {
        Self::custom(
            "session_created",
            Some(user),
            &[],
            format!("User {user} has started a new session"),
        )
    }

    /// `session_renewed:userid` — a session was extended.
    pub fn session_renewed(user: &str) -> Self {
        Self::custom(
            "session_renewed",
            Some(user),
            &[],
            format!("User {user} was warned of expiring session and extended"),
        )
    }

    /// `session_expired:userid,reason` — a session ended (`logout`, `timeout`, `revoked`).
    pub fn session_expired(user: &str, reason: &str) -> Self {
        Self::custom(
            "session_expired",
            Some(user),
            &[reason],
            format!("User {user} session expired due to {reason}"),
        )
        .with("event.reason", reason)
    }

    /// `session_use_after_expire:userid` — an expired session was used.
    pub fn session_use_after_expire(user: &str) -> Self {
        Self::custom(
            "session_use_after_expire",
            Some(user),
            &[],
            format!("User {user} attempted access after session expired"),
        )
    }

    // ---- system ----------------------------------------------------------------------------

    /// `sys_startup:userid` — the application started.
    pub fn sys_startup(user: &str) -> Self {
        Self::custom(
            "sys_startup",
            Some(user),
            &[],
            format!("User {user} spawned a new instance"),
        )
    }

    /// `sys_shutdown:userid` — the application stopped.
    pub fn sys_shutdown(user: &str) -> Self {
        Self::custom(
            "sys_shutdown",
            Some(user),
            &[],
            format!("User {user} stopped this instance"),
        )
    }

    /// `sys_restart:userid` — the application restarted.
    pub fn sys_restart(user: &str) -> Self {
        Self::custom(
            "sys_restart",
            Some(user),
            &[],
            format!("User {user} initiated a restart"),
        )
    }

    /// `sys_crash:reason` — the application crashed.
    pub fn sys_crash(reason: &str) -> Self {
        Self::custom(
            "sys_crash",
            None,
            &[reason],
            format!("The system crashed due to {reason}"),
        )
        .with("event.reason", reason)
    }

    /// `sys_monitor_disabled:userid,monitor` — a security monitor was turned off.
    pub fn sys_monitor_disabled(user: &str, monitor: &str) -> Self {
        Self::custom(
            "sys_monitor_disabled",
            Some(user),
            &[monitor],
            format!("User {user} has disabled {monitor}"),
        )
    }

    /// `sys_monitor_enabled:userid,monitor` — a security monitor was turned on.
    pub fn sys_monitor_enabled(user: &str, monitor: &str) -> Self {
        Self::custom(
            "sys_monitor_enabled",
            Some(user),
            &[monitor],
            format!("User {user} has enabled {monitor}"),
        )
    }

    // ---- user management -------------------------------------------------------------------

    fn user_change(name: &str, verb: &str, actor: &str, target: &str, attrs: &[&str]) -> Self {
        let mut args = vec![target];
        let list;
        if !attrs.is_empty() {
            list = format!("[{}]", attrs.join(","));
            args.push(&list);
        }
        Self::custom(
            name,
            Some(actor),
            &args,
            format!("User {actor} has {verb} {target}"),
        )
        .with("user.target.name", target)
    }

    /// `user_created:userid,newuserid,attributes[…]` — `actor` created account `new_user`.
    pub fn user_created(actor: &str, new_user: &str, attributes: &[&str]) -> Self {
        Self::user_change("user_created", "created", actor, new_user, attributes)
    }

    /// `user_updated:userid,onuserid,attributes[…]` — `actor` changed account `target`.
    pub fn user_updated(actor: &str, target: &str, attributes: &[&str]) -> Self {
        Self::user_change("user_updated", "updated", actor, target, attributes)
    }

    /// `user_archived:userid,onuserid` — `actor` archived account `target`.
    pub fn user_archived(actor: &str, target: &str) -> Self {
        Self::user_change("user_archived", "archived", actor, target, &[])
    }

    /// `user_deleted:userid,onuserid` — `actor` deleted account `target`.
    pub fn user_deleted(actor: &str, target: &str) -> Self {
        Self::user_change("user_deleted", "deleted", actor, target, &[])
    }
}

impl From<SecurityEvent> for Event {
    fn from(e: SecurityEvent) -> Event {
        e.into_event()
    }
}
