//! Directus's query parameters as one typed [`Query`], read from a JSON object (the `SEARCH`
//! body, GraphQL arguments, or URL parameters already gathered into JSON). A bad parameter
//! is an `INVALID_QUERY` that names it.

use serde_json::{Map, Value as Json};

use crate::error::{ApiError, ErrorCode};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Requested fields; empty means `*`.
    pub fields: Vec<String>,
    pub filter: Option<Json>,
    pub search: Option<String>,
    /// Field names, `-` in front for descending.
    pub sort: Vec<String>,
    /// `None`: the default limit; `Some(-1)`: no limit.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub page: Option<i64>,
    /// `total_count`, `filter_count`.
    pub meta: Vec<String>,
    /// Options per relation: `{"orders": {"_limit": 5, "_sort": ["-id"], "_filter": {...}}}`.
    pub deep: Option<Json>,
    /// `{"count": ["*"], "sum": ["amount"]}`, in the order given.
    pub aggregate: Vec<(String, Vec<String>)>,
    /// Fields and function fields (`year(date_created)`) the aggregate groups by.
    pub group_by: Vec<String>,
    /// `{"paid_orders": "orders"}`: another name for a field, so that one relation can be
    /// read twice with different `deep` options.
    pub alias: Vec<(String, String)>,
    /// `export`: answer as a file download in this format.
    pub export: Option<ExportFormat>,
}

/// The file formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Csv,
    Xml,
    Yaml,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
            ExportFormat::Xml => "xml",
            ExportFormat::Yaml => "yaml",
        }
    }
}

/// The aggregate functions Directus knows.
pub const AGGREGATES: [&str; 9] = [
    "count",
    "countDistinct",
    "countAll",
    "sum",
    "sumDistinct",
    "avg",
    "avgDistinct",
    "min",
    "max",
];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("Invalid query. {}", message.into()),
    )
}

/// `"a,b"`, `["a", "b"]` or a JSON array in a string.
fn list(name: &str, value: &Json) -> Result<Vec<String>, ApiError> {
    match value {
        Json::Null => Ok(Vec::new()),
        Json::String(s) if s.trim_start().starts_with('[') => {
            let parsed: Json = serde_json::from_str(s)
                .map_err(|_| invalid(format!("\"{name}\" is not a valid JSON array.")))?;
            list(name, &parsed)
        }
        Json::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()),
        Json::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Json::String(_) => out.extend(list(name, item)?),
                    _ => {
                        return Err(invalid(format!(
                            "\"{name}\" must be a list of field names."
                        )));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(invalid(format!(
            "\"{name}\" must be a list of field names."
        ))),
    }
}

fn integer(name: &str, value: &Json) -> Result<Option<i64>, ApiError> {
    let n = match value {
        Json::Null => return Ok(None),
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.map(Some)
        .ok_or_else(|| invalid(format!("\"{name}\" must be a whole number.")))
}

/// An object parameter (`filter`, `deep`, `aggregate`, `alias`): an object, or the same as
/// JSON text; `None` when absent or empty text.
fn object(name: &str, value: &Json) -> Result<Option<Map<String, Json>>, ApiError> {
    let parsed = match value {
        Json::Null => return Ok(None),
        Json::String(s) if s.trim().is_empty() => return Ok(None),
        Json::String(s) => serde_json::from_str::<Json>(s)
            .map_err(|_| invalid(format!("\"{name}\" is not valid JSON.")))?,
        other => other.clone(),
    };
    match parsed {
        Json::Object(map) => Ok(Some(map)),
        _ => Err(invalid(format!("\"{name}\" must be an object."))),
    }
}

/// `{"count": "*", "sum": "amount,total"}`, or the same as JSON text.
fn aggregate(value: &Json) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let Some(map) = object("aggregate", value)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(map.len());
    for (function, fields) in map {
        if !AGGREGATES.contains(&function.as_str()) {
            return Err(invalid(format!(
                "\"aggregate\" does not know \"{function}\"."
            )));
        }
        let fields = list(&format!("aggregate[{function}]"), &fields)?;
        if fields.is_empty() {
            return Err(invalid(format!("\"aggregate[{function}]\" needs a field.")));
        }
        out.push((function, fields));
    }
    Ok(out)
}

