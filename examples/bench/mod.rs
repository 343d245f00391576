//! What the benchmark examples share: the release binary, a local psql and mysql, free
//! ports, and a rectus process started with a given environment.

// Every example compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// `target/release/rectus`, next to the example's own binary.
pub fn rectus_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("rectus"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first",
        bin.display()
    );
    bin
}

/// Runs `sql` on the local PostgreSQL as `postgres`; panics when it fails.
pub fn psql(database: &str, sql: &str) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-d", database, "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `sql` on the local MariaDB/MySQL as `root`; panics when it fails.
pub fn mysql(sql: &str) {
    let out = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", sql])
        .output()
        .expect("mysql");
    assert!(
        out.status.success(),
        "mysql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts `rectus ARGS` with only `env` (and PATH, and TOKIO_WORKER_THREADS when set, so a
/// run can compare runtime sizes); stdout is piped.
pub fn start_rectus(bin: &std::path::Path, env: &[(&str, String)], args: &[&str]) -> Child {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Ok(threads) = std::env::var("TOKIO_WORKER_THREADS") {
        cmd.env("TOKIO_WORKER_THREADS", threads);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd.spawn().expect("start rectus")
}

/// Bootstraps, then starts `rectus serve` and waits until it listens.
pub fn serve(bin: &std::path::Path, env: &[(&str, String)]) -> Child {
    let status = start_rectus(bin, env, &["bootstrap"])
        .wait()
        .expect("bootstrap");
    assert!(status.success(), "bootstrap failed");
    let mut server = start_rectus(bin, env, &["serve"]);
    let stdout = server.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        if line.starts_with("rectus is listening on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    server
}
