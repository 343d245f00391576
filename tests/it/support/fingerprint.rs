//! Fingerprints of tables — their DDL as the database prints it and a digest of their rows —
//! read with each database's own client, independent of rectus's code. Two equal
//! fingerprints mean the tables were left byte-for-byte as they were.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;

use super::{Kind, TestDb, mysql_conn, pg_client};

/// Table name -> DDL and row digest, for every table and view of the database.
pub async fn fingerprint(db: &TestDb) -> BTreeMap<String, String> {
    match db.kind {
        Kind::Postgres => postgres(&db.name).await,
        Kind::MySql => mysql(&db.name).await,
        Kind::Sqlite => sqlite(&db.sqlite_path()),
    }
}

async fn postgres(database: &str) -> BTreeMap<String, String> {
    let client = pg_client(database).await;
    let mut out = BTreeMap::new();
    let tables = client
        .query(
            "SELECT c.relname::text, c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') ORDER BY 1",
            &[],
        )
        .await
        .expect("tables");
    for row in tables {
        let name: String = row.get(0);
        let kind: String = row.get(1);
        let mut print = String::new();
        for r in client
            .query(
                "SELECT column_name::text, data_type::text, coalesce(character_maximum_length, -1)::int, \
                 is_nullable::text, coalesce(column_default, '')::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
                &[&name],
            )
            .await
            .expect("columns")
        {
            let (c, t, l, n, d): (String, String, i32, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            print.push_str(&format!("col {c} {t}({l}) {n} {d}\n"));
        }
        for r in client
            .query(
                "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE conrelid = ('public.' || quote_ident($1))::regclass ORDER BY 1",
                &[&name],
            )
            .await
            .expect("constraints")
        {
            let (c, d): (String, String) = (r.get(0), r.get(1));
            print.push_str(&format!("con {c} {d}\n"));
        }
        for r in client
            .query(
                "SELECT indexdef::text FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1 ORDER BY 1",
                &[&name],
            )
            .await
            .expect("indexes")
        {
            let d: String = r.get(0);
            print.push_str(&format!("idx {d}\n"));
        }
        if kind == "v" {
            let r = client
                .query_one(
                    "SELECT pg_get_viewdef(('public.' || quote_ident($1))::regclass)",
                    &[&name],
                )
                .await
                .expect("view");
            let d: String = r.get(0);
            print.push_str(&format!("view {d}\n"));
        }
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let r = client
            .query_one(
                &format!(
                    "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {quoted} t"
                ),
                &[],
            )
            .await
            .expect("rows");
        let digest: String = r.get(0);
        print.push_str(&format!("rows {digest}\n"));
        out.insert(name, print);
    }
    out
}

async fn mysql(database: &str) -> BTreeMap<String, String> {
    let mut conn = mysql_conn(Some(database)).await;
    let mut out = BTreeMap::new();
    let tables: Vec<(String, String)> = conn.query("SHOW FULL TABLES").await.expect("tables");
    for (name, kind) in tables {
        let quoted = format!("`{}`", name.replace('`', "``"));
        let mut print = String::new();
        if kind == "VIEW" {
            let row: Option<(String, String, String, String)> = conn
                .query_first(format!("SHOW CREATE VIEW {quoted}"))
                .await
                .expect("view");
            print.push_str(&row.map(|r| r.1).unwrap_or_default());
        } else {
            let row: Option<(String, String)> = conn
                .query_first(format!("SHOW CREATE TABLE {quoted}"))
                .await
                .expect("ddl");
            print.push_str(&row.map(|r| r.1).unwrap_or_default());
            let sum: Option<(String, Option<u64>)> = conn
                .query_first(format!("CHECKSUM TABLE {quoted} EXTENDED"))
                .await
                .expect("checksum");
            print.push_str(&format!("\nrows {:?}", sum.and_then(|s| s.1)));
        }
        out.insert(name, print);
    }
    let _ = conn.disconnect().await;
    out
}

fn sqlite(path: &std::path::Path) -> BTreeMap<String, String> {
    let conn = rusqlite::Connection::open(path).expect("open sqlite");
    let mut out = BTreeMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT name, coalesce(sql, '') FROM sqlite_master \
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .expect("tables");
    let tables: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("tables");
    for (name, sql) in tables {
        let mut print = sql;
        let index_sql: Vec<String> = conn
            .prepare("SELECT coalesce(sql, name) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 ORDER BY name")
            .expect("indexes")
            .query_map([&name], |r| r.get(0))
            .expect("indexes")
            .collect::<Result<_, _>>()
            .expect("indexes");
        for s in index_sql {
            print.push_str(&format!("\nidx {s}"));
        }
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let mut rows_stmt = conn
            .prepare(&format!("SELECT * FROM {quoted}"))
            .expect("rows");
        let width = rows_stmt.column_count();
        let mut rows: Vec<String> = rows_stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..width)
                    .map(|i| format!("{:?}", r.get_ref(i).map(|v| v.to_owned())))
                    .collect();
                Ok(cells.join("|"))
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows.sort();
        print.push_str(&format!("\nrows {}", rows.join("\n")));
        out.insert(name, print);
    }
    out
}
