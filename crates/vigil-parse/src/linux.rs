//! Linux authentication and account messages → ECS.
//!
//! Keyed by the syslog program name: `sshd`, `sudo`, `su`, `login`, `useradd`, `userdel`,
//! `usermod`, `groupadd`, `groupdel`, `passwd`, `chpasswd`, `chage`, and PAM lines from any of
//! them. Each recognised message sets `event.category`, `event.type`, `event.action`,
//! `event.outcome` and the actors (`user.name`, `user.target.name`, `source.ip`, `source.port`).
//! Cheap prefix checks come before any regular expression, so unrelated lines cost little.

use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;
use vigil_event::{Category, Event, EventKind, EventType, FieldName, Outcome, Value, field, tag};

use crate::sshd_fast::{self, Login};

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static pattern")
}

/// Sets the ECS classification fields.
fn classify(
    event: &mut Event,
    category: Category,
    kind: EventType,
    action: &str,
    outcome: Option<Outcome>,
) {
    event.insert(vigil_event::name!(field::EVENT_KIND), EventKind::Event);
    event.insert(vigil_event::name!(field::EVENT_CATEGORY), category);
    event.insert(vigil_event::name!(field::EVENT_TYPE), kind);
    event.insert(vigil_event::name!(field::EVENT_ACTION), action);
    if let Some(outcome) = outcome {
        event.insert(vigil_event::name!(field::EVENT_OUTCOME), outcome);
    }
}

fn set_ip(event: &mut Event, key: FieldName, text: &str) {
    match text.parse::<IpAddr>() {
        Ok(ip) => event.insert(key, Value::Ip(ip)),
        Err(_) => {
            // A host name where an address was expected (sshd with UseDNS).
            if !text.is_empty() && key.as_str() == "source.ip" {
                event.insert(vigil_event::name!("source.domain"), text);
            }
        }
    }
}

fn set_port(event: &mut Event, key: FieldName, text: &str) {
    if let Ok(port) = text.parse::<u16>() {
        event.insert(key, port);
    }
}

/// Reads an auth-related message of `program` into `event`. Unknown messages are left alone.
pub fn enrich(event: &mut Event, program: &str, message: &str) {
    // "message repeated 3 times: [ Failed password for … ]" (rsyslog's reduction).
    // (The regex is anchored on this prefix: most lines need not run it.)
    let captures = if message.starts_with("message repeated ") {
        REPEATED.captures(message)
    } else {
        None
    };
    let (message, repeated) = match captures {
        Some(c) => (
            c.get(2).map_or(message, |m| m.as_str()),
            c[1].parse::<i64>().ok(),
        ),
        None => (message, None),
    };
    let matched = match program {
        "sshd" | "sshd-session" | "sshd-auth" => sshd(event, message),
        "sudo" => sudo(event, message),
        "su" => su(event, message),
        "login" | "systemd-logind" => login(event, message),
        "useradd" | "userdel" | "usermod" | "groupadd" | "groupdel" | "groupmod" | "passwd"
        | "chpasswd" | "chage" | "gpasswd" | "adduser" | "deluser" => accounts(event, message),
        _ => false,
    };
    let matched = matched || pam(event, program, message);
    // Older PAM logs as "sshd(pam_unix)[pid]: authentication failure; …".
    let matched = matched
        || program.strip_suffix("(pam_unix)").is_some_and(|service| {
            let kind = if message.starts_with("session ") {
                "session"
            } else {
                "auth"
            };
            pam(
                event,
                service,
                &format!("pam_unix({service}:{kind}): {message}"),
            )
        });
    if matched && let Some(n) = repeated {
        event.insert(vigil_event::name!("event.count"), n);
    }
}

static REPEATED: LazyLock<Regex> =
    LazyLock::new(|| re(r"^message repeated (\d+) times: \[ ?(.*?) ?\]$"));

