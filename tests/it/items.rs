//! The items API's query language over HTTP on PostgreSQL, MariaDB and SQLite: nested
//! many-to-one, one-to-many and many-to-many fields, wildcards, and the one-statement rule.

use serde_json::{Value, json};

use crate::datamodel::build_orders_model;
use crate::on_every_database;
use crate::support::{App, Kind, urlencode};

/// The order example with two customers, three orders and two tags.
pub async fn seeded(kind: Kind) -> App {
    fill(App::start(kind, None).await).await
}

pub async fn fill(app: App) -> App {
    build_orders_model(&app).await;
    let post = |path: &'static str, body: Value| app.admin_call("POST", path, Some(body));
    post("/items/customers", json!([{"name": "Ann", "email": "ann@example.com"}, {"name": "Bob", "email": "bob@example.com"}])).await;
    post("/items/tags", json!([{"name": "urgent"}, {"name": "gift"}])).await;
    post(
        "/items/orders",
        json!([
            {"customer_name": "Ann", "amount": 10.5, "customer": 1, "status": "paid"},
            {"customer_name": "Ann", "amount": 3, "customer": 1},
            {"customer_name": "Bob", "amount": 7.25, "customer": 2, "status": "paid"},
        ]),
    )
    .await;
    post("/items/orders_tags", json!([{"orders_id": 1, "tags_id": 1}, {"orders_id": 1, "tags_id": 2}, {"orders_id": 3, "tags_id": 2}])).await;
    app
}

on_every_database!(nested_fields:
    nested_fields_on_postgres => Kind::Postgres,
    nested_fields_on_mariadb => Kind::MySql,
    nested_fields_on_sqlite => Kind::Sqlite,
);

