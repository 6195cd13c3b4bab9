//! Rule exceptions through the API: `GET /api/v1/exceptions` lists them (from the files, with
//! whether each has expired), `POST` adds one, `DELETE /api/v1/exceptions/{id}` removes one.
//! They live in `vigil-exceptions.json` in the rule directory of the rule they apply to
//! (`vigil_detect::exceptions`, format in `crates/vigil-detect/EXCEPTIONS.md`); the detector
//! reloads the rules when the file changes (within about two seconds). Every change is a
//! `vigil.audit` event, made durable before the file is put in place: the new text is written
//! and synced beside the file first (an unwritable directory refuses the change with nothing
//! recorded), then audited, then renamed over the file; a change the ledger could not record
//! is not made.

#[allow(unused_imports)]
use super::*;

use std::collections::BTreeMap;

use vigil_detect::exceptions::{Condition, Exception, ExceptionFile, FILE_NAME, Kind, VERSION};

/// One writer of exception files at a time (read, change, rename).
static WRITE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewException {
    rule: String,
    kind: Kind,
    #[serde(default)]
    conditions: Vec<Condition>,
    #[serde(default)]
    group: BTreeMap<String, String>,
    reason: String,
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    rule: Option<String>,
}

fn listed(e: &Exception, file: &std::path::Path, now: Timestamp) -> JsonValue {
    let mut j = serde_json::to_value(e).unwrap_or_default();
    j["expired"] = json!(e.expired(now));
    j["file"] = json!(file.display().to_string());
    j
}

pub(super) async fn list_exceptions(
    State(state): State<Shared>,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(detect) = state.detect.clone() else {
        return Json(json!({"exceptions": [], "message": "detection is off"})).into_response();
    };
    let dirs = detect.dirs().to_vec();
    let work = move || {
        let now = Timestamp::now();
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for dir in &dirs {
            let path = dir.join(FILE_NAME);
            if !path.is_file() {
                continue;
            }
            match vigil_detect::load::read_exceptions(&path) {
                Ok(f) => out.extend(
                    f.exceptions
                        .iter()
                        .filter(|e| q.rule.as_deref().is_none_or(|r| r == e.rule))
                        .map(|e| listed(e, &path, now)),
                ),
                Err(e) => errors.push(json!({"file": path.display().to_string(), "error": e})),
            }
        }
        json!({"exceptions": out, "errors": errors})
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(body) => Json(body).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The rule directory holding the rule `id` (the alert's rule id), if it is loaded.
fn rule_dir(detect: &crate::detect::DetectService, id: &str) -> Option<(PathBuf, String)> {
    let loaded = detect.rules();
    let meta = loaded
        .set
        .rules()
        .map(|(_, r)| &r.meta)
        .chain(loaded.set.correlations().iter().map(|c| &c.rule.meta))
        .find(|m| crate::detect::alert_rule(m).id == id)?;
    let source = meta.source.as_deref().unwrap_or("");
    let dir = detect
        .dirs()
        .iter()
        .find(|d| std::path::Path::new(source).starts_with(d))
        .or_else(|| detect.dirs().first())?
        .clone();
    Some((dir, meta.title.clone()))
}

fn read_or_new(path: &std::path::Path) -> Result<ExceptionFile, String> {
    if !path.exists() {
        return Ok(ExceptionFile {
            version: VERSION,
            exceptions: Vec::new(),
        });
    }
    vigil_detect::load::read_exceptions(path).map_err(|e| {
        format!(
            "{} cannot be read ({e}); fix or remove it by hand first",
            path.display()
        )
    })
}

/// Writes the new text beside the file (`.json.tmp`, synced): done before the change is
/// audited, so a directory that cannot be written refuses the change with nothing recorded.
fn prepare(path: &std::path::Path, file: &ExceptionFile) -> Result<PathBuf, String> {
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, file.to_text().as_bytes())?;
        f.sync_all()
    };
    write()
        .map(|()| tmp.clone())
        .map_err(|e| format!("{}: {e}", tmp.display()))
}

/// Puts the prepared text in place by rename (a reader sees the old or the new file, never
/// half of one).
fn commit(tmp: &std::path::Path, path: &std::path::Path) -> Result<(), String> {
    let put = || -> std::io::Result<()> {
        std::fs::rename(tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    put().map_err(|e| format!("{}: {e}", path.display()))
}

/// Prepares, audits durably, then commits; on a refused audit the prepared file is removed.
async fn change(
    state: &AppState,
    path: PathBuf,
    file: ExceptionFile,
    audit: Event,
) -> Result<PathBuf, Response> {
    let target = path.clone();
    let tmp = tokio::task::spawn_blocking(move || prepare(&target, &file))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("nothing changed: {e}"),
            )
        })?;
    if let Err(r) = audit_durably(state, audit).await {
        let _ = std::fs::remove_file(&tmp);
        return Err(r);
    }
    let target = path.clone();
    tokio::task::spawn_blocking(move || commit(&tmp, &target))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(path)
}