static SSH_FAILED: LazyLock<Regex> = LazyLock::new(|| {
    // `(.*)`, not `(.*?)`: the client's address is the last ` from … port …` (a user name an
    // attacker chose can hold one of its own).
    re(r"^Failed (\S+) for (invalid user )?(.*) from (\S+) port (\d+)(?: (ssh\d?))?")
});
static SSH_ACCEPTED: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^Accepted (\S+) for (\S+) from (\S+) port (\d+)(?: (ssh\d?))?(?:: (.*))?")
});
static SSH_INVALID: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[Ii]nvalid user (.*) from (\S+)(?: port (\d+))?"));
static SSH_CLOSED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:Connection closed|Disconnected) (?:by|from) (?:(invalid|authenticating) user (.*?) |user (\S+) )?(\S+) port (\d+)",
    )
});
static SSH_RECEIVED_DISCONNECT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^Received disconnect from (\S+) port (\d+):\s*(\d+): (.*?)(?: \[preauth\])?$")
});
static SSH_NO_IDENT: LazyLock<Regex> =
    LazyLock::new(|| re(r"^Did not receive identification string from (\S+)(?: port (\d+))?"));
static SSH_MAX_AUTH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:error: )?maximum authentication attempts exceeded for (invalid user )?(.*?) from (\S+) port (\d+)",
    )
});
static SSH_BREAKIN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:reverse mapping checking getaddrinfo for|Address) (\S+) .*?\[?(\d{1,3}(?:\.\d{1,3}){3})\]?.* POSSIBLE BREAK-IN ATTEMPT",
    )
});
static SSH_USER_NOT_ALLOWED: LazyLock<Regex> =
    LazyLock::new(|| re(r"^User (\S+) from (\S+) not allowed because (.*)"));

/// `SSH_FAILED`'s captures, read by hand where that is exact ([`crate::sshd_fast`]).
fn ssh_failed(m: &str) -> Option<Login<'_>> {
    if sshd_fast::applies(m) {
        return sshd_fast::failed(m);
    }
    ssh_failed_by_regex(m)
}

/// `SSH_FAILED`'s captures by the regular expression.
pub(crate) fn ssh_failed_by_regex(m: &str) -> Option<Login<'_>> {
    let c = SSH_FAILED.captures(m)?;
    let g = |i: usize| c.get(i).map_or("", |x| x.as_str());
    Some(Login {
        method: g(1),
        invalid_user: c.get(2).is_some(),
        user: g(3),
        addr: g(4),
        port: g(5),
    })
}

/// `SSH_ACCEPTED`'s captures, read by hand where that is exact ([`crate::sshd_fast`]).
fn ssh_accepted(m: &str) -> Option<Login<'_>> {
    if sshd_fast::applies(m) {
        return sshd_fast::accepted(m);
    }
    ssh_accepted_by_regex(m)
}

/// `SSH_ACCEPTED`'s captures by the regular expression.
pub(crate) fn ssh_accepted_by_regex(m: &str) -> Option<Login<'_>> {
    let c = SSH_ACCEPTED.captures(m)?;
    let g = |i: usize| c.get(i).map_or("", |x| x.as_str());
    Some(Login {
        method: g(1),
        invalid_user: false,
        user: g(2),
        addr: g(3),
        port: g(4),
    })
}

