//! The PostgreSQL wire endpoint with the PostgreSQL tools themselves: psql over TLS and
//! describing only what a restricted user may see, pgbench (simple and prepared, admin and
//! restricted) with cancel requests, a full session pool, and a database lost under open
//! sessions.

use std::time::Duration;

use serde_json::json;
use tokio_postgres::{Client, NoTls};

use crate::clerk::{clerk_app_via_relay, restricted_app_with};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, App, Kind, PG_PORT};
use crate::wire_pg::{SETUP, connect, refused, run_psql, simple, sqlstate, start};

#[tokio::test(flavor = "multi_thread")]
async fn psql_over_tls() {
    let app = App::start_with(Kind::Postgres, Some(SETUP), &[]).await;
    let psql = |sslmode: &str, sql: &str| {
        run_psql(&app, ADMIN_EMAIL, ADMIN_PASSWORD, sslmode, &["-t"], sql)
    };
    let out = psql("require", "SELECT count(*) FROM orders");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    let out = psql("disable", "SELECT 1");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("encrypted connection"));
}

/// psql's catalog commands for a restricted user read virtual catalogs: only the tables and
/// columns the user may read.
#[tokio::test(flavor = "multi_thread")]
async fn psql_describes_only_what_the_user_may_see() {
    let (app, _, email) = start().await;
    // Check constraints and foreign keys on readable columns show; on a hidden one
    // (`secret`, and `backup_customer`, unknown to rectus's schema) they do not.
    crate::wire_pg::direct(&app)
        .await
        .batch_execute(
            "ALTER TABLE orders ADD CONSTRAINT orders_amount_positive CHECK (amount >= 0);
             ALTER TABLE orders ADD CONSTRAINT orders_secret_short CHECK (length(secret) < 40);
             ALTER TABLE orders ADD COLUMN backup_customer integer
                 CONSTRAINT orders_backup_customer_fkey REFERENCES customers(id)",
        )
        .await
        .expect("constraints");
    // Unaligned output with footers (\d prints indexes in its footer).
    let psql = |command: &str| {
        let out = run_psql(&app, &email, "pw", "disable", &[], command);
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tables = psql("\\dt");
    assert!(tables.contains("|orders|table|"), "{tables}");
    assert!(tables.contains("|customers|table|"), "{tables}");
    assert!(!tables.contains("notes"), "{tables}");
    let orders = psql("\\d orders");
    for column in [
        "id|integer",
        "status|character varying(20)",
        "amount|numeric(10,2)",
    ] {
        assert!(orders.contains(column), "{column}: {orders}");
    }
    assert!(!orders.contains("secret"), "{orders}");
    // Indexes and defaults of readable columns show; an index on a hidden column does not.
    assert!(
        orders.contains("\"orders_pkey\" PRIMARY KEY, btree (id)"),
        "{orders}"
    );
    assert!(
        orders.contains("\"orders_status_index\" btree (status)"),
        "{orders}"
    );
    assert!(
        orders.contains("nextval('orders_id_seq'::regclass)"),
        "{orders}"
    );
    assert!(
        orders.contains("\"orders_amount_positive\" CHECK (amount >= 0::numeric)"),
        "{orders}"
    );
    assert!(!orders.contains("orders_secret_short"), "{orders}");
    let foreign =
        psql("SELECT conname FROM pg_catalog.pg_constraint WHERE contype = 'f' ORDER BY conname");
    assert!(foreign.contains("orders_customer_fkey"), "{foreign}");
    assert!(
        !foreign.contains("orders_backup_customer_fkey"),
        "{foreign}"
    );
    let notes = run_psql(&app, &email, "pw", "disable", &[], "\\d notes");
    assert!(
        String::from_utf8_lossy(&notes.stderr)
            .contains("Did not find any relation named \"notes\"")
    );
    let databases = psql("\\l");
    assert!(databases.contains(&app.db.name), "{databases}");
    assert!(databases.contains("(1 row)"), "{databases}");
}

/// pgbench through the endpoint, as an admin and as a restricted user, and a cancel request
/// reaching the right backend.
#[tokio::test(flavor = "multi_thread")]
async fn pgbench_and_cancel_through_the_endpoint() {
    let (over_tcp, over_socket) = pgbench_and_cancel(&[]).await;
    assert!(over_tcp > 0 && over_socket == 0, "{over_tcp} {over_socket}");
}

/// The same with rectus reaching PostgreSQL over its Unix socket (`DB_HOST` a directory, as
/// libpq reads it): the API's pool, the endpoint's sessions and forwarded cancels.
#[tokio::test(flavor = "multi_thread")]
async fn pgbench_and_cancel_with_the_database_on_its_unix_socket() {
    let client = crate::support::pg_client("postgres").await;
    let directories: String = client
        .query_one("SHOW unix_socket_directories", &[])
        .await
        .expect("unix_socket_directories")
        .get(0);
    let directory = directories
        .split(',')
        .map(str::trim)
        .find(|d| d.starts_with('/'))
        .expect("PostgreSQL listens on a Unix socket")
        .to_string();
    let (over_tcp, over_socket) = pgbench_and_cancel(&[("DB_HOST", directory.as_str())]).await;
    assert!(over_tcp == 0 && over_socket > 0, "{over_tcp} {over_socket}");
}

/// Runs pgbench and a cancel through the endpoint; answers how many of rectus's database
/// sessions (the API's and the endpoint's) were then connected over TCP and over a socket.
async fn pgbench_and_cancel(extra_env: &[(&str, &str)]) -> (i64, i64) {
    let setup = "
CREATE TABLE pgbench_branches (bid integer PRIMARY KEY, bbalance integer, filler char(88));
CREATE TABLE pgbench_accounts (aid integer PRIMARY KEY, bid integer, abalance integer, filler char(84));
INSERT INTO pgbench_branches VALUES (1, 0, '');
INSERT INTO pgbench_accounts SELECT i, 1, 0, '' FROM generate_series(1, 100000) i
";
    let (app, _) = restricted_app_with(
        Kind::Postgres,
        setup,
        "Bencher",
        &[
            json!({"collection": "pgbench_accounts", "action": "read", "fields": ["*"], "permissions": {"aid": {"_lte": 50000}}}),
            json!({"collection": "pgbench_branches", "action": "read", "fields": ["*"], "permissions": {}}),
        ],
        extra_env,
    )
    .await;
    let port = app.server.pg_port().to_string();
    for (user, password, mode) in [
        (ADMIN_EMAIL, ADMIN_PASSWORD, "simple"),
        ("bencher@example.com", "pw", "simple"),
        ("bencher@example.com", "pw", "prepared"),
    ] {
        let out = std::process::Command::new("pgbench")
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", "disable")
            .args([
                "-n",
                "-S",
                "-c",
                "2",
                "-t",
                "50",
                "-M",
                mode,
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                user,
                &app.db.name,
            ])
            .output()
            .expect("pgbench");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{user} {mode}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("number of transactions actually processed: 100/100"),
            "{stdout}"
        );
    }
    // A cancel request through the endpoint stops the admin's running query.
    let wire = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("admin login");
    let token = wire.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    // 57014 (query_canceled) is what PostgreSQL answers a cancelled query with.
    let e = wire.simple_query("SELECT pg_sleep(30)").await.unwrap_err();
    assert_eq!(sqlstate(&e).0, "57014", "{e}");
    canceller.await.unwrap().unwrap();
    let row = crate::support::pg_client("postgres")
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE client_addr IS NOT NULL), \
             count(*) FILTER (WHERE client_addr IS NULL) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'rectus'",
            &[&app.db.name],
        )
        .await
        .expect("pg_stat_activity");
    (row.get(0), row.get(1))
}

