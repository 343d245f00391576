//! The MySQL wire endpoint benchmark (issue 8): sysbench's `oltp_point_select` and
//! `oltp_read_only` run directly against MariaDB, through a plain TCP relay (what any hop
//! costs on this machine), and through rectus as an admin (passthrough) and as a
//! restricted user (guarded: a read permission with a row filter), in one run, with the
//! text protocol and with prepared statements.
//!
//! ```text
//! cargo build --release && cargo run --release --example mysqlbench -- [SECONDS] [THREADS] [ROWS] [tcp|socket] [ROUNDS]
//! ```
//!
//! Rounds as in `wirebench`: the targets in turn, reversed every other round; TPS are
//! medians, ratios the medians of each round's ratios, and the last column lists every
//! round's restricted ÷ direct.
//!
//! `socket` puts rectus and the relay next to the database the way a sidecar is: both reach
//! MariaDB over its Unix socket, while sysbench still connects over TCP; the direct runs
//! are then made both ways.
//!
//! `BENCH_PIN=1` runs sysbench on one core and MariaDB, the relay and rectus on the other
//! (see `bench::pinned`).
//!
//! Needs MariaDB (or MySQL) on 127.0.0.1:3306 as `root` without a password and `sysbench`
//! (Debian's package). Creates and drops its own database. Both rectus users log in with a
//! static token (mysql_native_password), without TLS, so TLS is not what is measured.

use std::process::Command;

use serde_json::json;

mod bench;
use bench::{call, free_port, login, mysql, reader, rectus_bin, rectus_env, serve};

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "bench-password";
const ADMIN_TOKEN: &str = "bench-admin-token";
const READER_TOKEN: &str = "bench-reader-token";

struct Target {
    name: &'static str,
    /// The server's socket file instead of TCP.
    socket: Option<String>,
    port: u16,
    user: &'static str,
    password: &'static str,
}

/// Transactions and queries per second of one sysbench run; `None` when it failed.
fn sysbench(
    target: &Target,
    database: &str,
    test: &str,
    ps_mode: &str,
    seconds: u64,
    threads: usize,
    rows: usize,
) -> Option<(f64, f64)> {
    let out = bench::load_command("sysbench")
        .arg(test)
        .args(["--db-driver=mysql", "--mysql-ssl=off", "--tables=1"])
        .arg(match &target.socket {
            Some(socket) => format!("--mysql-socket={socket}"),
            None => "--mysql-host=127.0.0.1".into(),
        })
        .arg(format!("--mysql-port={}", target.port))
        .arg(format!("--mysql-user={}", target.user))
        .arg(format!("--mysql-password={}", target.password))
        .arg(format!("--mysql-db={database}"))
        .arg(format!("--table-size={rows}"))
        .arg(format!("--db-ps-mode={ps_mode}"))
        .arg(format!("--threads={threads}"))
        .arg(format!("--time={seconds}"))
        .arg("run")
        .output()
        .expect("sysbench");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "sysbench {} {test} {ps_mode}: {}{}",
            target.name,
            text.lines().rev().take(3).collect::<Vec<_>>().join(" / "),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let rate = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split('(').nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    Some((rate("transactions:")?, rate("queries:")?))
}

/// A plain relay to `upstream` (over TCP, or to the server's socket file), run as a process
/// in a session of its own like rectus (see `bench::daemon`): this program again, with
/// `--relay`. Returns it (stopped when dropped, a failed run included) and its port.
fn start_relay(upstream: u16, socket: Option<String>) -> (Relay, u16) {
    let exe = std::env::current_exe().expect("exe");
    let mut cmd = bench::daemon(exe);
    cmd.args(["--relay", &upstream.to_string()]);
    if let Some(path) = socket {
        cmd.arg(path);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("relay");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("relay stdout")),
        &mut line,
    )
    .expect("relay port");
    let port = line.trim().parse().expect("relay port");
    (Relay(child), port)
}

