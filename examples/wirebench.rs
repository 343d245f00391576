//! The PostgreSQL wire endpoint benchmark (issue 6): `pgbench -S` and a script of list /
//! one-row / range-and-sort reads, each run directly against PostgreSQL, through PgBouncer,
//! and through rectus as an admin (passthrough) and as a restricted user (guarded), in one
//! run, with the simple and the prepared protocol.
//!
//! ```text
//! cargo build --release && cargo run --release --example wirebench -- [SECONDS] [CLIENTS] [SCALE] [tcp|socket] [ROUNDS]
//! ```
//!
//! Each row is run in ROUNDS rounds (default 1), the targets in turn and in the opposite
//! order every other round, since this machine's speed drifts within a minute; TPS are the
//! medians of the rounds, ratios the medians of each round's ratios, and the last column
//! lists every round's restricted ÷ direct.
//!
//! `socket` puts rectus and PgBouncer next to the database the way a sidecar is: both reach
//! PostgreSQL over its Unix socket, while every client (pgbench) still connects over TCP;
//! the direct runs are then made both ways, so the ratios can be read against either.
//!
//! `BENCH_PIN=1` runs pgbench on one core and PostgreSQL, PgBouncer and rectus on the other
//! (see `bench::pinned`).
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user `postgres`, trust), `pgbench` and `pgbouncer`
//! (Debian's package; run as root it is started with `-u postgres`). Creates and drops its own
//! database. All connections use `sslmode=disable` so that TLS is not what is measured.

use std::process::{Child, Command, Stdio};

use serde_json::json;

mod bench;
use bench::{
    HZ, free_port, login, on_cpu_ns, postgres_ticks, psql, reader, rectus_bin, rectus_env, serve,
};

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "bench-password";
const READER_EMAIL: &str = "reader@example.com";
const READER_PASSWORD: &str = "reader-password";

/// The script workload: the shapes of the REST benchmark's reads on pgbench's tables.
const SCRIPT: &str = "\\set aid random(1, 100000 * :scale)\n\
SELECT * FROM pgbench_accounts WHERE bid = 1 ORDER BY aid LIMIT 100;\n\
SELECT aid, bid, abalance FROM pgbench_accounts WHERE aid = :aid;\n\
SELECT aid, abalance FROM pgbench_accounts WHERE aid BETWEEN :aid AND :aid + 1000 ORDER BY abalance DESC, aid LIMIT 100;\n";

struct Target {
    name: &'static str,
    host: String,
    port: u16,
    user: &'static str,
    password: &'static str,
    /// The proxy between pgbench and PostgreSQL, whose CPU time is measured.
    proxy: Option<u32>,
}

/// One pgbench run: its TPS and the CPU time its proxy (when it has one) and PostgreSQL
/// spent per transaction, in microseconds; `None` when pgbench failed (its error is
/// printed). The CPU is read over the run's middle, from its first second to its last but
/// one: the logins before (rectus hashes passwords) are not the transactions' cost.
fn pgbench(
    target: &Target,
    database: &str,
    mode: &str,
    args: &[&str],
    seconds: u64,
    clients: usize,
) -> Option<Measured> {
    let child = bench::load_command("pgbench")
        .env("PGPASSWORD", target.password)
        .env("PGSSLMODE", "disable")
        .args(["-n", "-h", &target.host, "-j", "2", "-M", mode])
        .arg(format!("-p{}", target.port))
        .arg(format!("-U{}", target.user))
        .arg(format!("-c{clients}"))
        .arg(format!("-T{seconds}"))
        .args(args)
        .arg(database)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pgbench");
    let window = std::time::Duration::from_secs(seconds.saturating_sub(2).max(1));
    std::thread::sleep(std::time::Duration::from_secs(1));
    let client = child.id();
    let before = (
        target.proxy.map(on_cpu_ns),
        postgres_ticks(),
        on_cpu_ns(client),
    );
    std::thread::sleep(window);
    let after = (
        target.proxy.map(on_cpu_ns),
        postgres_ticks(),
        on_cpu_ns(client),
    );
    let out = child.wait_with_output().expect("pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "pgbench {} {mode}: {}",
            target.name,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse::<f64>().ok())?;
    let transactions = tps * window.as_secs_f64();
    let per_tx = |seconds: f64| seconds * 1e6 / transactions.max(1.0);
    Some(Measured {
        tps,
        proxy_us: match (before.0, after.0) {
            (Some(b), Some(a)) => Some(per_tx(a.saturating_sub(b) as f64 / 1e9)),
            _ => None,
        },
        // PostgreSQL's backends come and go; the postmaster's children's times keep theirs.
        pg_us: per_tx(after.1.saturating_sub(before.1) as f64 / HZ),
        client_us: per_tx(after.2.saturating_sub(before.2) as f64 / 1e9),
    })
}

