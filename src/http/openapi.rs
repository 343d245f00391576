//! `GET /server/specs/oas`: an OpenAPI 3.0 document of the REST API as the caller may use
//! it, shaped as Directus's: a schema per readable collection (`ItemsOrders`, `Users`, ...)
//! with only the fields the caller may read, relations as "key or related item", and the
//! item paths with only the methods the caller's permissions allow.

use rectus_policies::{Action, Collection, EffectivePermissions, Field, FieldType, SchemaOverview};
use serde_json::{Map, Value as Json, json};

/// The system collections the REST API serves under their own paths.
const SYSTEM_PATHS: &[(&str, &str)] = &[
    ("directus_users", "/users"),
    ("directus_roles", "/roles"),
    ("directus_policies", "/policies"),
    ("directus_access", "/access"),
    ("directus_permissions", "/permissions"),
    ("directus_activity", "/activity"),
    ("directus_revisions", "/revisions"),
];

/// Written only by rectus itself: readable, never written through the API.
const READ_ONLY: &[&str] = &["directus_activity", "directus_revisions"];

fn pascal(name: &str) -> String {
    name.split(['_', '-', ' '])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The component name of a collection's schema.
fn schema_name(collection: &str) -> String {
    match collection.strip_prefix("directus_") {
        Some(system) => pascal(system),
        None => format!("Items{}", pascal(collection)),
    }
}

fn reference(collection: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{}", schema_name(collection))})
}

/// The JSON schema of a column's value, as the API answers it.
fn value_schema(kind: FieldType) -> Json {
    match kind {
        FieldType::Integer => json!({"type": "integer"}),
        FieldType::BigInteger => json!({"type": "string", "format": "int64"}),
        FieldType::Float => json!({"type": "number", "format": "float"}),
        FieldType::Decimal => json!({"type": "string", "format": "decimal"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Uuid => json!({"type": "string", "format": "uuid"}),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::Time => json!({"type": "string", "format": "time"}),
        FieldType::DateTime | FieldType::Timestamp => {
            json!({"type": "string", "format": "date-time"})
        }
        FieldType::Csv => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::String | FieldType::Text | FieldType::Hash => json!({"type": "string"}),
        FieldType::Json | FieldType::Binary | FieldType::Unknown | FieldType::Alias => json!({}),
    }
}

struct Spec<'s> {
    overview: &'s SchemaOverview,
    permissions: &'s EffectivePermissions,
}

impl Spec<'_> {
    fn can(&self, collection: &str, action: Action) -> bool {
        self.permissions.rules(collection, action).is_some()
    }

    fn key_schema(&self, collection: &str) -> Json {
        self.overview
            .collection(collection)
            .and_then(Collection::primary_key_field)
            .map_or_else(|| json!({"type": "string"}), |f| value_schema(f.kind))
    }

    /// A relation's value: the related key, or the related item when the caller may read it.
    fn related(&self, collection: &str) -> Json {
        match self.can(collection, Action::Read) {
            true => json!({"oneOf": [self.key_schema(collection), reference(collection)]}),
            false => self.key_schema(collection),
        }
    }

    fn field_schema(&self, collection: &Collection, field: &Field) -> Option<Json> {
        let name = collection.collection.as_str();
        if field.is_alias() {
            let relation = self.overview.one_to_many_by_alias(name, &field.field)?;
            return Some(
                json!({"type": "array", "items": self.related(&relation.many_collection)}),
            );
        }
        let mut schema = match self
            .overview
            .many_to_one(name, &field.field)
            .and_then(|r| r.one_collection.as_deref())
        {
            Some(related) => self.related(related),
            None => value_schema(field.kind),
        };
        // OpenAPI 3.0 only lets a schema with a type be nullable.
        if let Json::Object(map) = &mut schema
            && field.nullable
            && map.contains_key("type")
        {
            map.insert("nullable".into(), Json::Bool(true));
        }
        Some(schema)
    }

    fn collection_schema(&self, collection: &Collection) -> Json {
        let name = collection.collection.as_str();
        let rules = self.permissions.rules(name, Action::Read);
        let mut properties = Map::new();
        for field in collection.fields.values() {
            if !rules
                .as_ref()
                .is_some_and(|r| r.field_allowed(&field.field))
            {
                continue;
            }
            if let Some(schema) = self.field_schema(collection, field) {
                properties.insert(field.field.clone(), schema);
            }
        }
        json!({"type": "object", "properties": properties, "x-collection": name})
    }
}

fn parameter(name: &str) -> Json {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

fn data_response(description: &str, data: Json) -> Json {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {"data": data, "meta": {"$ref": "#/components/schemas/x-metadata"}},
        }}},
    })
}