fn sshd(event: &mut Event, m: &str) -> bool {
    let first = m.as_bytes().first().copied().unwrap_or(0);
    if first == b'F'
        && let Some(c) = ssh_failed(m)
    {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            "ssh_login",
            Some(Outcome::Failure),
        );
        event.insert(vigil_event::name!("vigil.auth.method"), c.method);
        if c.invalid_user {
            event.add_tag(tag::INVALID_USER);
        }
        event.insert(vigil_event::name!("user.name"), c.user);
        set_ip(event, vigil_event::name!("source.ip"), c.addr);
        set_port(event, vigil_event::name!("source.port"), c.port);
        return true;
    }
    if first == b'A'
        && let Some(c) = ssh_accepted(m)
    {
        classify(
            event,
            Category::Authentication,
            EventType::Start,
            "ssh_login",
            Some(Outcome::Success),
        );
        event.insert(vigil_event::name!("vigil.auth.method"), c.method);
        event.insert(vigil_event::name!("user.name"), c.user);
        set_ip(event, vigil_event::name!("source.ip"), c.addr);
        set_port(event, vigil_event::name!("source.port"), c.port);
        return true;
    }
    if (first == b'I' || first == b'i')
        && let Some(c) = SSH_INVALID.captures(m)
    {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            "ssh_invalid_user",
            Some(Outcome::Failure),
        );
        event.add_tag(tag::INVALID_USER);
        event.insert(vigil_event::name!("user.name"), &c[1]);
        set_ip(event, vigil_event::name!("source.ip"), &c[2]);
        if let Some(p) = c.get(3) {
            set_port(event, vigil_event::name!("source.port"), p.as_str());
        }
        return true;
    }
    if (first == b'C' || first == b'D')
        && let Some(c) = SSH_CLOSED.captures(m)
    {
        classify(
            event,
            Category::Session,
            EventType::End,
            "ssh_disconnect",
            None,
        );
        if let Some(u) = c.get(2).or(c.get(3)) {
            event.insert(vigil_event::name!("user.name"), u.as_str());
        }
        if c.get(1).is_some_and(|k| k.as_str() == "invalid") {
            event.add_tag(tag::INVALID_USER);
        }
        set_ip(event, vigil_event::name!("source.ip"), &c[4]);
        set_port(event, vigil_event::name!("source.port"), &c[5]);
        return true;
    }
    if first == b'R'
        && let Some(c) = SSH_RECEIVED_DISCONNECT.captures(m)
    {
        classify(
            event,
            Category::Network,
            EventType::End,
            "ssh_disconnect",
            None,
        );
        set_ip(event, vigil_event::name!("source.ip"), &c[1]);
        set_port(event, vigil_event::name!("source.port"), &c[2]);
        event.insert(vigil_event::name!("event.reason"), &c[4]);
        return true;
    }
    if first == b'D'
        && let Some(c) = SSH_NO_IDENT.captures(m)
    {
        classify(
            event,
            Category::Network,
            EventType::Connection,
            "ssh_no_identification",
            Some(Outcome::Failure),
        );
        set_ip(event, vigil_event::name!("source.ip"), &c[1]);
        if let Some(p) = c.get(2) {
            set_port(event, vigil_event::name!("source.port"), p.as_str());
        }
        return true;
    }
    if let Some(c) = SSH_MAX_AUTH.captures(m) {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            "ssh_max_auth_exceeded",
            Some(Outcome::Failure),
        );
        event.insert(vigil_event::name!("user.name"), &c[2]);
        set_ip(event, vigil_event::name!("source.ip"), &c[3]);
        set_port(event, vigil_event::name!("source.port"), &c[4]);
        return true;
    }
    if m.contains("POSSIBLE BREAK-IN ATTEMPT")
        && let Some(c) = SSH_BREAKIN.captures(m)
    {
        classify(
            event,
            Category::Network,
            EventType::Info,
            "ssh_reverse_mapping_failed",
            None,
        );
        event.insert(vigil_event::name!("source.domain"), &c[1]);
        set_ip(event, vigil_event::name!("source.ip"), &c[2]);
        return true;
    }
    if first == b'U'
        && let Some(c) = SSH_USER_NOT_ALLOWED.captures(m)
    {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            "ssh_user_not_allowed",
            Some(Outcome::Failure),
        );
        event.insert(vigil_event::name!("user.name"), &c[1]);
        set_ip(event, vigil_event::name!("source.ip"), &c[2]);
        event.insert(vigil_event::name!("event.reason"), &c[3]);
        return true;
    }
    false
}

/// `user : [N incorrect password attempts ; | reason ; ] TTY=… ; PWD=… ; USER=… ; [GROUP=… ;]
/// [ENV=… ;] COMMAND=…`, split by hand (the command itself may contain anything).
fn sudo(event: &mut Event, m: &str) -> bool {
    let Some((user, rest)) = m.trim_start().split_once(" : ") else {
        return false;
    };
    let Some(cmd_at) = rest.find("COMMAND=") else {
        return false;
    };
    let (head, command) = (&rest[..cmd_at], &rest[cmd_at + "COMMAND=".len()..]);
    let mut failures = None;
    let mut reason = None;
    let mut target = None;
    for part in head.split(" ; ").map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(v) = part.strip_prefix("TTY=") {
            event.insert(vigil_event::name!("process.tty.name"), v);
        } else if let Some(v) = part.strip_prefix("PWD=") {
            event.insert(vigil_event::name!("process.working_directory"), v);
        } else if let Some(v) = part.strip_prefix("USER=") {
            target = Some(v.trim_end_matches(" ;").to_owned());
        } else if part.starts_with("GROUP=") || part.starts_with("ENV=") {
        } else if let Some(n) = part
            .strip_suffix(" incorrect password attempts")
            .or(part.strip_suffix(" incorrect password attempt"))
        {
            failures = n.parse::<i64>().ok();
        } else {
            reason = Some(part.to_owned());
        }
    }
    let Some(target) = target else {
        return false;
    };
    event.insert(vigil_event::name!("user.name"), user.trim());
    event.insert(vigil_event::name!("user.target.name"), target);
    event.insert(vigil_event::name!("process.command_line"), command.trim());
    if let Some(n) = failures {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            "sudo",
            Some(Outcome::Failure),
        );
        event.insert(vigil_event::name!("vigil.auth.failures"), n);
    } else if let Some(reason) = reason {
        // "user NOT in sudoers", "command not allowed", …
        classify(
            event,
            Category::Process,
            EventType::Denied,
            "sudo",
            Some(Outcome::Failure),
        );
        event.insert(vigil_event::name!("event.reason"), reason);
    } else {
        classify(
            event,
            Category::Process,
            EventType::Start,
            "sudo",
            Some(Outcome::Success),
        );
    }
    true
}