/// `{"new_name": "field"}`, or the same as JSON text.
fn alias(value: &Json) -> Result<Vec<(String, String)>, ApiError> {
    let Some(map) = object("alias", value)? else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(name, target)| match target {
            Json::String(t) if !t.trim().is_empty() => Ok((name.clone(), t.trim().to_string())),
            _ => Err(invalid(format!("\"alias[{name}]\" must name a field."))),
        })
        .collect()
}

impl Query {
    pub fn from_json(params: &Map<String, Json>) -> Result<Query, ApiError> {
        let mut query = Query::default();
        for (name, value) in params {
            match name.as_str() {
                "fields" => query.fields = list(name, value)?,
                "sort" => query.sort = list(name, value)?,
                "meta" => query.meta = list(name, value)?,
                "filter" => query.filter = object(name, value)?.map(Json::Object),
                "search" => {
                    query.search = match value {
                        Json::Null => None,
                        Json::String(s) => Some(s.clone()),
                        Json::Number(n) => Some(n.to_string()),
                        _ => return Err(invalid("\"search\" must be text.")),
                    }
                }
                "deep" => query.deep = object(name, value)?.map(Json::Object),
                "aggregate" => query.aggregate = aggregate(value)?,
                "groupBy" => query.group_by = list(name, value)?,
                "alias" => query.alias = alias(value)?,
                "export" => {
                    query.export = match value.as_str().map(str::trim) {
                        None | Some("") => None,
                        Some("json") => Some(ExportFormat::Json),
                        Some("csv") => Some(ExportFormat::Csv),
                        Some("xml") => Some(ExportFormat::Xml),
                        Some("yaml") => Some(ExportFormat::Yaml),
                        Some(other) => {
                            return Err(invalid(format!(
                                "\"export\" must be json, csv, xml or yaml, not \"{other}\"."
                            )));
                        }
                    }
                }
                "limit" => query.limit = integer(name, value)?,
                "offset" => query.offset = integer(name, value)?,
                "page" => query.page = integer(name, value)?,
                // Parameters that are not part of reading items (access_token, export, ...).
                _ => {}
            }
        }
        if query.limit.is_some_and(|l| l < -1) {
            return Err(invalid("\"limit\" must be -1 or more."));
        }
        if query.offset.is_some_and(|o| o < 0) {
            return Err(invalid("\"offset\" must be 0 or more."));
        }
        if query.page.is_some_and(|p| p < 1) {
            return Err(invalid("\"page\" must be 1 or more."));
        }
        for m in &query.meta {
            if !matches!(m.as_str(), "total_count" | "filter_count" | "*") {
                return Err(invalid(format!("\"meta\" does not know \"{m}\".")));
            }
        }
        Ok(query)
    }

    pub fn wants_meta(&self, name: &str) -> bool {
        self.meta.iter().any(|m| m == name || m == "*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(v: Json) -> Result<Query, ApiError> {
        Query::from_json(v.as_object().unwrap())
    }

    #[test]
    fn parameters_read_in_every_form() {
        let query = q(
            json!({"fields": "id, title", "sort": ["-date", "id"], "limit": "5",
            "filter": "{\"id\":{\"_eq\":1}}", "meta": "*"}),
        )
        .unwrap();
        assert_eq!(query.fields, vec!["id", "title"]);
        assert_eq!(query.sort, vec!["-date", "id"]);
        assert_eq!(query.limit, Some(5));
        assert_eq!(query.filter, Some(json!({"id": {"_eq": 1}})));
        assert!(query.wants_meta("filter_count"));
        assert_eq!(
            q(json!({"fields": "[\"a\",\"b\"]"})).unwrap().fields,
            vec!["a", "b"]
        );
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let message = |v: Json| q(v).unwrap_err().message;
        assert!(message(json!({"limit": "ten"})).contains("\"limit\""));
        assert!(message(json!({"limit": -2})).contains("\"limit\""));
        assert!(message(json!({"filter": "{oops"})).contains("\"filter\""));
        assert!(message(json!({"page": 0})).contains("\"page\""));
        assert!(message(json!({"meta": "everything"})).contains("\"meta\""));
        assert_eq!(
            q(json!({"limit": "ten"})).unwrap_err().code,
            ErrorCode::InvalidQuery
        );
    }
}
