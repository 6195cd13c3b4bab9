//! Drills over HTTP (`crate::drill`): `GET /api/v1/drills` lists the scenarios, the schedule and
//! the recent reports; `POST /api/v1/drills` `{"scenario": NAME, "timeout": "60s"}` runs one and
//! answers its report (analysts and admins: it sends events and raises alerts).

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunRequest {
    scenario: String,
    #[serde(default)]
    timeout: Option<String>,
}

fn no_drills() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "drills are not available on this server: its door does not mark drill events",
    )
}

pub(super) async fn list(State(state): State<Shared>) -> Response {
    let Some(drills) = state.drills.clone() else {
        return no_drills();
    };
    let (scenarios, issues) = drills.scenarios();
    let schedule = drills.schedule();
    // This run's reports; every report, older ones too, is in the ledger
    // (`event.dataset=vigil.drill`).
    let reports = drills.reports();
    Json(json!({
        "scenarios": scenarios.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        "issues": issues,
        "dirs": drills.dirs(),
        "schedule": {
            "scenarios": schedule.scenarios,
            "every": schedule.every.to_string(),
            "timeout": schedule.timeout.to_string(),
        },
        "reports": reports,
    }))
    .into_response()
}

pub(super) async fn run(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    body: Bytes,
) -> Response {
    let Some(drills) = state.drills.clone() else {
        return no_drills();
    };
    let request: RunRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"scenario\": NAME, \"timeout\": \"60s\"}}: {e}"),
            );
        }
    };
    if !crate::drill::scenario::valid_name(&request.scenario) {
        return error(
            StatusCode::BAD_REQUEST,
            "scenario: a name of 1-64 of a-z, 0-9, - and _",
        );
    }
    let timeout = match request.timeout.as_deref() {
        None => drills.schedule().timeout.0,
        Some(t) => match vigil_ledger::retention::parse_duration(t) {
            Ok(d) if !d.is_zero() && d <= crate::drill::MAX_TIMEOUT => d,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("timeout {t:?}: a duration such as 60s, at most 5m"),
                );
            }
        },
    };
    match drills
        .run(&request.scenario, &principal.name, timeout)
        .await
    {
        Ok(report) => Json(report.to_json()).into_response(),
        Err(e @ crate::drill::DrillError::Unknown(_)) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e @ crate::drill::DrillError::Busy) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e @ crate::drill::DrillError::NoListener { .. }) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