static SU_RESULT: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(Successful su|FAILED su|FAILED SU) for (\S+) by (\S+)"));
static SU_DEBIAN: LazyLock<Regex> = LazyLock::new(|| re(r"^\((to (\S+))\) (\S+) on (\S+)$"));
static SU_FAILED_DEBIAN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^FAILED SU \(to (\S+)\) (\S+) on (\S+)$"));

fn su(event: &mut Event, m: &str) -> bool {
    if let Some(c) = SU_RESULT.captures(m) {
        let ok = c[1].starts_with("Successful");
        classify(
            event,
            Category::Authentication,
            if ok {
                EventType::Start
            } else {
                EventType::Info
            },
            "su",
            Some(if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            }),
        );
        event.insert(vigil_event::name!("user.target.name"), &c[2]);
        event.insert(vigil_event::name!("user.name"), &c[3]);
        return true;
    }
    if let Some(c) = SU_FAILED_DEBIAN.captures(m) {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            "su",
            Some(Outcome::Failure),
        );
        event.insert(vigil_event::name!("user.target.name"), &c[1]);
        event.insert(vigil_event::name!("user.name"), &c[2]);
        event.insert(vigil_event::name!("process.tty.name"), &c[3]);
        return true;
    }
    if let Some(c) = SU_DEBIAN.captures(m) {
        classify(
            event,
            Category::Authentication,
            EventType::Start,
            "su",
            Some(Outcome::Success),
        );
        event.insert(vigil_event::name!("user.target.name"), &c[2]);
        event.insert(vigil_event::name!("user.name"), &c[3]);
        event.insert(vigil_event::name!("process.tty.name"), &c[4]);
        return true;
    }
    false
}

static LOGIN_FAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^FAILED LOGIN \(\d+\) on '?(\S+?)'? (?:FROM '?(\S*?)'? )?FOR '?(\S+?)'?, (.*)$")
});

fn login(event: &mut Event, m: &str) -> bool {
    if let Some(c) = LOGIN_FAIL.captures(m) {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            "login",
            Some(Outcome::Failure),
        );
        event.insert(vigil_event::name!("process.tty.name"), &c[1]);
        if let Some(from) = c.get(2) {
            set_ip(event, vigil_event::name!("source.ip"), from.as_str());
        }
        event.insert(vigil_event::name!("user.name"), &c[3]);
        event.insert(vigil_event::name!("event.reason"), &c[4]);
        return true;
    }
    if let Some(rest) = m.strip_prefix("New session ")
        && let Some((_, user)) = rest.split_once(" of user ")
    {
        classify(
            event,
            Category::Session,
            EventType::Start,
            "login",
            Some(Outcome::Success),
        );
        event.insert(vigil_event::name!("user.name"), user.trim_end_matches('.'));
        return true;
    }
    false
}

