//! `rectus serve` as a user runs it: first start on the embedded default, the `/server`
//! routes, Directus's errors for unknown routes, graceful shutdown with a request in flight,
//! and surviving the loss of the database connection.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::relay::Relay;
use crate::support::{Kind, MYSQL_PORT, PG_PORT, Server, TestDb, http};

#[tokio::test(flavor = "multi_thread")]
async fn first_start_with_nothing_configured_bootstraps_sqlite_and_prints_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let printed = server.stdout.join("\n");
    assert!(printed.contains("e-mail:   admin@example.com"), "{printed}");
    let password = server
        .stdout
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a generated password is printed");
    assert_eq!(password.len(), 24);
    assert!(
        printed.contains(&format!("URL:      {}", server.base)),
        "{printed}"
    );
    assert!(dir.path().join("data/rectus.db").is_file());

    let client = http();
    let pong = client.get(server.url("/server/ping")).send().await.unwrap();
    assert_eq!(pong.status(), 200);
    assert!(pong.headers().contains_key("x-request-id"));
    assert_eq!(pong.text().await.unwrap(), "pong");

    let health = client
        .get(server.url("/server/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["content-type"], "application/health+json");
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );

    let info: Value = client
        .get(server.url("/server/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["data"]["project"]["project_name"], "Directus");
    assert_eq!(info["data"]["project"]["public_registration"], false);

    for (method, path) in [
        ("GET", "/nowhere"),
        ("POST", "/server/ping"),
        ("DELETE", "/server/health"),
    ] {
        let response = client
            .request(method.parse().unwrap(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"errors": [{
                "message": format!("Route {path} doesn't exist."),
                "extensions": {"code": "ROUTE_NOT_FOUND"}
            }]})
        );
    }

    // A second start finds everything in place: no new admin.
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(20)).success());
    let again = Server::start(dir.path(), &[]);
    assert!(
        !again.stdout.join("\n").contains("admin user created"),
        "{:?}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_cleanly() {
    let db = TestDb::new(Kind::Postgres).await;
    let relay = Relay::start(([127, 0, 0, 1], PG_PORT).into()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &db.via("127.0.0.1", relay.port()).env());
    let client = http();
    let warm = client
        .get(server.url("/server/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);

    // The database now takes 600 ms per message: the health check is in flight for over a
    // second when SIGTERM arrives.
    relay.set_delay(Duration::from_millis(600));
    let url = server.url("/server/health");
    let in_flight = tokio::spawn(async move {
        let started = Instant::now();
        let response = http().get(url).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    let (status, body, elapsed) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body["status"], "warn",
        "a slow database is a warning: {body}"
    );
    assert!(elapsed > Duration::from_millis(1000), "{elapsed:?}");

    let code = tokio::task::spawn_blocking(move || server.wait(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(code.success(), "exit status {code:?}");
}

async fn health_status(client: &reqwest::Client, server: &Server) -> (u16, String) {
    match client.get(server.url("/server/health")).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body["status"].as_str().unwrap_or("").to_string())
        }
        Err(e) => panic!("rectus itself must keep answering: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn losing_the_database_reports_it_down_and_the_pool_reconnects() {
    for (kind, port) in [(Kind::Postgres, PG_PORT), (Kind::MySql, MYSQL_PORT)] {
        let db = TestDb::new(kind).await;
        let relay = Relay::start(([127, 0, 0, 1], port).into()).await;
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &db.via("127.0.0.1", relay.port()).env());
        let client = http();
        assert_eq!(
            health_status(&client, &server).await,
            (200, "ok".into()),
            "{kind:?}"
        );

        relay.cut();
        assert_eq!(
            health_status(&client, &server).await,
            (503, "error".into()),
            "{kind:?}: a lost database is reported"
        );
        // /server/ping does not need the database.
        let pong = client.get(server.url("/server/ping")).send().await.unwrap();
        assert_eq!(pong.status(), 200);

        relay.restore();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = health_status(&client, &server).await;
            if status == 200 {
                assert_eq!(body, "ok");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{kind:?}: the pool did not reconnect"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let info = client.get(server.url("/server/info")).send().await.unwrap();
        assert_eq!(info.status(), 200, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_request_id_of_each_request() {
    let db = TestDb::new(Kind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = db.env();
    env.push(("LOG_STYLE".into(), "json".into()));
    env.push(("LOG_LEVEL".into(), "info".into()));
    let server = Server::start(dir.path(), &env);
    let response = http().get(server.url("/server/ping")).send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = server.stderr();
        let lines: Vec<Value> = logs
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let logged = lines.iter().find(|l| {
            l["span"]["request_id"] == id.as_str() || l["spans"][0]["request_id"] == id.as_str()
        });
        if let Some(line) = logged {
            assert_eq!(line["status"], 200, "{line}");
            assert_eq!(line["span"]["path"], "/server/ping", "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with request id {id}: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
