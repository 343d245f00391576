//! Writes that break a constraint answer with Directus's error codes and wording, naming the
//! field and collection, on PostgreSQL, MariaDB and SQLite; a failing batch changes nothing.

use serde_json::{Value, json};

use crate::items::seeded;
use crate::on_every_database;
use crate::support::{App, Kind};

async fn post(app: &App, path: &str, body: Value) -> (u16, Value) {
    app.call("POST", path, Some(&app.admin), Some(body)).await
}

fn assert_error(got: &(u16, Value), code: &str, field: Option<&str>, collection: &str) {
    let (status, body) = got;
    assert_eq!(*status, 400, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], code, "{body}");
    assert_eq!(error["extensions"]["collection"], collection, "{body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("collection \"{collection}\"")),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(error["extensions"]["field"], field, "{body}");
        assert!(message.contains(&format!("field \"{field}\"")), "{body}");
    }
    assert!(
        !message.to_lowercase().contains("constraint"),
        "no raw database text: {body}"
    );
}

on_every_database!(constraint_errors:
    constraint_errors_on_postgres => Kind::Postgres,
    constraint_errors_on_mariadb => Kind::MySql,
    constraint_errors_on_sqlite => Kind::Sqlite,
);

async fn constraint_errors(kind: Kind) {
    let app = seeded(kind).await;
    app.admin_call(
        "POST",
        "/fields/orders",
        Some(json!({"field": "qty", "type": "integer"})),
    )
    .await;
    app.admin_call(
        "POST",
        "/fields/orders",
        Some(json!({"field": "price", "type": "decimal", "schema": {"numeric_precision": 5, "numeric_scale": 2}})),
    )
    .await;

    let duplicate = post(
        &app,
        "/items/customers",
        json!({"name": "Ann 2", "email": "ann@example.com"}),
    )
    .await;
    assert_error(&duplicate, "RECORD_NOT_UNIQUE", Some("email"), "customers");

    let missing = post(
        &app,
        "/items/customers",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_error(&missing, "NOT_NULL_VIOLATION", Some("name"), "customers");

    let long = post(
        &app,
        "/items/customers",
        json!({"name": "Long", "email": format!("{}@example.com", "x".repeat(120))}),
    )
    .await;
    assert_error(&long, "VALUE_TOO_LONG", Some("email"), "customers");

    let orphan = post(
        &app,
        "/items/orders",
        json!({"customer_name": "Nobody", "customer": 999}),
    )
    .await;
    // SQLite does not say which foreign key failed.
    let field = (kind != Kind::Sqlite).then_some("customer");
    assert_error(&orphan, "INVALID_FOREIGN_KEY", field, "orders");

    if kind != Kind::Sqlite {
        let huge = post(
            &app,
            "/items/orders",
            json!({"customer_name": "Big", "qty": 3_000_000_000i64}),
        )
        .await;
        assert_error(&huge, "VALUE_OUT_OF_RANGE", Some("qty"), "orders");
        let wide = post(
            &app,
            "/items/orders",
            json!({"customer_name": "Big", "price": "1234.5"}),
        )
        .await;
        assert_error(&wide, "VALUE_OUT_OF_RANGE", Some("price"), "orders");
    }
    let fits = post(
        &app,
        "/items/orders",
        json!({"customer_name": "Fits", "qty": 2_000_000_000i64, "price": "999.99"}),
    )
    .await;
    assert_eq!(fits.0, 200, "{}", fits.1);

    // A batch with one bad item creates none of them.
    let before = app
        .admin_call("GET", "/items/customers?aggregate[countAll]=*", None)
        .await;
    let batch = post(
        &app,
        "/items/customers",
        json!([{"name": "Cy", "email": "cy@example.com"}, {"name": "Dup", "email": "bob@example.com"}]),
    )
    .await;
    assert_error(&batch, "RECORD_NOT_UNIQUE", Some("email"), "customers");
    let after = app
        .admin_call("GET", "/items/customers?aggregate[countAll]=*", None)
        .await;
    assert_eq!(before, after);

    // A field's own validation rule binds admins too.
    app.admin_call(
        "PATCH",
        "/fields/customers/email",
        Some(json!({"meta": {"validation": {"email": {"_contains": "@"}}}})),
    )
    .await;
    let (status, body) = post(
        &app,
        "/items/customers",
        json!({"name": "Ed", "email": "no-at-sign"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FAILED_VALIDATION",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["field"], "email", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["type"], "contains",
        "{body}"
    );
    assert_eq!(
        post(
            &app,
            "/items/customers",
            json!({"name": "Ed", "email": "ed@example.com"})
        )
        .await
        .0,
        200
    );

    // Updates map the same way.
    let (status, body) = app
        .call(
            "PATCH",
            "/items/customers/2",
            Some(&app.admin),
            Some(json!({"email": "ann@example.com"})),
        )
        .await;
    assert_error(
        &(status, body),
        "RECORD_NOT_UNIQUE",
        Some("email"),
        "customers",
    );
}
