//! The floor of the items API benchmark: the least an HTTP service in front of PostgreSQL
//! can do per request — read the request, run ONE prepared statement on a pooled
//! connection, answer its text as the body. No routing, authentication, permissions,
//! planning or validation. loadbench runs it with the pgbench side's SQL, on the runtime
//! rectus uses (one worker thread on two cores, tokio's current-thread scheduler), so
//! `rectus / floor` is what rectus's own work costs and `floor / pgbench` what any HTTP hop
//! in front of the database costs on this machine.
//!
//! ```text
//! httpfloor PORT DATABASE SQL_FILE [HOST]
//! ```
//!
//! HOST is where PostgreSQL is reached: 127.0.0.1 (the default) or its socket directory.
//!
//! The SQL is a pgbench script: `\set` lines are dropped and `:cid` becomes a parameter
//! that cycles through 1..=10000, as pgbench's `random(1, 10000)` spreads the creates.
//!
//! `FLOOR_SHARED=N` (an experiment, not what loadbench measures by default): instead of a
//! pooled connection per request, every request's statement goes over one of N connections
//! shared by all requests, which tokio-postgres pipelines — several requests' statements
//! in one send, PostgreSQL reading them in one receive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

struct Floor {
    pool: Pool,
    /// `FLOOR_SHARED` connections with the statement prepared on each; empty: the pool.
    shared: Vec<(tokio_postgres::Client, tokio_postgres::Statement)>,
    sql: String,
    takes_customer: bool,
    next: AtomicU32,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (port, database, sql_file, host) = match args.as_slice() {
        [_, port, database, sql_file] => (port, database, sql_file, "127.0.0.1"),
        [_, port, database, sql_file, host] => (port, database, sql_file, host.as_str()),
        _ => {
            eprintln!("usage: httpfloor PORT DATABASE SQL_FILE [HOST]");
            std::process::exit(2);
        }
    };
    let script = std::fs::read_to_string(sql_file).expect("SQL file");
    let sql: String = script
        .lines()
        .filter(|l| !l.trim_start().starts_with("\\set"))
        .collect::<Vec<_>>()
        .join("\n");
    let takes_customer = sql.contains(":cid");
    let sql = sql
        .replace(":cid", "$1::int")
        .trim_end_matches(';')
        .to_string();
    let workers = rectus::runtime::worker_threads().expect("TOKIO_WORKER_THREADS");
    let runtime = rectus::runtime::builder(workers)
        .enable_all()
        .build()
        .expect("runtime");
    let port: u16 = port.parse().expect("port");
    runtime.block_on(serve(port, database, host, sql, takes_customer));
}

async fn serve(port: u16, database: &str, host: &str, sql: String, takes_customer: bool) {
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(5432)
        .user("postgres")
        .dbname(database);
    let manager = Manager::from_config(
        config.clone(),
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(10).build().expect("pool");
    let shared_connections: usize = std::env::var("FLOOR_SHARED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut shared = Vec::with_capacity(shared_connections);
    for _ in 0..shared_connections {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let statement = client.prepare(&sql).await.expect("prepare");
        shared.push((client, statement));
    }
    let floor = Arc::new(Floor {
        pool,
        shared,
        sql,
        takes_customer,
        next: AtomicU32::new(0),
    });
    let app = axum::Router::new().fallback(answer).with_state(floor);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

async fn answer(State(floor): State<Arc<Floor>>, _body: Bytes) -> Response {
    match run(&floor).await {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn run(floor: &Floor) -> Result<String, String> {
    let turn = floor.next.fetch_add(1, Ordering::Relaxed) as usize;
    let customer = (turn % 10_000 + 1) as i32;
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = match floor.takes_customer {
        true => vec![&customer],
        false => vec![],
    };
    let row = match floor.shared.get(turn % floor.shared.len().max(1)) {
        Some((client, statement)) => client.query_one(statement, &params).await,
        None => {
            let client = floor.pool.get().await.map_err(|e| e.to_string())?;
            let statement = client
                .prepare_cached(&floor.sql)
                .await
                .map_err(|e| e.to_string())?;
            client.query_one(&statement, &params).await
        }
    }
    .map_err(|e| e.to_string())?;
    // The statement's one column is json, whose binary form is its text: the body as it
    // came, not parsed, as rectus answers the database's JSON.
    let Json(text) = row.try_get(0).map_err(|e| e.to_string())?;
    Ok(text)
}

struct Json(String);

impl<'a> tokio_postgres::types::FromSql<'a> for Json {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Json(std::str::from_utf8(raw)?.to_owned()))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::JSON
    }
}
