//! Writes that commit by themselves, grouped on PostgreSQL (`Database::query_grouped`):
//! writes arriving while every line is busy share one transaction, and a group in which the
//! database refuses one write changes nothing and runs each write again alone.

use rectus::db::{Database, DbErrorKind, Row, Stmt};

use crate::support::{Kind, TestDb};

/// More writes than there are lines, all started before any can finish: the first take a
/// line each, the rest wait and go as one group.
fn writes_to_group() -> usize {
    std::thread::available_parallelism()
        .map_or(2, usize::from)
        .max(2)
        + 10
}

fn insert(code: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO tickets (code) VALUES ($1) RETURNING id, CAST(txid_current() AS text) AS tx",
    )
    .bind(code)
}

async fn all_at_once(
    db: &Database,
    codes: &[String],
) -> Vec<Result<Vec<Row>, rectus::db::DbError>> {
    futures_util::future::join_all(codes.iter().map(|code| db.query_grouped(insert(code)))).await
}

fn transaction_of(rows: &[Row]) -> String {
    assert_eq!(rows.len(), 1, "one row per insert");
    rows[0].get::<String>("tx").expect("tx")
}

async fn count(db: &Database) -> i64 {
    let rows = db
        .query(&Stmt::new("SELECT count(*) AS n FROM tickets"))
        .await
        .expect("count");
    rows[0].get::<i64>("n").expect("n")
}

/// A PostgreSQL database with a `tickets` table whose codes are unique (kept while the
/// `TestDb` lives), and a connection to it.
async fn tickets() -> (TestDb, Database) {
    let test = TestDb::new(Kind::Postgres).await;
    test.exec("CREATE TABLE tickets (id serial PRIMARY KEY, code text NOT NULL UNIQUE)")
        .await;
    let db = test.connect().await;
    (test, db)
}

#[tokio::test]
async fn writes_arriving_together_share_a_commit_and_a_refused_one_runs_each_alone() {
    let (_test, db) = tickets().await;
    let n = writes_to_group();

    let codes: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let results = all_at_once(&db, &codes).await;
    let mut transactions: Vec<String> = results
        .iter()
        .map(|r| transaction_of(r.as_ref().expect("every write succeeds")))
        .collect();
    assert_eq!(count(&db).await, n as i64);
    transactions.sort();
    let before = transactions.len();
    transactions.dedup();
    assert!(
        transactions.len() < before,
        "some writes shared a transaction: {transactions:?}"
    );

    // The same again with one write that breaks the unique key among those that wait.
    let mut codes: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
    codes[n - 2] = "a0".to_string();
    let results = all_at_once(&db, &codes).await;
    let mut transactions = Vec::new();
    for (i, result) in results.iter().enumerate() {
        if i == n - 2 {
            let error = result.as_ref().expect_err("the duplicate is refused");
            assert_eq!(error.kind(), DbErrorKind::UniqueViolation, "{error}");
        } else {
            let rows = result.as_ref().unwrap_or_else(|e| panic!("write {i}: {e}"));
            transactions.push(transaction_of(rows));
        }
    }
    assert_eq!(
        count(&db).await,
        (2 * n - 1) as i64,
        "every other write is kept"
    );
    let rows = db
        .query(&Stmt::new(
            "SELECT count(*) AS n FROM tickets WHERE code = 'a0'",
        ))
        .await
        .expect("count");
    assert_eq!(rows[0].get::<i64>("n").expect("n"), 1);
    // The refused group's writes ran again one by one, each in a transaction of its own.
    transactions.sort();
    let before = transactions.len();
    transactions.dedup();
    assert_eq!(transactions.len(), before, "{transactions:?}");
    db.close().await;
}

/// Far more writes than the lines take in one group each: a line goes on from group to
/// group while writes wait, answering each group once the next is under way. Every write
/// gets its own answer, a refused one in a later group still runs that group's others
/// alone, and nothing is written twice or lost.
#[tokio::test]
async fn a_line_going_from_group_to_group_answers_every_write_its_own() {
    let (_test, db) = tickets().await;
    db.query_grouped(Stmt::new("INSERT INTO tickets (code) VALUES ('taken')"))
        .await
        .expect("the first ticket");
    let n = 120;
    let mut codes: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let refused = [40, n - 3];
    for i in refused {
        codes[i] = "taken".to_string();
    }
    let results = futures_util::future::join_all(codes.iter().map(|code| {
        db.query_grouped(
            Stmt::new(
                "INSERT INTO tickets (code) VALUES ($1) \
                 RETURNING code, CAST(txid_current() AS text) AS tx",
            )
            .bind(code.as_str()),
        )
    }))
    .await;
    let mut transactions = Vec::new();
    for (i, (code, result)) in codes.iter().zip(&results).enumerate() {
        if refused.contains(&i) {
            let error = result.as_ref().expect_err("the duplicate is refused");
            assert_eq!(error.kind(), DbErrorKind::UniqueViolation, "{error}");
            continue;
        }
        let rows = result.as_ref().unwrap_or_else(|e| panic!("write {i}: {e}"));
        assert_eq!(rows.len(), 1, "write {i}");
        assert_eq!(&rows[0].get::<String>("code").expect("code"), code);
        transactions.push(rows[0].get::<String>("tx").expect("tx"));
    }
    assert_eq!(count(&db).await, (n - refused.len() + 1) as i64);
    transactions.sort();
    transactions.dedup();
    assert!(
        transactions.len() < n - refused.len(),
        "writes went in groups: {} transactions",
        transactions.len()
    );
    db.close().await;
}