static NEW_USER: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^new user: name=([^,]+), UID=(\d+), GID=(\d+)(?:, home=([^,]*))?(?:, shell=([^,]*))?")
});
static NEW_GROUP: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:new group: name=|group added to /etc/group: name=)([^,]+)(?:, GID=(\d+))?")
});
static DELETE_USER: LazyLock<Regex> = LazyLock::new(|| re(r"^delete user '([^']+)'"));
static DELETE_GROUP: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:group '([^']+)' removed|removed group '([^']+)')"));
static CHANGE_USER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:change user '([^']+)' (\w+)|add '([^']+)' to (?:shadow )?group '([^']+)'|lock user '([^']+)' password|unlock user '([^']+)' password|user '([^']+)' (.*))",
    )
});
static PASSWORD_CHANGED: LazyLock<Regex> = LazyLock::new(|| re(r"password changed for (\S+)"));

fn accounts(event: &mut Event, m: &str) -> bool {
    if let Some(c) = NEW_USER.captures(m) {
        classify(
            event,
            Category::Iam,
            EventType::Creation,
            "user_created",
            Some(Outcome::Success),
        );
        event.add_tag("user");
        event.insert(vigil_event::name!("user.target.name"), &c[1]);
        if let Ok(uid) = c[2].parse::<i64>() {
            event.insert(vigil_event::name!("user.target.id"), uid.to_string());
        }
        event.insert(vigil_event::name!("group.id"), &c[3]);
        return true;
    }
    if let Some(c) = NEW_GROUP.captures(m) {
        classify(
            event,
            Category::Iam,
            EventType::Creation,
            "group_created",
            Some(Outcome::Success),
        );
        event.insert(vigil_event::name!("group.name"), &c[1]);
        if let Some(gid) = c.get(2) {
            event.insert(vigil_event::name!("group.id"), gid.as_str());
        }
        return true;
    }
    if let Some(c) = DELETE_USER.captures(m) {
        classify(
            event,
            Category::Iam,
            EventType::Deletion,
            "user_deleted",
            Some(Outcome::Success),
        );
        event.insert(vigil_event::name!("user.target.name"), &c[1]);
        return true;
    }
    if let Some(c) = DELETE_GROUP.captures(m) {
        classify(
            event,
            Category::Iam,
            EventType::Deletion,
            "group_deleted",
            Some(Outcome::Success),
        );
        if let Some(g) = c.get(1).or(c.get(2)) {
            event.insert(vigil_event::name!("group.name"), g.as_str());
        }
        return true;
    }
    if let Some(c) = PASSWORD_CHANGED.captures(m) {
        classify(
            event,
            Category::Iam,
            EventType::Change,
            "password_changed",
            Some(Outcome::Success),
        );
        event.insert(vigil_event::name!("user.target.name"), &c[1]);
        return true;
    }
    if let Some(c) = CHANGE_USER.captures(m) {
        classify(
            event,
            Category::Iam,
            EventType::Change,
            "user_modified",
            Some(Outcome::Success),
        );
        if let Some(u) = c.get(1).or(c.get(3)).or(c.get(5)).or(c.get(6)).or(c.get(7)) {
            event.insert(vigil_event::name!("user.target.name"), u.as_str());
        }
        if let Some(g) = c.get(4) {
            event.insert(vigil_event::name!("group.name"), g.as_str());
            event.insert(vigil_event::name!("event.action"), "user_added_to_group");
        }
        if c.get(5).is_some() {
            event.insert(vigil_event::name!("event.action"), "user_locked");
        }
        return true;
    }
    false
}

static PAM_AUTH_FAILURE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^pam_unix\(([^:]+):auth\): authentication failure; logname=(\S*) uid=(\d*) euid=(\d*) tty=(\S*) ruser=(\S*) rhost=(\S*)(?:\s+user=(\S+))?",
    )
});
static PAM_SESSION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^pam_unix\(([^:]+):session\): session (opened|closed) for user ([^\s(]+)(?:\(uid=\d+\))?(?: by ([^\s(]*)(?:\(uid=\d+\))?)?",
    )
});
static PAM_CHECK_PASS: LazyLock<Regex> =
    LazyLock::new(|| re(r"^pam_unix\(([^:]+):auth\): check pass; user (unknown|\S+)"));