/// Records the change in the ledger and waits until it is durable.
pub(super) async fn audit_durably(state: &AppState, event: Event) -> Result<(), Response> {
    match state
        .ingest
        .try_append(vec![event], vigil_ingest::Origin::Audit)
    {
        Ok(pending) => pending.durable().await.map(|_| ()).map_err(|e| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the change could not be recorded, so it was not made: {e}"),
            )
        }),
        Err(e) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the ledger is busy, nothing changed (retry): {e}"),
        )),
    }
}

pub(super) async fn add_exception(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let Some(detect) = state.detect.clone() else {
        return error(StatusCode::NOT_FOUND, "detection is off");
    };
    let req: NewException = match json_body(
        &body,
        r#"{"rule", "kind": "exclude"|"suppress", "conditions": [{"field", "op", "value"}] or "group": {field: value}, "reason", "expires"?}"#,
    ) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let now = Timestamp::now();
    let exception = Exception {
        id: format!("ex-{:016x}", now.as_nanos() as u64 ^ u64::from(peer.port())),
        rule: req.rule,
        kind: req.kind,
        conditions: req.conditions,
        group: req.group,
        reason: req.reason,
        by: principal.name.clone(),
        created: now.to_rfc3339(),
        expires: req.expires,
    };
    if let Err(e) = exception.validate() {
        return error(StatusCode::BAD_REQUEST, e);
    }
    if exception.expired(now) {
        return error(StatusCode::BAD_REQUEST, "`expires` is in the past");
    }
    let Some((dir, title)) = rule_dir(&detect, &exception.rule) else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no loaded rule {:?} (give the rule's id as alerts show it)",
                exception.rule
            ),
        );
    };
    let _turn = WRITE.lock().await;
    let path = dir.join(FILE_NAME);
    let mut file = match read_or_new(&path) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::CONFLICT, e),
    };
    if file.exceptions.len() >= vigil_detect::exceptions::MAX_EXCEPTIONS {
        return error(
            StatusCode::CONFLICT,
            "this rule directory holds the most exceptions allowed",
        );
    }
    if file.exceptions.iter().any(|e| e.id == exception.id) {
        return error(
            StatusCode::CONFLICT,
            "an exception with this id exists; retry",
        );
    }
    file.exceptions.push(exception.clone());
    let mut audit = crate::audit::by(
        "exception_added",
        vigil_event::Category::Configuration,
        vigil_event::EventType::Creation,
        vigil_event::Outcome::Success,
        &principal.name,
        Some(peer.ip()),
    );
    audit.insert("rule.id", exception.rule.as_str());
    audit.insert("rule.name", title.as_str());
    audit.insert("vigil.exception.id", exception.id.as_str());
    audit.insert(
        "vigil.exception.kind",
        if exception.kind == Kind::Exclude {
            "exclude"
        } else {
            "suppress"
        },
    );
    audit.insert("vigil.exception.reason", exception.reason.as_str());
    audit.insert(
        "vigil.exception.definition",
        serde_json::to_string(&exception).unwrap_or_default(),
    );
    if let Some(x) = &exception.expires {
        audit.insert("vigil.exception.expires", x.as_str());
    }
    audit.insert(
        "message",
        format!(
            "{} added a {} exception to rule {title}: {}",
            principal.name,
            if exception.kind == Kind::Exclude {
                "exclude"
            } else {
                "suppress"
            },
            exception.reason
        ),
    );
    match change(&state, path, file, audit).await {
        Ok(path) => (StatusCode::CREATED, Json(listed(&exception, &path, now))).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn delete_exception(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let Some(detect) = state.detect.clone() else {
        return error(StatusCode::NOT_FOUND, "detection is off");
    };
    let _turn = WRITE.lock().await;
    for dir in detect.dirs() {
        let path = dir.join(FILE_NAME);
        if !path.is_file() {
            continue;
        }
        let mut file = match read_or_new(&path) {
            Ok(f) => f,
            Err(e) => return error(StatusCode::CONFLICT, e),
        };
        let Some(pos) = file.exceptions.iter().position(|e| e.id == id) else {
            continue;
        };
        let gone = file.exceptions.remove(pos);
        let mut audit = crate::audit::by(
            "exception_removed",
            vigil_event::Category::Configuration,
            vigil_event::EventType::Deletion,
            vigil_event::Outcome::Success,
            &principal.name,
            Some(peer.ip()),
        );
        audit.insert("rule.id", gone.rule.as_str());
        audit.insert("vigil.exception.id", gone.id.as_str());
        audit.insert("vigil.exception.reason", gone.reason.as_str());
        audit.insert(
            "vigil.exception.definition",
            serde_json::to_string(&gone).unwrap_or_default(),
        );
        audit.insert(
            "message",
            format!(
                "{} removed exception {} of rule {} ({})",
                principal.name, gone.id, gone.rule, gone.reason
            ),
        );
        return match change(&state, path, file, audit).await {
            Ok(_) => StatusCode::NO_CONTENT.into_response(),
            Err(r) => r,
        };
    }
    error(StatusCode::NOT_FOUND, format!("no exception {id:?}"))
}
