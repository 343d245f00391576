//! The restricted user of the wire tests, a clerk: the permissions of the SQL guard's unit
//! tests on `orders`, `customers` and `notes`, and what the tests ask of the API about it.

use serde_json::{Value, json};

use crate::rbac::role_with_user;
use crate::support::{App, Kind};

/// rectus on `setup` with plain-text passwords allowed on its SQL endpoint, and a user
/// `<role>@example.com` (password `pw`, static token `<role>-token`) whose role has one
/// policy with `permissions`; returns the user's access token.
pub async fn restricted_app(
    kind: Kind,
    setup: &str,
    role: &str,
    permissions: &[Value],
) -> (App, String) {
    restricted_app_with(kind, setup, role, permissions, &[]).await
}

/// [`restricted_app`] with more settings for rectus.
pub async fn restricted_app_with(
    kind: Kind,
    setup: &str,
    role: &str,
    permissions: &[Value],
    extra_env: &[(&str, &str)],
) -> (App, String) {
    let db = crate::support::TestDb::new(kind).await;
    restricted_app_on(db, None, setup, role, permissions, extra_env).await
}

/// The clerk's app (see [`clerk_permissions`]) on a new `kind` database reached through a
/// test relay (which counts what rectus sends it), with `setup` and then `more` run, and
/// `extra_env` set for rectus.
pub async fn clerk_app_via_relay(
    kind: Kind,
    port: u16,
    (setup, more): (&str, &str),
    extra_env: &[(&str, &str)],
) -> (App, crate::support::relay::Relay) {
    let relay = crate::support::relay::Relay::start(([127, 0, 0, 1], port).into()).await;
    let db = crate::support::TestDb::new(kind).await;
    let (app, _) = restricted_app_on(
        db,
        Some(relay.port()),
        setup,
        "Clerk",
        &clerk_permissions(),
        extra_env,
    )
    .await;
    app.db.exec(more).await;
    (app, relay)
}

/// [`restricted_app_with`] on `db`, reached through `via` (a relay's port) when given.
pub async fn restricted_app_on(
    db: crate::support::TestDb,
    via: Option<u16>,
    setup: &str,
    role: &str,
    permissions: &[Value],
    extra_env: &[(&str, &str)],
) -> (App, String) {
    let mut env = vec![
        ("PG_PROXY_ALLOW_INSECURE_PASSWORD", "true"),
        ("MYSQL_PROXY_ALLOW_INSECURE_PASSWORD", "true"),
    ];
    env.extend_from_slice(extra_env);
    let app = App::start_on(db, Some(setup), &env, via).await;
    let policy = json!({"name": role.to_lowercase(), "app_access": false, "admin_access": false});
    let (policies, token, user) = role_with_user(&app, role, &[policy]).await;
    app.admin_call(
        "PATCH",
        &format!("/users/{user}"),
        Some(json!({"token": format!("{}-token", role.to_lowercase())})),
    )
    .await;
    for permission in permissions {
        let mut body = permission.clone();
        body["policy"] = json!(policies[0]);
        app.admin_call("POST", "/permissions", Some(body)).await;
    }
    (app, token)
}

/// The permissions of the SQL guard's unit tests, for `orders(id, customer, status, amount,
/// secret)`, `customers(id, name)` and `notes`: orders readable when published (without
/// `secret`), creatable with a positive amount (status preset to draft), updatable and
/// deletable while draft; customers readable and their names updatable; notes not at all.
pub fn clerk_permissions() -> Vec<Value> {
    vec![
        json!({"collection": "orders", "action": "read", "fields": ["id", "customer", "status", "amount"], "permissions": {"status": {"_eq": "published"}}}),
        json!({"collection": "customers", "action": "read", "fields": ["*"], "permissions": {}}),
        json!({"collection": "orders", "action": "create", "fields": ["customer", "amount"], "permissions": {}, "validation": {"amount": {"_gt": 0}}, "presets": {"status": "draft"}}),
        json!({"collection": "orders", "action": "update", "fields": ["amount", "status"], "permissions": {"status": {"_eq": "draft"}}}),
        json!({"collection": "customers", "action": "update", "fields": ["name"], "permissions": {}}),
        json!({"collection": "orders", "action": "delete", "fields": ["*"], "permissions": {"status": {"_eq": "draft"}}}),
    ]
}

/// Asserts that `rows` (text values under `columns`, ordered by key) are exactly what
/// `GET /items/<collection>` gives the holder of `token`: the same fields and values.
pub async fn same_as_api(
    app: &App,
    token: &str,
    collection: &str,
    columns: &[String],
    rows: &[Vec<Option<String>>],
) {
    let path = format!("/items/{collection}?sort=id&limit=-1");
    let (status, api) = app.call("GET", &path, Some(token), None).await;
    assert_eq!(status, 200);
    let api = api["data"].as_array().unwrap().clone();
    let mut api_fields: Vec<String> = api[0].as_object().unwrap().keys().cloned().collect();
    api_fields.sort();
    let mut wire_fields = columns.to_vec();
    wire_fields.sort();
    assert_eq!(wire_fields, api_fields);
    assert_eq!(rows.len(), api.len());
    for (row, item) in rows.iter().zip(&api) {
        for (column, value) in columns.iter().zip(row) {
            let expected = match &item[column] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            assert_eq!(value, &expected, "{column}");
        }
    }
}

/// Widens the Clerk's read rule on orders to drafts too (a permission change while
/// sessions are open).
pub async fn clerk_reads_drafts(app: &App) {
    let permissions = app
        .admin_call(
            "GET",
            "/permissions?filter[collection][_eq]=orders&filter[action][_eq]=read",
            None,
        )
        .await;
    let id = permissions["data"][0]["id"].clone();
    app.admin_call(
        "PATCH",
        &format!("/permissions/{id}"),
        Some(json!({"permissions": {"status": {"_in": ["published", "draft"]}}})),
    )
    .await;
}

/// Changes the user with `email` (a `PATCH /users/:id` body).
pub async fn patch_user(app: &App, email: &str, change: Value) {
    let path = format!("/users?filter[email][_eq]={email}");
    let user = app.admin_call("GET", &path, None).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.admin_call("PATCH", &format!("/users/{user}"), Some(change))
        .await;
}

/// Suspends the user with `email`.
pub async fn suspend(app: &App, email: &str) {
    patch_user(app, email, json!({"status": "suspended"})).await;
}

/// A second admin, `boss@example.com` (password `pw`), who can be suspended.
pub async fn second_admin(app: &App) -> &'static str {
    let policy = json!({"name": "boss", "app_access": true, "admin_access": true});
    role_with_user(app, "Boss", &[policy]).await;
    "boss@example.com"
}