fn pam(event: &mut Event, program: &str, m: &str) -> bool {
    if !m.starts_with("pam_") {
        return false;
    }
    if let Some(c) = PAM_AUTH_FAILURE.captures(m) {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            &format!("{}_auth_failure", service_name(&c[1], program)),
            Some(Outcome::Failure),
        );
        event.insert(vigil_event::name!("service.name"), &c[1]);
        let rhost = &c[7];
        if !rhost.is_empty() {
            set_ip(event, vigil_event::name!("source.ip"), rhost);
        }
        if let Some(user) = c.get(8) {
            event.insert(vigil_event::name!("user.name"), user.as_str());
        } else if !c[2].is_empty() {
            event.insert(vigil_event::name!("user.name"), &c[2]);
        }
        if !c[5].is_empty() {
            event.insert(vigil_event::name!("process.tty.name"), &c[5]);
        }
        return true;
    }
    if let Some(c) = PAM_SESSION.captures(m) {
        let opened = &c[2] == "opened";
        classify(
            event,
            Category::Session,
            if opened {
                EventType::Start
            } else {
                EventType::End
            },
            &format!("{}_session_{}", service_name(&c[1], program), &c[2]),
            Some(Outcome::Success),
        );
        event.insert(vigil_event::name!("service.name"), &c[1]);
        event.insert(vigil_event::name!("user.target.name"), &c[3]);
        match c.get(4).map(|b| b.as_str()).filter(|b| !b.is_empty()) {
            Some(by) => event.insert(vigil_event::name!("user.name"), by),
            None => event.insert(vigil_event::name!("user.name"), &c[3]),
        }
        return true;
    }
    if let Some(c) = PAM_CHECK_PASS.captures(m) {
        classify(
            event,
            Category::Authentication,
            EventType::Info,
            &format!("{}_check_pass", service_name(&c[1], program)),
            Some(Outcome::Failure),
        );
        if &c[2] != "unknown" {
            event.insert(vigil_event::name!("user.name"), &c[2]);
        }
        return true;
    }
    false
}