/// With every upstream connection taken, a new session is refused after
/// `PG_PROXY_POOL_TIMEOUT` with PostgreSQL's "too many clients" error, and gets in once one
/// is free again.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_pool_refuses_new_sessions() {
    let app = App::start_with(
        Kind::Postgres,
        Some(SETUP),
        &[
            ("PG_PROXY_ALLOW_INSECURE_PASSWORD", "true"),
            ("PG_PROXY_POOL_SIZE", "1"),
            ("PG_PROXY_POOL_TIMEOUT", "200"),
        ],
    )
    .await;
    let first = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("first session");
    let e = refused(connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await);
    assert_eq!(
        sqlstate(&e),
        (
            "53300".to_string(),
            "sorry, too many clients already".to_string()
        )
    );
    drop(first);
    let mut second = None;
    for _ in 0..50 {
        if let Ok(client) = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await {
            second = Some(client);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let second = second.expect("a session once the first one ended");
    assert_eq!(
        simple(&second, "SELECT 1").await.unwrap().1,
        vec![vec![Some("1".into())]]
    );
}

/// A database lost under open sessions ends each of them with an error the client hears
/// (`08006`), not a silently closed socket; a login while it is gone is refused the same
/// way; neither error names the upstream's address or user; once the database is back, a
/// new session works.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_database_is_an_error_the_client_hears() {
    let (app, relay) = clerk_app_via_relay(Kind::Postgres, PG_PORT, (SETUP, ""), &[]).await;
    let upstream_port = relay.port().to_string();
    let names_the_upstream = |message: &str| {
        message.contains(&upstream_port)
            || message.contains("127.0.0.1")
            || message.contains("postgres")
    };
    let mut sessions = Vec::new();
    for (user, password) in [
        (ADMIN_EMAIL, ADMIN_PASSWORD),
        ("clerk@example.com", "clerk-token"),
    ] {
        let config = format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={} sslmode=disable",
            app.server.pg_port(),
            app.db.name
        );
        let (client, connection) = tokio_postgres::connect(&config, NoTls)
            .await
            .expect("login");
        let ended = tokio::spawn(connection);
        let (_, rows) = simple(&client, "SELECT count(*) FROM orders")
            .await
            .expect("a read before the database is lost");
        assert_eq!(rows.len(), 1, "{user}");
        sessions.push((user, client, ended));
    }

    relay.cut();
    for (user, client, ended) in sessions {
        let ended = tokio::time::timeout(Duration::from_secs(20), ended)
            .await
            .unwrap_or_else(|_| panic!("{user}: the session did not end"))
            .expect("the connection task");
        let e = ended.expect_err("the session ends with an error");
        let (code, message) = sqlstate(&e);
        assert_eq!(code, "08006", "{user}: {message}");
        assert!(!names_the_upstream(&message), "{user}: {message}");
        assert!(client.simple_query("SELECT 1").await.is_err(), "{user}");
    }
    let e = refused(connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await);
    let (code, message) = sqlstate(&e);
    assert_eq!(code, "08006", "{message}");
    assert!(!names_the_upstream(&message), "{message}");

    relay.restore();
    let client = connect(&app, "clerk@example.com", "clerk-token")
        .await
        .expect("a login once the database is back");
    let (_, rows) = simple(&client, "SELECT count(*) FROM orders")
        .await
        .expect("a read once the database is back");
    assert_eq!(rows, vec![vec![Some("2".to_string())]]);
}

