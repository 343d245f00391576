//! A wrong setting stops rectus with one line naming it and what is allowed, exit code 1.

use crate::support::run_rectus;

/// Runs rectus and returns its one line of stderr, asserting exit code 1.
fn one_line_error(env: &[(&str, &str)], args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = run_rectus(dir.path(), &env, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr was: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
    // Nothing was started or created.
    assert!(!dir.path().join("data").exists());
    lines[0].to_string()
}

fn assert_one_line_error(env: &[(&str, &str)], args: &[&str], expected: &str) {
    assert_eq!(one_line_error(env, args), expected);
}

#[test]
fn unsupported_db_client() {
    assert_one_line_error(
        &[("DB_CLIENT", "oracle")],
        &[],
        "error: DB_CLIENT=oracle is not supported: use pg, mysql or sqlite3",
    );
}

#[test]
fn bad_worker_threads() {
    for value in ["two", "0", "-1"] {
        assert_one_line_error(
            &[("TOKIO_WORKER_THREADS", value)],
            &["serve"],
            &format!(
                "error: TOKIO_WORKER_THREADS={value} is not valid: use a number of threads from 1"
            ),
        );
    }
}

#[test]
fn bad_port() {
    assert_one_line_error(
        &[("PORT", "eighty")],
        &["serve"],
        "error: PORT=eighty is not a valid port: use a number from 0 (any free port) to 65535",
    );
}

#[test]
fn bad_log_style_and_level() {
    assert_one_line_error(
        &[("LOG_STYLE", "fancy")],
        &[],
        "error: LOG_STYLE=fancy is not supported: use pretty or json",
    );
    assert_one_line_error(
        &[("LOG_LEVEL", "loud")],
        &["bootstrap"],
        "error: LOG_LEVEL=loud is not supported: use trace, debug, info, warn, error, fatal or silent",
    );
}

#[test]
fn network_database_without_a_name() {
    assert_one_line_error(
        &[("DB_CLIENT", "pg")],
        &[],
        "error: DB_DATABASE is required when DB_CLIENT=pg (or give DB_CONNECTION_STRING)",
    );
}

#[test]
fn missing_config_file() {
    assert_one_line_error(
        &[],
        &["--config", "/nonexistent/rectus.toml"],
        "error: config file /nonexistent/rectus.toml does not exist",
    );
}

#[test]
fn unknown_and_bad_settings_in_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rectus.toml");
    std::fs::write(&file, "DB_CLEINT = \"pg\"\n").unwrap();
    assert_one_line_error(
        &[],
        &["--config", file.to_str().unwrap()],
        "error: DB_CLEINT is not a rectus setting: see config/rectus.toml for the settings there are",
    );
    std::fs::write(&file, "PORT = 70000\n").unwrap();
    assert_one_line_error(
        &[],
        &["--config", file.to_str().unwrap()],
        "error: PORT=70000 is not a valid port: use a number from 0 (any free port) to 65535",
    );
    std::fs::write(&file, "PORT = [1, 2]\n").unwrap();
    let line = one_line_error(&[], &["--config", file.to_str().unwrap()]);
    assert!(line.contains("PORT"), "{line}");
}

#[test]
fn environment_overrides_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rectus.toml");
    std::fs::write(&file, "DB_CLIENT = \"sqlite3\"\n").unwrap();
    assert_one_line_error(
        &[("DB_CLIENT", "mssql")],
        &["--config", file.to_str().unwrap()],
        "error: DB_CLIENT=mssql is not supported: use pg, mysql or sqlite3",
    );
}

#[test]
fn unreachable_database_is_one_line() {
    let line = one_line_error(
        &[("DB_CLIENT", "pg"), ("DB_DATABASE", "x"), ("DB_PORT", "1")],
        &["bootstrap"],
    );
    assert!(
        line.starts_with("error: cannot open the pg database x at 127.0.0.1:1: "),
        "{line}"
    );
    let line = one_line_error(
        &[
            ("DB_CLIENT", "mysql"),
            ("DB_DATABASE", "x"),
            ("DB_PORT", "1"),
        ],
        &[],
    );
    assert!(
        line.starts_with("error: cannot open the mysql database x at 127.0.0.1:1: "),
        "{line}"
    );
}

#[test]
fn bad_query_limit() {
    assert_one_line_error(
        &[("QUERY_LIMIT_MAX", "0")],
        &["serve"],
        "error: QUERY_LIMIT_MAX=0 is not valid: use a whole number of 1 or more, or -1 for no limit",
    );
}
