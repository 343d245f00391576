//! The official Directus SDK against rectus: `tests/sdk/smoke.mjs`, run by Node.js with the
//! SDK version `tests/sdk/package-lock.json` pins, logs in, makes a data model, writes and
//! reads items with the query language and checks the errors, GraphQL, revisions, a role
//! with a policy made through their relations (as the Studio makes them) and a user of it
//! reading, a static token and logout as the SDK sees them. What it wrote is then read
//! back here over plain HTTP, so a script that skipped its work could not pass.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::on_every_database;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, App, Kind};

/// A directory of its own with the SDK installed from the lock file (`npm ci`), so tests
/// running at once do not install into the same `node_modules`.
fn installed_sdk() -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["package.json", "package-lock.json", "smoke.mjs"] {
        std::fs::copy(source.join(file), dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefer-offline"])
        .current_dir(dir.path())
        .output()
        .expect("npm (Node.js 18 or later) runs the Directus SDK test");
    assert!(
        out.status.success(),
        "npm ci: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The script's output once it exits; a script still running after `limit` (a request
/// never answered, or a timer left behind) is killed and fails the test.
fn finished_within(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("the script's status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child
                .wait_with_output()
                .expect("the killed script's output");
            panic!(
                "the SDK script did not finish within {limit:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("the script's output")
}

async fn the_sdk_works(kind: Kind) {
    let app = App::start(kind, None).await;
    let url = app.server.url("");
    let url = url.trim_end_matches('/').to_string();
    let out = tokio::task::spawn_blocking(move || {
        let dir = installed_sdk();
        let node = Command::new("node")
            .args(["smoke.mjs", &url, ADMIN_EMAIL, ADMIN_PASSWORD])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node");
        finished_within(node, Duration::from_secs(120))
    })
    .await
    .expect("the SDK's run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the SDK script's last line is its summary ({e}): {stdout}"));

    let books = app
        .admin_call(
            "GET",
            "/items/books?fields=id,title,published&sort=id",
            None,
        )
        .await;
    let created = seen["books"].as_array().expect("the books' keys");
    assert_eq!(
        books["data"],
        serde_json::json!([
            {"id": created[0], "title": "Analytical", "published": true},
            {"id": created[1], "title": "Bernoulli", "published": true},
        ]),
        "the SDK's writes, read over plain HTTP"
    );
    let author = app
        .admin_call(
            "GET",
            &format!("/items/authors/{}?fields=name,books", seen["author"]),
            None,
        )
        .await;
    let access = app
        .admin_call(
            "GET",
            &format!(
                "/access?filter[role][_eq]={}&fields=policy",
                seen["role"].as_str().expect("the role")
            ),
            None,
        )
        .await;
    assert_eq!(
        access["data"],
        serde_json::json!([{"policy": seen["policy"]}]),
        "the policy the SDK put on the role through `policies`"
    );
    assert_eq!(author["data"]["name"], "Ada");
    assert_eq!(
        author["data"]["books"],
        serde_json::json!([created[0], created[1]])
    );
}

on_every_database!(the_sdk_works:
    the_directus_sdk_works_on_postgres => Kind::Postgres,
    the_directus_sdk_works_on_mariadb => Kind::MySql,
    the_directus_sdk_works_on_sqlite => Kind::Sqlite,
);