fn errors() -> Map<String, Json> {
    let mut responses = Map::new();
    responses.insert(
        "401".into(),
        json!({"$ref": "#/components/responses/UnauthorizedError"}),
    );
    responses.insert(
        "403".into(),
        json!({"$ref": "#/components/responses/ForbiddenError"}),
    );
    responses
}

fn operation(
    id: String,
    tag: &str,
    summary: String,
    parameters: Vec<Json>,
    body: Option<Json>,
    ok: Json,
) -> Json {
    let mut responses = errors();
    responses.insert("200".into(), ok);
    let mut op = json!({
        "operationId": id,
        "summary": summary,
        "tags": [tag],
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(schema) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    op
}

/// The item paths of one collection: its list (and singleton) path and its by-key path.
fn item_paths(spec: &Spec, collection: &Collection, base: &str, paths: &mut Map<String, Json>) {
    let name = collection.collection.as_str();
    let tag = schema_name(name);
    let pascal_name = pascal(name.strip_prefix("directus_").unwrap_or(name));
    let item = reference(name);
    let list = json!({"type": "array", "items": item});
    let body = json!({"oneOf": [list, item]});
    let writable = !collection.view && !READ_ONLY.contains(&name);
    let query_parameters = || {
        [
            "Fields", "Limit", "Offset", "Page", "Sort", "Filter", "Search", "Meta",
        ]
        .iter()
        .map(|p| parameter(p))
        .collect::<Vec<_>>()
    };
    let mut many = Map::new();
    if spec.can(name, Action::Read) {
        let (params, data) = match collection.singleton {
            true => (vec![parameter("Fields")], item.clone()),
            false => (query_parameters(), list.clone()),
        };
        many.insert(
            "get".into(),
            operation(
                format!("read{pascal_name}"),
                &tag,
                format!("List the {name} items"),
                params,
                None,
                data_response("Successful request", data),
            ),
        );
    }
    if writable && !collection.singleton && spec.can(name, Action::Create) {
        many.insert(
            "post".into(),
            operation(
                format!("create{pascal_name}"),
                &tag,
                format!("Create {name} items"),
                vec![parameter("Fields")],
                Some(body.clone()),
                data_response("Successful request", body.clone()),
            ),
        );
    }
    if writable && spec.can(name, Action::Update) {
        let update_body = match collection.singleton {
            true => item.clone(),
            false => json!({"oneOf": [
                {"type": "object", "properties": {"keys": {"type": "array", "items": {}}, "data": item}},
                {"type": "object", "properties": {"query": {"type": "object"}, "data": item}},
                list,
            ]}),
        };
        many.insert(
            "patch".into(),
            operation(
                format!("update{pascal_name}"),
                &tag,
                format!("Update {name} items"),
                vec![parameter("Fields")],
                Some(update_body),
                data_response("Successful request", body.clone()),
            ),
        );
    }
    if writable && !collection.singleton && spec.can(name, Action::Delete) {
        let mut responses = errors();
        responses.insert("204".into(), json!({"description": "Deleted"}));
        many.insert(
            "delete".into(),
            json!({
                "operationId": format!("delete{pascal_name}"),
                "summary": format!("Delete {name} items"),
                "tags": [tag],
                "requestBody": {"content": {"application/json": {"schema": {"oneOf": [
                    {"type": "array", "items": {}},
                    {"type": "object", "properties": {"keys": {"type": "array", "items": {}}}},
                    {"type": "object", "properties": {"query": {"type": "object"}}},
                ]}}}},
                "responses": responses,
            }),
        );
    }
    if !many.is_empty() {
        paths.insert(base.to_string(), Json::Object(many));
    }
    if collection.singleton {
        return;
    }
    let mut one = Map::new();
    let id = parameter("Id");
    if spec.can(name, Action::Read) {
        one.insert(
            "get".into(),
            operation(
                format!("read{pascal_name}Item"),
                &tag,
                format!("Read one {name} item"),
                vec![id.clone(), parameter("Fields")],
                None,
                data_response("Successful request", item.clone()),
            ),
        );
    }
    if writable && spec.can(name, Action::Update) {
        one.insert(
            "patch".into(),
            operation(
                format!("update{pascal_name}Item"),
                &tag,
                format!("Update one {name} item"),
                vec![id.clone(), parameter("Fields")],
                Some(item.clone()),
                data_response("Successful request", item.clone()),
            ),
        );
    }
    if writable && spec.can(name, Action::Delete) {
        let mut responses = errors();
        responses.insert("204".into(), json!({"description": "Deleted"}));
        one.insert(
            "delete".into(),
            json!({
                "operationId": format!("delete{pascal_name}Item"),
                "summary": format!("Delete one {name} item"),
                "tags": [tag],
                "parameters": [id],
                "responses": responses,
            }),
        );
    }
    if !one.is_empty() {
        paths.insert(format!("{base}/{{id}}"), Json::Object(one));
    }
}

/// The paths every caller can use: login, tokens, server, GraphQL.
fn fixed_paths(paths: &mut Map<String, Json>) {
    let text = json!({"description": "Successful request", "content": {"text/plain": {"schema": {"type": "string"}}}});
    let object = json!({"description": "Successful request", "content": {"application/json": {"schema": {"type": "object"}}}});
    let simple = |id: &str, tag: &str, summary: &str, ok: &Json| json!({"operationId": id, "summary": summary, "tags": [tag], "responses": {"200": ok}});
    let post = |id: &str, summary: &str, properties: Json| {
        json!({
            "operationId": id, "summary": summary, "tags": ["Authentication"],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": properties}}}},
            "responses": {"200": object, "401": {"$ref": "#/components/responses/UnauthorizedError"}},
        })
    };
    paths.insert(
        "/server/ping".into(),
        json!({"get": simple("ping", "Server", "Ping the server", &text)}),
    );
    paths.insert(
        "/server/info".into(),
        json!({"get": simple("serverInfo", "Server", "Public project information", &object)}),
    );
    paths.insert(
        "/server/health".into(),
        json!({"get": simple("serverHealth", "Server", "The health of the server", &object)}),
    );
    paths.insert(
        "/server/specs/oas".into(),
        json!({"get": simple("oas", "Server", "This document", &object)}),
    );
    paths.insert(
        "/auth/login".into(),
        json!({"post": post("login", "Log in", json!({"email": {"type": "string", "format": "email"}, "password": {"type": "string"}, "mode": {"type": "string", "enum": ["json", "cookie", "session"]}}))}),
    );
    paths.insert(
        "/auth/refresh".into(),
        json!({"post": post("refresh", "Refresh the access token", json!({"refresh_token": {"type": "string"}, "mode": {"type": "string", "enum": ["json", "cookie", "session"]}}))}),
    );
    paths.insert(
        "/auth/logout".into(),
        json!({"post": post("logout", "Log out", json!({"refresh_token": {"type": "string"}}))}),
    );
    paths.insert(
        "/graphql".into(),
        json!({"post": {
            "operationId": "graphql", "summary": "GraphQL over the user's collections", "tags": ["GraphQL"],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
                "query": {"type": "string"}, "variables": {"type": "object"}, "operationName": {"type": "string"}}}}}},
            "responses": {"200": object},
        }}),
    );
}

