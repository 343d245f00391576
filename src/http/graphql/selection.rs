//! A GraphQL root field as the planner's [`Query`]: its selection set becomes `fields`
//! (nested relations as paths, `<field>_func { year }` as `year(<field>)`), its aliases
//! `alias` entries at the level they stand, its arguments `filter`, `sort`, `limit`, ...,
//! and the arguments of nested relations `deep` options. The planner then makes ONE
//! statement of it, exactly as for REST.

use async_graphql::context::SelectionField;
use async_graphql::{Name, Value};
use rectus_policies::{Collection, SchemaOverview};
use serde_json::{Map, Value as Json};

use crate::error::{ApiError, ErrorCode};
use crate::planner::Query;
use crate::planner::query::AGGREGATES;

/// The arguments of a field as JSON, with variables resolved.
pub fn arguments(field: &SelectionField) -> Result<Map<String, Json>, ApiError> {
    let args: Vec<(Name, Value)> = field
        .arguments()
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.message))?;
    Ok(args
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.into_json().unwrap_or(Json::Null)))
        .collect())
}

/// GraphQL's filter input as the filter language: `<field>_func: {year: {...}}` becomes
/// `"year(<field>)": {...}`, everything else is the same.
pub fn filter(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut out = Map::new();
            for (key, inner) in map {
                match (key.strip_suffix("_func"), inner) {
                    (Some(base), Json::Object(functions)) if !base.is_empty() => {
                        for (function, operators) in functions {
                            out.insert(format!("{function}({base})"), filter(operators));
                        }
                    }
                    _ => {
                        out.insert(key.clone(), filter(inner));
                    }
                }
            }
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(items.iter().map(filter).collect()),
        other => other.clone(),
    }
}

/// The query-shaping arguments (`filter`, `sort`, `limit`, `offset`, `page`, `search`,
/// `groupBy`) of a field, as Directus query parameters.
fn parameters(args: &Map<String, Json>) -> Map<String, Json> {
    let mut params = Map::new();
    for (name, value) in args {
        if value.is_null() {
            continue;
        }
        match name.as_str() {
            "filter" => {
                params.insert("filter".into(), filter(value));
            }
            "sort" | "limit" | "offset" | "page" | "search" | "groupBy" => {
                params.insert(name.clone(), value.clone());
            }
            _ => {}
        }
    }
    params
}

/// What a selection asks of the planner, gathered level by level.
#[derive(Default)]
struct Wanted {
    fields: Vec<String>,
    alias: Map<String, Json>,
}

impl Wanted {
    /// Gathers the fields and aliases below `selection`; answers this level's `deep`
    /// options (the arguments of its relations, and their own levels below).
    fn walk(
        &mut self,
        selection: &SelectionField,
        schema: &SchemaOverview,
        collection: &Collection,
        prefix: &str,
    ) -> Result<Map<String, Json>, ApiError> {
        let name = collection.collection.as_str();
        let mut deep = Map::new();
        for field in selection.selection_set() {
            let field_name = field.name();
            if field_name.starts_with("__") {
                continue;
            }
            if let Some(base) = field_name.strip_suffix("_func")
                && collection.field(base).is_some()
            {
                for part in field.selection_set() {
                    if !part.name().starts_with("__") {
                        self.fields.push(format!("{prefix}{}({base})", part.name()));
                    }
                }
                continue;
            }
            let Some(schema_field) = collection.field(field_name) else {
                continue;
            };
            let key = field.alias().unwrap_or(field_name);
            let path = format!("{prefix}{key}");
            if key != field_name {
                self.alias
                    .insert(path.clone(), Json::String(field_name.to_string()));
            }
            let related = match schema_field.is_alias() {
                true => schema
                    .one_to_many_by_alias(name, field_name)
                    .map(|r| r.many_collection.as_str()),
                false => schema
                    .many_to_one(name, field_name)
                    .and_then(|r| r.one_collection.as_deref()),
            }
            .and_then(|c| schema.collection(c));
            match related {
                Some(related) if field.selection_set().next().is_some() => {
                    let mut node = self.walk(&field, schema, related, &format!("{path}."))?;
                    for (option, value) in parameters(&arguments(&field)?) {
                        node.insert(format!("_{option}"), value);
                    }
                    if !node.is_empty() {
                        deep.insert(key.to_string(), Json::Object(node));
                    }
                }
                _ => self.fields.push(path),
            }
        }
        Ok(deep)
    }
}

/// The query of a root field that reads items of `collection`.
pub fn items_query(
    root: &SelectionField,
    schema: &SchemaOverview,
    collection: &Collection,
) -> Result<Query, ApiError> {
    let mut wanted = Wanted::default();
    let deep = wanted.walk(root, schema, collection, "")?;
    let mut params = parameters(&arguments(root)?);
    if wanted.fields.is_empty() {
        // Only `__typename`: read the key, nothing else.
        wanted.fields.push(collection.primary_key.clone());
    }
    params.insert(
        "fields".into(),
        Json::Array(wanted.fields.into_iter().map(Json::String).collect()),
    );
    if !wanted.alias.is_empty() {
        params.insert("alias".into(), Json::Object(wanted.alias));
    }
    if !deep.is_empty() {
        params.insert("deep".into(), Json::Object(deep));
    }
    Query::from_json(&params)
}

/// The query of a `<collection>_aggregated` root field: the aggregate functions and fields
/// its selection names, grouped by its `groupBy` argument.
pub fn aggregate_query(root: &SelectionField) -> Result<Query, ApiError> {
    let mut aggregate = Map::new();
    for field in root.selection_set() {
        let function = field.name();
        if function == "countAll" {
            aggregate.insert("countAll".into(), Json::from(vec!["*"]));
        } else if AGGREGATES.contains(&function) {
            let fields: Vec<Json> = field
                .selection_set()
                .map(|f| f.name())
                .filter(|f| !f.starts_with("__"))
                .map(Json::from)
                .collect();
            if let Some(Json::Array(existing)) = aggregate.get_mut(function) {
                existing.extend(fields);
            } else {
                aggregate.insert(function.into(), Json::Array(fields));
            }
        }
    }
    let mut params = parameters(&arguments(root)?);
    if aggregate.is_empty() {
        aggregate.insert("countAll".into(), Json::from(vec!["*"]));
    }
    params.insert("aggregate".into(), Json::Object(aggregate));
    Query::from_json(&params)
}

/// The output key of a `groupBy` entry: `year(date)` is answered as `date_year`.
pub fn group_key(entry: &str) -> String {
    match crate::planner::tree::split_function(entry) {
        Some((function, field)) => format!("{field}_{function}"),
        None => entry.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn function_filters_become_function_keys() {
        let input = json!({"_and": [{"date_created_func": {"year": {"_eq": 2024}}},
            {"orders_func": {"count": {"_gt": 1}}}, {"customer": {"name": {"_eq": "Ann"}}}]});
        assert_eq!(
            filter(&input),
            json!({"_and": [{"year(date_created)": {"_eq": 2024}}, {"count(orders)": {"_gt": 1}},
                {"customer": {"name": {"_eq": "Ann"}}}]})
        );
    }

    #[test]
    fn group_keys_follow_the_planner() {
        assert_eq!(group_key("status"), "status");
        assert_eq!(group_key("year(date_created)"), "date_created_year");
    }
}
