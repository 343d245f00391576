//! The items API load benchmark (issue 5): rectus on PostgreSQL with 10,000 customers and
//! 200,000 orders, seven workloads as admin and as a role with an item filter, each next
//! to the same data fetched as JSON straight from PostgreSQL with pgbench in the same run.
//!
//! ```text
//! cargo build --release && cargo run --release --example loadbench -- [SECONDS] [CONNECTIONS] [WORKLOAD|all] [ROUNDS] [tcp|socket]
//! ```
//!
//! Each workload is measured in ROUNDS (default 3) rounds of every side back to back; the
//! table shows the round with the median ratio and every round's ratio.
//!
//! `socket` runs rectus and the floor as sidecars next to the database: they reach
//! PostgreSQL over its Unix socket, while wrk and the first pgbench side still connect
//! over TCP, as clients on another machine would. A fourth side then runs pgbench over the
//! socket too, and the ratio against it is shown beside the TCP one.
//!
//! A write (the create) has one more side: pgbench running the same write with the
//! `directus_activity` and `directus_revisions` rows rectus's statement adds (Directus
//! records every write), and the ratio of rectus to it is shown beside the bare one.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user `postgres`, trust) and `pgbench`. Creates and
//! drops its own database. Prints one Markdown table.

use serde_json::{Value, json};

#[path = "../bench/mod.rs"]
mod bench;
mod load;
mod workloads;
use bench::{call, free_port, login, psql, rectus_bin, serve};
use load::{Floor, Measured, http_load, pgbench, status_kb};
use workloads::{ROLE_FILTER, ROLE_SQL, WORKLOADS, Workload};

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "bench-password";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let only = args.get(3).cloned().filter(|name| name != "all");
    let rounds: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let socket_dir = match args.get(5).map(String::as_str) {
        None | Some("tcp") => None,
        Some("socket") => Some(bench::socket_directory()),
        Some(other) => panic!("the upstream is tcp or socket, not {other}"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(Settings {
        seconds,
        connections,
        only,
        rounds,
        socket_dir,
    }));
}

/// The workloads named on the command line, in the order named: `customer,one order` runs
/// the `customer.*` workload and then one order, to see whether what ran before changes a
/// workload's figures. Every workload, in the table's order, when `None`.
fn chosen(only: Option<&str>) -> Vec<&'static Workload> {
    let Some(only) = only else {
        return WORKLOADS.iter().collect();
    };
    let mut chosen: Vec<&'static Workload> = Vec::new();
    for part in only.split(',') {
        for w in WORKLOADS.iter().filter(|w| w.name.contains(part)) {
            if !chosen.iter().any(|c| std::ptr::eq(*c, w)) {
                chosen.push(w);
            }
        }
    }
    chosen
}

/// What the command line asked for.
struct Settings {
    /// Per run of each side.
    seconds: u64,
    connections: usize,
    /// Workloads whose name contains one of these comma-separated parts, in that order;
    /// all when `None`.
    only: Option<String>,
    rounds: usize,
    /// PostgreSQL's socket directory when rectus and the floor reach it that way.
    socket_dir: Option<String>,
}

/// Where rectus and the floor reach PostgreSQL.
fn upstream(settings: &Settings) -> &str {
    settings.socket_dir.as_deref().unwrap_or("127.0.0.1")
}

