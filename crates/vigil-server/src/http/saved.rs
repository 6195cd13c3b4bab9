//! Saved searches (issue 19): `GET /api/v1/saved-searches` lists the caller's own and the shared
//! ones, `POST` saves one, `POST /api/v1/saved-searches/{id}` changes whether it is a dashboard
//! panel, `DELETE /api/v1/saved-searches/{id}` removes one. A saved search is private to its
//! owner unless `shared`; saving, changing or removing a shared one needs a role that may triage
//! (analyst, admin), so a viewer keeps their own searches and reads the shared ones. A search
//! marked `panel` is shown on the dashboard: the owner's own panels to the owner, shared panels
//! to everyone (analysts edit the shared dashboard).
//!
//! Stored in `saved-searches.json` in the data directory ([`SavedFile`], `version` 1), written
//! the way rule exceptions are: the new text is written and synced beside the file, the change
//! is audited durably (`vigil.audit`, action `saved_search_added` / `_changed` / `_removed`),
//! then renamed over the file. Bounded: [`MAX_NAME`] characters of name, [`MAX_QUERY`] of query,
//! [`MAX_PER_USER`] per owner and [`MAX_TOTAL`] in all.
//!
//! On a cluster node there is no file: the saved searches are a book every node derives from
//! the `sys` shard ([`crate::cluster::books::SavedBook`]) — the audit event of each change holds
//! the whole search — so a search saved on one node is listed on every node. A change is
//! checked against this node's book (once it has applied what `sys` holds), recorded through
//! the door, and answered once this node applied it.

#[allow(unused_imports)]
use super::*;

use serde::Serialize;

/// The file's format version.
pub const VERSION: u8 = 1;
/// File name in the data directory.
pub const FILE_NAME: &str = "saved-searches.json";
/// Longest name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest query, in characters.
pub const MAX_QUERY: usize = 4096;
/// Saved searches one owner may keep.
pub const MAX_PER_USER: usize = 100;
/// Saved searches in all.
pub const MAX_TOTAL: usize = 2000;

/// One writer of the file at a time (read, change, rename).
static WRITE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One saved search as stored and listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSearch {
    /// `ss-…`, unique in the file.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The query text.
    pub query: String,
    /// Time range start as the search API takes it (`-24h`, RFC 3339).
    pub from: String,
    /// Time range end (`now`, RFC 3339).
    pub to: String,
    /// Visible to every reader (changed only by analysts and admins) rather than to the owner.
    pub shared: bool,
    /// Shown as a dashboard panel.
    pub panel: bool,
    /// Who saved it (the principal's name).
    pub owner: String,
    /// When, RFC 3339.
    pub created: String,
}

/// The stored file: `{"version": 1, "searches": […]}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedFile {
    /// [`VERSION`].
    pub version: u8,
    /// In the order saved.
    pub searches: Vec<SavedSearch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSaved {
    name: String,
    query: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    shared: bool,
    #[serde(default)]
    panel: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeSaved {
    panel: bool,
}

/// Whether `caller` sees `s`.
fn visible(s: &SavedSearch, caller: &Principal) -> bool {
    s.shared || s.owner == caller.name
}

/// Whether `caller` may change or remove `s`.
fn editable(s: &SavedSearch, caller: &Principal) -> bool {
    if s.shared {
        caller.role.can_triage()
    } else {
        s.owner == caller.name
    }
}

fn read_file(path: &std::path::Path) -> Result<SavedFile, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SavedFile {
                version: VERSION,
                searches: Vec::new(),
            });
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let file: SavedFile = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{} cannot be read ({e}); fix or remove it by hand",
            path.display()
        )
    })?;
    if file.version != VERSION {
        return Err(format!(
            "{} has version {}, this Vigil reads {VERSION}",
            path.display(),
            file.version
        ));
    }
    Ok(file)
}

/// Checks a new saved search's text: sizes, a query that parses, a sane range.
fn validate(req: &NewSaved) -> Result<(), String> {
    let name = req.name.trim();
    if name.is_empty() {
        return Err("`name` is empty".into());
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("`name` is longer than {MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("`name` holds control characters".into());
    }
    if req.query.chars().count() > MAX_QUERY {
        return Err(format!("`query` is longer than {MAX_QUERY} characters"));
    }
    vigil_query::parse(&req.query)
        .map_err(|e| format!("`query`: {} (column {})", e.message, e.column))?;
    for t in [&req.from, &req.to].into_iter().flatten() {
        if t.len() > 64 {
            return Err("`from` / `to` are longer than 64 characters".into());
        }
    }
    Ok(())
}

/// The saved searches now: the file, or on a cluster node its book once it has applied what
/// `sys` holds (the path is then empty: nothing is written).
async fn locked_read(state: &AppState) -> Result<(PathBuf, SavedFile), Response> {
    if let (Some(books), Some(cluster)) = (state.cases.shared(), &state.cluster) {
        books
            .current(cluster)
            .await
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))?;
        let searches = books.saved(|b| b.all().cloned().collect());
        return Ok((
            PathBuf::new(),
            SavedFile {
                version: VERSION,
                searches,
            },
        ));
    }
    let path = state.data_dir.join(FILE_NAME);
    let p = path.clone();
    let file = tokio::task::spawn_blocking(move || read_file(&p))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .map_err(|e| error(StatusCode::CONFLICT, e))?;
    Ok((path, file))
}

