//! GraphQL over HTTP on PostgreSQL, MariaDB and SQLite: every query and mutation form on the
//! order example, relational nesting with arguments, function fields, aggregates, a schema
//! restricted by permissions (hidden fields absent from introspection and refused by
//! validation), the abuse limits, one statement per root field, REST and GraphQL answering
//! the same data, and the system endpoint.

use serde_json::{Value, json};

use crate::items::{fill, seeded};
use crate::on_every_database;
use crate::rbac::role_with_user;
use crate::support::{App, Kind};

async fn gql_at(
    app: &App,
    path: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    app.call(
        "POST",
        path,
        token,
        Some(json!({"query": query, "variables": variables})),
    )
    .await
}

/// A query as the admin; asserts it answered without errors and returns `data`.
async fn data(app: &App, query: &str) -> Value {
    let (status, body) = gql_at(app, "/graphql", Some(&app.admin), query, Value::Null).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// REST's ids are numbers, GraphQL's IDs strings; everything else is the same.
fn ids_as_strings(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("id", Value::Number(n)) => (k.clone(), Value::String(n.to_string())),
                    _ => (k.clone(), ids_as_strings(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(ids_as_strings).collect()),
        other => other.clone(),
    }
}

fn id_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

on_every_database!(queries:
    queries_on_postgres => Kind::Postgres,
    queries_on_mariadb => Kind::MySql,
    queries_on_sqlite => Kind::Sqlite,
);

async fn queries(kind: Kind) {
    let app = seeded(kind).await;

    // The same read through REST and GraphQL.
    let rest = app
        .admin_call(
            "GET",
            "/items/orders?fields=id,customer_name,amount,status,customer.name,customer.email,tags.tags_id.name&sort=id",
            None,
        )
        .await;
    let graph = data(
        &app,
        "{ orders(sort: [\"id\"]) { id customer_name amount status customer { name email } tags { tags_id { name } } } }",
    )
    .await;
    assert_eq!(graph["orders"], ids_as_strings(&rest["data"]), "{graph}");

    let filtered = data(
        &app,
        "{ orders(filter: {amount: {_gt: 5}}, sort: [\"-amount\"]) { id } }",
    )
    .await;
    assert_eq!(id_list(&filtered["orders"]), ["1", "3"]);
    let page = data(&app, "{ orders(sort: [\"id\"], limit: 1, page: 2) { id } }").await;
    assert_eq!(id_list(&page["orders"]), ["2"]);
    let offset = data(
        &app,
        "{ orders(sort: [\"id\"], limit: 2, offset: 2) { id } }",
    )
    .await;
    assert_eq!(id_list(&offset["orders"]), ["3"]);
    let found = data(&app, "{ customers(search: \"bob\") { name } }").await;
    assert_eq!(found["customers"], json!([{"name": "Bob"}]));
    let related = data(
        &app,
        "{ orders(filter: {customer: {name: {_eq: \"Bob\"}}}) { id } }",
    )
    .await;
    assert_eq!(id_list(&related["orders"]), ["3"]);

    let one = data(&app, "{ orders_by_id(id: 2) { id customer_name } }").await;
    assert_eq!(
        one["orders_by_id"],
        json!({"id": "2", "customer_name": "Ann"})
    );
    let (_, missing) = gql_at(
        &app,
        "/graphql",
        Some(&app.admin),
        "{ orders_by_id(id: 99) { id } }",
        Value::Null,
    )
    .await;
    assert_eq!(code(&missing), "FORBIDDEN", "{missing}");
    assert_eq!(missing["data"]["orders_by_id"], Value::Null, "{missing}");

    // A relation read twice with its own arguments, under aliases, one level down.
    let nested = data(
        &app,
        "{ orders_by_id(id: 1) { customer { name recent: orders(sort: [\"-id\"], limit: 1) { id } \
         all: orders(sort: [\"id\"]) { id } big: orders(filter: {amount: {_gt: 5}}) { amount } } } }",
    )
    .await;
    assert_eq!(
        nested["orders_by_id"]["customer"],
        json!({"name": "Ann", "recent": [{"id": "2"}], "all": [{"id": "1"}, {"id": "2"}], "big": [{"amount": 10.5}]}),
        "{nested}"
    );
    // `search` on a nested list is `deep[...][_search]`, in REST too.
    let searched = data(
        &app,
        "{ customers_by_id(id: 1) { orders(search: \"3\") { id } } }",
    )
    .await;
    assert_eq!(
        searched["customers_by_id"],
        json!({"orders": [{"id": "2"}]}),
        "{searched}"
    );
    let rest_searched = app
        .admin_call(
            "GET",
            "/items/customers/1?fields=orders.id&deep[orders][_search]=3",
            None,
        )
        .await;
    assert_eq!(
        ids_as_strings(&rest_searched["data"]),
        searched["customers_by_id"]
    );
    let aliased = data(&app, "{ orders_by_id(id: 3) { who: customer_name n: id } }").await;
    assert_eq!(aliased["orders_by_id"], json!({"who": "Bob", "n": "3"}));

    let functions = data(
        &app,
        "{ orders_by_id(id: 1) { date_created_func { year month } } customers(sort: [\"id\"]) { orders_func { count } } }",
    )
    .await;
    let year = functions["orders_by_id"]["date_created_func"]["year"]
        .as_i64()
        .unwrap_or(0);
    assert!(year >= 2024, "{functions}");
    assert_eq!(
        functions["customers"],
        json!([{"orders_func": {"count": 2}}, {"orders_func": {"count": 1}}])
    );
    let this_year = data(
        &app,
        &format!("{{ orders(filter: {{date_created_func: {{year: {{_eq: {year}}}}}}}) {{ id }} }}"),
    )
    .await;
    assert_eq!(this_year["orders"].as_array().map(Vec::len), Some(3));
    let counted = data(
        &app,
        "{ customers(filter: {orders_func: {count: {_gt: 1}}}) { name } }",
    )
    .await;
    assert_eq!(counted["customers"], json!([{"name": "Ann"}]));

    let grouped = data(
        &app,
        "{ orders_aggregated(groupBy: [\"customer_name\"]) { group countAll count { id } sum { amount } max { amount } } }",
    )
    .await;
    assert_eq!(
        grouped["orders_aggregated"],
        json!([
            {"group": {"customer_name": "Ann"}, "countAll": 2, "count": {"id": 2}, "sum": {"amount": 13.5}, "max": {"amount": 10.5}},
            {"group": {"customer_name": "Bob"}, "countAll": 1, "count": {"id": 1}, "sum": {"amount": 7.25}, "max": {"amount": 7.25}},
        ]),
        "{grouped}"
    );
    let paid = data(
        &app,
        "{ orders_aggregated(filter: {status: {_eq: \"paid\"}}) { countAll avg { amount } } }",
    )
    .await;
    assert_eq!(paid["orders_aggregated"][0]["countAll"], 2, "{paid}");

    let (status, with_variables) = gql_at(
        &app,
        "/graphql",
        Some(&app.admin),
        "query Big($min: GraphQLStringOrFloat, $n: Int) { orders(filter: {amount: {_gt: $min}}, limit: $n, sort: [\"id\"]) { ...Fields } } \
         fragment Fields on orders { id ... on orders { customer_name } }",
        json!({"min": 5, "n": 1}),
    )
    .await;
    assert_eq!(status, 200, "{with_variables}");
    assert_eq!(
        with_variables["data"]["orders"],
        json!([{"id": "1", "customer_name": "Ann"}])
    );

    // GET takes the query in the URL.
    let url = format!(
        "/graphql?query={}",
        crate::support::urlencode("{ tags(sort: [\"name\"]) { name } }")
    );
    let (status, got) = app.call("GET", &url, Some(&app.admin), None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        got["data"]["tags"],
        json!([{"name": "gift"}, {"name": "urgent"}])
    );
}

on_every_database!(mutations:
    mutations_on_postgres => Kind::Postgres,
    mutations_on_mariadb => Kind::MySql,
    mutations_on_sqlite => Kind::Sqlite,
);

async fn mutations(kind: Kind) {
    let app = seeded(kind).await;
    let created = data(
        &app,
        "mutation { create_orders_item(data: {customer_name: \"Cy\", amount: 2, customer: {name: \"Cy\", email: \"cy@example.com\"}, \
         tags: [{tags_id: {name: \"new\"}}]}) { id customer_name customer { name } tags { tags_id { name } } } }",
    )
    .await;
    let order = &created["create_orders_item"];
    assert_eq!(order["customer"]["name"], "Cy", "{created}");
    assert_eq!(order["tags"], json!([{"tags_id": {"name": "new"}}]));
    let new_id = order["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(new_id, "4");

    let many = data(
        &app,
        "mutation { create_orders_items(data: [{customer_name: \"D\", amount: 1}, {customer_name: \"E\", amount: 1}]) { id customer_name } }",
    )
    .await;
    assert_eq!(
        many["create_orders_items"],
        json!([{"id": "5", "customer_name": "D"}, {"id": "6", "customer_name": "E"}])
    );
    // Own fields only: on PostgreSQL answered by the create's own statement.
    let plain = data(
        &app,
        "mutation { create_orders_item(data: {customer_name: \"F\", amount: 3.5}) { id customer_name amount } }",
    )
    .await;
    let read = data(&app, "{ orders_by_id(id: 7) { id customer_name amount } }").await;
    assert_eq!(plain["create_orders_item"], read["orders_by_id"], "{plain}");
    assert_eq!(plain["create_orders_item"]["customer_name"], "F");
    data(&app, "mutation { delete_orders_item(id: 7) { id } }").await;
    let updated = data(
        &app,
        "mutation { update_orders_item(id: 1, data: {amount: 11}) { id amount } }",
    )
    .await;
    assert_eq!(updated["update_orders_item"]["id"], "1");
    assert_eq!(updated["update_orders_item"]["amount"].as_f64(), Some(11.0));
    let both = data(
        &app,
        "mutation { update_orders_items(ids: [5, 6], data: {status: \"paid\"}) { id status } }",
    )
    .await;
    assert_eq!(
        both["update_orders_items"],
        json!([{"id": "5", "status": "paid"}, {"id": "6", "status": "paid"}])
    );
    let batch = data(
        &app,
        "mutation { update_orders_batch(data: [{id: 5, amount: 50}, {id: 6, amount: 60}]) { id amount } }",
    )
    .await;
    let amounts: Vec<(String, f64)> = batch["update_orders_batch"]
        .as_array()
        .unwrap_or_else(|| panic!("{batch}"))
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap_or_default().to_string(),
                o["amount"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    assert_eq!(amounts, [("5".to_string(), 50.0), ("6".to_string(), 60.0)]);
    let gone = data(
        &app,
        "mutation { delete_orders_item(id: 6) { id } delete_orders_items(ids: [5]) { ids } }",
    )
    .await;
    assert_eq!(
        gone,
        json!({"delete_orders_item": {"id": "6"}, "delete_orders_items": {"ids": ["5"]}})
    );
    let (_, rest) = app
        .call(
            "GET",
            "/items/orders?fields=id&sort=id",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(
        rest["data"],
        json!([{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}])
    );

    // A failing mutation answers its error with Directus's code and writes nothing.
    let (status, failed) = gql_at(
        &app,
        "/graphql",
        Some(&app.admin),
        "mutation { create_orders_items(data: [{customer_name: \"ok\"}, {amount: 3}]) { id } }",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(code(&failed), "FAILED_VALIDATION", "{failed}");
    let (_, after) = app
        .call(
            "GET",
            "/items/orders?aggregate[count]=*",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(
        after["data"][0]["count"].to_string().trim_matches('"'),
        "4",
        "a failed batch writes nothing: {after}"
    );

    // A singleton reads as one object and is written without a key.
    app.admin_call(
        "POST",
        "/collections",
        Some(json!({"collection": "about", "schema": {}, "meta": {"singleton": true}, "fields": [
            {"field": "id", "type": "integer", "schema": {"is_primary_key": true, "has_auto_increment": true}},
            {"field": "title", "type": "string", "schema": {"default_value": "Untitled"}},
        ]})),
    )
    .await;
    let empty = data(&app, "{ about { title } }").await;
    assert_eq!(empty["about"], json!({"title": "Untitled"}), "{empty}");
    let written = data(
        &app,
        "mutation { update_about(data: {title: \"Shop\"}) { title } }",
    )
    .await;
    assert_eq!(written["update_about"], json!({"title": "Shop"}));
    let read = data(&app, "{ about { id title } }").await;
    assert_eq!(read["about"]["title"], "Shop", "{read}");

    let (status, body) = app
        .call(
            "GET",
            &format!(
                "/graphql?query={}",
                crate::support::urlencode("mutation { delete_orders_item(id: 1) { id } }")
            ),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, 405, "mutations need POST: {body}");
}

on_every_database!(restricted_schema:
    restricted_schema_on_postgres => Kind::Postgres,
    restricted_schema_on_mariadb => Kind::MySql,
    restricted_schema_on_sqlite => Kind::Sqlite,
);

/// A role `name` that reads paid orders' id, customer_name and customer key, and nothing
/// else; returns its policy and its user's token.
pub async fn paid_orders_reader(app: &App, name: &str) -> (String, String) {
    let (policies, token, _) =
        role_with_user(app, name, &[json!({"name": name, "app_access": false})]).await;
    app.admin_call(
        "POST",
        "/permissions",
        Some(json!({"policy": policies[0], "collection": "orders", "action": "read",
            "fields": ["id", "customer_name", "customer"], "permissions": {"status": {"_eq": "paid"}}})),
    )
    .await;
    (policies[0].clone(), token)
}

async fn restricted_schema(kind: Kind) {
    let app = seeded(kind).await;
    let (policy, token) = paid_orders_reader(&app, "Clerk").await;
    let ask = |query: &str| {
        let query = query.to_string();
        let app = &app;
        let token = token.clone();
        async move { gql_at(app, "/graphql", Some(&token), &query, Value::Null).await }
    };

    let (status, fields) = ask("{ __type(name: \"orders\") { fields { name } } }").await;
    assert_eq!(status, 200, "{fields}");
    let mut names: Vec<&str> = fields["data"]["__type"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("{fields}"))
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["customer", "customer_name", "id"],
        "only readable fields, and customer as its key: {fields}"
    );
    let (_, schema) = ask("{ __schema { types { name } mutationType { name } } }").await;
    let types: Vec<&str> = schema["data"]["__schema"]["types"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(types.contains(&"orders"), "{schema}");
    assert!(
        !types.contains(&"customers"),
        "no type for an unreadable collection"
    );
    assert!(!types.contains(&"create_orders_input"));
    assert_eq!(schema["data"]["__schema"]["mutationType"], Value::Null);

    for hidden in [
        "{ orders { amount } }",
        "{ orders(filter: {amount: {_gt: 1}}) { id } }",
        "{ customers { id } }",
        "{ orders { customer { name } } }",
        "mutation { create_orders_item(data: {customer_name: \"x\"}) { id } }",
    ] {
        let (status, body) = ask(hidden).await;
        assert_eq!(status, 400, "{hidden}: {body}");
        assert_eq!(code(&body), "GRAPHQL_VALIDATION", "{hidden}: {body}");
    }

    // Arguments that name fields as text are checked when they run, as in REST.
    for hidden in [
        "{ orders(sort: [\"amount\"]) { id } }",
        "{ orders_aggregated(groupBy: [\"amount\"]) { countAll } }",
        "{ orders_aggregated(groupBy: [\"status\"]) { countAll } }",
        "{ orders(search: \"10.5\") { id } }",
    ] {
        let (status, body) = ask(hidden).await;
        match hidden.contains("search") {
            // search only looks into readable fields: nothing of amount shows.
            true => assert_eq!(body["data"]["orders"], json!([]), "{hidden}: {body}"),
            false => {
                assert_eq!(status, 200, "{hidden}: {body}");
                assert_eq!(code(&body), "FORBIDDEN", "{hidden}: {body}");
            }
        }
    }

    let (_, rows) = ask("{ orders(sort: [\"id\"]) { id customer_name customer } }").await;
    let (_, rest) = app
        .call(
            "GET",
            "/items/orders?fields=id,customer_name,customer&sort=id",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(rows["data"]["orders"], ids_as_strings(&rest["data"]));
    assert_eq!(id_list(&rows["data"]["orders"]), ["1", "3"], "{rows}");
    let (_, counted) = ask("{ orders_aggregated { countAll } }").await;
    assert_eq!(
        counted["data"]["orders_aggregated"],
        json!([{"countAll": 2}]),
        "aggregates count only readable rows: {counted}"
    );

    let sdl = app
        .client
        .get(app.server.url("/server/specs/graphql"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sdl");
    assert_eq!(sdl.status().as_u16(), 200);
    let sdl = sdl.text().await.expect("sdl text");
    assert!(sdl.contains("customer_name"), "{sdl}");
    assert!(
        !sdl.contains("amount") && !sdl.contains("type customers"),
        "{sdl}"
    );
    let admin_sdl = app
        .client
        .get(app.server.url("/server/specs/graphql"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("sdl")
        .text()
        .await
        .expect("sdl text");
    assert!(admin_sdl.contains("create_orders_item") && admin_sdl.contains("amount"));

    // A new permission shows in the next request's schema.
    app.admin_call(
        "POST",
        "/permissions",
        Some(
            json!({"policy": policy, "collection": "customers", "action": "read",
            "fields": ["name"], "permissions": {}}),
        ),
    )
    .await;
    let (status, now) = ask("{ orders(sort: [\"id\"]) { customer { name } } }").await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(
        now["data"]["orders"],
        json!([{"customer": {"name": "Ann"}}, {"customer": {"name": "Bob"}}])
    );
    let (_, rest) = app
        .call(
            "GET",
            "/items/orders?fields=customer.name&sort=id",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        rest["data"], now["data"]["orders"],
        "a many-to-one follows the key the caller sees, though the related key is not readable"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_and_errors() {
    let app = App::start_with(
        Kind::Sqlite,
        None,
        &[
            ("GRAPHQL_QUERY_DEPTH_LIMIT", "3"),
            ("GRAPHQL_QUERY_ALIAS_LIMIT", "2"),
            ("GRAPHQL_QUERY_TOKEN_LIMIT", "60"),
        ],
    )
    .await;
    let app = fill(app).await;
    let ask = |query: &str| {
        let query = query.to_string();
        let app = &app;
        async move { gql_at(app, "/graphql", Some(&app.admin), &query, Value::Null).await }
    };
    let (status, ok) = ask("{ orders_by_id(id: 1) { customer { name } } }").await;
    assert_eq!(status, 200, "{ok}");
    for (query, words) in [
        (
            "{ orders_by_id(id: 1) { customer { orders { id } } } }",
            "levels deep",
        ),
        (
            "{ a: tags { id } b: tags { id } c: tags { id } }",
            "aliases",
        ),
        (
            "{ ...F ...F } fragment F on Query { a: tags { id } b: tags { id } }",
            "aliases",
        ),
        (&"{ tags { id } } ".repeat(20), "tokens"),
        ("{ tags { id ", "Syntax Error"),
        ("{ nothing_here }", "nothing_here"),
    ] {
        let (status, body) = ask(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(code(&body), "GRAPHQL_VALIDATION", "{body}");
        assert!(body.to_string().contains(words), "{query}: {body}");
    }
    // Checked documents are kept by their text and operation name: the same text runs the
    // operation each request names.
    let document =
        "query Q { tags(sort: [\"id\"]) { name } } mutation M { delete_tags_item(id: 999) { id } }";
    for (operation, expected) in [("Q", 200), ("M", 405), ("Q", 200), ("M", 405)] {
        let response = app
            .client
            .get(app.server.url("/graphql"))
            .bearer_auth(&app.admin)
            .query(&[("query", document), ("operationName", operation)])
            .send()
            .await
            .expect("get");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, expected, "{operation}: {body}");
        if operation == "Q" {
            assert_eq!(body["data"]["tags"][0]["name"], "urgent", "{body}");
        }
    }

    // Introspection needs no data and is not limited by the depth of its own fields.
    let (status, intro) =
        ask("{ __schema { queryType { fields { type { ofType { ofType { name } } } } } } }").await;
    assert_eq!(status, 200, "{intro}");

    for bad in [
        json!({"query": 5}),
        json!({"nothing": "here"}),
        json!({"query": "{ tags { id } }", "variables": "[1]"}),
    ] {
        let (status, body) = app
            .call("POST", "/graphql", Some(&app.admin), Some(bad))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(code(&body), "INVALID_PAYLOAD", "{body}");
    }
    let response = app
        .client
        .post(app.server.url("/graphql"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 400);
    let raw = app
        .client
        .post(app.server.url("/graphql"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/graphql")
        .body("{ tags(sort: [\"id\"]) { name } }")
        .send()
        .await
        .expect("post")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(raw["data"]["tags"][0]["name"], "urgent", "{raw}");

    // A collection named like a type another one gives rise to gets no types of its own,
    // and the schema still builds.
    app.admin_call(
        "POST",
        "/collections",
        Some(json!({"collection": "tags_filter", "schema": {}, "fields": [
            {"field": "id", "type": "integer", "schema": {"is_primary_key": true, "has_auto_increment": true}},
        ]})),
    )
    .await;
    let (status, still) = ask("{ tags(sort: [\"id\"]) { name } }").await;
    assert_eq!(status, 200, "{still}");
    assert_eq!(still["data"]["tags"][0]["name"], "urgent");
    let (status, clash) = ask("{ tags_filter { id } }").await;
    assert_eq!(status, 400, "{clash}");

    let closed = App::start_with(Kind::Sqlite, None, &[("GRAPHQL_INTROSPECTION", "false")]).await;
    let (status, body) = gql_at(
        &closed,
        "/graphql",
        Some(&closed.admin),
        "{ __schema { types { name } } }",
        Value::Null,
    )
    .await;
    assert!(
        status == 400 || body["errors"].is_array(),
        "introspection is off: {status} {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_statement_per_root_field() {
    use crate::support::relay::Relay;
    use crate::support::{PG_PORT, TestDb};
    let db = TestDb::new(Kind::Postgres).await;
    let relay = Relay::start(([127, 0, 0, 1], PG_PORT).into()).await;
    let app = fill(App::start_on(db, None, &[], Some(relay.port())).await).await;
    let query = "{ customers(sort: [\"-name\"]) { name orders(sort: [\"id\"]) { id tags { tags_id { name } } customer { email } } } \
                 tags { id } }";
    data(&app, query).await;
    let before = relay.pg_statements();
    let answer = data(&app, query).await;
    assert_eq!(
        relay.pg_statements() - before,
        2,
        "one statement per root field: {answer}"
    );
    assert_eq!(
        answer["customers"][1]["orders"][0]["tags"][1]["tags_id"]["name"],
        "gift"
    );
    let before = relay.pg_statements();
    let twice = data(&app, "{ a: tags { id } b: tags { id } }").await;
    assert_eq!(
        relay.pg_statements() - before,
        1,
        "identical fields are resolved once"
    );
    assert_eq!(twice["a"], twice["b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_endpoint() {
    let app = seeded(Kind::Sqlite).await;
    let (status, body) = gql_at(
        &app,
        "/graphql/system",
        Some(&app.admin),
        "{ users_me { email role { name } } roles { name } server_ping server_info \
         permissions_aggregated { countAll } }",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["users_me"]["email"],
        crate::support::ADMIN_EMAIL,
        "{body}"
    );
    assert_eq!(
        body["data"]["users_me"]["role"]["name"], "Administrator",
        "{body}"
    );
    assert_eq!(body["data"]["server_ping"], "pong");
    assert!(
        body["data"]["roles"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    let created = gql_at(
        &app,
        "/graphql/system",
        Some(&app.admin),
        "mutation { create_roles_item(data: {name: \"Editors\"}) { name } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        created.1["data"]["create_roles_item"]["name"], "Editors",
        "{:?}",
        created
    );
    // Anonymous callers see only what the Public policy allows: no users.
    let (status, public) = gql_at(
        &app,
        "/graphql/system",
        None,
        "{ users { id } }",
        Value::Null,
    )
    .await;
    assert_eq!(status, 400, "{public}");
    let (status, public) = gql_at(&app, "/graphql", None, "{ orders { id } }", Value::Null).await;
    assert_eq!(status, 400, "{public}");
}
