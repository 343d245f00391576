//! Timestamps on PostgreSQL: a read's own `timestamp` columns are printed by the database's
//! JSON and put in Directus's form by rectus, related ones by `to_char` in the statement.
//! Every path must answer what `to_char` gives, in a session of any time zone.

use serde_json::{Value, json};

use crate::items::fill;
use crate::support::{App, Kind, TestDb, pg_client, urlencode};

/// Edge values: microseconds, a half second, whole seconds, 999.9 ms (cut, not rounded),
/// before the common era, after year 9999, and the infinities (which `to_char` makes NULL).
const EDGES: [&str; 8] = [
    "2026-12-06 16:33:24.549123+00",
    "2026-12-06 16:33:24.5+00",
    "2026-12-06 16:33:24+00",
    "2026-12-06 16:33:24.9999+00",
    "0044-03-15 12:00:00+00 BC",
    "12345-01-01 00:00:00+00",
    "infinity",
    "-infinity",
];

async fn scenario(time_zone: &str) {
    let db = TestDb::new(Kind::Postgres).await;
    // A database default rectus did not choose: its sessions print in that zone.
    db.exec(&format!(
        "ALTER DATABASE \"{}\" SET timezone = '{time_zone}'",
        db.name
    ))
    .await;
    let app = fill(App::start_on(db, None, &[], None).await).await;
    let client = pg_client(&app.db.name).await;
    for (i, edge) in EDGES.iter().enumerate() {
        client
            .execute(
                "INSERT INTO orders (id, customer_name, amount, customer, date_created) \
                 VALUES ($1, 'Edge', 1, 1, $2::text::timestamptz)",
                &[&(100 + i as i32), edge],
            )
            .await
            .expect("edge row");
    }
    let expected: Vec<(i32, Option<String>)> = client
        .query(
            "SELECT id, to_char(date_created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') \
             FROM orders ORDER BY id",
            &[],
        )
        .await
        .expect("to_char")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(expected.iter().any(|(_, t)| t.is_none()), "the infinities");
    let want = |id: i32| -> Value {
        let (_, text) = expected
            .iter()
            .find(|(k, _)| *k == id)
            .unwrap_or_else(|| panic!("order {id}"));
        json!(text)
    };
    let check = |items: &Value, key: &str, path: &str| {
        let items = items
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {items}"));
        assert_eq!(items.len(), expected.len(), "{path}: {items:?}");
        for item in items {
            let id = item["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{path}: {item}")) as i32;
            assert_eq!(item[key], want(id), "{path}: order {id}");
        }
    };
    // A short page (one aggregated row), a long one (a row per item), one with a related
    // object (formatted by the statement), an alias, and the orders of a customer
    // (related items).
    for path in [
        "/items/orders?fields=id,date_created,customer_name&limit=50",
        "/items/orders?fields=*&limit=-1",
        "/items/orders?fields=id,date_created,customer.name&limit=50",
    ] {
        check(
            &app.admin_call("GET", path, None).await["data"],
            "date_created",
            path,
        );
    }
    let aliased = format!(
        "/items/orders?fields=id,made&alias={}&limit=50",
        urlencode(r#"{"made":"date_created"}"#)
    );
    check(
        &app.admin_call("GET", &aliased, None).await["data"],
        "made",
        &aliased,
    );
    let nested =
        "/items/customers?fields=orders.id,orders.date_created&limit=-1&deep[orders][_limit]=-1";
    let customers = app.admin_call("GET", nested, None).await["data"].clone();
    let orders: Vec<Value> = customers
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["orders"].as_array().cloned().unwrap_or_default())
        .collect();
    check(&Value::Array(orders), "date_created", nested);
    // One by key (a shared connection's read), and the same through GraphQL.
    for (id, _) in &expected {
        let path = format!("/items/orders/{id}?fields=id,date_created");
        let one = app.admin_call("GET", &path, None).await["data"].clone();
        assert_eq!(one["date_created"], want(*id), "{path}");
        let query = format!("{{ orders_by_id(id: {id}) {{ id date_created }} }}");
        let graphql = app
            .admin_call("POST", "/graphql", Some(json!({ "query": query })))
            .await;
        assert_eq!(
            graphql["data"]["orders_by_id"]["date_created"],
            want(*id),
            "GraphQL {id}: {graphql}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamps_are_directus_form_on_every_path_on_postgres() {
    scenario("UTC").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamps_are_directus_form_in_a_session_of_another_zone_on_postgres() {
    scenario("Asia/Kolkata").await;
}
