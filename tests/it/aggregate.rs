//! `aggregate` and `groupBy` over HTTP on PostgreSQL, MariaDB and SQLite: every function,
//! the answer shapes and types Directus gives, function group keys, and permissions.

use serde_json::{Value, json};

use crate::items::seeded;
use crate::on_every_database;
use crate::rbac::role_with_user;
use crate::support::{App, Kind, urlencode};

/// A count as Directus answers it: PostgreSQL's `bigint` is a string, elsewhere a number.
fn count(kind: Kind, n: i64) -> Value {
    match kind {
        Kind::Postgres => json!(n.to_string()),
        _ => json!(n),
    }
}

async fn get(app: &App, path: &str) -> Value {
    app.admin_call("GET", path, None).await["data"].clone()
}

on_every_database!(aggregates:
    aggregates_on_postgres => Kind::Postgres,
    aggregates_on_mariadb => Kind::MySql,
    aggregates_on_sqlite => Kind::Sqlite,
);

async fn aggregates(kind: Kind) {
    let app = seeded(kind).await;
    assert_eq!(
        get(&app, "/items/orders?aggregate[count]=*").await,
        json!([{"count": count(kind, 3)}])
    );
    assert_eq!(
        get(&app, "/items/orders?aggregate[count]=*&groupBy[]=status").await,
        json!([{"status": "paid", "count": count(kind, 2)}, {"status": "pending", "count": count(kind, 1)}])
    );
    assert_eq!(
        get(
            &app,
            "/items/orders?aggregate[count]=*&groupBy=status&sort=-status"
        )
        .await,
        json!([{"status": "pending", "count": count(kind, 1)}, {"status": "paid", "count": count(kind, 2)}])
    );
    let sums = get(
        &app,
        "/items/orders?aggregate[sum]=amount&aggregate[avg]=amount&aggregate[max]=amount&groupBy=customer",
    )
    .await;
    assert_eq!(
        sums,
        json!([
            {"customer": 1, "sum": {"amount": 13.5}, "avg": {"amount": 6.75}, "max": {"amount": 10.5}},
            {"customer": 2, "sum": {"amount": 7.25}, "avg": {"amount": 7.25}, "max": {"amount": 7.25}},
        ])
    );
    let distinct = get(
        &app,
        &format!(
            "/items/orders?aggregate={}",
            urlencode(r#"{"countDistinct":"customer,status","countAll":"*","count":"status","min":"customer_name"}"#)
        ),
    )
    .await;
    assert_eq!(
        distinct,
        json!([{
            "countDistinct": {"customer": count(kind, 2), "status": count(kind, 2)},
            "countAll": count(kind, 3),
            "count": {"status": count(kind, 3)},
            "min": {"customer_name": "Ann"},
        }])
    );
    // sumDistinct and avgDistinct see 7.25 once when two orders carry it.
    app.admin_call(
        "POST",
        "/items/orders",
        Some(json!({"customer_name": "Cy", "amount": 7.25})),
    )
    .await;
    assert_eq!(
        get(&app, "/items/orders?aggregate[sumDistinct]=amount&aggregate[avgDistinct]=amount&filter[amount][_gt]=5").await,
        json!([{"sumDistinct": {"amount": 17.75}, "avgDistinct": {"amount": 8.875}}])
    );

    // A function field as group key; the filter and limit apply to the groups' rows.
    let year = chrono_year(&get(&app, "/items/orders/1?fields=date_created").await);
    assert_eq!(
        get(
            &app,
            "/items/orders?aggregate[count]=id&groupBy=year(date_created)&filter[status][_eq]=paid"
        )
        .await,
        json!([{"date_created_year": year, "count": {"id": count(kind, 2)}}])
    );
    assert_eq!(
        get(
            &app,
            "/items/orders?aggregate[count]=*&groupBy=customer_name&limit=2"
        )
        .await,
        json!([{"customer_name": "Ann", "count": count(kind, 2)}, {"customer_name": "Bob", "count": count(kind, 1)}])
    );

    for (query, status, code) in [
        ("aggregate[sum]=customer_name", 400, "INVALID_QUERY"),
        ("aggregate[median]=amount", 400, "INVALID_QUERY"),
        ("aggregate[sum]=*", 400, "INVALID_QUERY"),
        ("aggregate[sum]=nope", 403, "FORBIDDEN"),
        ("aggregate[count]=*&groupBy=nope", 403, "FORBIDDEN"),
        ("aggregate[count]=*&groupBy=tags", 400, "INVALID_QUERY"),
        (
            "aggregate[count]=*&groupBy=status&sort=amount",
            400,
            "INVALID_QUERY",
        ),
    ] {
        let (got, body) = app
            .call(
                "GET",
                &format!("/items/orders?{query}"),
                Some(&app.admin),
                None,
            )
            .await;
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], code,
            "{query}: {body}"
        );
    }
}

fn chrono_year(item: &Value) -> i64 {
    item["date_created"]
        .as_str()
        .and_then(|d| d.get(..4))
        .and_then(|y| y.parse().ok())
        .expect("a timestamp")
}

on_every_database!(aggregate_permissions:
    aggregates_respect_permissions_on_postgres => Kind::Postgres,
    aggregates_respect_permissions_on_mariadb => Kind::MySql,
    aggregates_respect_permissions_on_sqlite => Kind::Sqlite,
);

/// A role that sees paid orders without their amount: counts cover its rows only, and the
/// amount can be neither aggregated, grouped by, nor aliased.
async fn aggregate_permissions(kind: Kind) {
    let app = seeded(kind).await;
    let (policies, token, _) = role_with_user(
        &app,
        "Clerk",
        &[json!({"name": "Clerk", "app_access": false, "admin_access": false})],
    )
    .await;
    app.admin_call(
        "POST",
        "/permissions",
        Some(
            json!({"policy": policies[0], "collection": "orders", "action": "read",
            "fields": ["id", "status", "customer"], "permissions": {"status": {"_eq": "paid"}}}),
        ),
    )
    .await;
    let call = |path: String| {
        let app = &app;
        let token = token.clone();
        async move { app.call("GET", &path, Some(&token), None).await }
    };
    let (status, body) = call("/items/orders?aggregate[count]=*&groupBy=status".into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([{"status": "paid", "count": count(kind, 2)}])
    );
    for query in [
        "aggregate[sum]=amount",
        "aggregate[count]=amount",
        "aggregate[count]=*&groupBy=customer_name",
    ] {
        let (status, body) = call(format!("/items/orders?{query}")).await;
        assert_eq!(status, 403, "{query}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{query}: {body}"
        );
    }
}
