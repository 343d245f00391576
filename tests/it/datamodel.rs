//! The data model API on PostgreSQL, MariaDB and SQLite: the order-management example built
//! entirely over HTTP, checked through each database's own catalog; fields changed and
//! deleted; a failing change leaving no trace.

use rectus::db::{Database, Stmt};
use serde_json::{Value, json};

use crate::on_every_database;
use crate::support::{App, Kind};

/// (column, declared type, nullable) of a table, from the database's catalog.
async fn columns(db: &Database, kind: Kind, table: &str) -> Vec<(String, String, bool)> {
    let stmt = match kind {
        Kind::Postgres => Stmt::new(
            "SELECT column_name::text AS name, data_type::text AS type, is_nullable = 'YES' AS nullable \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        ),
        Kind::MySql => Stmt::new(
            "SELECT COLUMN_NAME AS name, DATA_TYPE AS type, IS_NULLABLE = 'YES' AS nullable \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        ),
        Kind::Sqlite => Stmt::new(
            "SELECT name, lower(type) AS type, \"notnull\" = 0 AND pk = 0 AS nullable FROM pragma_table_info(?)",
        ),
    }
    .bind(table);
    db.query(&stmt)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("name").unwrap(),
                r.get::<String>("type").unwrap().to_lowercase(),
                r.get("nullable").unwrap(),
            )
        })
        .collect()
}

/// (column, referenced table) of a table's foreign keys, from the catalog.
async fn foreign_keys(db: &Database, kind: Kind, table: &str) -> Vec<(String, String)> {
    let stmt = match kind {
        Kind::Postgres => Stmt::new(
            "SELECT kcu.column_name::text AS col, ccu.table_name::text AS target FROM information_schema.table_constraints tc \
             JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name \
             JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name \
             WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_name = $1 ORDER BY 1",
        ),
        Kind::MySql => Stmt::new(
            "SELECT COLUMN_NAME AS col, REFERENCED_TABLE_NAME AS target FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY 1",
        ),
        Kind::Sqlite => Stmt::new("SELECT \"from\" AS col, \"table\" AS target FROM pragma_foreign_key_list(?) ORDER BY 1"),
    }
    .bind(table);
    db.query(&stmt)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("col").unwrap(), r.get("target").unwrap()))
        .collect()
}

fn type_of(cols: &[(String, String, bool)], name: &str) -> String {
    cols.iter()
        .find(|c| c.0 == name)
        .map(|c| c.1.clone())
        .unwrap_or_else(|| panic!("no column {name} in {cols:?}"))
}

fn pk(name: &str) -> Value {
    json!({"field": name, "type": "integer", "meta": {"hidden": true}, "schema": {"is_primary_key": true, "has_auto_increment": true}})
}

on_every_database!(order_management:
    the_order_example_is_built_through_the_api_on_postgres => Kind::Postgres,
    the_order_example_is_built_through_the_api_on_mariadb => Kind::MySql,
    the_order_example_is_built_through_the_api_on_sqlite => Kind::Sqlite,
);

/// The order-management example, built over HTTP: customers, orders (m2o to customers,
/// o2m back), tags and a many-to-many junction.
pub async fn build_orders_model(app: &App) {
    let post = |path: &'static str, body: Value| app.admin_call("POST", path, Some(body));

    post(
        "/collections",
        json!({"collection": "customers", "schema": {}, "meta": {"icon": "person"}, "fields": [
            pk("id"),
            {"field": "name", "type": "string", "schema": {"is_nullable": false}},
            {"field": "email", "type": "string", "schema": {"max_length": 120, "is_unique": true}},
        ]}),
    )
    .await;
    post("/collections", json!({"collection": "orders", "schema": {}, "fields": [
        pk("id"),
        {"field": "customer_name", "type": "string", "schema": {"is_nullable": false}, "meta": {"required": true}},
        {"field": "email", "type": "string"},
        {"field": "item", "type": "string", "meta": {"interface": "select-dropdown",
            "options": {"choices": [{"text": "Tea", "value": "tea"}, {"text": "Cup", "value": "cup"}]}}},
        {"field": "amount", "type": "float"},
        {"field": "status", "type": "string", "schema": {"default_value": "pending"},
            "meta": {"options": {"choices": [{"value": "pending"}, {"value": "paid"}]}}},
        {"field": "date_created", "type": "timestamp", "meta": {"special": ["date-created"]}},
        {"field": "date_updated", "type": "timestamp", "meta": {"special": ["date-updated"]}},
        {"field": "customer", "type": "integer", "meta": {"special": ["m2o"]}},
    ]}))
    .await;
    post(
        "/relations",
        json!({"collection": "orders", "field": "customer", "related_collection": "customers",
        "schema": {"on_delete": "SET NULL"}, "meta": {"one_field": "orders"}}),
    )
    .await;
    app.admin_call(
        "POST",
        "/fields/customers",
        Some(json!({"field": "orders", "type": "alias", "meta": {"special": ["o2m"]}})),
    )
    .await;
    post("/collections", json!({"collection": "tags", "schema": {}, "fields": [pk("id"), {"field": "name", "type": "string"}]}))
        .await;
    post("/collections", json!({"collection": "orders_tags", "schema": {}, "meta": {"hidden": true}, "fields": [
        pk("id"), {"field": "orders_id", "type": "integer"}, {"field": "tags_id", "type": "integer"},
    ]}))
    .await;
    post("/relations", json!({"collection": "orders_tags", "field": "orders_id", "related_collection": "orders",
        "schema": {"on_delete": "CASCADE"}, "meta": {"one_field": "tags", "junction_field": "tags_id"}}))
    .await;
    post(
        "/relations",
        json!({"collection": "orders_tags", "field": "tags_id", "related_collection": "tags",
        "schema": {"on_delete": "CASCADE"}, "meta": {"junction_field": "orders_id"}}),
    )
    .await;
    app.admin_call(
        "POST",
        "/fields/orders",
        Some(json!({"field": "tags", "type": "alias", "meta": {"special": ["m2m"]}})),
    )
    .await;
}

