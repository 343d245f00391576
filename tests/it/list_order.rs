//! PostgreSQL aggregates a page of items (and of related items) in the order of the sorted
//! page it reads, without sorting again: checked here on pages big enough for the planner
//! to sort them itself, with parallel plans made as cheap as they can be.

use crate::items::{fill, ids};
use crate::support::{App, Kind, TestDb, pg_client};

#[tokio::test(flavor = "multi_thread")]
async fn big_pages_keep_their_order_on_postgres() {
    let db = TestDb::new(Kind::Postgres).await;
    db.exec(&format!(
        "ALTER DATABASE \"{}\" SET parallel_setup_cost = 0;\n\
         ALTER DATABASE \"{0}\" SET parallel_tuple_cost = 0;\n\
         ALTER DATABASE \"{0}\" SET min_parallel_table_scan_size = 0",
        db.name
    ))
    .await;
    let app = fill(App::start_on(db, None, &[], None).await).await;
    let client = pg_client(&app.db.name).await;
    client
        .batch_execute(
            "INSERT INTO orders (customer_name, amount, customer, status) \
             SELECT 'C' || (i * 7919 % 1000), (i * 104729 % 5000) / 100.0, 1 + i % 2, \
             (ARRAY['paid', 'open', NULL])[1 + i % 3] FROM generate_series(1, 6000) i; \
             ANALYZE orders",
        )
        .await
        .expect("orders");
    let sql_ids = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[])
                .await
                .expect(sql)
                .iter()
                .map(|r| i64::from(r.get::<_, i32>(0)))
                .collect::<Vec<i64>>()
        }
    };
    for (path, sql) in [
        (
            "/items/orders?fields=id&sort=-amount&limit=1000",
            "SELECT id FROM orders ORDER BY amount DESC, id LIMIT 1000",
        ),
        (
            "/items/orders?fields=id,amount&sort=customer_name,-amount&limit=700&offset=300",
            "SELECT id FROM orders ORDER BY customer_name, amount DESC, id LIMIT 700 OFFSET 300",
        ),
        (
            "/items/orders?fields=id&filter[status][_eq]=paid&sort=-customer_name&limit=900",
            "SELECT id FROM orders WHERE status = 'paid' ORDER BY customer_name DESC, id LIMIT 900",
        ),
    ] {
        let expected = sql_ids(sql).await;
        assert!(expected.len() >= 700, "{sql}");
        assert_eq!(ids(&app, path).await, expected, "{path}");
    }
    // Related items: a customer's orders, sorted and cut by `deep`.
    let body = app
        .admin_call(
            "GET",
            "/items/customers?fields=id,orders.id&sort=id&deep[orders][_sort]=-amount&deep[orders][_limit]=800",
            None,
        )
        .await;
    let first: Vec<i64> = body["data"][0]["orders"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|o| o["id"].as_i64().unwrap_or_default())
        .collect();
    let expected =
        sql_ids("SELECT id FROM orders WHERE customer = 1 ORDER BY amount DESC, id LIMIT 800")
            .await;
    assert_eq!(first, expected);
}
