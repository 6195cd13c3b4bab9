//! How queries and partial results travel between nodes: JSON, with every value typed so a
//! merge sees exactly what the shard computed (an integer stays an integer, a float a float,
//! an address an address; JSON alone would blur them).
//!
//! A value is `null`, `true`/`false`, a JSON integer (Int), a string (Str), an array (List),
//! `{"f": number | "NaN" | "inf" | "-inf"}` (Float), `{"ip": "…"}` (Ip) or `{"m": {…}}` (Map).

use serde_json::{Map, Value as Json, json};
use vigil_event::{Timestamp, Value};
use vigil_query::{Limits, QueryResult};

/// How deep a value received from another node may nest (serde_json stops at 128 already).
const MAX_DEPTH: usize = 64;

/// A value as typed JSON.
pub fn value_to_wire(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => {
            let x = if f.is_nan() {
                json!("NaN")
            } else if f.is_infinite() {
                json!(if *f > 0.0 { "inf" } else { "-inf" })
            } else {
                json!(f)
            };
            json!({ "f": x })
        }
        Value::Str(s) => Json::String(s.clone()),
        Value::Ip(ip) => json!({ "ip": ip.to_string() }),
        Value::List(items) => Json::Array(items.iter().map(value_to_wire).collect()),
        Value::Map(m) => {
            let inner: Map<String, Json> = m
                .iter()
                .map(|(k, v)| (k.clone(), value_to_wire(v)))
                .collect();
            json!({ "m": inner })
        }
    }
}

/// A typed JSON value back, or why it is not one.
pub fn value_from_wire(j: &Json) -> Result<Value, String> {
    from_wire(j, 0)
}

fn from_wire(j: &Json, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("a value nests too deep".into());
    }
    Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Int(
            n.as_i64()
                .ok_or_else(|| format!("{n} is not an integer (floats are {{\"f\": …}})"))?,
        ),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(
            items
                .iter()
                .map(|x| from_wire(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(o) if o.len() == 1 => {
            let (tag, inner) = o.iter().next().expect("one entry");
            match (tag.as_str(), inner) {
                ("f", Json::Number(n)) => Value::float(n.as_f64().ok_or("a float out of range")?),
                ("f", Json::String(s)) => match s.as_str() {
                    "NaN" => Value::float(f64::NAN),
                    "inf" => Value::Float(f64::INFINITY),
                    "-inf" => Value::Float(f64::NEG_INFINITY),
                    other => return Err(format!("{other:?} is not a float")),
                },
                ("ip", Json::String(s)) => {
                    Value::Ip(s.parse().map_err(|_| format!("{s:?} is not an address"))?)
                }
                ("m", Json::Object(m)) => Value::Map(
                    m.iter()
                        .map(|(k, v)| Ok((k.clone(), from_wire(v, depth + 1)?)))
                        .collect::<Result<_, String>>()?,
                ),
                _ => return Err(format!("unknown value tag {tag:?}")),
            }
        }
        Json::Object(_) => return Err("an object that is no typed value".into()),
    })
}

/// A result as typed JSON.
pub fn result_to_wire(r: &QueryResult) -> Json {
    json!({
        "columns": r.columns,
        "rows": r.rows.iter().map(|row| row.iter().map(value_to_wire).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "scanned": r.scanned,
        "truncated": r.truncated,
        "message": r.message,
    })
}

/// A result back from typed JSON; every row must have a cell per column.
pub fn result_from_wire(j: &Json) -> Result<QueryResult, String> {
    let columns: Vec<String> = j
        .get("columns")
        .and_then(Json::as_array)
        .ok_or("no columns")?
        .iter()
        .map(|c| {
            c.as_str()
                .map(str::to_owned)
                .ok_or("a column name is no string")
        })
        .collect::<Result<_, _>>()?;
    let rows = j
        .get("rows")
        .and_then(Json::as_array)
        .ok_or("no rows")?
        .iter()
        .map(|row| {
            let cells = row.as_array().ok_or("a row is no array")?;
            if cells.len() != columns.len() {
                return Err(format!(
                    "a row of {} cells for {} columns",
                    cells.len(),
                    columns.len()
                ));
            }
            cells.iter().map(value_from_wire).collect()
        })
        .collect::<Result<Vec<Vec<Value>>, String>>()?;
    Ok(QueryResult {
        columns,
        rows,
        scanned: j.get("scanned").and_then(Json::as_u64).unwrap_or(0),
        truncated: j.get("truncated").and_then(Json::as_bool).unwrap_or(false),
        message: j.get("message").and_then(Json::as_str).map(str::to_owned),
        missing_shards: Vec::new(),
    })
}

/// Limits as JSON (times in nanoseconds).
pub fn limits_to_wire(l: &Limits) -> Json {
    json!({
        "from": l.from.map(Timestamp::as_nanos),
        "to": l.to.map(Timestamp::as_nanos),
        "max_rows": l.max_rows,
        "now": l.now.as_nanos(),
    })
}

/// Limits back; `max_rows` is capped at `max_rows_cap`.
pub fn limits_from_wire(j: &Json, max_rows_cap: usize) -> Result<Limits, String> {
    let time = |k: &str| j.get(k).and_then(Json::as_i64).map(Timestamp::from_nanos);
    Ok(Limits {
        from: time("from"),
        to: time("to"),
        max_rows: j
            .get("max_rows")
            .and_then(Json::as_u64)
            .ok_or("no max_rows")?
            .min(max_rows_cap as u64) as usize,
        now: time("now").ok_or("no now")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_their_types() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-7),
            Value::Int(i64::MAX),
            Value::Float(1.0),
            Value::Float(-0.0),
            Value::float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Str("403".into()),
            Value::Ip("2001:db8::1".parse().unwrap()),
            Value::List(vec![Value::Int(1), Value::Float(1.5)]),
            Value::Map([("k".to_string(), Value::Str("v".into()))].into()),
        ];
        for v in values {
            let text = value_to_wire(&v).to_string();
            let back = value_from_wire(&serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(back, v, "{text}");
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&v),
                "{text}"
            );
        }
    }

    #[test]
    fn hostile_values_are_refused_not_guessed() {
        for bad in [
            r#"1.5"#,
            r#"{"x": 1}"#,
            r#"{"f": "pi"}"#,
            r#"{"ip": "no"}"#,
            r#"{"f": 1, "ip": "::1"}"#,
        ] {
            let j: Json = serde_json::from_str(bad).unwrap();
            assert!(value_from_wire(&j).is_err(), "{bad}");
        }
        let mut deep = Json::Null;
        for _ in 0..100 {
            deep = Json::Array(vec![deep]);
        }
        assert!(value_from_wire(&deep).is_err());
        let ragged = json!({"columns": ["a", "b"], "rows": [[1]], "scanned": 1});
        assert!(result_from_wire(&ragged).unwrap_err().contains("1 cells"));
    }
}