/// Prepares the new text, audits it durably, then puts it in place.
async fn change(
    state: &AppState,
    path: PathBuf,
    file: SavedFile,
    audit: Event,
) -> Result<(), Response> {
    if let Some(books) = state.cases.shared() {
        // Cluster mode: the audit event is the change; every node's book applies it from `sys`.
        let seq = crate::cases::record(state, audit).await?;
        return books
            .applied_through(seq)
            .await
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e));
    }
    let tmp = path.with_extension("json.tmp");
    let t = tmp.clone();
    let write = move || -> Result<(), String> {
        let text = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
        let mut f = std::fs::File::create(&t).map_err(|e| format!("{}: {e}", t.display()))?;
        std::io::Write::write_all(&mut f, &text).map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())
    };
    tokio::task::spawn_blocking(write)
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("nothing changed: {e}"),
            )
        })?;
    if let Err(r) = exceptions::audit_durably(state, audit).await {
        let _ = std::fs::remove_file(&tmp);
        return Err(r);
    }
    let put = move || -> std::io::Result<()> {
        std::fs::rename(&tmp, &path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    tokio::task::spawn_blocking(put)
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn audit_event(
    action: &str,
    kind: vigil_event::EventType,
    who: &Principal,
    peer: SocketAddr,
    s: &SavedSearch,
    what: &str,
) -> Event {
    let mut audit = crate::audit::by(
        action,
        vigil_event::Category::Configuration,
        kind,
        vigil_event::Outcome::Success,
        &who.name,
        Some(peer.ip()),
    );
    audit.insert("vigil.saved_search.id", s.id.as_str());
    audit.insert("vigil.saved_search.name", s.name.as_str());
    audit.insert("vigil.saved_search.shared", s.shared);
    audit.insert("vigil.saved_search.panel", s.panel);
    audit.insert("vigil.query", s.query.as_str());
    audit.insert("vigil.saved_search.from", s.from.as_str());
    audit.insert("vigil.saved_search.to", s.to.as_str());
    audit.insert(
        "message",
        format!("{} {what} saved search {:?}", who.name, s.name),
    );
    audit
}

/// `GET /api/v1/saved-searches` → `{"searches": [...]}`: the caller's own and the shared ones,
/// each with `editable` for this caller.
pub(super) async fn list_saved(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
) -> Response {
    let (_, file) = match locked_read(&state).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let list: Vec<JsonValue> = file
        .searches
        .iter()
        .filter(|s| visible(s, &principal))
        .map(|s| {
            let mut j = serde_json::to_value(s).unwrap_or_default();
            j["editable"] = json!(editable(s, &principal));
            j
        })
        .collect();
    Json(json!({"searches": list})).into_response()
}

/// `POST /api/v1/saved-searches` `{name, query, from?, to?, shared?, panel?}` → 201 and the
/// saved search.
pub(super) async fn add_saved(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let req: NewSaved = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"name\", \"query\", \"from\"?, \"to\"?, \"shared\"?, \"panel\"?}}: {e}"
                ),
            );
        }
    };
    if let Err(e) = validate(&req) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    if req.shared && !principal.role.can_triage() {
        return error(
            StatusCode::FORBIDDEN,
            "only analysts and admins save shared searches; save it for yourself (shared: false)",
        );
    }
    let now = Timestamp::now();
    let _turn = WRITE.lock().await;
    let (path, mut file) = match locked_read(&state).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if file.searches.len() >= MAX_TOTAL {
        return error(
            StatusCode::CONFLICT,
            format!("{MAX_TOTAL} searches are saved, the most allowed; remove some first"),
        );
    }
    if file
        .searches
        .iter()
        .filter(|s| s.owner == principal.name)
        .count()
        >= MAX_PER_USER
    {
        return error(
            StatusCode::CONFLICT,
            format!("you have {MAX_PER_USER} saved searches, the most allowed; remove some first"),
        );
    }
    let mut n = now.as_nanos() as u64 ^ u64::from(peer.port());
    while file.searches.iter().any(|s| s.id == format!("ss-{n:016x}")) {
        n = n.wrapping_add(1);
    }
    let saved = SavedSearch {
        id: format!("ss-{n:016x}"),
        name: req.name.trim().to_string(),
        query: req.query,
        from: req.from.unwrap_or_else(|| "-24h".into()),
        to: req.to.unwrap_or_else(|| "now".into()),
        shared: req.shared,
        panel: req.panel,
        owner: principal.name.clone(),
        created: now.to_rfc3339(),
    };
    file.searches.push(saved.clone());
    let audit = audit_event(
        "saved_search_added",
        vigil_event::EventType::Creation,
        &principal,
        peer,
        &saved,
        "saved",
    );
    match change(&state, path, file, audit).await {
        // A cluster node's book may have refused it (other nodes' searches reached the bound
        // first): every node refused it alike.
        Ok(())
            if state
                .cases
                .shared()
                .is_some_and(|b| b.saved(|b| b.get(&saved.id).is_none())) =>
        {
            error(
                StatusCode::CONFLICT,
                "searches saved on other nodes meanwhile reached the bound; nothing was saved",
            )
        }
        Ok(()) => {
            let mut j = serde_json::to_value(&saved).unwrap_or_default();
            j["editable"] = json!(true);
            (StatusCode::CREATED, Json(j)).into_response()
        }
        Err(r) => r,
    }
}