async fn order_management(kind: Kind) {
    let app = App::start(kind, None).await;
    build_orders_model(&app).await;

    // The database's own catalog shows real tables, columns and foreign keys.
    let db = app.db.connect().await;
    let orders = columns(&db, kind, "orders").await;
    let names: Vec<&str> = orders.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "customer_name",
            "email",
            "item",
            "amount",
            "status",
            "date_created",
            "date_updated",
            "customer"
        ]
    );
    assert!(
        !orders.iter().find(|c| c.0 == "customer_name").unwrap().2,
        "customer_name is NOT NULL"
    );
    let (text, float, stamp) = match kind {
        Kind::Postgres => ("character varying", "real", "timestamp with time zone"),
        Kind::MySql => ("varchar", "float", "timestamp"),
        Kind::Sqlite => ("varchar(255)", "float", "timestamp"),
    };
    assert_eq!(type_of(&orders, "customer_name"), text);
    assert_eq!(type_of(&orders, "amount"), float);
    assert_eq!(type_of(&orders, "date_created"), stamp);
    assert_eq!(
        foreign_keys(&db, kind, "orders").await,
        vec![("customer".to_string(), "customers".to_string())]
    );
    assert_eq!(
        foreign_keys(&db, kind, "orders_tags").await,
        vec![
            ("orders_id".to_string(), "orders".to_string()),
            ("tags_id".to_string(), "tags".to_string())
        ]
    );

    // The API reads back what it made.
    let fields = app.admin_call("GET", "/fields/orders", None).await;
    let item = fields["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "item")
        .unwrap()
        .clone();
    assert_eq!(item["meta"]["options"]["choices"][1]["value"], "cup");
    let tags = fields["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "tags")
        .unwrap()
        .clone();
    assert_eq!(
        (tags["type"].as_str(), &tags["schema"]),
        (Some("alias"), &Value::Null)
    );
    let relation = app
        .admin_call("GET", "/relations/orders/customer", None)
        .await;
    assert_eq!(relation["data"]["schema"]["on_delete"], "SET NULL");
    assert_eq!(relation["data"]["meta"]["one_field"], "orders");
    let collection = app.admin_call("GET", "/collections/customers", None).await;
    assert_eq!(collection["data"]["meta"]["icon"], "person");

    // Items honour the model: defaults, date-created, NOT NULL, foreign keys.
    let ann = app
        .admin_call(
            "POST",
            "/items/customers",
            Some(json!({"name": "Ann", "email": "ann@example.com"})),
        )
        .await;
    let order = app
        .admin_call(
            "POST",
            "/items/orders",
            Some(json!({"customer_name": "Ann", "amount": 12.5, "customer": ann["data"]["id"]})),
        )
        .await;
    assert_eq!(order["data"]["status"], "pending");
    assert!(
        order["data"]["date_created"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z')),
        "{order}"
    );
    let (status, body) = app
        .call(
            "POST",
            "/items/orders",
            Some(&app.admin),
            Some(json!({"amount": 1})),
        )
        .await;
    // A required field (meta.required) is checked before the database's NOT NULL.
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (400, Some("FAILED_VALIDATION"))
    );
    assert_eq!(body["errors"][0]["extensions"]["field"], "customer_name");
    assert_eq!(body["errors"][0]["extensions"]["type"], "required");
    let (status, body) = app
        .call(
            "POST",
            "/items/orders",
            Some(&app.admin),
            Some(json!({"customer_name": "x", "customer": 999})),
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (400, Some("INVALID_FOREIGN_KEY"))
    );

    // Change and delete fields.
    app.admin_call(
        "PATCH",
        "/fields/orders/amount",
        Some(json!({"type": "decimal", "schema": {"numeric_precision": 10, "numeric_scale": 2}})),
    )
    .await;
    let orders = columns(&db, kind, "orders").await;
    assert!(
        matches!(
            type_of(&orders, "amount").as_str(),
            "numeric" | "decimal" | "decimal(10, 2)"
        ),
        "{orders:?}"
    );
    let read = app.admin_call("GET", "/items/orders", None).await;
    assert_eq!(
        read["data"][0]["amount"],
        "12.50".trim_end_matches(if kind == Kind::Sqlite { "0" } else { "" })
    );
    app.admin_call(
        "PATCH",
        "/fields/orders/email",
        Some(json!({"meta": {"note": "Where the receipt goes"}})),
    )
    .await;
    let email = app.admin_call("GET", "/fields/orders/email", None).await;
    assert_eq!(email["data"]["meta"]["note"], "Where the receipt goes");
    let (status, _) = app
        .call("DELETE", "/fields/orders/email", Some(&app.admin), None)
        .await;
    assert_eq!(status, 204);
    assert!(
        !columns(&db, kind, "orders")
            .await
            .iter()
            .any(|c| c.0 == "email")
    );
    let (status, _) = app
        .call("GET", "/fields/orders/email", Some(&app.admin), None)
        .await;
    assert_eq!(status, 403);

    // Deleting a collection drops its table and metadata.
    let (status, _) = app
        .call("DELETE", "/collections/orders_tags", Some(&app.admin), None)
        .await;
    assert_eq!(status, 204);
    assert!(columns(&db, kind, "orders_tags").await.is_empty());
    let relations = app.admin_call("GET", "/relations", None).await;
    assert!(
        !relations.to_string().contains("orders_tags"),
        "{relations}"
    );
    db.close().await;
}

on_every_database!(failures_leave_no_trace:
    a_failing_change_leaves_no_trace_on_postgres => Kind::Postgres,
    a_failing_change_leaves_no_trace_on_mariadb => Kind::MySql,
    a_failing_change_leaves_no_trace_on_sqlite => Kind::Sqlite,
);

async fn failures_leave_no_trace(kind: Kind) {
    let app = App::start(kind, None).await;
    app.admin_call("POST", "/collections", Some(json!({"collection": "things", "schema": {}, "fields": [pk("id"), {"field": "label", "type": "string"}]})))
        .await;
    for _ in 0..2 {
        app.admin_call("POST", "/items/things", Some(json!({"label": "same"})))
            .await;
    }
    let db = app.db.connect().await;
    let before = columns(&db, kind, "things").await;
    let fields_before = app.admin_call("GET", "/fields/things", None).await;

    // Rejected before any DDL.
    for (body, needle) in [
        (
            json!({"field": "count", "type": "integer", "schema": {"default_value": "many"}}),
            "does not fit",
        ),
        (
            json!({"field": "bad name!", "type": "string"}),
            "not a valid field name",
        ),
        (
            json!({"field": "label", "type": "string"}),
            "already exists",
        ),
        (
            json!({"field": "x", "type": "geometry"}),
            "not a field type",
        ),
    ] {
        let (status, response) = app
            .call("POST", "/fields/things", Some(&app.admin), Some(body))
            .await;
        assert_eq!(status, 400, "{response}");
        assert!(
            response["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{response}"
        );
    }
    // Fails in the database: a unique index over two equal values.
    let (status, response) = app
        .call(
            "POST",
            "/fields/things",
            Some(&app.admin),
            Some(json!({"field": "code", "type": "string",
            "schema": {"default_value": "dup", "is_unique": true}})),
        )
        .await;
    assert!(status == 400 || status == 500, "{status} {response}");
    assert_eq!(
        columns(&db, kind, "things").await,
        before,
        "the column is gone again"
    );
    assert_eq!(
        app.admin_call("GET", "/fields/things", None).await,
        fields_before
    );
    let (status, _) = app
        .call(
            "POST",
            "/collections",
            Some(&app.admin),
            Some(json!({"collection": "directus_mine", "schema": {}})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .call(
            "POST",
            "/collections",
            None,
            Some(json!({"collection": "x", "schema": {}})),
        )
        .await;
    assert_eq!(status, 403, "only admins change the data model");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_travels_from_postgres_to_sqlite_to_mariadb() {
    let pg = App::start(Kind::Postgres, None).await;
    build_orders_model(&pg).await;
    let snapshot = pg.admin_call("GET", "/schema/snapshot", None).await["data"].clone();
    assert_eq!(
        snapshot["collections"].as_array().unwrap().len(),
        4,
        "{snapshot}"
    );
    assert!(
        !snapshot.to_string().contains("directus_"),
        "system collections stay out"
    );
    let field = |c: &str, f: &str| {
        snapshot["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["collection"] == c && x["field"] == f)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        field("orders", "customer_name")["schema"]["is_nullable"],
        false
    );
    assert_eq!(
        field("orders", "status")["schema"]["default_value"],
        "pending"
    );
    assert_eq!(field("orders", "tags")["meta"]["special"], json!(["m2m"]));
    assert_eq!(field("customers", "email")["schema"]["is_unique"], true);
    let relation = snapshot["relations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "customer")
        .cloned()
        .unwrap();
    assert_eq!(relation["schema"]["on_delete"], "SET NULL");
    assert_eq!(relation["meta"]["one_field"], "orders");
    let (status, _) = pg
        .call(
            "POST",
            "/schema/diff",
            Some(&pg.admin),
            Some(snapshot.clone()),
        )
        .await;
    assert_eq!(status, 204, "no difference with itself");

    // PostgreSQL -> SQLite over HTTP.
    let lite = App::start(Kind::Sqlite, None).await;
    let plan = lite
        .admin_call("POST", "/schema/diff", Some(snapshot.clone()))
        .await["data"]
        .clone();
    assert!(plan["hash"].is_string());
    lite.admin_call("POST", "/schema/apply", Some(plan.clone()))
        .await;
    let from_lite = lite.admin_call("GET", "/schema/snapshot", None).await["data"].clone();
    assert_eq!(from_lite, snapshot, "SQLite's snapshot equals PostgreSQL's");
    let (status, body) = lite
        .call("POST", "/schema/apply", Some(&lite.admin), Some(plan))
        .await;
    assert_eq!(
        status, 400,
        "a diff made before the schema changed is refused: {body}"
    );

    // SQLite -> MariaDB through the command line and a YAML file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot.yaml");
    let out = crate::support::run_rectus(
        dir.path(),
        &lite.db.env(),
        &["schema", "snapshot", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("collection: orders")
    );
    let maria = App::start(Kind::MySql, None).await;
    let dry = crate::support::run_rectus(
        dir.path(),
        &maria.db.env(),
        &["schema", "apply", file.to_str().unwrap(), "--dry-run"],
    );
    assert!(
        dry.status.success() && dry.stdout.contains("create collection orders"),
        "{}{}",
        dry.stdout,
        dry.stderr
    );
    let before = maria
        .admin_call("GET", "/collections", None)
        .await
        .to_string();
    assert!(!before.contains("\"orders\""), "a dry run changes nothing");
    let applied = crate::support::run_rectus(
        dir.path(),
        &maria.db.env(),
        &["schema", "apply", file.to_str().unwrap(), "--yes"],
    );
    assert!(
        applied.status.success(),
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    maria.admin_call("POST", "/utils/cache/clear", None).await;
    let from_maria = maria.admin_call("GET", "/schema/snapshot", None).await["data"].clone();
    assert_eq!(
        from_maria, snapshot,
        "MariaDB's snapshot equals PostgreSQL's"
    );
}

on_every_database!(outside_tables:
    tables_made_outside_are_served_after_a_cache_clear_on_postgres => Kind::Postgres,
    tables_made_outside_are_served_after_a_cache_clear_on_mariadb => Kind::MySql,
    tables_made_outside_are_served_after_a_cache_clear_on_sqlite => Kind::Sqlite,
);

async fn outside_tables(kind: Kind) {
    let app = App::start(kind, None).await;
    app.admin_call(
        "POST",
        "/collections",
        Some(json!({"collection": "kept", "schema": {}})),
    )
    .await;
    let db = app.db.connect().await;
    let activity = db
        .query(&Stmt::new(
            "SELECT action, collection, item FROM directus_activity WHERE collection = 'directus_collections'",
        ))
        .await
        .unwrap();
    assert_eq!(activity.len(), 1, "each change records activity");
    assert_eq!(activity[0].get::<String>("action").unwrap(), "create");
    assert_eq!(activity[0].get::<String>("item").unwrap(), "kept");

    app.db
        .exec("CREATE TABLE made_by_hand (id integer PRIMARY KEY, label varchar(20));\nINSERT INTO made_by_hand VALUES (1, 'one')")
        .await;
    let (status, _) = app
        .call("GET", "/items/made_by_hand", Some(&app.admin), None)
        .await;
    assert_eq!(status, 403, "not known yet");
    let (status, _) = app.call("POST", "/utils/cache/clear", None, None).await;
    assert_eq!(status, 403, "only admins clear the cache");
    app.admin_call("POST", "/utils/cache/clear", None).await;
    let items = app.admin_call("GET", "/items/made_by_hand", None).await;
    assert_eq!(
        items["data"],
        json!([{"id": 1, "label": "one"}]),
        "served without metadata rows"
    );
    db.close().await;
}