fn components(schemas: Map<String, Json>) -> Json {
    let query = |name: &str, description: &str, schema: Json| json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema});
    let error = json!({"type": "object", "properties": {"errors": {"type": "array", "items": {
        "type": "object", "properties": {"message": {"type": "string"}, "extensions": {
            "type": "object", "properties": {"code": {"type": "string"}}}}}}}});
    let mut schemas = schemas;
    schemas.insert("Error".into(), error);
    schemas.insert(
        "x-metadata".into(),
        json!({"type": "object", "properties": {"total_count": {"type": "integer"}, "filter_count": {"type": "integer"}}}),
    );
    let error_response = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "schemas": schemas,
        "parameters": {
            "Id": {"name": "id", "in": "path", "required": true, "description": "The item's key.",
                   "schema": {"oneOf": [{"type": "integer"}, {"type": "string"}]}},
            "Fields": query("fields", "The fields to return; `*` for all, `relation.field` for related ones.",
                            json!({"type": "array", "items": {"type": "string"}})),
            "Limit": query("limit", "How many items to return (`-1` for all).", json!({"type": "integer"})),
            "Offset": query("offset", "How many items to skip.", json!({"type": "integer"})),
            "Page": query("page", "The page of `limit` items to return.", json!({"type": "integer"})),
            "Sort": query("sort", "Fields to sort by; `-` in front sorts descending.",
                          json!({"type": "array", "items": {"type": "string"}})),
            "Filter": query("filter", "A filter in Directus's filter language, as JSON.",
                            json!({"type": "object"})),
            "Search": query("search", "Text to look for in every searchable field.", json!({"type": "string"})),
            "Meta": query("meta", "`total_count`, `filter_count` or `*`.", json!({"type": "string"})),
        },
        "responses": {
            "UnauthorizedError": error_response("The token is missing, invalid or expired."),
            "ForbiddenError": error_response("You don't have permission to access this."),
        },
        "securitySchemes": {
            "Auth": {"type": "http", "scheme": "bearer"},
            "KeyAuth": {"type": "apiKey", "in": "query", "name": "access_token"},
        },
    })
}