fn service_name<'a>(service: &'a str, program: &'a str) -> &'a str {
    if service.is_empty() { program } else { service }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    fn read(program: &str, m: &str) -> Event {
        let mut e = Event::new(Timestamp::from_secs(0));
        enrich(&mut e, program, m);
        e
    }

    fn s<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
        e.get_str(k)
    }

    #[test]
    fn sshd_failed_password_invalid_user() {
        let e = read(
            "sshd",
            "Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2",
        );
        assert_eq!(s(&e, "event.category"), Some("authentication"));
        assert_eq!(s(&e, "event.outcome"), Some("failure"));
        assert_eq!(s(&e, "event.action"), Some("ssh_login"));
        assert_eq!(s(&e, "user.name"), Some("admin"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.5");
        assert_eq!(e.get("source.port").and_then(Value::as_i64), Some(51234));
        assert!(e.has_tag(tag::INVALID_USER));
    }

    #[test]
    fn sshd_user_names_with_spaces_and_ipv6() {
        let e = read(
            "sshd",
            "Failed password for invalid user a b from 2001:db8::7 port 2222 ssh2",
        );
        assert_eq!(s(&e, "user.name"), Some("a b"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "2001:db8::7");
        let e = read(
            "sshd",
            "Failed publickey for root from 198.51.100.2 port 40000 ssh2: RSA SHA256:abc",
        );
        assert_eq!(s(&e, "vigil.auth.method"), Some("publickey"));
    }

    #[test]
    fn sshd_accepted_and_others() {
        let e = read(
            "sshd",
            "Accepted publickey for alice from 198.51.100.7 port 50022 ssh2: ED25519 SHA256:x",
        );
        assert_eq!(s(&e, "event.outcome"), Some("success"));
        assert_eq!(s(&e, "event.type"), Some("start"));
        let e = read("sshd", "Invalid user oracle from 203.0.113.9 port 4444");
        assert_eq!(s(&e, "event.action"), Some("ssh_invalid_user"));
        assert_eq!(s(&e, "user.name"), Some("oracle"));
        let e = read(
            "sshd",
            "Connection closed by authenticating user root 203.0.113.9 port 4444 [preauth]",
        );
        assert_eq!(s(&e, "event.action"), Some("ssh_disconnect"));
        assert_eq!(s(&e, "user.name"), Some("root"));
        let e = read(
            "sshd",
            "Received disconnect from 203.0.113.9 port 4444:11: Bye Bye [preauth]",
        );
        assert_eq!(s(&e, "event.reason"), Some("Bye Bye"));
        let e = read(
            "sshd",
            "Did not receive identification string from 203.0.113.9 port 5555",
        );
        assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.9");
        let e = read(
            "sshd",
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
        );
        assert_eq!(s(&e, "event.outcome"), Some("failure"));
        assert_eq!(s(&e, "user.name"), Some("root"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.9");
        let e = read(
            "sshd",
            "message repeated 5 times: [ Failed password for root from 203.0.113.9 port 22 ssh2]",
        );
        assert_eq!(e.get("event.count").and_then(Value::as_i64), Some(5));
        assert_eq!(s(&e, "user.name"), Some("root"));
    }

    #[test]
    fn sudo_lines() {
        let e = read(
            "sudo",
            "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
        );
        assert_eq!(s(&e, "user.name"), Some("alice"));
        assert_eq!(s(&e, "user.target.name"), Some("root"));
        assert_eq!(s(&e, "process.command_line"), Some("/usr/bin/apt update"));
        assert_eq!(s(&e, "process.tty.name"), Some("pts/0"));
        assert_eq!(s(&e, "process.working_directory"), Some("/home/alice"));
        assert_eq!(s(&e, "event.outcome"), Some("success"));
        let e = read(
            "sudo",
            "   mallory : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
        );
        assert_eq!(s(&e, "event.category"), Some("authentication"));
        assert_eq!(s(&e, "event.outcome"), Some("failure"));
        assert_eq!(
            e.get("vigil.auth.failures").and_then(Value::as_i64),
            Some(3)
        );
        let e = read(
            "sudo",
            "  bob : user NOT in sudoers ; TTY=pts/2 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
        );
        assert_eq!(s(&e, "event.type"), Some("denied"));
        assert_eq!(s(&e, "event.reason"), Some("user NOT in sudoers"));
    }

    #[test]
    fn su_and_accounts() {
        let e = read("su", "FAILED su for root by alice");
        assert_eq!(s(&e, "event.outcome"), Some("failure"));
        assert_eq!(s(&e, "user.target.name"), Some("root"));
        let e = read("su", "(to root) alice on pts/0");
        assert_eq!(s(&e, "event.outcome"), Some("success"));
        let e = read(
            "useradd",
            "new user: name=backdoor, UID=1001, GID=1001, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0",
        );
        assert_eq!(s(&e, "event.category"), Some("iam"));
        assert_eq!(s(&e, "event.type"), Some("creation"));
        assert_eq!(s(&e, "user.target.name"), Some("backdoor"));
        let e = read("userdel", "delete user 'backdoor'");
        assert_eq!(s(&e, "event.type"), Some("deletion"));
        let e = read("usermod", "add 'backdoor' to group 'sudo'");
        assert_eq!(s(&e, "event.action"), Some("user_added_to_group"));
        assert_eq!(s(&e, "group.name"), Some("sudo"));
        let e = read("groupadd", "group added to /etc/group: name=ops, GID=1002");
        assert_eq!(s(&e, "group.name"), Some("ops"));
        let e = read(
            "passwd",
            "pam_unix(passwd:chauthtok): password changed for alice",
        );
        assert_eq!(s(&e, "event.action"), Some("password_changed"));
        let e = read(
            "chpasswd",
            "pam_unix(chpasswd:chauthtok): password changed for bob",
        );
        assert_eq!(s(&e, "user.target.name"), Some("bob"));
        let e = read(
            "sudo",
            "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        );
        assert_eq!(s(&e, "event.category"), Some("session"));
        assert_eq!(s(&e, "user.name"), Some("alice"));
        assert_eq!(s(&e, "user.target.name"), Some("root"));
    }

    #[test]
    fn old_pam_program_form() {
        let e = read(
            "sshd(pam_unix)",
            "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ",
        );
        assert_eq!(s(&e, "event.outcome"), Some("failure"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "218.188.2.4");
        let e = read("sshd(pam_unix)", "check pass; user unknown");
        assert_eq!(s(&e, "event.category"), Some("authentication"));
        let e = read("su(pam_unix)", "session opened for user news by (uid=0)");
        assert_eq!(s(&e, "user.target.name"), Some("news"));
    }

    #[test]
    fn unrelated_lines_are_untouched() {
        let e = read("sshd", "Server listening on 0.0.0.0 port 22.");
        assert!(e.is_empty());
        let e = read(
            "cron",
            "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
        );
        assert_eq!(s(&e, "user.name"), Some("root"));
    }
}