async fn nested_fields(kind: Kind) {
    let app = seeded(kind).await;
    let get = |path: &str| {
        let path = path.to_string();
        let app = &app;
        async move { app.admin_call("GET", &path, None).await["data"].clone() }
    };

    let orders = get("/items/orders?fields=id,customer.name&sort=id").await;
    assert_eq!(
        orders,
        json!([{"customer": {"name": "Ann"}, "id": 1}, {"customer": {"name": "Ann"}, "id": 2}, {"customer": {"name": "Bob"}, "id": 3}])
    );
    let ann = get("/items/customers/1?fields=name,orders.id,orders.amount").await;
    assert_eq!(ann["name"], "Ann");
    let lines: Vec<(i64, f64)> = ann["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_i64().unwrap(), o["amount"].as_f64().unwrap()))
        .collect();
    assert_eq!(lines, vec![(1, 10.5), (2, 3.0)], "{ann}");
    let raw = get("/items/customers/2").await;
    assert_eq!(
        raw["orders"],
        json!([3]),
        "an unexpanded one-to-many lists keys: {raw}"
    );
    let tagged = get("/items/orders/1?fields=id,tags.tags_id.name").await;
    assert_eq!(
        tagged,
        json!({"id": 1, "tags": [{"tags_id": {"name": "urgent"}}, {"tags_id": {"name": "gift"}}]})
    );
    let deep = get("/items/orders_tags/3?fields=orders_id.customer.orders.customer_name").await;
    assert_eq!(
        deep,
        json!({"orders_id": {"customer": {"orders": [{"customer_name": "Bob"}]}}})
    );
    let wild = get("/items/orders/3?fields=*.*").await;
    assert_eq!(wild["customer"]["name"], "Bob", "{wild}");
    assert_eq!(wild["tags"].as_array().map(Vec::len), Some(1), "{wild}");
    assert_eq!(wild["tags"][0]["tags_id"], 2);
    let none = get("/items/customers?fields=name,orders.id&filter[name][_eq]=Nobody").await;
    assert_eq!(none, json!([]));

    let (status, body) = app
        .call(
            "GET",
            "/items/orders?fields=amount.value",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .call(
            "GET",
            "/items/orders?fields=customer.nope",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

/// On PostgreSQL a short page arrives as one row holding the JSON array; an unlimited
/// list, a row per item.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_page_is_one_row_on_postgres() {
    use crate::support::relay::Relay;
    use crate::support::{PG_PORT, TestDb};
    let db = TestDb::new(Kind::Postgres).await;
    let relay = Relay::start(([127, 0, 0, 1], PG_PORT).into()).await;
    let app = fill(App::start_on(db, None, &[], Some(relay.port())).await).await;
    let rows_of = |path: &'static str| {
        let (app, relay) = (&app, &relay);
        async move {
            app.admin_call("GET", path, None).await;
            let before = relay.pg_rows();
            let body = app.admin_call("GET", path, None).await;
            assert_eq!(body["data"].as_array().map(Vec::len), Some(3), "{body}");
            relay.pg_rows() - before
        }
    };
    assert_eq!(rows_of("/items/orders?fields=id,amount").await, 1);
    assert_eq!(rows_of("/items/orders?fields=id,amount&limit=-1").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nested_read_is_one_statement() {
    use crate::support::relay::Relay;
    use crate::support::{PG_PORT, TestDb};
    let db = TestDb::new(Kind::Postgres).await;
    let relay = Relay::start(([127, 0, 0, 1], PG_PORT).into()).await;
    let app = fill(App::start_on(db, None, &[], Some(relay.port())).await).await;
    for collection in ["orders", "customers", "orders_tags", "tags"] {
        app.admin_call(
            "POST",
            "/permissions",
            Some(
                json!({"policy": "abf8a154-5b1c-4a46-ac9c-7300570f4f17", "collection": collection,
                        "action": "read", "fields": ["*"], "permissions": {"id": {"_gt": 0}}}),
            ),
        )
        .await;
    }
    let path = "/items/customers?fields=*,orders.*,orders.tags.tags_id.*&filter[orders][_some][status][_eq]=paid&sort=-name";
    let (status, warm) = app.call("GET", path, None, None).await;
    assert_eq!(status, 200, "{warm}");
    let before = relay.pg_statements();
    let (status, body) = app.call("GET", path, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        relay.pg_statements() - before,
        1,
        "one statement for the whole tree"
    );
    let before = relay.pg_statements();
    app.call("GET", &format!("{path}&meta=*"), None, None).await;
    assert_eq!(
        relay.pg_statements() - before,
        3,
        "the two meta counts are their own statements"
    );
    assert_eq!(body["data"][0]["name"], "Bob");
    assert_eq!(
        body["data"][1]["orders"][0]["tags"][1]["tags_id"]["name"], "gift",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_of_one_item_is_one_statement() {
    use crate::support::relay::Relay;
    use crate::support::{PG_PORT, TestDb};
    let db = TestDb::new(Kind::Postgres).await;
    let relay = Relay::start(([127, 0, 0, 1], PG_PORT).into()).await;
    let app = fill(App::start_on(db, None, &[], Some(relay.port())).await).await;
    let path = "/items/orders?fields=id,amount,customer_name,date_created";
    let order = json!({"customer_name": "Dee", "amount": "1.25", "customer": 1});
    // Warm the caches that load on first use (permissions, schema).
    app.admin_call("POST", path, Some(order.clone())).await;
    let before = relay.pg_statements();
    let created = app.admin_call("POST", path, Some(order.clone())).await["data"].clone();
    assert_eq!(
        relay.pg_statements() - before,
        1,
        "the item, its activity, its revision and the answer: {created}"
    );
    assert_eq!(created["customer_name"], "Dee");
    // Fields of related rows are read after the write, in a second statement.
    let before = relay.pg_statements();
    let created = app
        .admin_call("POST", "/items/orders?fields=id,customer.name", Some(order))
        .await["data"]
        .clone();
    assert_eq!(relay.pg_statements() - before, 2, "{created}");
    assert_eq!(created["customer"]["name"], "Ann");
}

on_every_database!(create_answers:
    a_create_answers_the_item_as_read_on_postgres => Kind::Postgres,
    a_create_answers_the_item_as_read_on_mariadb => Kind::MySql,
    a_create_answers_the_item_as_read_on_sqlite => Kind::Sqlite,
);

/// What a create answers is what reading the new item answers, whichever way it is read.
async fn create_answers(kind: Kind) {
    let app = seeded(kind).await;
    for fields in [
        "",
        "?fields=id,amount,customer_name,date_created,status",
        "?fields=id,year(date_created),customer.name",
        "?fields=*,tags.tags_id.name",
    ] {
        let created = app
            .admin_call(
                "POST",
                &format!("/items/orders{fields}"),
                Some(json!({"customer_name": "Eve", "amount": 12.5, "customer": 2})),
            )
            .await["data"]
            .clone();
        let key = created["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{fields}: {created}"));
        let separator = if fields.is_empty() { "?" } else { "&" };
        let read = app
            .admin_call(
                "GET",
                &format!("/items/orders/{key}{fields}{separator}limit=1"),
                None,
            )
            .await["data"]
            .clone();
        assert_eq!(created, read, "{fields}");
    }
}

on_every_database!(activity_and_revisions:
    writes_record_activity_and_revisions_on_postgres => Kind::Postgres,
    writes_record_activity_and_revisions_on_mariadb => Kind::MySql,
    writes_record_activity_and_revisions_on_sqlite => Kind::Sqlite,
);

async fn activity_and_revisions(kind: Kind) {
    let app = seeded(kind).await;
    let created = app
        .admin_call(
            "GET",
            "/activity?filter[collection][_eq]=orders&filter[action][_eq]=create&meta=filter_count",
            None,
        )
        .await;
    assert_eq!(created["meta"]["filter_count"], 3, "{created}");
    // One item alone (on PostgreSQL one statement writes it with its records).
    let new = app
        .admin_call(
            "POST",
            "/items/orders",
            Some(json!({"customer_name": "Cy", "amount": "2.50", "customer": 2, "nope": 1})),
        )
        .await["data"]
        .clone();
    let key = new["id"].as_i64().expect("a generated key");
    let revision = app
        .admin_call(
            "GET",
            &format!("/revisions?filter[collection][_eq]=orders&filter[item][_eq]={key}"),
            None,
        )
        .await["data"]
        .clone();
    assert_eq!(revision.as_array().map(Vec::len), Some(1), "{revision}");
    let revision = &revision[0];
    assert_eq!(revision["item"], key.to_string());
    assert_eq!(
        revision["data"]["id"], key,
        "data holds the new key: {revision}"
    );
    assert_eq!(revision["data"]["customer_name"], "Cy");
    assert_eq!(revision["delta"]["customer_name"], "Cy");
    assert!(revision["delta"].get("id").is_none(), "{revision}");
    assert!(revision["delta"].get("nope").is_none(), "{revision}");
    let activity = app
        .admin_call("GET", &format!("/activity/{}", revision["activity"]), None)
        .await["data"]
        .clone();
    assert_eq!(activity["action"], "create", "{activity}");
    assert_eq!(activity["item"], key.to_string());
    assert_eq!(activity["collection"], "orders");
    assert!(activity["user"].is_string(), "{activity}");
    // A second create of the same shape reuses the first one's statement (PostgreSQL)
    // with its own values, in the item, its answer and its revision alike.
    let second = app
        .admin_call(
            "POST",
            "/items/orders",
            Some(json!({"customer_name": "Di", "amount": "3.75", "customer": 1})),
        )
        .await["data"]
        .clone();
    let second_key = second["id"].as_i64().expect("a generated key");
    assert_ne!(second_key, key);
    assert_eq!(second["customer_name"], "Di", "{second}");
    assert_eq!(second["customer"], 1, "{second}");
    let revision = app
        .admin_call(
            "GET",
            &format!("/revisions?filter[collection][_eq]=orders&filter[item][_eq]={second_key}"),
            None,
        )
        .await["data"][0]
        .clone();
    assert_eq!(revision["data"]["id"], second_key, "{revision}");
    assert_eq!(revision["data"]["customer_name"], "Di", "{revision}");
    assert_eq!(revision["delta"]["customer"], 1, "{revision}");
    app.admin_call("PATCH", "/items/orders/2", Some(json!({"amount": 4.5})))
        .await;
    let revision = app
        .admin_call(
            "GET",
            "/revisions?filter[collection][_eq]=orders&sort=-id&limit=1",
            None,
        )
        .await["data"][0]
        .clone();
    assert_eq!(revision["item"], "2");
    assert_eq!(
        revision["delta"]["amount"].as_f64(),
        Some(4.5),
        "{revision}"
    );
    assert_eq!(
        revision["data"]["customer_name"], "Ann",
        "data is the whole item"
    );
    let activity = app
        .admin_call("GET", &format!("/activity/{}", revision["activity"]), None)
        .await;
    assert_eq!(activity["data"]["action"], "update");
    app.admin_call("DELETE", "/items/orders/2", None).await;
    let deleted = app
        .admin_call(
            "GET",
            "/activity?filter[action][_eq]=delete&filter[item][_eq]=2&fields=collection",
            None,
        )
        .await;
    assert_eq!(deleted["data"], json!([{"collection": "orders"}]));

    // `activity`: an activity row and no revision.
    app.admin_call(
        "PATCH",
        "/collections/tags",
        Some(json!({"meta": {"accountability": "activity"}})),
    )
    .await;
    let tag = app
        .admin_call("POST", "/items/tags", Some(json!({"name": "logged"})))
        .await["data"]["id"]
        .clone();
    let logged = app
        .admin_call(
            "GET",
            &format!(
                "/activity?filter[collection][_eq]=tags&filter[item][_eq]={tag}&meta=filter_count"
            ),
            None,
        )
        .await;
    assert_eq!(logged["meta"]["filter_count"], 1, "{logged}");
    let revised = app
        .admin_call(
            "GET",
            &format!(
                "/revisions?filter[collection][_eq]=tags&filter[item][_eq]={tag}&meta=filter_count"
            ),
            None,
        )
        .await;
    assert_eq!(revised["meta"]["filter_count"], 0, "{revised}");

    // A collection without accountability leaves no trace.
    app.admin_call(
        "PATCH",
        "/collections/tags",
        Some(json!({"meta": {"accountability": null}})),
    )
    .await;
    app.admin_call("POST", "/items/tags", Some(json!({"name": "quiet"})))
        .await;
    let tags = app
        .admin_call(
            "GET",
            "/activity?filter[collection][_eq]=tags&meta=filter_count",
            None,
        )
        .await;
    assert_eq!(
        tags["meta"]["filter_count"], 3,
        "only the two seeded tags and the logged one: {tags}"
    );
    let (status, _) = app
        .call(
            "POST",
            "/activity",
            Some(&app.admin),
            Some(json!({"action": "forged"})),
        )
        .await;
    assert_eq!(status, 404, "activity is written by the server only");
    let (status, _) = app.call("GET", "/activity", None, None).await;
    assert_eq!(status, 403);
}

on_every_database!(functions_and_sorts:
    function_fields_and_relational_sorts_on_postgres => Kind::Postgres,
    function_fields_and_relational_sorts_on_mariadb => Kind::MySql,
    function_fields_and_relational_sorts_on_sqlite => Kind::Sqlite,
);

async fn functions_and_sorts(kind: Kind) {
    let app = seeded(kind).await;
    let data = |path: &str| {
        let path = path.to_string();
        let app = &app;
        async move { app.admin_call("GET", &path, None).await["data"].clone() }
    };
    let counted = data("/items/customers?fields=name,count(orders)&sort=-count(orders),name").await;
    assert_eq!(
        counted,
        json!([{"name": "Ann", "orders_count": 2}, {"name": "Bob", "orders_count": 1}])
    );
    let year = chrono::Utc::now()
        .format("%Y")
        .to_string()
        .parse::<i64>()
        .unwrap();
    let dated = data("/items/orders/1?fields=id,year(date_created)").await;
    assert_eq!(dated, json!({"id": 1, "date_created_year": year}));
    let by_customer = data("/items/orders?fields=id&sort=-customer.name,id").await;
    assert_eq!(by_customer, json!([{"id": 3}, {"id": 1}, {"id": 2}]));
    let filtered = data("/items/customers?fields=name&filter[count(orders)][_gt]=1").await;
    assert_eq!(filtered, json!([{"name": "Ann"}]));
    for (path, code) in [
        ("/items/orders?sort=customer.nope", 403),
        ("/items/orders?sort=amount.x", 400),
        ("/items/orders?fields=year(amount)", 400),
        ("/items/customers?fields=count(name)", 400),
    ] {
        let (status, body) = app.call("GET", path, Some(&app.admin), None).await;
        assert_eq!(status, code, "{path}: {body}");
    }
}

on_every_database!(search_and_singletons:
    search_method_and_singletons_on_postgres => Kind::Postgres,
    search_method_and_singletons_on_mariadb => Kind::MySql,
    search_method_and_singletons_on_sqlite => Kind::Sqlite,
);

async fn search_and_singletons(kind: Kind) {
    let app = seeded(kind).await;
    let response = app
        .client
        .request("SEARCH".parse().unwrap(), app.server.url("/items/orders"))
        .bearer_auth(&app.admin)
        .json(&json!({"query": {"fields": ["id"], "filter": {"status": {"_eq": "paid"}}, "sort": ["-id"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"], json!([{"id": 3}, {"id": 1}]));

    app.admin_call("POST", "/collections", Some(json!({"collection": "site", "schema": {}, "meta": {"singleton": true},
        "fields": [{"field": "id", "type": "integer", "schema": {"is_primary_key": true, "has_auto_increment": true}},
                   {"field": "title", "type": "string", "schema": {"default_value": "Hello"}}]})))
        .await;
    let empty = app.admin_call("GET", "/items/site", None).await;
    assert_eq!(
        empty["data"]["title"], "Hello",
        "defaults before the item exists: {empty}"
    );
    let first = app
        .admin_call("PATCH", "/items/site", Some(json!({"title": "Mine"})))
        .await;
    assert_eq!(first["data"]["title"], "Mine");
    app.admin_call("PATCH", "/items/site", Some(json!({"title": "Ours"})))
        .await;
    let read = app.admin_call("GET", "/items/site", None).await;
    assert_eq!(
        (read["data"]["title"].as_str(), read["data"]["id"].as_i64()),
        (Some("Ours"), Some(1))
    );
}

on_every_database!(deep_options:
    deep_options_on_postgres => Kind::Postgres,
    deep_options_on_mariadb => Kind::MySql,
    deep_options_on_sqlite => Kind::Sqlite,
);

/// `deep` filters, sorts and pages the nested items of one relation without touching the
/// top level.
async fn deep_options(kind: Kind) {
    let app = seeded(kind).await;
    let ids = |items: &Value| -> Vec<i64> {
        items
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .filter_map(|o| o["id"].as_i64())
            .collect()
    };
    let ann = |deep: Value| {
        let path = format!(
            "/items/customers/1?fields=name,orders.id,orders.amount&deep={}",
            urlencode(&deep.to_string())
        );
        let app = &app;
        async move { app.admin_call("GET", &path, None).await }
    };

    let sorted = ann(json!({"orders": {"_sort": "-amount"}})).await;
    assert_eq!(ids(&sorted["data"]["orders"]), vec![1, 2], "{sorted}");
    // A list of keys keeps the page's order too (PostgreSQL aggregates the sorted page
    // without sorting again), whichever way it is sorted.
    for (sort, expected) in [("-amount", json!([1, 2])), ("amount", json!([2, 1]))] {
        let deep = json!({"orders": {"_sort": sort}}).to_string();
        let path = format!("/items/customers/1?fields=orders&deep={}", urlencode(&deep));
        let keys = app.admin_call("GET", &path, None).await;
        assert_eq!(keys["data"]["orders"], expected, "{sort}: {keys}");
    }
    let sorted = ann(json!({"orders": {"_sort": ["amount"]}})).await;
    assert_eq!(ids(&sorted["data"]["orders"]), vec![2, 1], "{sorted}");
    let limited = ann(json!({"orders": {"_sort": "amount", "_limit": 1}})).await;
    assert_eq!(ids(&limited["data"]["orders"]), vec![2], "{limited}");
    let offset = ann(json!({"orders": {"_sort": "amount", "_limit": 1, "_offset": 1}})).await;
    assert_eq!(ids(&offset["data"]["orders"]), vec![1], "{offset}");
    let page = ann(json!({"orders": {"_sort": "amount", "_limit": 1, "_page": 2}})).await;
    assert_eq!(ids(&page["data"]["orders"]), vec![1], "{page}");
    // By a selected column as it is (PostgreSQL aggregates the page's rows as objects,
    // sorted by that column), both ways, and by a column left out of the objects.
    let by_id = ann(json!({"orders": {"_sort": "id"}})).await;
    assert_eq!(ids(&by_id["data"]["orders"]), vec![1, 2], "{by_id}");
    let by_id_desc = ann(json!({"orders": {"_sort": "-id"}})).await;
    assert_eq!(
        ids(&by_id_desc["data"]["orders"]),
        vec![2, 1],
        "{by_id_desc}"
    );
    let path = format!(
        "/items/customers/1?fields=orders.amount&deep={}",
        urlencode(&json!({"orders": {"_sort": "-id"}}).to_string())
    );
    let amounts = app.admin_call("GET", &path, None).await;
    let expected: Vec<Value> = by_id_desc["data"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| json!({"amount": o["amount"]}))
        .collect();
    assert_eq!(amounts["data"]["orders"], json!(expected), "{amounts}");
    let filtered = ann(json!({"orders": {"_filter": {"amount": {"_gt": 5}}}})).await;
    assert_eq!(ids(&filtered["data"]["orders"]), vec![1], "{filtered}");
    let none = ann(json!({"orders": {"_filter": {"amount": {"_gt": 500}}}})).await;
    assert_eq!(none["data"]["orders"], json!([]), "{none}");
    assert_eq!(
        none["data"]["name"], "Ann",
        "deep never filters the parent: {none}"
    );

    // A many-to-one `_filter` hides the related item, not the row.
    let path = format!(
        "/items/orders?fields=id,customer.name&sort=id&deep={}",
        urlencode(&json!({"customer": {"_filter": {"name": {"_eq": "Bob"}}}}).to_string())
    );
    let orders = app.admin_call("GET", &path, None).await;
    assert_eq!(
        orders["data"],
        json!([{"id": 1, "customer": null}, {"id": 2, "customer": null}, {"id": 3, "customer": {"name": "Bob"}}])
    );

    // Nested levels: the deep options of orders inside customers inside orders_tags.
    let path = format!(
        "/items/orders_tags/1?fields=orders_id.customer.orders.id&deep={}",
        urlencode(
            &json!({"orders_id": {"customer": {"orders": {"_sort": "-id", "_limit": 1}}}})
                .to_string()
        )
    );
    let nested = app.admin_call("GET", &path, None).await;
    assert_eq!(
        nested["data"],
        json!({"orders_id": {"customer": {"orders": [{"id": 2}]}}}),
        "{nested}"
    );

    // As at the top level, an unknown filter field is refused like a forbidden one.
    for (bad, why, status, code) in [
        (
            json!({"orders": {"_limit": "many"}}),
            "a non-number limit",
            400,
            "INVALID_QUERY",
        ),
        (
            json!({"orders": {"_bogus": 1}}),
            "an unknown option",
            400,
            "INVALID_QUERY",
        ),
        (
            json!({"orders": {"_filter": {"nope": {"_eq": 1}}}}),
            "an unknown field",
            403,
            "FORBIDDEN",
        ),
        (
            json!({"orders": {"_sort": "nope"}}),
            "an unknown sort field",
            403,
            "FORBIDDEN",
        ),
    ] {
        let path = format!(
            "/items/customers/1?fields=orders.id&deep={}",
            urlencode(&bad.to_string())
        );
        let (got, res) = app.call("GET", &path, Some(&app.admin), None).await;
        assert_eq!(got, status, "{why}: {res}");
        assert_eq!(res["errors"][0]["extensions"]["code"], code, "{why}: {res}");
    }
}

on_every_database!(aliases:
    aliases_on_postgres => Kind::Postgres,
    aliases_on_mariadb => Kind::MySql,
    aliases_on_sqlite => Kind::Sqlite,
);

/// `alias` renames a field, and reads one relation twice with different `deep` options.
async fn aliases(kind: Kind) {
    let app = seeded(kind).await;
    let get = |path: &str| {
        let path = path.to_string();
        let app = &app;
        async move { app.call("GET", &path, Some(&app.admin), None).await }
    };
    let (_, twice) = get(
        "/items/customers/1?fields=name,big.id,small.id&alias[big]=orders&alias[small]=orders\
         &deep[big][_filter][amount][_gt]=5&deep[small][_filter][amount][_lt]=5",
    )
    .await;
    assert_eq!(
        twice["data"],
        json!({"name": "Ann", "big": [{"id": 1}], "small": [{"id": 2}]}),
        "{twice}"
    );
    let (_, renamed) =
        get("/items/orders/3?fields=id,who,y&alias={\"who\":\"customer_name\",\"y\":\"year(date_created)\"}").await;
    assert_eq!(renamed["data"]["who"], "Bob", "{renamed}");
    assert!(
        renamed["data"]["y"].as_i64().is_some_and(|y| y > 2000),
        "{renamed}"
    );
    assert!(renamed["data"].get("customer_name").is_none(), "{renamed}");
    // Keys are data, whatever they hold: longer than PostgreSQL's 63-byte names, quotes,
    // on the item and on a nested one.
    let long = "k".repeat(70);
    let (status, odd) = get(&format!(
        "/items/orders/3?fields=id,{long},{q},customer.{q}&alias[{long}]=customer_name\
         &alias[{q}]=amount&alias[customer.{q}]=name",
        q = urlencode("a\"b")
    ))
    .await;
    assert_eq!(status, 200, "{odd}");
    assert_eq!(odd["data"][long.as_str()], "Bob", "{odd}");
    let (_, plain) = get("/items/orders/3?fields=amount,customer.name").await;
    assert_eq!(odd["data"]["a\"b"], plain["data"]["amount"], "{odd}");
    assert_eq!(
        odd["data"]["customer"]["a\"b"], plain["data"]["customer"]["name"],
        "{odd}"
    );
    assert_eq!(odd["data"].as_object().map(|o| o.len()), Some(4), "{odd}");
    let (_, wild) = get("/items/orders/3?alias[who]=customer_name").await;
    assert_eq!(
        wild["data"]["who"], "Bob",
        "the wildcard includes aliases: {wild}"
    );
    assert_eq!(wild["data"]["customer_name"], "Bob", "{wild}");
    let (_, nested) = get(
        "/items/orders/1?fields=id,customer.recent.id,customer.orders.id\
         &alias[customer.recent]=orders&deep[customer][recent][_sort]=-id&deep[customer][recent][_limit]=1",
    )
    .await;
    assert_eq!(
        nested["data"],
        json!({"id": 1, "customer": {"recent": [{"id": 2}], "orders": [{"id": 1}, {"id": 2}]}}),
        "an alias one relation down: {nested}"
    );

    for (query, status) in [
        ("fields=amount&alias[amount]=customer_name", 400),
        ("fields=x&alias[x]=customer.name", 400),
        ("fields=x&alias[x]=nope", 403),
    ] {
        let (got, body) = get(&format!("/items/orders?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
    }
}

/// `QUERY_LIMIT_DEFAULT` is the limit of a list that names none; `QUERY_LIMIT_MAX` caps
/// every list, `limit=-1` included.
#[tokio::test]
async fn query_limits_come_from_the_configuration() {
    let app = App::start_with(
        Kind::Sqlite,
        None,
        &[("QUERY_LIMIT_DEFAULT", "2"), ("QUERY_LIMIT_MAX", "3")],
    )
    .await;
    let app = fill(app).await;
    app.admin_call(
        "POST",
        "/items/tags",
        Some(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
    )
    .await;
    let count = |path: &'static str| {
        let app = &app;
        async move {
            app.admin_call("GET", path, None).await["data"]
                .as_array()
                .map(Vec::len)
        }
    };
    assert_eq!(count("/items/tags").await, Some(2));
    assert_eq!(count("/items/tags?limit=-1").await, Some(3));
    assert_eq!(count("/items/tags?limit=50").await, Some(3));
    assert_eq!(count("/items/tags?limit=1").await, Some(1));
}

on_every_database!(exports:
    exports_on_postgres => Kind::Postgres,
    exports_on_mariadb => Kind::MySql,
    exports_on_sqlite => Kind::Sqlite,
);

/// `export` answers the same read as a download in each format.
async fn exports(kind: Kind) {
    let app = seeded(kind).await;
    let download = |format: &'static str| {
        let app = &app;
        async move {
            let url = app.server.url(&format!(
                "/items/orders?fields=id,customer_name,customer.name&sort=id&limit=2&export={format}"
            ));
            let response = app
                .client
                .get(url)
                .bearer_auth(&app.admin)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200, "{format}");
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let (kind, disposition) = (header("content-type"), header("content-disposition"));
            assert!(
                disposition.starts_with("attachment; filename=\"orders-"),
                "{disposition}"
            );
            assert!(
                disposition.ends_with(&format!(".{format}\"")),
                "{disposition}"
            );
            (kind, response.text().await.unwrap())
        }
    };
    let (content_type, json) = download("json").await;
    assert!(content_type.starts_with("application/json"));
    let parsed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        parsed,
        json!([{"id": 1, "customer_name": "Ann", "customer": {"name": "Ann"}}, {"id": 2, "customer_name": "Ann", "customer": {"name": "Ann"}}])
    );
    let (content_type, csv) = download("csv").await;
    assert!(content_type.starts_with("text/csv"));
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 3, "{csv}");
    assert!(header.contains(&"\"customer.name\""), "{csv}");
    assert_eq!(lines.count(), 2, "{csv}");
    let (content_type, xml) = download("xml").await;
    assert!(content_type.starts_with("text/xml"));
    assert!(
        xml.contains("<customer>\n            <name>Ann</name>"),
        "{xml}"
    );
    assert_eq!(
        xml.matches("<customer_name>Ann</customer_name>").count(),
        2,
        "{xml}"
    );
    let (content_type, yaml) = download("yaml").await;
    assert!(content_type.starts_with("text/yaml"));
    assert_eq!(yaml.matches("- ").count(), 2, "{yaml}");
    assert!(yaml.contains("customer_name: Ann"), "{yaml}");

    let (status, body) = app
        .call("GET", "/items/orders?export=pdf", Some(&app.admin), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_QUERY");
}

on_every_database!(lists_keep_their_order:
    lists_keep_their_order_on_postgres => Kind::Postgres,
    lists_keep_their_order_on_mariadb => Kind::MySql,
    lists_keep_their_order_on_sqlite => Kind::Sqlite,
);

/// The `id`s of the items a GET answers, in order.
pub async fn ids(app: &App, path: &str) -> Vec<i64> {
    let body = app.admin_call("GET", path, None).await;
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: {body}"))
        .iter()
        .map(|item| item["id"].as_i64().unwrap_or_default())
        .collect()
}

/// A list comes in its sort order whatever its length: on PostgreSQL a short page is one
/// JSON array built by the database and a long one (over 1000, or `limit=-1`) a row per
/// item, and an empty page is `[]` either way.
async fn lists_keep_their_order(kind: Kind) {
    let app = seeded(kind).await;
    let ids = |path: &'static str| ids(&app, path);
    assert_eq!(ids("/items/orders?fields=id&sort=-id").await, [3, 2, 1]);
    assert_eq!(
        ids("/items/orders?fields=id,amount&sort=id&limit=2").await,
        [1, 2]
    );
    assert_eq!(
        ids("/items/orders?fields=id&sort=-id&offset=1&limit=1").await,
        [2]
    );
    assert_eq!(
        ids("/items/orders?fields=id&sort=-id&limit=1001").await,
        [3, 2, 1]
    );
    assert_eq!(
        ids("/items/orders?fields=id&sort=-id&limit=-1").await,
        [3, 2, 1]
    );
    assert_eq!(ids("/items/orders?fields=id&sort=-amount").await, [1, 3, 2]);
    assert!(ids("/items/orders?filter[id][_gt]=100").await.is_empty());
    assert!(
        ids("/items/orders?filter[id][_gt]=100&limit=-1")
            .await
            .is_empty()
    );
}

/// Reads by key of the rows' own columns share PostgreSQL connections (pipelined): many at
/// once each get their own item over no more connections than are shared, and losing the
/// shared connection costs no read.
#[tokio::test]
async fn reads_by_key_share_a_connection_on_postgres() {
    // Orders' own columns (`*` would reach their tags, a relation).
    const OWN: &str = "id,customer_name,amount,customer";
    let app = seeded(Kind::Postgres).await;
    let probe = crate::support::pg_client(&app.db.name).await;
    // Every connection rectus holds (the seeding's pooled ones) is ended by the server.
    let end_all = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                   WHERE datname = current_database() AND application_name = 'rectus'";
    probe.batch_execute(end_all).await.expect("terminate");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let reads = (0..60).map(|i| {
        let id = 1 + i % 3;
        let app = &app;
        async move {
            let item = app
                .admin_call("GET", &format!("/items/orders/{id}?fields={OWN}"), None)
                .await["data"]
                .clone();
            (id, item)
        }
    });
    for (id, item) in futures_util::future::join_all(reads).await {
        assert_eq!(item["id"], id, "{item}");
        let name = if id == 3 { "Bob" } else { "Ann" };
        assert_eq!(item["customer_name"], name, "{item}");
    }
    let held: i64 = probe
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'rectus'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let shared = (cores / 2).max(1) as i64;
    assert!(
        (1..=shared).contains(&held),
        "60 reads by key held {held} connections"
    );
    // The shared connection lost: the next reads take a fresh one.
    probe.batch_execute(end_all).await.expect("terminate");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let path = format!("/items/orders/3?fields={OWN}");
    let item = app.admin_call("GET", &path, None).await["data"].clone();
    assert_eq!(item["customer_name"], "Bob", "{item}");
    // A read that reaches a relation keeps a pooled connection of its own.
    let item = app
        .admin_call("GET", "/items/orders/1?fields=id,customer.name", None)
        .await["data"]
        .clone();
    assert_eq!(item["customer"]["name"], "Ann", "{item}");
}

/// With a one-connection pool no connection is kept aside for reads by key: reads and
/// writes take turns on the one there is.
#[tokio::test]
async fn a_one_connection_pool_keeps_serving_reads_and_writes_on_postgres() {
    let app = fill(App::start_with(Kind::Postgres, None, &[("DB_POOL__MAX", "1")]).await).await;
    for _ in 0..3 {
        let item = app
            .admin_call("GET", "/items/orders/1?fields=id,customer_name", None)
            .await["data"]
            .clone();
        assert_eq!(item["customer_name"], "Ann", "{item}");
        let created = app
            .admin_call(
                "POST",
                "/items/orders",
                Some(json!({"customer_name": "Eve", "amount": 1, "customer": 2})),
            )
            .await["data"]
            .clone();
        assert_eq!(created["customer_name"], "Eve", "{created}");
    }
}
