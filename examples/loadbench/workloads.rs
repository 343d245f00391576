//! The workloads: each REST or GraphQL request and the same read or write as SQL.

pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    /// The same read (or write) done directly, for pgbench; `{rbac}` is where the role's
    /// row filter goes (`AND ...` or nothing).
    pub(crate) sql: &'static str,
    /// A fixed request body (GraphQL); a POST without one creates a new order each time.
    pub(crate) body: Option<&'static str>,
    /// For a write: the same write with the `directus_activity` and `directus_revisions`
    /// rows Directus's contract adds to it, as rectus's statement writes them (`{user}` is
    /// the caller's id). pgbench runs it as a side of its own, so the table shows what the
    /// records cost the database apart from what the API costs.
    pub(crate) recorded: Option<&'static str>,
}

pub(crate) const WORKLOADS: &[Workload] = &[
    Workload {
        name: "list 100 orders",
        method: "GET",
        path: "/items/orders?limit=100",
        sql: "SELECT json_agg(t) FROM (SELECT * FROM orders WHERE true {rbac} ORDER BY id LIMIT 100) t;",
        body: None,
        recorded: None,
    },
    Workload {
        name: "filter + sort",
        method: "GET",
        path: "/items/orders?filter[status][_eq]=Paid&sort=-amount",
        sql: "SELECT json_agg(t) FROM (SELECT * FROM orders WHERE status = 'Paid' {rbac} ORDER BY amount DESC, id LIMIT 100) t;",
        body: None,
        recorded: None,
    },
    Workload {
        name: "orders with customer.*",
        method: "GET",
        path: "/items/orders?fields=*,customer.*",
        sql: "SELECT json_agg(json_build_object('id', o.id, 'customer_name', o.customer_name, 'amount', o.amount, \
              'status', o.status, 'date_created', o.date_created, \
              'customer', (SELECT json_build_object('id', c.id, 'name', c.name, 'email', c.email, 'region', c.region, \
              'orders', (SELECT json_agg(k.id) FROM (SELECT id FROM orders WHERE customer = c.id {rbac} \
              ORDER BY id LIMIT 100) k)) FROM customers c WHERE c.id = o.customer))) \
              FROM (SELECT * FROM orders WHERE true {rbac} ORDER BY id LIMIT 100) o;",
        body: None,
        recorded: None,
    },
    Workload {
        name: "one order",
        method: "GET",
        path: "/items/orders/12345",
        sql: "SELECT row_to_json(o) FROM orders o WHERE id = 12345 {rbac};",
        body: None,
        recorded: None,
    },
    Workload {
        name: "customers with 5 orders",
        method: "GET",
        path: "/items/customers?limit=20&fields=*,orders.*&deep[orders][_limit]=5",
        sql: "SELECT json_agg(json_build_object('id', c.id, 'name', c.name, 'email', c.email, 'region', c.region, \
              'orders', (SELECT json_agg(row_to_json(o)) FROM (SELECT * FROM orders WHERE customer = c.id {rbac} \
              ORDER BY id LIMIT 5) o))) FROM (SELECT * FROM customers ORDER BY id LIMIT 20) c;",
        body: None,
        recorded: None,
    },
    Workload {
        name: "count by status",
        method: "GET",
        path: "/items/orders?aggregate[count]=*&groupBy[]=status",
        sql: "SELECT json_agg(t) FROM (SELECT status, count(*) FROM orders WHERE true {rbac} GROUP BY status ORDER BY status) t;",
        body: None,
        recorded: None,
    },
    Workload {
        name: "GraphQL one order",
        method: "POST",
        path: "/graphql",
        sql: "SELECT row_to_json(o) FROM orders o WHERE id = 12345 {rbac};",
        body: Some(
            r#"{"query":"{ orders_by_id(id: 12345) { id customer_name amount status date_created } }"}"#,
        ),
        recorded: None,
    },
    // The write goes last: the rows it adds would otherwise be what the workloads after
    // it read, and the side that ran first would pay for their first reads (hint bits)
    // and for autovacuum, which runs while they are measured.
    Workload {
        name: "create an order",
        method: "POST",
        path: "/items/orders",
        sql: "\\set cid random(1, 10000)\n\
              INSERT INTO orders (customer_name, amount, status, customer, date_created) \
              VALUES ('Bench', 12.5, 'Pending', :cid, now()) RETURNING row_to_json(orders.*);",
        body: None,
        recorded: Some(
            "\\set cid random(1, 10000)\n\
             WITH o AS (INSERT INTO orders (customer_name, amount, status, customer, date_created) \
             VALUES ('Bench', 12.5, 'Pending', :cid, now()) RETURNING *), \
             a AS (INSERT INTO directus_activity (action, \"user\", ip, collection, item) \
             SELECT 'create', '{user}', '127.0.0.1', 'orders', CAST(o.id AS text) FROM o RETURNING id, item), \
             r AS (INSERT INTO directus_revisions (collection, delta, activity, item, data) \
             SELECT 'orders', CAST('{\"customer_name\":\"Bench\",\"amount\":\"12.50\",\"status\":\"Pending\",\"customer\":' || :cid || \
             ',\"date_created\":\"2026-12-06T20:44:45.475Z\"}' AS json), a.id, a.item, \
             CAST('{\"customer_name\":\"Bench\",\"amount\":\"12.50\",\"status\":\"Pending\",\"customer\":' || :cid || \
             ',\"date_created\":\"2026-12-06T20:44:45.475Z\",' || to_json(CAST('id' AS text))::text || ':' || to_json(o.id)::text || '}' AS json) \
             FROM a, o) \
             SELECT row_to_json(o.*) FROM o;",
        ),
    },
];

/// The role's item filter on orders, and the same as SQL for pgbench.
pub(crate) const ROLE_FILTER: &str = r#"{"status": {"_neq": "Cancelled"}}"#;
pub(crate) const ROLE_SQL: &str = "AND status <> 'Cancelled'";
