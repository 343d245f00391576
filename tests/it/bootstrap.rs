//! `rectus bootstrap`, `rectus database migrate` and `rectus users`, run as a user runs them,
//! checked with each database's own client.

use std::collections::BTreeMap;
use std::process::Command;

use rectus::auth::password::verify_password;

use crate::support::fingerprint::fingerprint;
use crate::support::{ALL_KINDS, Kind, PG_HOST, PG_PORT, TestDb, pg_client, run_rectus};

const DIRECTUS_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/directus11-postgres.sql"
);

/// Loads the dump of a database Directus 11 bootstrapped, with psql.
pub fn load_directus_fixture(db: &TestDb) {
    assert_eq!(db.kind, Kind::Postgres);
    let status = Command::new("psql")
        .args([
            "-h",
            PG_HOST,
            "-p",
            &PG_PORT.to_string(),
            "-U",
            "postgres",
            "-d",
            &db.name,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            DIRECTUS_FIXTURE,
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("psql");
    assert!(status.success(), "loading the Directus fixture failed");
}

fn user_tables(print: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    print
        .iter()
        .filter(|(name, _)| !name.starts_with("directus_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn bootstrap(db: &TestDb) -> crate::support::Output {
    let dir = tempfile::tempdir().unwrap();
    let out = run_rectus(dir.path(), &db.env(), &["bootstrap"]);
    assert!(out.status.success(), "bootstrap failed: {}", out.stderr);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_twice_changes_nothing_the_second_time() {
    for kind in ALL_KINDS {
        let db = TestDb::new(kind).await;
        let first = bootstrap(&db);
        assert!(
            first.stdout.contains("System tables created."),
            "{kind:?}: {}",
            first.stdout
        );
        assert!(
            first.stdout.contains("e-mail:   admin@example.com"),
            "{}",
            first.stdout
        );
        let after_first = fingerprint(&db).await;
        assert!(
            after_first.len() >= 29,
            "{kind:?}: {:?}",
            after_first.keys()
        );

        let second = bootstrap(&db);
        assert!(
            second.stdout.contains("System tables are up to date."),
            "{}",
            second.stdout
        );
        assert!(
            !second.stdout.contains("admin user created"),
            "{}",
            second.stdout
        );
        assert_eq!(
            fingerprint(&db).await,
            after_first,
            "{kind:?}: second bootstrap changed the database"
        );

        let migrate = run_rectus(
            tempfile::tempdir().unwrap().path(),
            &db.env(),
            &["database", "migrate"],
        );
        assert!(migrate.status.success(), "{}", migrate.stderr);
        assert_eq!(migrate.stdout.trim(), "No pending migrations.");
        assert_eq!(fingerprint(&db).await, after_first);
    }
}

const USER_TABLES: &[(Kind, &str)] = &[
    (
        Kind::Postgres,
        "CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price numeric(8,2), meta jsonb);\n\
         INSERT INTO products (name, price, meta) VALUES ('tea', 3.50, '{\"origin\": \"assam\"}'), ('cup', 12.00, NULL);\n\
         CREATE TABLE notes (body text);\n\
         INSERT INTO notes VALUES ('no primary key here');\n\
         CREATE VIEW cheap AS SELECT name FROM products WHERE price < 5",
    ),
    (
        Kind::MySql,
        "CREATE TABLE products (id int AUTO_INCREMENT PRIMARY KEY, name text NOT NULL, price decimal(8,2), meta json);\n\
         INSERT INTO products (name, price, meta) VALUES ('tea', 3.50, '{\"origin\": \"assam\"}'), ('cup', 12.00, NULL);\n\
         CREATE TABLE notes (body text);\n\
         INSERT INTO notes VALUES ('no primary key here');\n\
         CREATE VIEW cheap AS SELECT name FROM products WHERE price < 5",
    ),
    (
        Kind::Sqlite,
        "CREATE TABLE products (id integer PRIMARY KEY AUTOINCREMENT, name text NOT NULL, price decimal(8,2), meta json);\n\
         INSERT INTO products (name, price, meta) VALUES ('tea', 3.50, '{\"origin\": \"assam\"}'), ('cup', 12.00, NULL);\n\
         CREATE TABLE notes (body text);\n\
         INSERT INTO notes VALUES ('no primary key here');\n\
         CREATE VIEW cheap AS SELECT name FROM products WHERE price < 5",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_beside_user_tables_leaves_them_byte_for_byte() {
    for (kind, ddl) in USER_TABLES {
        let db = TestDb::new(*kind).await;
        db.exec(ddl).await;
        let before = fingerprint(&db).await;
        assert_eq!(before.len(), 3, "{kind:?}: {:?}", before.keys());
        bootstrap(&db);
        let after = fingerprint(&db).await;
        assert!(after.contains_key("directus_users"));
        assert_eq!(
            user_tables(&after),
            before,
            "{kind:?}: bootstrap touched a user table"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_directus_11_set_up_is_used_as_is() {
    let db = TestDb::new(Kind::Postgres).await;
    load_directus_fixture(&db);
    let before = fingerprint(&db).await;
    let out = bootstrap(&db);
    assert_eq!(out.stdout.trim(), "System tables are up to date.");
    assert_eq!(
        fingerprint(&db).await,
        before,
        "bootstrap changed a Directus database"
    );

    // Directus's own password hash for its admin verifies here.
    let client = pg_client(&db.name).await;
    let row = client
        .query_one(
            "SELECT password FROM directus_users WHERE email = 'admin@example.com'",
            &[],
        )
        .await
        .unwrap();
    let hash: String = row.get(0);
    assert!(verify_password(&hash, "d1r3ctu5"));
}

#[tokio::test(flavor = "multi_thread")]
async fn system_tables_on_postgres_match_the_ones_directus_11_creates() {
    let directus = TestDb::new(Kind::Postgres).await;
    load_directus_fixture(&directus);
    let ours = TestDb::new(Kind::Postgres).await;
    bootstrap(&ours);
    let ddl_only = |p: BTreeMap<String, String>| -> BTreeMap<String, String> {
        p.into_iter()
            .map(|(k, v)| {
                let ddl: Vec<&str> = v.lines().filter(|l| !l.starts_with("rows ")).collect();
                (k, ddl.join("\n"))
            })
            .collect()
    };
    let theirs = ddl_only(fingerprint(&directus).await);
    let mine = ddl_only(fingerprint(&ours).await);
    assert_eq!(theirs.len(), 29);
    for (table, ddl) in &theirs {
        assert_eq!(
            mine.get(table),
            Some(ddl),
            "table {table} differs from Directus 11"
        );
    }
    assert_eq!(mine.len(), theirs.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn databases_rectus_cannot_serve_are_refused_and_left_alone() {
    let old = TestDb::new(Kind::Postgres).await;
    old.exec(
        "CREATE TABLE directus_migrations (version varchar(255) PRIMARY KEY, name varchar(255) NOT NULL, timestamp timestamptz DEFAULT now());\n\
         INSERT INTO directus_migrations (version, name) VALUES ('20210225A', 'Add Relations Sort Field')",
    )
    .await;
    let before = fingerprint(&old).await;
    let out = run_rectus(
        tempfile::tempdir().unwrap().path(),
        &old.env(),
        &["bootstrap"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        out.stderr.trim(),
        "error: this database was set up by a Directus older than 11 (last migration 20210225A): upgrade it with Directus 11 first"
    );
    assert_eq!(fingerprint(&old).await, before);

    let stray = TestDb::new(Kind::Sqlite).await;
    stray
        .exec("CREATE TABLE directus_users (id integer PRIMARY KEY, name text);\nINSERT INTO directus_users (name) VALUES ('mine')")
        .await;
    let before = fingerprint(&stray).await;
    let out = run_rectus(
        tempfile::tempdir().unwrap().path(),
        &stray.env(),
        &["bootstrap"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("directus_users"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);
    assert_eq!(fingerprint(&stray).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_created_and_their_passwords_set_from_the_command_line() {
    let db = TestDb::new(Kind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let env = db.env();

    let early = run_rectus(
        dir.path(),
        &env,
        &["users", "create", "--email", "a@b.c", "--password", "x"],
    );
    assert_eq!(early.status.code(), Some(1));
    assert_eq!(
        early.stderr.trim(),
        "error: the database has no system tables yet: run `rectus bootstrap` first"
    );

    bootstrap(&db);
    let created = run_rectus(
        dir.path(),
        &env,
        &[
            "users",
            "create",
            "--email",
            "Editor@Example.com",
            "--password",
            "s3cret!",
            "--role",
            "Administrator",
        ],
    );
    assert!(created.status.success(), "{}", created.stderr);
    let id = created.stdout.trim().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");

    let read = |email: &str| -> Option<(String, String, Option<String>)> {
        let conn = rusqlite::Connection::open(db.sqlite_path()).unwrap();
        conn.query_row(
            "SELECT id, password, role FROM directus_users WHERE email = ?1",
            [email],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok()
    };
    let (stored_id, hash, role) = read("editor@example.com").expect("stored lower-cased");
    assert_eq!(stored_id, id);
    assert!(verify_password(&hash, "s3cret!"));
    assert!(role.is_some());

    let again = run_rectus(
        dir.path(),
        &env,
        &[
            "users",
            "create",
            "--email",
            "editor@example.com",
            "--password",
            "other",
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        again.stderr.trim(),
        "error: a user with the e-mail editor@example.com already exists"
    );

    let no_role = run_rectus(
        dir.path(),
        &env,
        &[
            "users",
            "create",
            "--email",
            "x@y.z",
            "--password",
            "p",
            "--role",
            "Ghosts",
        ],
    );
    assert_eq!(no_role.status.code(), Some(1));
    assert_eq!(no_role.stderr.trim(), "error: role Ghosts does not exist");
    assert!(
        read("x@y.z").is_none(),
        "nothing written on a failed create"
    );

    let passwd = run_rectus(
        dir.path(),
        &env,
        &[
            "users",
            "passwd",
            "--email",
            "EDITOR@example.com",
            "--password",
            "n3w",
        ],
    );
    assert!(passwd.status.success(), "{}", passwd.stderr);
    let (_, hash, _) = read("editor@example.com").unwrap();
    assert!(verify_password(&hash, "n3w") && !verify_password(&hash, "s3cret!"));

    let unknown = run_rectus(
        dir.path(),
        &env,
        &[
            "users",
            "passwd",
            "--email",
            "nobody@example.com",
            "--password",
            "n3w",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        unknown.stderr.trim(),
        "error: no user has the e-mail nobody@example.com"
    );
}
