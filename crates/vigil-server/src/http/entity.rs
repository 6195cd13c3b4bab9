//! Entity pages: `GET /api/v1/entity/{kind}/{value}` (kind `ip`, `user` or `host`) answers with
//! everything Vigil knows of one address, account or machine: its events from every source on
//! one timeline (newest first, bounded by `limit` and the time range), how many came from each
//! source, when it was first and last seen (all time), its alerts (any alert grouped by that
//! value), the cases holding them, and its bans. The events come through the search path
//! (`crate::cases::query`: the index, with its unindexed tail scanned); each lookup is audited
//! like a search.

#[allow(unused_imports)]
use super::*;

/// Events on the timeline at most.
const MAX_LIMIT: usize = 1_000;
/// Longest value looked up.
const MAX_VALUE_CHARS: usize = 256;

/// The fields that name an entity of each kind (ECS, then the Windows names EVTX carries).
pub(crate) fn entity_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "ip" => &[
            "source.ip",
            "destination.ip",
            "client.ip",
            "server.ip",
            "host.ip",
            "IpAddress",
        ],
        "user" => &[
            "user.name",
            "user.target.name",
            "source.user.name",
            "destination.user.name",
            "TargetUserName",
            "SubjectUserName",
        ],
        "host" => &[
            "host.name",
            "host.hostname",
            "observer.hostname",
            "Computer",
        ],
        _ => return None,
    })
}

/// The search that finds an entity's events: any of its kind's fields equal to the value.
pub(crate) fn entity_query(kind: &str, value: &str) -> Option<String> {
    let quoted = format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""));
    let terms: Vec<String> = entity_fields(kind)?
        .iter()
        .map(|f| format!("{f}={quoted}"))
        .collect();
    Some(format!("({})", terms.join(" OR ")))
}

#[derive(Deserialize, Default)]
pub(super) struct EntityQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

fn rows_as_objects(r: &vigil_query::QueryResult) -> Vec<JsonValue> {
    r.rows
        .iter()
        .map(|row| {
            let mut o = serde_json::Map::new();
            for (c, v) in r.columns.iter().zip(row) {
                let j = v.to_json();
                if !j.is_null() {
                    o.insert(c.clone(), j);
                }
            }
            JsonValue::Object(o)
        })
        .collect()
}

