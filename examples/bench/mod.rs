//! What the benchmark examples share: the release binary, a local psql and mysql, free
//! ports, and a rectus process started with a given environment.

// Every example compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

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

/// The settings every benchmark starts rectus with: `client` (`pg`, `mysql`) on the local
/// server as `user`, the admin, quiet logs, HTTP on `http_port`.
pub fn rectus_env(
    client: &str,
    port: u16,
    database: &str,
    user: &str,
    admin: (&str, &str),
    http_port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("DB_CLIENT", client.into()),
        ("DB_HOST", "127.0.0.1".into()),
        ("DB_PORT", port.to_string()),
        ("DB_DATABASE", database.into()),
        ("DB_USER", user.into()),
        ("ADMIN_EMAIL", admin.0.into()),
        ("ADMIN_PASSWORD", admin.1.into()),
        ("SECRET", "bench-secret".into()),
        ("LOGIN_STALL_TIME", "0".into()),
        ("LOG_LEVEL", "warn".into()),
        ("HOST", "127.0.0.1".into()),
        ("PORT", http_port.to_string()),
    ]
}

/// Starts `rectus ARGS` with only `env` (and PATH, and TOKIO_WORKER_THREADS when set, so a
/// run can compare runtime sizes); stdout is piped.
pub fn start_rectus(bin: &std::path::Path, env: &[(&str, String)], args: &[&str]) -> Child {
    let mut cmd = daemon(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    // Settings to compare by hand, passed on when set.
    for name in [
        "TOKIO_WORKER_THREADS",
        "RUST_LOG",
        "PG_PROXY_SHARED_READS",
        "PG_PROXY_SHARED_READ_TIME",
        "MYSQL_PROXY_SHARED_READS",
    ] {
        if let Ok(value) = std::env::var(name) {
            cmd.env(name, value);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd.spawn().expect("start rectus")
}

/// A command for a server the benchmark starts (rectus, PgBouncer) that runs in a session
/// of its own, as a service would. Linux shares the CPU between sessions first
/// (`sched_autogroup`): in the load generator's session a proxy's share is taken from its
/// load generator's while PostgreSQL has a session to itself, and its backends then wait
/// 20–250 ms for a core now and then (p99 of a 100-row list 40–60 ms, 3 ms in sessions of
/// their own). `setsid` runs the program in place (the child leads no process group), so
/// the pid is the server's.
pub fn daemon(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("setsid");
    if pinned() {
        // taskset also runs the program in place.
        cmd.args(["taskset", "-c", SERVER_CPU]);
    }
    cmd.arg(program);
    cmd
}

/// `BENCH_PIN=1` lays the machine out as a sidecar whose clients are on other machines: the
/// load generator on one core, the database server with every program the benchmark starts
/// next to it (rectus, relays, PgBouncer) on the other, for every target of the run.
/// Without it all of them share both cores, and the load generator's own work competes with
/// the hop's.
pub fn pinned() -> bool {
    std::env::var("BENCH_PIN").is_ok_and(|v| v == "1")
}

const SERVER_CPU: &str = "0";
const LOAD_CPU: &str = "1";

/// A command for the load generator (`sysbench`, `pgbench`, `wrk`): on its own core when
/// [`pinned`].
pub fn load_command(program: &str) -> Command {
    if pinned() {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", LOAD_CPU, program]);
        cmd
    } else {
        Command::new(program)
    }
}

/// The database server's processes and threads held on the server core while this lives
/// (when [`pinned`]); their own affinity is given back when it is dropped, a failed run
/// included.
pub struct ServerPinned(Vec<(String, String)>);

/// Pins every running process named as one of `names` with all its threads to the server
/// core: MariaDB's one process (`mariadbd`, `mysqld`), or PostgreSQL's postmaster and
/// helpers (`postgres`), whose backends forked later inherit it. `None` when not
/// [`pinned`].
pub fn pin_server(names: &[&str]) -> Option<ServerPinned> {
    if !pinned() {
        return None;
    }
    let pids: Vec<String> = names
        .iter()
        .flat_map(|name| {
            let out = Command::new("pgrep").args(["-x", name]).output();
            let found = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            found
                .unwrap_or_default()
                .lines()
                .map(|pid| pid.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!pids.is_empty(), "none of {names:?} runs");
    let mut held = Vec::new();
    for pid in pids {
        let out = Command::new("taskset")
            .args(["-p", &pid])
            .output()
            .expect("taskset");
        let mask = String::from_utf8_lossy(&out.stdout)
            .rsplit(' ')
            .next()
            .unwrap_or("3")
            .trim()
            .to_string();
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", SERVER_CPU, &pid])
            .stdout(Stdio::null())
            .status()
            .expect("taskset");
        assert!(status.success(), "cannot pin the database server ({pid})");
        held.push((pid, mask));
    }
    Some(ServerPinned(held))
}

impl Drop for ServerPinned {
    fn drop(&mut self) {
        for (pid, mask) in &self.0 {
            let _ = Command::new("taskset")
                .args(["-a", "-p", mask, pid])
                .stdout(Stdio::null())
                .status();
        }
    }
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

/// One HTTP call to rectus that must succeed; its JSON answer.
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let mut r = client
        .request(method.parse().expect("method"), format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let response = r.send().await.expect("request");
    let status = response.status();
    let json: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {json}");
    json
}

/// An access token for `email`.
pub async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let body = call(
        client,
        base,
        None,
        "POST",
        "/auth/login",
        json!({"email": email, "password": password}),
    )
    .await;
    body["data"]["access_token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// A role `Reader` whose one policy reads each of `tables` (all fields) under its rule,
/// and the user `user` (the body of `POST /users`) in it.
pub async fn reader(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    tables: &[(&str, Value)],
    mut user: Value,
) {
    let admin = Some(admin);
    let role = call(
        client,
        base,
        admin,
        "POST",
        "/roles",
        json!({"name": "Reader"}),
    )
    .await["data"]["id"]
        .clone();
    let policy = json!({"name": "reader", "app_access": false, "admin_access": false});
    let policy = call(client, base, admin, "POST", "/policies", policy).await["data"]["id"].clone();
    let access = json!({"role": role, "policy": policy});
    call(client, base, admin, "POST", "/access", access).await;
    for (table, rule) in tables {
        let permission = json!({"policy": policy, "collection": table, "action": "read", "fields": ["*"], "permissions": rule});
        call(client, base, admin, "POST", "/permissions", permission).await;
    }
    user["role"] = role;
    call(client, base, admin, "POST", "/users", user).await;
}

/// Throughput of each target in each round of a row (`None`: skipped or failed).
pub struct Rounds(Vec<Vec<Option<f64>>>);

/// Runs `targets` targets `rounds` times with `run` (target index → its measurement):
/// in turn, and in the opposite order every other round, since this machine's speed drifts
/// within a minute and the last target of a row would otherwise always meet the drift.
pub fn in_turns<T>(
    rounds: usize,
    targets: usize,
    mut run: impl FnMut(usize) -> Option<T>,
) -> Vec<Vec<Option<T>>> {
    let mut measured = Vec::with_capacity(rounds);
    for round in 0..rounds.max(1) {
        let mut row: Vec<Option<T>> = (0..targets).map(|_| None).collect();
        let mut order: Vec<usize> = (0..targets).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            row[i] = run(i);
        }
        measured.push(row);
    }
    measured
}

/// [`in_turns`] of throughputs.
pub fn in_rounds(rounds: usize, targets: usize, run: impl FnMut(usize) -> Option<f64>) -> Rounds {
    Rounds(in_turns(rounds, targets, run))
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

impl Rounds {
    pub fn new(rounds: Vec<Vec<Option<f64>>>) -> Self {
        Rounds(rounds)
    }

    /// The median throughput of target `i`.
    pub fn median(&self, i: usize) -> Option<f64> {
        median(self.0.iter().filter_map(|r| r[i]).collect())
    }

    /// Each round's ratio of target `a` to target `b`.
    pub fn ratios(&self, a: usize, b: usize) -> Vec<f64> {
        self.0
            .iter()
            .filter_map(|r| match (r[a], r[b]) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            })
            .collect()
    }

    /// The median of the rounds' ratios of `a` to `b`, printed ("-" when none).
    pub fn ratio(&self, a: usize, b: usize) -> String {
        median(self.ratios(a, b)).map_or("-".to_string(), |r| format!("{r:.2}"))
    }

    /// The median throughput of target `i`, printed.
    pub fn shown(&self, i: usize) -> String {
        self.median(i)
            .map_or("failed".to_string(), |v| format!("{v:.0}"))
    }

    /// Every round's ratio of `a` to `b`, printed.
    pub fn each_ratio(&self, a: usize, b: usize) -> String {
        self.ratios(a, b)
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The directory of PostgreSQL's Unix socket.
pub fn socket_directory() -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-Atc"])
        .arg("SHOW unix_socket_directories")
        .arg("postgres")
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout)
        .split(',')
        .map(str::trim)
        .find(|d| d.starts_with('/'))
        .expect("PostgreSQL listens on a Unix socket")
        .to_string()
}

/// USER_HZ on Linux: the unit of CPU times in /proc.
pub const HZ: f64 = 100.0;

/// CPU ticks (user + system) of a process.
pub fn cpu_ticks(pid: u32) -> u64 {
    process_ticks_and_parent(pid).0
}

/// CPU ticks of every PostgreSQL process, the backends that have exited included (the
/// postmaster has waited for them, so their time is in its children's time).
pub fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let comm = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let mut ticks = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        if comm(&name).trim() != "postgres" {
            continue;
        }
        let (own, children, parent) = process_ticks_and_parent(pid);
        ticks += own;
        if comm(&parent.to_string()).trim() != "postgres" {
            ticks += children;
        }
    }
    ticks
}

/// A process's CPU ticks, its waited-for children's, and its parent's pid.
fn process_ticks_and_parent(pid: u32) -> (u64, u64, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // ppid, utime, stime, cutime and cstime are fields 4, 14 to 17 of stat; 2, 12 to 15
    // after "pid (comm) ".
    (
        field(11) + field(12),
        field(13) + field(14),
        field(1) as u32,
    )
}

/// Nanoseconds every thread of a process has spent on a CPU, from the scheduler
/// (`/proc/PID/task/*/schedstat`): exact, where `/proc/PID/stat`'s times are sampled at the
/// timer tick.
pub fn on_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}