/// A write waiting on a lock another transaction holds does not hold up the writes after
/// it: a group still running after a short while frees its line, and a group of several is
/// stopped and its writes run again apart, so one grouped with a stuck write is answered
/// too. With one line per two cores, as many stuck writes as there are cores would
/// otherwise take every line until the lock is let go.
#[tokio::test]
async fn writes_waiting_on_a_lock_free_their_line_for_the_others() {
    let (test, db) = tickets().await;
    let holder = crate::support::pg_client(&test.name).await;
    let stuck = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .max(2);
    let held: Vec<String> = (0..stuck).map(|i| format!("held{i}")).collect();
    holder.batch_execute("BEGIN").await.expect("begin");
    for code in &held {
        holder
            .execute("INSERT INTO tickets (code) VALUES ($1)", &[code])
            .await
            .expect("held insert");
    }
    // Each of these waits for the holder's transaction on the unique index.
    let waiting: Vec<_> = held
        .iter()
        .map(|code| {
            let db = db.clone();
            let stmt = insert(code);
            tokio::spawn(async move { db.query_grouped(stmt).await })
        })
        .collect();
    let watcher = crate::support::pg_client(&test.name).await;
    let blocked = || async {
        let row = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        row.get::<_, i64>(0)
    };
    let mut seen = 0;
    for _ in 0..200 {
        seen = blocked().await;
        if seen >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(seen >= 1, "a write waits on the held lock");

    let free = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        db.query_grouped(insert("free")),
    )
    .await
    .expect("a write after the stuck ones is answered while the lock is held")
    .expect("the free write");
    assert_eq!(free.len(), 1);
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "the stuck writes still wait"
    );

    holder.batch_execute("ROLLBACK").await.expect("rollback");
    for (code, w) in held.iter().zip(waiting) {
        let rows = w
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(rows.len(), 1, "{code}");
    }
    assert_eq!(count(&db).await, stuck as i64 + 1);
    db.close().await;
}

/// Once a burst has opened several connections, writes made one after another all run on
/// one backend: the pool hands out the connection given back last, where taking them in
/// turns sent each write's group to another backend, whose caches were cold for it.
#[tokio::test]
async fn writes_one_after_another_stay_on_one_backend_after_a_burst() {
    let (_test, db) = tickets().await;
    let backend_of = |rows: Vec<Row>| rows[0].get::<String>("backend").expect("backend");
    let pid = Stmt::new("SELECT CAST(pg_backend_pid() AS text) AS backend");
    let mut burst = Vec::new();
    for _ in 0..4 {
        burst.push(db.acquire().await.expect("a connection of the burst"));
    }
    let mut opened = Vec::new();
    for conn in &mut burst {
        opened.push(backend_of(conn.query(&pid).await.expect("its backend")));
    }
    opened.sort();
    opened.dedup();
    assert_eq!(opened.len(), 4, "the burst held four connections at once");
    drop(burst);

    let mut used = Vec::new();
    for i in 0..8 {
        let rows = db
            .query_grouped(
                Stmt::new(
                    "INSERT INTO tickets (code) VALUES ($1) \
                     RETURNING CAST(pg_backend_pid() AS text) AS backend",
                )
                .bind(format!("one-by-one {i}")),
            )
            .await
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
        used.push(backend_of(rows));
    }
    used.dedup();
    assert_eq!(used.len(), 1, "every write on the same backend: {used:?}");
    db.close().await;
}

/// Many creates through the API at once (on PostgreSQL they go in groups when the lines are
/// busy): each answers its own item, with its own activity and revision.
#[tokio::test]
async fn concurrent_creates_each_answer_and_record_their_own_item() {
    let app = crate::items::seeded(Kind::Postgres).await;
    let names: Vec<String> = (0..30).map(|i| format!("Concurrent {i}")).collect();
    let created = futures_util::future::join_all(names.iter().map(|name| {
        app.admin_call(
            "POST",
            "/items/orders",
            Some(serde_json::json!({"customer_name": name, "amount": "1.25", "customer": 1})),
        )
    }))
    .await;
    let mut keys = Vec::new();
    let mut name_of = std::collections::HashMap::new();
    for (name, answer) in names.iter().zip(&created) {
        assert_eq!(answer["data"]["customer_name"], name.as_str(), "{answer}");
        let key = answer["data"]["id"].as_i64().expect("a key");
        keys.push(key);
        name_of.insert(key.to_string(), name.clone());
    }
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), names.len(), "one item per create");
    let items: Vec<String> = keys.iter().map(i64::to_string).collect();
    let filter = crate::support::urlencode(
        &serde_json::json!({"collection": {"_eq": "orders"}, "item": {"_in": items}}).to_string(),
    );
    let revisions = app
        .admin_call("GET", &format!("/revisions?filter={filter}&limit=-1"), None)
        .await["data"]
        .clone();
    let revisions = revisions.as_array().expect("revisions");
    assert_eq!(revisions.len(), names.len(), "{revisions:?}");
    for revision in revisions {
        let item = revision["item"].as_str().expect("item");
        assert_eq!(revision["data"]["id"].to_string(), item, "{revision}");
        assert_eq!(
            revision["data"]["customer_name"],
            name_of[item].as_str(),
            "{revision}"
        );
        let activity = app
            .admin_call("GET", &format!("/activity/{}", revision["activity"]), None)
            .await["data"]
            .clone();
        assert_eq!(activity["item"], item, "{activity}");
        assert_eq!(activity["action"], "create", "{activity}");
    }
}