struct Relay(std::process::Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The relay's process: bytes both ways, nothing read, on a runtime with as many workers
/// as rectus has ([`rectus::runtime::worker_threads`]). Prints its port, then serves until
/// killed.
fn run_relay(upstream: u16, socket: Option<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("relay port");
    let port = listener.local_addr().expect("relay address").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let workers = rectus::runtime::worker_threads().expect("worker threads");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("relay runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("relay listener");
        println!("{port}");
        while let Ok((mut client, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                if let Some(path) = socket {
                    if let Ok(mut server) = tokio::net::UnixStream::connect(path).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    return;
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--relay") {
        let upstream = args
            .get(2)
            .and_then(|p| p.parse().ok())
            .expect("relay upstream");
        return run_relay(upstream, args.get(3).cloned());
    }
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let rows: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let socket = match args.get(4).map(String::as_str) {
        None | Some("tcp") => false,
        Some("socket") => true,
        Some(other) => panic!("the upstream is tcp or socket, not {other}"),
    };
    let rounds: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bin = rectus_bin();
    let database = format!("rectus_mysqlbench_{}", std::process::id());
    mysql(&format!("CREATE DATABASE {database}"));
    let outcome = std::panic::catch_unwind(|| {
        let _pinned = bench::pin_server(&["mariadbd", "mysqld"]);
        runtime.block_on(run(&bin, &database, seconds, threads, rows, socket, rounds))
    });
    mysql(&format!("DROP DATABASE {database}"));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The server's socket file.
fn socket_file() -> String {
    let out = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-u", "root", "-Nse", "SELECT @@socket"])
        .output()
        .expect("mysql");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(path.starts_with('/'), "MariaDB listens on no Unix socket");
    path
}

async fn run(
    bin: &std::path::Path,
    database: &str,
    seconds: u64,
    threads: usize,
    rows: usize,
    socket: bool,
    rounds: usize,
) {
    let socket_path = socket_file();
    let upstream = socket.then(|| socket_path.clone());
    let prepare = Command::new("sysbench")
        .args([
            "oltp_read_only",
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--mysql-port=3306",
            "--mysql-user=root",
            "--tables=1",
        ])
        .arg(format!("--mysql-db={database}"))
        .arg(format!("--table-size={rows}"))
        .arg("prepare")
        .output()
        .expect("sysbench prepare");
    assert!(
        prepare.status.success(),
        "sysbench prepare: {}",
        String::from_utf8_lossy(&prepare.stderr)
    );
    let http_port = free_port();
    let wire_port = free_port();
    let mut env = rectus_env(
        "mysql",
        3306,
        database,
        "root",
        (ADMIN_EMAIL, ADMIN_PASSWORD),
        http_port,
    );
    if let Some(path) = &upstream {
        env.push(("DB_HOST", path.clone()));
    }
    env.extend([
        ("MYSQL_PROXY_HOST", "127.0.0.1".into()),
        ("MYSQL_PROXY_PORT", wire_port.to_string()),
        ("MYSQL_PROXY_POOL_SIZE", (threads + 4).to_string()),
    ]);
    let mut server = serve(bin, &env);
    let base = format!("http://127.0.0.1:{http_port}");
    let client = reqwest::Client::new();
    let admin = login(&client, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = json!({"token": ADMIN_TOKEN});
    call(&client, &base, Some(&admin), "PATCH", "/users/me", token).await;
    // A row filter every row passes, so the guarded reads do the filter's work too.
    let tables = [("sbtest1", json!({"k": {"_gte": 0}}))];
    let user = json!({"email": "reader@example.com", "password": "reader-password", "token": READER_TOKEN});
    reader(&client, &base, &admin, &tables, user).await;

    println!(
        "rectus MySQL endpoint vs direct MariaDB, sysbench, {seconds} s per run, {threads} threads, {rows} rows; rectus and the relay reach MariaDB over {}{}",
        if socket { "its Unix socket" } else { "TCP" },
        if bench::pinned() {
            "; sysbench on CPU 1, MariaDB, the relay and rectus on CPU 0"
        } else {
            ""
        }
    );
    println!();
    println!(
        "| workload | protocol | direct tps | direct tps (socket) | relay tps | rectus admin tps | rectus restricted tps | relay ÷ direct | admin ÷ direct | restricted ÷ direct | admin ÷ direct (socket) | restricted ÷ direct (socket) | rounds (restricted ÷ direct) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let (_relay, relay_port) = start_relay(3306, upstream.clone());
    let targets = [
        Target {
            name: "direct",
            socket: None,
            port: 3306,
            user: "root",
            password: "",
        },
        Target {
            name: "relay",
            socket: None,
            port: relay_port,
            user: "root",
            password: "",
        },
        Target {
            name: "rectus admin",
            socket: None,
            port: wire_port,
            user: "admin",
            password: ADMIN_TOKEN,
        },
        Target {
            name: "rectus restricted",
            socket: None,
            port: wire_port,
            user: "reader",
            password: READER_TOKEN,
        },
        Target {
            name: "direct socket",
            socket: Some(socket_path.clone()),
            port: 3306,
            user: "root",
            password: "",
        },
    ];
    // MYSQLBENCH_ONLY=<target name> runs one target (for profiling it).
    let only = std::env::var("MYSQLBENCH_ONLY").ok();
    for test in ["oltp_point_select", "oltp_read_only"] {
        for (mode, ps_mode) in [("text", "disable"), ("prepared", "auto")] {
            let measured = bench::in_rounds(rounds, targets.len(), |i| {
                let t = &targets[i];
                if only.as_deref().is_some_and(|o| o != t.name) {
                    return None;
                }
                sysbench(t, database, test, ps_mode, seconds, threads, rows).map(|v| v.0)
            });
            println!(
                "| {test} | {mode} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                measured.shown(0),
                measured.shown(4),
                measured.shown(1),
                measured.shown(2),
                measured.shown(3),
                measured.ratio(1, 0),
                measured.ratio(2, 0),
                measured.ratio(3, 0),
                measured.ratio(2, 4),
                measured.ratio(3, 4),
                measured.each_ratio(3, 0),
            );
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}