/// A pooled upstream connection the database closed while it was idle (a restart,
/// `idle_session_timeout`, a terminated backend) is not handed to the next session: that
/// session gets a new connection and works.
#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_connection_the_database_closed_is_not_reused() {
    let app = App::start_with(
        Kind::Postgres,
        Some(SETUP),
        &[
            ("PG_PROXY_ALLOW_INSECURE_PASSWORD", "true"),
            ("PG_PROXY_POOL_SIZE", "1"),
            // The admin's reads on its own connection, so it reads its own backend's pid.
            ("PG_PROXY_SHARED_READS", "0"),
        ],
    )
    .await;
    let pid = |client: Client| async move {
        let (_, rows) = simple(&client, "SELECT pg_backend_pid()")
            .await
            .expect("pid");
        rows[0][0].clone().expect("a pid")
    };
    let first = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("login");
    let pooled = pid(first).await;
    // The session ended; its connection is back in the pool once it was reset.
    let direct = crate::wire_pg::direct(&app).await;
    let idle_in_pool = "SELECT count(*) FROM pg_stat_activity \
        WHERE pid = $1::text::int AND state = 'idle' AND query = 'DISCARD ALL'";
    let mut waited = 0;
    while direct
        .query_one(idle_in_pool, &[&pooled])
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(waited < 200, "the connection never went back to the pool");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    direct
        .query_one("SELECT pg_terminate_backend($1::text::int)", &[&pooled])
        .await
        .expect("terminate the pooled backend");
    let gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::text::int";
    while direct
        .query_one(gone, &[&pooled])
        .await
        .unwrap()
        .get::<_, i64>(0)
        != 0
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("a login after the pooled backend ended");
    let (_, rows) = simple(&second, "SELECT count(*) FROM orders")
        .await
        .expect("a read on a new connection");
    assert_eq!(rows, vec![vec![Some("4".to_string())]]);
    assert_ne!(pid(second).await, pooled);
}