/// Finds `id` among what `caller` sees and may edit: 404 when unseen, 403 when seen only.
#[allow(clippy::result_large_err)]
fn find_editable(file: &SavedFile, id: &str, caller: &Principal) -> Result<usize, Response> {
    let Some(pos) = file
        .searches
        .iter()
        .position(|s| s.id == id && visible(s, caller))
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no saved search {id:?}"),
        ));
    };
    if !editable(&file.searches[pos], caller) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "shared saved searches are changed by analysts and admins only",
        ));
    }
    Ok(pos)
}

/// `POST /api/v1/saved-searches/{id}` `{panel}`: puts it on the dashboard or takes it off.
pub(super) async fn change_saved(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let req: ChangeSaved = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"panel\": true|false}}: {e}"),
            );
        }
    };
    let _turn = WRITE.lock().await;
    let (path, mut file) = match locked_read(&state).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let pos = match find_editable(&file, &id, &principal) {
        Ok(p) => p,
        Err(r) => return r,
    };
    file.searches[pos].panel = req.panel;
    let saved = file.searches[pos].clone();
    let what = if req.panel {
        "put on the dashboard"
    } else {
        "took off the dashboard"
    };
    let audit = audit_event(
        "saved_search_changed",
        vigil_event::EventType::Change,
        &principal,
        peer,
        &saved,
        what,
    );
    match change(&state, path, file, audit).await {
        Ok(()) => {
            let mut j = serde_json::to_value(&saved).unwrap_or_default();
            j["editable"] = json!(true);
            Json(j).into_response()
        }
        Err(r) => r,
    }
}

/// `DELETE /api/v1/saved-searches/{id}` → 204.
pub(super) async fn delete_saved(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let _turn = WRITE.lock().await;
    let (path, mut file) = match locked_read(&state).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let pos = match find_editable(&file, &id, &principal) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let gone = file.searches.remove(pos);
    let audit = audit_event(
        "saved_search_removed",
        vigil_event::EventType::Deletion,
        &principal,
        peer,
        &gone,
        "removed",
    );
    match change(&state, path, file, audit).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_auth::token::Role;

    fn who(name: &str, role: Role) -> Principal {
        Principal {
            id: "t".into(),
            name: name.into(),
            role,
        }
    }

    fn saved(owner: &str, shared: bool) -> SavedSearch {
        SavedSearch {
            id: "ss-1".into(),
            name: "n".into(),
            query: "*".into(),
            from: "-24h".into(),
            to: "now".into(),
            shared,
            panel: false,
            owner: owner.into(),
            created: String::new(),
        }
    }

    #[test]
    fn viewers_keep_their_own_and_only_read_shared() {
        let v = who("vic", Role::Viewer);
        let a = who("ana", Role::Analyst);
        assert!(editable(&saved("vic", false), &v));
        assert!(!editable(&saved("vic", true), &v));
        assert!(visible(&saved("ana", true), &v));
        assert!(!visible(&saved("ana", false), &v));
        assert!(editable(&saved("vic", true), &a));
        assert!(!visible(&saved("vic", false), &a));
    }

    #[test]
    fn hostile_text_is_refused() {
        let new = |name: &str, query: &str| NewSaved {
            name: name.into(),
            query: query.into(),
            from: None,
            to: None,
            shared: false,
            panel: false,
        };
        assert!(
            validate(&new(
                "ok",
                "event.outcome=failure | stats count by user.name"
            ))
            .is_ok()
        );
        assert!(validate(&new(&"x".repeat(MAX_NAME + 1), "*")).is_err());
        assert!(validate(&new("  ", "*")).is_err());
        assert!(validate(&new("a\u{7}b", "*")).is_err());
        assert!(validate(&new("ok", &"a".repeat(MAX_QUERY + 1))).is_err());
        assert!(validate(&new("ok", "| | |")).is_err());
    }
}