pub(super) async fn entity(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((kind, value)): Path<(String, String)>,
    Query(q): Query<EntityQuery>,
) -> Response {
    if value.is_empty()
        || value.chars().count() > MAX_VALUE_CHARS
        || value.chars().any(char::is_control)
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "the value must be 1 to {MAX_VALUE_CHARS} characters, none of them control characters"
            ),
        );
    }
    if value.contains('*') {
        // `*` is a wildcard in a search, even quoted: it would show other entities' events.
        return error(
            StatusCode::BAD_REQUEST,
            "an entity value cannot hold `*` (it would match other values)",
        );
    }
    let ip = value.parse::<std::net::IpAddr>().ok();
    if kind == "ip" && ip.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{value:?} is not an IP address"),
        );
    }
    let Some(text) = entity_query(&kind, &value) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("kind {kind:?}: use ip, user or host"),
        );
    };
    let limit = q.limit.unwrap_or(200).clamp(1, MAX_LIMIT);
    let now = Timestamp::now();
    let (from, to) = match (
        crate::search::resolve_time(Some(q.from.as_deref().unwrap_or("-7d")), now),
        crate::search::resolve_time(q.to.as_deref(), now),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let audit = || {
        let mut audit = crate::audit::by(
            "entity_lookup",
            vigil_event::Category::Database,
            vigil_event::EventType::Access,
            vigil_event::Outcome::Success,
            &principal.name,
            Some(peer.ip()),
        );
        audit.insert("vigil.query", text.as_str());
        crate::audit::append(&state.ingest, audit);
    };
    let _turn = match search_turn(&state, audit).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let range = vigil_query::Limits {
        from,
        to,
        max_rows: limit,
        now,
    };
    let timeline = match crate::cases::query(&state, &text, range).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let by_source = match crate::cases::query(
        &state,
        &format!("{text} | stats count by event.dataset | sort -count"),
        vigil_query::Limits {
            max_rows: 100,
            ..range
        },
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let all_time = vigil_query::Limits {
        from: None,
        to: None,
        max_rows: 1,
        now,
    };
    let seen = match crate::cases::query(
        &state,
        &format!("{text} | stats count, earliest(@timestamp) as first_seen, latest(@timestamp) as last_seen"),
        all_time,
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let seen = rows_as_objects(&seen)
        .into_iter()
        .next()
        .unwrap_or_default();
    let mut events = rows_as_objects(&timeline);
    let when = |j: &JsonValue| {
        j["@timestamp"]
            .as_str()
            .and_then(|t| Timestamp::parse(t).ok())
            .map_or(i64::MIN, Timestamp::as_nanos)
    };
    events.sort_by_key(|j| std::cmp::Reverse(when(j)));

    // Alerts grouped by this value (under any field), newest first.
    let alerts: Vec<JsonValue> = state.detect.as_ref().map_or_else(Vec::new, |d| {
        d.with_book(|b| {
            b.list(&Default::default())
                .into_iter()
                .filter(|a| a.group.iter().any(|(_, v)| *v == value))
                .take(500)
                .map(|a| a.to_api_json())
                .collect()
        })
    });
    let alert_ids: Vec<u64> = alerts.iter().filter_map(|a| a["id"].as_u64()).collect();
    // The events as cases name them: by number, and by shard on a cluster node.
    let event_seqs: std::collections::BTreeSet<vigil_detect::case::EventRef> = events
        .iter()
        .filter_map(|e| {
            Some(vigil_detect::case::EventRef {
                shard: e["vigil.shard"].as_str().map(str::to_owned),
                seq: e["vigil.seq"].as_u64()?,
            })
        })
        .collect();
    let cases: Vec<JsonValue> = state
        .cases
        .read(&state, |book| {
            book.list(&Default::default())
                .into_iter()
                .filter(|c| {
                    c.alerts.iter().any(|a| alert_ids.contains(a))
                        || c.events.iter().any(|s| event_seqs.contains(s))
                })
                .map(|c| c.summary_json())
                .collect()
        })
        .await
        .unwrap_or_default();
    let bans: Vec<JsonValue> = match ip {
        Some(ip) => state.decisions.read(|b| {
            b.covering(ip, now)
                .into_iter()
                .map(|d| d.to_json())
                .collect()
        }),
        None => Vec::new(),
    };
    let mut missing: Vec<String> = [&timeline, &by_source]
        .iter()
        .flat_map(|r| r.missing_shards.iter().cloned())
        .collect();
    missing.sort();
    missing.dedup();
    let mut body = json!({
        "kind": kind,
        "value": value,
        "query": text,
        "from": from.map(|t| t.to_rfc3339()),
        "to": to.map(|t| t.to_rfc3339()),
        "first_seen": seen.get("first_seen"),
        "last_seen": seen.get("last_seen"),
        "total_events": seen.get("count").cloned().unwrap_or(json!(0)),
        "sources": rows_as_objects(&by_source),
        "events": events,
        "truncated": timeline.truncated,
        "alerts": alerts,
        "cases": cases,
        "bans": bans,
    });
    // Only a cluster's answer can miss shards: a single node's JSON is unchanged.
    if !missing.is_empty() {
        body["missing_shards"] = json!(missing);
    }
    Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_is_one_quoted_term_per_field() {
        let q = entity_query("user", r#"a" OR x="b\"#).unwrap();
        assert!(
            q.starts_with("(user.name=\"a\\\" OR x=\\\"b\\\\\" OR "),
            "{q}"
        );
        let parsed = vigil_query::parse(&q).unwrap();
        let vigil_query::ast::Expr::Or(terms) = parsed.search.unwrap() else {
            panic!("one OR of the fields: {q}");
        };
        assert_eq!(terms.len(), entity_fields("user").unwrap().len());
        assert!(entity_query("planet", "x").is_none());
    }
}
