//! `export`: a read answered as a file download in JSON, CSV, XML or YAML, shaped as
//! Directus exports them (CSV flattens nested objects into `customer.name` columns and
//! writes lists as JSON; XML nests `<data>` elements; YAML is block style).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json};

use crate::error::ApiError;
use crate::planner::query::ExportFormat;

/// The download of `data` (JSON text from the database: an array or one object).
pub fn download(format: ExportFormat, collection: &str, data: &str) -> Result<Response, ApiError> {
    let value: Json = serde_json::from_str(data).map_err(|e| ApiError::internal(&e))?;
    let items = match value {
        Json::Array(items) => items,
        other => vec![other],
    };
    let (body, content_type) = match format {
        ExportFormat::Json => (
            serde_json::to_string_pretty(&items).map_err(|e| ApiError::internal(&e))?,
            "application/json; charset=utf-8",
        ),
        ExportFormat::Csv => (csv(&items), "text/csv; charset=utf-8"),
        ExportFormat::Xml => (xml(&items), "text/xml; charset=utf-8"),
        ExportFormat::Yaml => (yaml(&items), "text/yaml; charset=utf-8"),
    };
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let file = format!(
        "attachment; filename=\"{}-{stamp}.{}\"",
        collection.replace(['"', '\\', '/'], "_"),
        format.extension()
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&file) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Nested objects become `parent.child` keys; lists stay values.
fn flatten(prefix: &str, value: &Json, out: &mut Vec<(String, Json)>) {
    match value {
        Json::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn csv(items: &[Json]) -> String {
    let rows: Vec<Vec<(String, Json)>> = items
        .iter()
        .map(|item| {
            let mut row = Vec::new();
            flatten("", item, &mut row);
            row
        })
        .collect();
    let mut header: Vec<String> = Vec::new();
    for row in &rows {
        for (k, _) in row {
            if !header.contains(k) {
                header.push(k.clone());
            }
        }
    }
    let mut out = String::new();
    out.push_str(
        &header
            .iter()
            .map(|h| csv_cell(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    for row in &rows {
        out.push('\n');
        let cells: Vec<String> = header
            .iter()
            .map(|h| match row.iter().find(|(k, _)| k == h).map(|(_, v)| v) {
                None | Some(Json::Null) => String::new(),
                Some(Json::String(s)) => csv_cell(s),
                Some(other) => csv_cell(&other.to_string()),
            })
            .collect();
        out.push_str(&cells.join(","));
    }
    out
}

/// Quoted as json2csv quotes: always for text, doubling inner quotes.
fn csv_cell(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn xml(items: &[Json]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<data>\n");
    for item in items {
        xml_element("data", item, 1, &mut out);
    }
    out.push_str("</data>\n");
    out
}

fn xml_element(name: &str, value: &Json, depth: usize, out: &mut String) {
    let indent = "    ".repeat(depth);
    let name = xml_name(name);
    match value {
        Json::Array(items) => {
            for item in items {
                xml_element(&name, item, depth, out);
            }
        }
        Json::Object(map) => {
            out.push_str(&format!("{indent}<{name}>\n"));
            for (k, v) in map {
                xml_element(k, v, depth + 1, out);
            }
            out.push_str(&format!("{indent}</{name}>\n"));
        }
        Json::Null => out.push_str(&format!("{indent}<{name}/>\n")),
        Json::String(s) => out.push_str(&format!("{indent}<{name}>{}</{name}>\n", xml_escape(s))),
        other => out.push_str(&format!("{indent}<{name}>{other}</{name}>\n")),
    }
}

/// Field names are XML names already, except for characters XML does not allow.
fn xml_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn yaml(items: &[Json]) -> String {
    if items.is_empty() {
        return "[]\n".to_string();
    }
    let mut out = String::new();
    for item in items {
        yaml_list_item(item, 0, &mut out);
    }
    out
}

fn yaml_list_item(value: &Json, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match value {
        Json::Object(map) if !map.is_empty() => {
            let mut first = true;
            for (k, v) in map {
                let lead = if first {
                    format!("{indent}- ")
                } else {
                    format!("{indent}  ")
                };
                first = false;
                yaml_pair(&lead, k, v, depth + 1, out);
            }
        }
        Json::Array(items) if !items.is_empty() => {
            out.push_str(&format!("{indent}-\n"));
            for item in items {
                yaml_list_item(item, depth + 1, out);
            }
        }
        other => out.push_str(&format!("{indent}- {}\n", yaml_scalar(other))),
    }
}

fn yaml_pair(lead: &str, key: &str, value: &Json, depth: usize, out: &mut String) {
    let key = yaml_scalar(&Json::String(key.to_string()));
    match value {
        Json::Object(map) if !map.is_empty() => {
            out.push_str(&format!("{lead}{key}:\n"));
            yaml_map(map, depth + 1, out);
        }
        Json::Array(items) if !items.is_empty() => {
            out.push_str(&format!("{lead}{key}:\n"));
            for item in items {
                yaml_list_item(item, depth + 1, out);
            }
        }
        other => out.push_str(&format!("{lead}{key}: {}\n", yaml_scalar(other))),
    }
}

fn yaml_map(map: &Map<String, Json>, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    for (k, v) in map {
        yaml_pair(&indent, k, v, depth, out);
    }
}

/// Scalars in flow form: plain where YAML reads them back unchanged, JSON-quoted (valid
/// YAML) otherwise.
fn yaml_scalar(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '@' | '/'))
                && !s.starts_with(['-', ' ', '.', '@'])
                && !s.ends_with(' ')
                && s.parse::<f64>().is_err()
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "~" | "y" | "n"
                );
            if plain {
                s.clone()
            } else {
                Json::String(s.clone()).to_string()
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_flattens_objects_and_quotes_text() {
        let items = vec![
            json!({"id": 1, "name": "Ann \"A\"", "customer": {"name": "x"}, "tags": [1, 2]}),
            json!({"id": 2, "name": null, "extra": true}),
        ];
        assert_eq!(
            csv(&items),
            "\"id\",\"name\",\"customer.name\",\"tags\",\"extra\"\n\
             \"1\",\"Ann \"\"A\"\"\",\"x\",\"[1,2]\",\n\
             \"2\",,,,\"true\""
        );
    }

    #[test]
    fn xml_escapes_and_nests() {
        let out = xml(&[json!({"id": 1, "note": "a<b & c", "tags": [1, 2], "gone": null})]);
        assert!(out.contains("<note>a&lt;b &amp; c</note>"), "{out}");
        assert!(
            out.contains("<tags>1</tags>\n        <tags>2</tags>"),
            "{out}"
        );
        assert!(out.contains("<gone/>"), "{out}");
    }

    #[test]
    fn yaml_quotes_what_would_read_back_differently() {
        let out = yaml(&[
            json!({"id": 1, "name": "Ann", "code": "007", "flag": "yes", "o": {"k": "a: b"}}),
        ]);
        assert!(out.starts_with("- "), "{out}");
        assert!(out.contains("name: Ann\n"), "{out}");
        assert!(out.contains("code: \"007\"\n"), "{out}");
        assert!(out.contains("flag: \"yes\"\n"), "{out}");
        assert!(out.contains("o:\n    k: \"a: b\"\n"), "{out}");
    }
}