async fn run(settings: Settings) {
    let connections = settings.connections;
    let bin = rectus_bin();
    let database = format!("rectus_bench_{}", std::process::id());
    psql("postgres", &format!("CREATE DATABASE {database}"));

    let port = free_port();
    let env: Vec<(&str, String)> = vec![
        ("DB_CLIENT", "pg".into()),
        ("DB_HOST", upstream(&settings).into()),
        ("DB_PORT", "5432".into()),
        ("DB_DATABASE", database.clone()),
        ("DB_USER", "postgres".into()),
        ("ADMIN_EMAIL", ADMIN_EMAIL.into()),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
        ("SECRET", "bench-secret".into()),
        ("ACCESS_TOKEN_TTL", "2h".into()),
        ("LOGIN_STALL_TIME", "0".into()),
        ("LOG_LEVEL", "warn".into()),
        ("HOST", "127.0.0.1".into()),
        ("PORT", port.to_string()),
        // This benchmark measures the HTTP API; the SQL endpoint's port would only collide
        // with a wirebench running at the same time.
        ("PG_PROXY_ENABLED", "false".into()),
    ];
    let mut server = serve(&bin, &env);
    let pid = server.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections * 2)
        .build()
        .expect("client");

    let result = std::panic::AssertUnwindSafe(measure(&client, &base, &database, pid, &settings));
    let outcome = futures_util::FutureExt::catch_unwind(result).await;
    let _ = server.kill();
    let _ = server.wait();
    psql(
        "postgres",
        &format!("DROP DATABASE {database} WITH (FORCE)"),
    );
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// What the writes of the side before left to PostgreSQL's background work (dead tuples,
/// unset hint bits, dirty buffers) done now, between sides, rather than during one.
fn settle(database: &str) {
    psql(
        database,
        "VACUUM orders, directus_activity, directus_revisions",
    );
    psql(database, "CHECKPOINT");
}

