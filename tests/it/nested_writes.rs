//! Nested relational writes over HTTP on PostgreSQL, MariaDB and SQLite: many-to-one
//! objects, one-to-many lists and `{create, update, delete}`, many-to-many through the
//! junction — each in one transaction, each under the caller's permissions.

use serde_json::{Value, json};

use crate::items::seeded;
use crate::on_every_database;
use crate::rbac::role_with_user;
use crate::support::{App, Kind};

async fn get(app: &App, path: &str) -> Value {
    app.admin_call("GET", path, None).await["data"].clone()
}

fn ids(items: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = items
        .as_array()
        .unwrap_or_else(|| panic!("a list: {items}"))
        .iter()
        .map(|i| i.as_i64().or_else(|| i["id"].as_i64()).expect("an id"))
        .collect();
    ids.sort();
    ids
}

on_every_database!(nested_writes:
    nested_writes_on_postgres => Kind::Postgres,
    nested_writes_on_mariadb => Kind::MySql,
    nested_writes_on_sqlite => Kind::Sqlite,
);

async fn nested_writes(kind: Kind) {
    let app = seeded(kind).await;

    // Many-to-one: an object without a key is created, one with a key and fields updated.
    let order = app
        .admin_call(
            "POST",
            "/items/orders?fields=id,customer.name,customer.id",
            Some(json!({"customer_name": "Cy", "customer": {"name": "Cy", "email": "cy@example.com"}})),
        )
        .await["data"]
        .clone();
    assert_eq!(order["customer"]["name"], "Cy", "{order}");
    let cy = order["customer"]["id"].as_i64().unwrap();
    app.admin_call(
        "PATCH",
        "/items/orders/1",
        Some(json!({"customer": {"id": 1, "name": "Ann B"}})),
    )
    .await;
    assert_eq!(
        get(&app, "/items/customers/1?fields=name").await["name"],
        "Ann B"
    );
    assert_eq!(
        get(&app, "/items/orders/1?fields=customer").await["customer"],
        1
    );

    // One-to-many list on create: the new orders point at the new customer.
    let dee = app
        .admin_call(
            "POST",
            "/items/customers?fields=id,orders.amount",
            Some(json!({"name": "Dee", "email": "dee@example.com",
                "orders": [{"customer_name": "Dee", "amount": 1}, {"customer_name": "Dee", "amount": 2}]})),
        )
        .await["data"]
        .clone();
    let amounts: Vec<f64> = dee["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["amount"].as_f64())
        .collect();
    assert_eq!(amounts, vec![1.0, 2.0], "{dee}");

    // A list replaces the related items: 3 moves from Bob to Ann, 2 is let go (nullified).
    app.admin_call(
        "PATCH",
        "/items/customers/1",
        Some(json!({"orders": [1, {"id": 3, "amount": 8}]})),
    )
    .await;
    assert_eq!(
        ids(&get(&app, "/items/customers/1?fields=orders").await["orders"]),
        vec![1, 3]
    );
    assert_eq!(
        get(&app, "/items/orders/2?fields=customer").await["customer"],
        Value::Null
    );
    assert_eq!(
        get(&app, "/items/orders/3?fields=amount").await["amount"].as_f64(),
        Some(8.0)
    );
    assert_eq!(
        get(&app, "/items/customers/2?fields=orders").await["orders"],
        json!([])
    );

    // The detailed form: create, update and remove explicitly.
    app.admin_call(
        "PATCH",
        "/items/customers/2",
        Some(json!({"orders": {"create": [{"customer_name": "Bob", "amount": 9}], "update": [{"id": 2, "amount": 5}], "delete": []}})),
    )
    .await;
    let bob = get(&app, "/items/customers/2?fields=orders.id,orders.amount").await;
    let new_order = *ids(&bob["orders"]).last().unwrap();
    assert_eq!(ids(&bob["orders"]), vec![2, new_order], "{bob}");
    app.admin_call(
        "PATCH",
        "/items/customers/2",
        Some(json!({"orders": {"delete": [2, 1]}})),
    )
    .await;
    assert_eq!(
        ids(&get(&app, "/items/customers/2?fields=orders").await["orders"]),
        vec![new_order]
    );
    assert_eq!(
        get(&app, "/items/orders/1?fields=customer").await["customer"],
        1,
        "an item not related to this one is left alone"
    );

    // Many-to-many: junction rows, one naming an existing tag, one creating a tag.
    let eve = app
        .admin_call(
            "POST",
            "/items/orders?fields=id,tags.tags_id.name",
            Some(json!({"customer_name": "Eve", "tags": [{"tags_id": 1}, {"tags_id": {"name": "new"}}]})),
        )
        .await["data"]
        .clone();
    assert_eq!(
        eve["tags"],
        json!([{"tags_id": {"name": "urgent"}}, {"tags_id": {"name": "new"}}]),
        "{eve}"
    );
    assert_eq!(
        get(&app, "/items/tags?aggregate[count]=*").await[0]["count"]
            .to_string()
            .trim_matches('"'),
        "3"
    );

    // One failing related item undoes the whole request.
    let before = get(&app, "/items/customers?aggregate[countAll]=*").await;
    let (status, body) = app
        .call(
            "POST",
            "/items/customers",
            Some(&app.admin),
            Some(json!({"name": "Fay", "email": "fay@example.com", "orders": [{"amount": 1}]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FAILED_VALIDATION",
        "{body}"
    );
    assert_eq!(
        get(&app, "/items/customers?aggregate[countAll]=*").await,
        before
    );

    for (bad, why) in [
        (json!({"orders": "nope"}), "a string"),
        (json!({"orders": {"insert": []}}), "an unknown operation"),
        (
            json!({"orders": {"update": [{"amount": 1}]}}),
            "an update without a key",
        ),
    ] {
        let (status, body) = app
            .call("PATCH", "/items/customers/1", Some(&app.admin), Some(bad))
            .await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_PAYLOAD",
            "{why}: {body}"
        );
    }
    assert_eq!(cy, 3);

    // A key that names no item creates it, as in Directus.
    app.admin_call(
        "POST",
        "/items/orders",
        Some(json!({"customer_name": "Kim", "customer": {"id": 77, "name": "Kim", "email": "kim@example.com"}})),
    )
    .await;
    assert_eq!(
        get(&app, "/items/customers/77?fields=name").await["name"],
        "Kim"
    );
    app.admin_call(
        "PATCH",
        "/items/customers/77",
        Some(json!({"orders": [{"id": 900, "customer_name": "Kim"}]})),
    )
    .await;
    assert_eq!(
        get(&app, "/items/orders/900?fields=customer").await["customer"],
        77
    );
}

on_every_database!(nested_permissions:
    nested_writes_need_permission_on_postgres => Kind::Postgres,
    nested_writes_need_permission_on_mariadb => Kind::MySql,
    nested_writes_need_permission_on_sqlite => Kind::Sqlite,
);

/// Nested items are written under the caller's permissions on their own collection: a role
/// that may create customers but not orders cannot create orders through a customer.
async fn nested_permissions(kind: Kind) {
    let app = seeded(kind).await;
    let (policies, token, _) = role_with_user(&app, "Sales", &[json!({"name": "Sales"})]).await;
    for (collection, action) in [
        ("customers", "create"),
        ("customers", "read"),
        ("orders", "read"),
    ] {
        app.admin_call(
            "POST",
            "/permissions",
            Some(json!({"policy": policies[0], "collection": collection, "action": action, "fields": ["*"]})),
        )
        .await;
    }
    let before = get(&app, "/items/customers?aggregate[countAll]=*").await;
    let (status, body) = app
        .call(
            "POST",
            "/items/customers",
            Some(&token),
            Some(json!({"name": "Gus", "email": "gus@example.com", "orders": [{"customer_name": "Gus"}]})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        get(&app, "/items/customers?aggregate[countAll]=*").await,
        before,
        "nothing created"
    );
    let (status, body) = app
        .call(
            "POST",
            "/items/customers",
            Some(&token),
            Some(json!({"name": "Gus", "email": "gus@example.com"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Linking existing orders is an update of the orders, which this role may not do.
    let (status, body) = app
        .call(
            "POST",
            "/items/customers",
            Some(&token),
            Some(json!({"name": "Hal", "email": "hal@example.com", "orders": [1]})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        get(&app, "/items/orders/1?fields=customer").await["customer"],
        1
    );
}