/// One pgbench run with the CPU time PostgreSQL, its proxy (when it has one) and pgbench
/// spent per transaction, in microseconds.
struct Measured {
    tps: f64,
    proxy_us: Option<f64>,
    pg_us: f64,
    /// pgbench's.
    client_us: f64,
}

/// Per target, the medians over the rounds of the CPU time PostgreSQL, the proxy and
/// pgbench spent per transaction: where the time of a transaction goes, which the rates
/// alone do not tell on a machine whose speed drifts.
fn cpu_column(runs: &[Vec<Option<Measured>>], names: &[&str]) -> String {
    names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let of = |f: &dyn Fn(&Measured) -> Option<f64>| {
                bench::median(
                    runs.iter()
                        .filter_map(|r| r[i].as_ref().and_then(f))
                        .collect(),
                )
            };
            let pg = of(&|m| Some(m.pg_us))?;
            let client = of(&|m| Some(m.client_us))?;
            Some(match of(&|m| m.proxy_us) {
                Some(proxy) => format!("{name} {pg:.0} + {proxy:.0} + {client:.0}"),
                None => format!("{name} {pg:.0} + {client:.0}"),
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn pgbouncer(
    dir: &std::path::Path,
    upstream: &str,
    database: &str,
    pool_mode: &str,
    clients: usize,
) -> (Child, u16) {
    let port = free_port();
    let ini = dir.join(format!("pgbouncer-{pool_mode}.ini"));
    let users = dir.join("users.txt");
    std::fs::write(&users, "\"postgres\" \"\"\n").expect("users");
    std::fs::write(
        &ini,
        format!(
            "[databases]\n{database} = host={upstream} port=5432 dbname={database}\n\
             [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\n\
             auth_file = {}\npool_mode = {pool_mode}\ndefault_pool_size = {clients}\n\
             max_client_conn = 200\nunix_socket_dir =\n",
            users.display(),
        ),
    )
    .expect("ini");
    let mut cmd = bench::daemon("pgbouncer");
    // PgBouncer refuses to run as root.
    if unsafe_is_root() {
        cmd.args(["-u", "postgres"]);
    }
    let child = cmd
        .arg(&ini)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pgbouncer");
    std::thread::sleep(std::time::Duration::from_millis(500));
    (child, port)
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let clients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let scale: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
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
    let database = format!("rectus_wirebench_{}", std::process::id());
    psql("postgres", &format!("CREATE DATABASE {database}"));
    let outcome = std::panic::catch_unwind(|| {
        let _pinned = bench::pin_server(&["postgres"]);
        runtime.block_on(run(
            &bin, &database, seconds, clients, scale, socket, rounds,
        ))
    });
    psql(
        "postgres",
        &format!("DROP DATABASE {database} WITH (FORCE)"),
    );
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn run(
    bin: &std::path::Path,
    database: &str,
    seconds: u64,
    clients: usize,
    scale: u32,
    socket: bool,
    rounds: usize,
) {
    let socket_dir = bench::socket_directory();
    let upstream = if socket {
        socket_dir.clone()
    } else {
        "127.0.0.1".to_string()
    };
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-h", "127.0.0.1", "-U", "postgres"])
        .arg(format!("-s{scale}"))
        .arg(database)
        .output()
        .expect("pgbench -i");
    assert!(init.status.success(), "pgbench -i failed");
    let http_port = free_port();
    let wire_port = free_port();
    let mut env = rectus_env(
        "pg",
        5432,
        database,
        "postgres",
        (ADMIN_EMAIL, ADMIN_PASSWORD),
        http_port,
    );
    env.extend([
        ("DB_HOST", upstream.clone()),
        ("PG_PROXY_HOST", "127.0.0.1".into()),
        ("PG_PROXY_PORT", wire_port.to_string()),
        ("PG_PROXY_ALLOW_INSECURE_PASSWORD", "true".into()),
        ("PG_PROXY_POOL_SIZE", (clients + 4).to_string()),
    ]);
    let mut server = serve(bin, &env);
    let rectus = server.id();
    let base = format!("http://127.0.0.1:{http_port}");
    let client = reqwest::Client::new();
    let admin = login(&client, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let tables = [
        ("pgbench_accounts", json!({"bid": {"_gte": 1}})),
        ("pgbench_branches", json!({})),
        ("pgbench_tellers", json!({})),
        ("pgbench_history", json!({})),
    ];
    let user = json!({"email": READER_EMAIL, "password": READER_PASSWORD});
    reader(&client, &base, &admin, &tables, user).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let _ = Command::new("chmod").args(["755"]).arg(dir.path()).status();
    let script = dir.path().join("rest.sql");
    std::fs::write(&script, SCRIPT).expect("script");
    let (mut bouncer_tx, tx_port) =
        pgbouncer(dir.path(), &upstream, database, "transaction", clients);
    let (mut bouncer_session, session_port) =
        pgbouncer(dir.path(), &upstream, database, "session", clients);

    println!(
        "rectus PostgreSQL endpoint vs direct and PgBouncer 1.18, {seconds} s per run, {clients} clients, pgbench scale {scale}; rectus and PgBouncer reach PostgreSQL over {}{}",
        if socket { "its Unix socket" } else { "TCP" },
        if bench::pinned() {
            "; pgbench on CPU 1, PostgreSQL, PgBouncer and rectus on CPU 0"
        } else {
            ""
        }
    );
    println!();
    println!(
        "| workload | protocol | direct tps | direct tps (socket) | PgBouncer tps | rectus admin tps | rectus restricted tps | admin ÷ PgBouncer | restricted ÷ direct | restricted ÷ direct (socket) | rounds (restricted ÷ direct) | CPU µs per transaction: PostgreSQL (+ proxy) + pgbench |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let script_arg = format!("-f{}", script.display());
    for (workload, args) in [
        ("pgbench -S", vec!["-S"]),
        ("REST reads script", vec![script_arg.as_str()]),
    ] {
        for mode in ["simple", "prepared"] {
            // WIREBENCH_ROWS=<workload> <protocol>[,…] (e.g. "pgbench -S prepared") runs
            // only those rows.
            if std::env::var("WIREBENCH_ROWS").is_ok_and(|rows| {
                !rows
                    .split(',')
                    .any(|row| row == format!("{workload} {mode}"))
            }) {
                continue;
            }
            // PgBouncer 1.18 keeps prepared statements only in session pooling.
            let (bouncer_port, bouncer) = if mode == "simple" {
                (tx_port, bouncer_tx.id())
            } else {
                (session_port, bouncer_session.id())
            };
            let tcp = || "127.0.0.1".to_string();
            let targets = [
                Target {
                    name: "direct",
                    host: tcp(),
                    port: 5432,
                    user: "postgres",
                    password: "",
                    proxy: None,
                },
                Target {
                    name: "pgbouncer",
                    host: tcp(),
                    port: bouncer_port,
                    user: "postgres",
                    password: "",
                    proxy: Some(bouncer),
                },
                Target {
                    name: "rectus admin",
                    host: tcp(),
                    port: wire_port,
                    user: ADMIN_EMAIL,
                    password: ADMIN_PASSWORD,
                    proxy: Some(rectus),
                },
                Target {
                    name: "rectus restricted",
                    host: tcp(),
                    port: wire_port,
                    user: READER_EMAIL,
                    password: READER_PASSWORD,
                    proxy: Some(rectus),
                },
                Target {
                    name: "direct socket",
                    host: socket_dir.clone(),
                    port: 5432,
                    user: "postgres",
                    password: "",
                    proxy: None,
                },
            ];
            // WIREBENCH_ONLY=<target name>[,<target name>…] runs only those (for profiling
            // one, or comparing two builds on one ratio).
            let only = std::env::var("WIREBENCH_ONLY").ok();
            let runs = bench::in_turns(rounds, targets.len(), |i| {
                let t = &targets[i];
                if only
                    .as_deref()
                    .is_some_and(|o| !o.split(',').any(|name| name == t.name))
                {
                    return None;
                }
                pgbench(t, database, mode, &args, seconds, clients)
            });
            let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
            let cpu = cpu_column(&runs, &names);
            let measured = bench::Rounds::new(
                runs.iter()
                    .map(|row| row.iter().map(|m| m.as_ref().map(|m| m.tps)).collect())
                    .collect(),
            );
            let bouncer_label = if mode == "simple" { "" } else { " (session)" };
            println!(
                "| {workload} | {mode} | {} | {} | {}{bouncer_label} | {} | {} | {} | {} | {} | {} | {cpu} |",
                measured.shown(0),
                measured.shown(4),
                measured.shown(1),
                measured.shown(2),
                measured.shown(3),
                measured.ratio(2, 1),
                measured.ratio(3, 0),
                measured.ratio(3, 4),
                measured.each_ratio(3, 0),
            );
        }
    }
    let _ = bouncer_tx.kill();
    let _ = bouncer_tx.wait();
    let _ = bouncer_session.kill();
    let _ = bouncer_session.wait();
    let _ = server.kill();
    let _ = server.wait();
}
