//! The `deep` query parameter: per-relation filter, search, sort and paging of nested
//! items.

use serde_json::Value as Json;

use super::read::invalid;
use crate::error::ApiError;

/// The `deep` options of one relation: `_filter`, `_sort`, `_limit`, `_offset`, `_page`.
#[derive(Debug, Default)]
pub struct DeepOptions {
    pub path: String,
    pub filter: Option<Json>,
    /// `_search`: the term the nested items must contain, as `search` does for a list.
    pub search: Option<String>,
    pub sort: Vec<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub page: Option<i64>,
}

impl DeepOptions {
    pub fn read(node: Option<&Json>, path: &str) -> Result<DeepOptions, ApiError> {
        let mut options = DeepOptions {
            path: path.to_string(),
            ..DeepOptions::default()
        };
        let Some(node) = node else { return Ok(options) };
        let Json::Object(map) = node else {
            return Err(invalid(format!("\"deep.{path}\" must be an object.")));
        };
        let number = |key: &str, v: &Json| -> Result<i64, ApiError> {
            match v {
                Json::Number(n) => n.as_i64(),
                Json::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| invalid(format!("\"deep.{path}.{key}\" must be a whole number.")))
        };
        for (key, value) in map {
            match key.as_str() {
                "_filter" => {
                    options.filter = Some(match value {
                        Json::String(s) => serde_json::from_str(s).map_err(|_| {
                            invalid(format!("\"deep.{path}._filter\" is not valid JSON."))
                        })?,
                        other => other.clone(),
                    })
                }
                "_sort" => {
                    options.sort = match value {
                        Json::String(s) => s
                            .split(',')
                            .map(|p| p.trim().to_string())
                            .filter(|p| !p.is_empty())
                            .collect(),
                        Json::Array(items) => items
                            .iter()
                            .filter_map(|i| i.as_str().map(String::from))
                            .collect(),
                        _ => {
                            return Err(invalid(format!(
                                "\"deep.{path}._sort\" must be a list of fields."
                            )));
                        }
                    }
                }
                "_search" => {
                    options.search = match value {
                        Json::String(s) => Some(s.clone()),
                        Json::Number(n) => Some(n.to_string()),
                        Json::Null => None,
                        _ => {
                            return Err(invalid(format!("\"deep.{path}._search\" must be text.")));
                        }
                    }
                }
                "_limit" => options.limit = Some(number(key, value)?),
                "_offset" => options.offset = Some(number(key, value)?),
                "_page" => options.page = Some(number(key, value)?),
                k if k.starts_with('_') => {
                    return Err(invalid(format!(
                        "\"deep.{path}.{k}\" is not a deep option."
                    )));
                }
                // Options of relations one level further down.
                _ => {}
            }
        }
        if options.limit.is_some_and(|l| l < -1) {
            return Err(invalid(format!(
                "\"deep.{path}._limit\" must be -1 or more."
            )));
        }
        Ok(options)
    }
}