/// The document for `permissions`; `server` is the URL clients reach rectus at.
pub fn document(
    overview: &SchemaOverview,
    permissions: &EffectivePermissions,
    server: &str,
) -> Json {
    let spec = Spec {
        overview,
        permissions,
    };
    let mut paths = Map::new();
    fixed_paths(&mut paths);
    let mut schemas = Map::new();
    for collection in overview.collections.values() {
        let name = collection.collection.as_str();
        let base = match collection.system {
            true => match SYSTEM_PATHS.iter().find(|(c, _)| *c == name) {
                Some((_, path)) => path.to_string(),
                None => continue,
            },
            false => format!("/items/{name}"),
        };
        let any = Action::ALL.iter().any(|a| spec.can(name, *a));
        if !any {
            continue;
        }
        if spec.can(name, Action::Read) {
            schemas.insert(schema_name(name), spec.collection_schema(collection));
        }
        item_paths(&spec, collection, &base, &mut paths);
    }
    // A relation to a readable system collection the API serves under no path of its own
    // (files, folders, ...) still names its schema.
    for collection in overview.collections.values() {
        let name = schema_name(&collection.collection);
        if !schemas.contains_key(&name) && spec.can(&collection.collection, Action::Read) {
            schemas.insert(name, spec.collection_schema(collection));
        }
    }
    json!({
        "openapi": "3.0.1",
        "info": {
            "title": "Dynamic API Specification",
            "description": "The REST API of this rectus project, as the requesting user may use it.",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "servers": [{"url": server, "description": "This rectus instance."}],
        "paths": paths,
        "components": components(schemas),
        "security": [{"Auth": []}, {"KeyAuth": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_directus() {
        assert_eq!(schema_name("orders_tags"), "ItemsOrdersTags");
        assert_eq!(schema_name("directus_users"), "Users");
        assert_eq!(pascal("a-b c"), "ABC");
    }
}
