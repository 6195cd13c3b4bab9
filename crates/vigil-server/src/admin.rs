//! Account and token management over HTTP (admins), and changing one's own password (any
//! logged-in user). The same changes `vigil user` and `vigil token` make, audited with the
//! acting user and address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::audit;
use crate::auth::Role;
use crate::http::{AppState, Caller, error};
use crate::users;
use vigil_auth::{StoreError, UserError};

type Shared = Arc<AppState>;

/// The routes of this module.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/password", post(change_password))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{name}", delete(delete_user))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

fn audit_change(
    state: &AppState,
    action: &str,
    actor: &str,
    peer: SocketAddr,
    message: String,
    fields: &[(&str, &str)],
) {
    let mut e = audit::by(
        action,
        vigil_event::Category::Iam,
        vigil_event::EventType::Change,
        vigil_event::Outcome::Success,
        actor,
        Some(peer.ip()),
    );
    e.insert("message", message);
    for (k, v) in fields {
        e.insert(*k, *v);
    }
    audit::append(&state.ingest, e);
}

#[derive(Deserialize)]
struct PasswordChange {
    current: String,
    new: String,
}

/// `POST /api/v1/password {current, new}`: a logged-in user changes their own password. Their
/// other sessions end; this one is replaced by a new session (new cookie and CSRF token).
async fn change_password(
    State(state): State<Shared>,
    Caller { session, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The route guard has found the live session (or answered 401).
    let Some(view) = session else {
        return error(StatusCode::UNAUTHORIZED, "log in first");
    };
    let Ok(request) = serde_json::from_slice::<PasswordChange>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"current\": …, \"new\": …}",
        );
    };
    let ip = peer.ip();
    if let Err(limited) = state.login_limiter.check(ip) {
        return crate::web::too_many_failures(
            "too many failed attempts from this address",
            limited.retry_after_secs,
        );
    }
    // A stolen session must not be a way around the account's limit on password guesses.
    if let Err(limited) = state.account_limiter.check(&view.user, ip) {
        return crate::web::too_many_failures(
            "too many failed attempts for this account",
            limited.retry_after_secs,
        );
    }
    if let Err(e) = users::check_password(&request.new) {
        return user_error(e);
    }
    let (sessions, accounts, name) = (
        Arc::clone(&state.sessions),
        state.accounts.clone(),
        view.user.clone(),
    );
    let changed = tokio::task::spawn_blocking(move || {
        if users::verify_login(&sessions.users_for(&name), &name, &request.current).is_none() {
            return Err(None);
        }
        accounts
            .set_password(&name, &request.new, None)
            .map_err(Some)
    })
    .await;
    let user = match changed {
        Ok(Ok(user)) => user,
        Ok(Err(None)) => {
            state.login_limiter.failed(ip);
            state.account_limiter.failed(&view.user);
            let mut e = audit::by(
                "password_change",
                vigil_event::Category::Iam,
                vigil_event::EventType::Change,
                vigil_event::Outcome::Failure,
                &view.user,
                Some(ip),
            );
            e.insert("event.reason", "wrong current password");
            audit::append(&state.ingest, e);
            return error(StatusCode::FORBIDDEN, "the current password is wrong");
        }
        Ok(Err(Some(e))) => return user_error(e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    state.sessions.reload_users();
    if let Some(cookie) = crate::web::session_cookie(&headers) {
        state.sessions.remove(&cookie);
    }
    audit_change(
        &state,
        "user_updated",
        &user.name,
        peer,
        format!("{} changed their password", user.name),
        &[("user.target.name", &user.name)],
    );
    crate::web::start_session(&state, &user)
}

async fn list_users(State(state): State<Shared>) -> Response {
    let accounts = state.accounts.clone();
    let listed = tokio::task::spawn_blocking(move || accounts.load_users())
        .await
        .unwrap_or_else(|e| Err(StoreError::Shared(e.to_string())));
    match listed {
        Ok(list) => Json(json!({"users": list.iter().map(|u| json!({"name": u.name, "role": u.role.name(), "created": u.created, "changed": u.changed})).collect::<Vec<_>>()})).into_response(),
        Err(e) => store_error(e),
    }
}

/// The answer to a refused account change: 400 for a request to fix, 404 for an unknown
/// account, 409 for a conflict with the accounts there are, 5xx when the files failed.
fn user_error(e: UserError) -> Response {
    let status = match &e {
        UserError::InvalidName(_)
        | UserError::PasswordTooShort
        | UserError::PasswordTooLong
        | UserError::BouncerAccount => StatusCode::BAD_REQUEST,
        UserError::NoSuchUser(_) => StatusCode::NOT_FOUND,
        UserError::Exists(_) | UserError::LastAdmin(_) => StatusCode::CONFLICT,
        UserError::Store(e) => return store_error_ref(e),
    };
    error(status, e.to_string())
}

/// The account or token files failed: 503 with `Retry-After` when trying again may help, else
/// 500.
fn store_error(e: StoreError) -> Response {
    store_error_ref(&e)
}

fn store_error_ref(e: &StoreError) -> Response {
    if e.is_retryable() {
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        r
    } else {
        error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    role: String,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/v1/users {name, role, password?}`: without a password one is generated and
/// returned once.
async fn create_user(
    State(state): State<Shared>,
    Caller {
        principal: actor, ..
    }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<NewUser>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"name\": …, \"role\": …, \"password\"?: …}",
        );
    };
    let role = match Role::parse(&request.role) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let generated = request.password.is_none();
    let password = request.password.unwrap_or_else(users::generate_password);
    let (accounts, name, pw) = (
        state.accounts.clone(),
        request.name.clone(),
        password.clone(),
    );
    let added = tokio::task::spawn_blocking(move || accounts.add_user(&name, role, &pw)).await;
    let user = match added {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => return user_error(e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    state.sessions.reload_users();
    audit_change(
        &state,
        "user_created",
        &actor.name,
        peer,
        format!(
            "{} created account {} ({})",
            actor.name,
            user.name,
            user.role.name()
        ),
        &[
            ("user.target.name", &user.name),
            ("user.target.roles", user.role.name()),
        ],
    );
    let mut body = json!({"name": user.name, "role": user.role.name(), "created": user.created});
    if generated {
        body["password"] = json!(password);
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn delete_user(
    State(state): State<Shared>,
    Caller {
        principal: actor, ..
    }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
) -> Response {
    let accounts = state.accounts.clone();
    let deleted = tokio::task::spawn_blocking(move || accounts.delete_user(&name)).await;
    match deleted {
        Ok(Ok(user)) => {
            state.sessions.reload_users();
            audit_change(
                &state,
                "user_deleted",
                &actor.name,
                peer,
                format!("{} deleted account {}", actor.name, user.name),
                &[("user.target.name", &user.name)],
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(e)) => user_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn list_tokens(State(state): State<Shared>) -> Response {
    let usage = state.tokens.usage();
    let accounts = state.accounts.clone();
    let listed = tokio::task::spawn_blocking(move || accounts.list_tokens())
        .await
        .unwrap_or_else(|e| Err(StoreError::Shared(e.to_string())));
    match listed {
        Ok(list) => Json(json!({"tokens": list.iter().map(|t| json!({
            "id": t.id, "name": t.name, "role": t.role.name(), "created": t.created,
            "revoked": t.revoked, "last_used": usage.get(&t.id),
        })).collect::<Vec<_>>()}))
        .into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    role: String,
}

/// `POST /api/v1/tokens {name, role}` → `{id, name, role, token}`; the token is shown once.
async fn create_token(
    State(state): State<Shared>,
    Caller {
        principal: actor, ..
    }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<NewToken>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"name\": …, \"role\": …}",
        );
    };
    let role = match Role::parse(&request.role) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.len() > 128 {
        return error(
            StatusCode::BAD_REQUEST,
            "the token needs a name (1 to 128 bytes)",
        );
    }
    let accounts = state.accounts.clone();
    let created = tokio::task::spawn_blocking(move || accounts.create_token(&name, role)).await;
    let (entry, token) = match created {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return store_error(e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    audit_change(
        &state,
        "token_created",
        &actor.name,
        peer,
        format!(
            "{} created {} token {} ({})",
            actor.name,
            entry.role.name(),
            entry.id,
            entry.name
        ),
        &[
            ("vigil.token.id", &entry.id),
            ("vigil.token.role", entry.role.name()),
        ],
    );
    let mut r = (
        StatusCode::CREATED,
        Json(
            json!({"id": entry.id, "name": entry.name, "role": entry.role.name(), "token": token}),
        ),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn revoke_token(
    State(state): State<Shared>,
    Caller {
        principal: actor, ..
    }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let (accounts, which) = (state.accounts.clone(), id.clone());
    let revoked = tokio::task::spawn_blocking(move || accounts.revoke_token(&which)).await;
    let revoked = match revoked {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match revoked {
        Ok(0) => error(StatusCode::NOT_FOUND, format!("no active token {id:?}")),
        Ok(n) => {
            audit_change(
                &state,
                "token_revoked",
                &actor.name,
                peer,
                format!("{} revoked {n} token(s) with id or name {id}", actor.name),
                &[("vigil.token.id", &id)],
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => store_error(e),
    }
}