async fn measure(
    client: &reqwest::Client,
    base: &str,
    database: &str,
    pid: u32,
    settings: &Settings,
) {
    let Settings {
        seconds,
        connections,
        rounds,
        ..
    } = *settings;
    let only = settings.only.as_deref();
    let admin = login(client, base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let post =
        |path: &'static str, body: Value| call(client, base, Some(&admin), "POST", path, body);
    post("/collections", json!({"collection": "customers", "schema": {}, "fields": [
        {"field": "id", "type": "integer", "schema": {"is_primary_key": true, "has_auto_increment": true}},
        {"field": "name", "type": "string"},
        {"field": "email", "type": "string"},
        {"field": "region", "type": "string"},
    ]}))
    .await;
    post("/collections", json!({"collection": "orders", "schema": {}, "fields": [
        {"field": "id", "type": "integer", "schema": {"is_primary_key": true, "has_auto_increment": true}},
        {"field": "customer_name", "type": "string"},
        {"field": "amount", "type": "decimal", "schema": {"numeric_precision": 10, "numeric_scale": 2}},
        {"field": "status", "type": "string"},
        {"field": "date_created", "type": "timestamp", "meta": {"special": ["date-created"]}},
        {"field": "customer", "type": "integer", "meta": {"special": ["m2o"]}},
    ]}))
    .await;
    post(
        "/relations",
        json!({"collection": "orders", "field": "customer", "related_collection": "customers",
        "meta": {"one_field": "orders"}}),
    )
    .await;
    post(
        "/fields/customers",
        json!({"field": "orders", "type": "alias", "meta": {"special": ["o2m"]}}),
    )
    .await;
    psql(
        database,
        "INSERT INTO customers (name, email, region) SELECT 'Customer ' || i, 'c' || i || '@example.com', \
         (ARRAY['EU','US','APAC'])[1 + i % 3] FROM generate_series(1, 10000) i; \
         INSERT INTO orders (customer_name, amount, status, customer, date_created) \
         SELECT 'Customer ' || (1 + i % 10000), (i % 1000) / 10.0 + 1, \
         (ARRAY['Paid','Pending','Cancelled','Refunded'])[1 + i % 4], 1 + i % 10000, \
         now() - (i || ' minutes')::interval FROM generate_series(1, 200000) i; \
         CREATE INDEX orders_customer_index ON orders (customer);",
    );
    // The history a database of items created through the API has: one activity and one
    // revision row per order. Without it the audit tables start empty and, until autovacuum
    // first analyzes them (a minute or more), PostgreSQL checks the revisions' foreign key
    // to directus_activity with a sequential scan planned for an empty table: every create
    // then reads all activity rows so far, and create throughput falls as the run goes on.
    psql(
        database,
        "INSERT INTO directus_activity (action, ip, collection, item, timestamp) \
         SELECT 'create', '127.0.0.1', 'orders', id::text, date_created FROM orders ORDER BY id; \
         INSERT INTO directus_revisions (activity, collection, item, data, delta) \
         SELECT a.id, 'orders', a.item, row_to_json(o), row_to_json(o) FROM directus_activity a \
         JOIN orders o ON a.collection = 'orders' AND a.item = o.id::text;",
    );
    psql(database, "VACUUM ANALYZE");
    // The write workload's sides each insert tens of thousands of rows into these tables:
    // autovacuum would start on them partway through whichever side crossed its threshold,
    // and a timed checkpoint could land in any side. Each side of a write instead starts
    // from a vacuumed table and a fresh checkpoint (see `settle`), the same for all.
    psql(
        database,
        "ALTER TABLE orders SET (autovacuum_enabled = off); \
         ALTER TABLE directus_activity SET (autovacuum_enabled = off); \
         ALTER TABLE directus_revisions SET (autovacuum_enabled = off);",
    );

    let role = post("/roles", json!({"name": "Clerks"})).await["data"]["id"].clone();
    let policy =
        post("/policies", json!({"name": "Clerks", "app_access": false})).await["data"]["id"]
            .clone();
    post("/access", json!({"role": role, "policy": policy})).await;
    let filter: Value = serde_json::from_str(ROLE_FILTER).expect("filter");
    for (collection, action, rule) in [
        ("orders", "read", filter.clone()),
        ("orders", "create", json!({})),
        ("customers", "read", json!({})),
    ] {
        post(
            "/permissions",
            json!({"policy": policy, "collection": collection, "action": action,
            "fields": ["*"], "permissions": rule}),
        )
        .await;
    }
    let clerk_id = post(
        "/users",
        json!({"email": "clerk@example.com", "password": "clerk-password", "role": role}),
    )
    .await["data"]["id"]
        .as_str()
        .expect("the clerk's id")
        .to_string();
    let clerk = login(client, base, "clerk@example.com", "clerk-password").await;
    let admin_id = call(client, base, Some(&admin), "GET", "/users/me", Value::Null).await["data"]
        ["id"]
        .as_str()
        .expect("the admin's id")
        .to_string();

    // Warm both paths once.
    for w in WORKLOADS.iter().filter(|w| w.method == "GET") {
        call(client, base, Some(&admin), "GET", w.path, Value::Null).await;
    }
    // The peak so far is the logins' password hashing (64 MiB each while it runs): the
    // peak reported is the measured runs'.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");

    let socket = settings.socket_dir.as_deref();
    let upstream = upstream(settings);
    println!(
        "rectus items API vs pgbench, {rounds} rounds of {seconds} s per side, {connections} connections, PostgreSQL, 10,000 customers / 200,000 orders; rectus and the floor reach PostgreSQL over {}; the round with the median ratio",
        if socket.is_some() {
            "its Unix socket"
        } else {
            "TCP"
        }
    );
    println!();
    println!(
        "| workload | caller | rectus req/s | p50 ms | p99 ms | CPU ms/req | PG CPU ms/req | RSS MB | floor req/s | floor CPU ms/req | pgbench tps | p50 ms | p99 ms | PG CPU ms/tx | pgbench tps (socket) | floor / pgbench | rectus / floor | ratio | ratio (socket) | rounds | pgbench tps, recorded | ratio to recorded |"
    );
    println!(
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    );
    for w in chosen(only) {
        for (caller, token, user, rbac) in [
            ("admin", &admin, &admin_id, ""),
            ("role", &clerk, &clerk_id, ROLE_SQL),
        ] {
            let sql = w.sql.replace("{rbac}", rbac);
            let recorded = w.recorded.map(|r| r.replace("{user}", user));
            let floor = Floor::start(database, upstream, &sql);
            // Each round measures the sides back to back, in turns of who goes first; the
            // round shown is the one with the median rectus / pgbench ratio. Sides 3 and 4,
            // pgbench over the socket and pgbench writing the records, run when there are.
            let mut runs: Vec<([Measured; 3], [Option<Measured>; 2])> =
                bench::in_turns(rounds, 5, |side| {
                    if w.recorded.is_some() {
                        settle(database);
                    }
                    Some(match side {
                        0 => http_load(base, token, w, seconds, connections, pid),
                        1 => http_load(&floor.base, token, w, seconds, connections, floor.pid()),
                        2 => pgbench(database, "127.0.0.1", &sql, seconds, connections),
                        3 => pgbench(database, socket?, &sql, seconds, connections),
                        _ => pgbench(
                            database,
                            "127.0.0.1",
                            recorded.as_deref()?,
                            seconds,
                            connections,
                        ),
                    })
                })
                .into_iter()
                .filter_map(|mut row| {
                    let extra = [row[3].take(), row[4].take()];
                    let three = [row[0].take()?, row[1].take()?, row[2].take()?];
                    Some((three, extra))
                })
                .collect();
            drop(floor);
            let ratio = |a: &Measured, b: &Measured| a.rps / b.rps.max(f64::MIN_POSITIVE);
            let each = |a: usize, b: usize| -> Vec<f64> {
                runs.iter().map(|(r, _)| ratio(&r[a], &r[b])).collect()
            };
            let median_of = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let ratios: Vec<String> = each(0, 2).iter().map(|r| format!("{r:.2}")).collect();
            let floor_ratio = median_of(each(1, 2));
            let over_floor = median_of(each(0, 1));
            // The median ratio of rectus to an extra side, "–" when it did not run.
            let extra_ratio = |side: usize| {
                let each: Vec<f64> = runs
                    .iter()
                    .filter_map(|(r, extra)| Some(ratio(&r[0], extra[side].as_ref()?)))
                    .collect();
                match each.is_empty() {
                    true => "–".to_string(),
                    false => format!("{:.2}", median_of(each)),
                }
            };
            let (socket_ratio, recorded_ratio) = (extra_ratio(0), extra_ratio(1));
            runs.sort_by(|(a, _), (b, _)| ratio(&a[0], &a[2]).total_cmp(&ratio(&b[0], &b[2])));
            let (row, extra) = &runs[runs.len() / 2];
            let [api, floor, direct] = row;
            let rate = |m: &Option<Measured>| {
                m.as_ref()
                    .map_or("–".to_string(), |m| format!("{:.0}", m.rps))
            };
            let (direct_socket, direct_recorded) = (rate(&extra[0]), rate(&extra[1]));
            let errors = |m: &Measured| match m.errors {
                0 => String::new(),
                n => format!(" ({n} errors)"),
            };
            println!(
                "| {} | {caller} | {:.0}{} | {:.2} | {:.2} | {:.3} | {:.3} | {:.0} | {:.0}{} | {:.3} | {:.0} | {:.2} | {:.2} | {:.3} | {direct_socket} | {:.2} | {:.2} | {:.2} | {socket_ratio} | {} | {direct_recorded} | {recorded_ratio} |",
                w.name,
                api.rps,
                errors(api),
                api.p50_ms,
                api.p99_ms,
                api.cpu_ms.unwrap_or(0.0),
                api.db_cpu_ms,
                api.rss_mb.unwrap_or(0.0),
                floor.rps,
                errors(floor),
                floor.cpu_ms.unwrap_or(0.0),
                direct.rps,
                direct.p50_ms,
                direct.p99_ms,
                direct.db_cpu_ms,
                floor_ratio,
                over_floor,
                ratio(api, direct),
                ratios.join(" "),
            );
        }
    }
    println!();
    println!(
        "peak resident memory of rectus over the measured runs: {:.0} MB",
        status_kb(pid, "VmHWM:") / 1024.0
    );
}
