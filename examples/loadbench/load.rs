//! The load on each side: wrk against rectus and the floor service, pgbench against
//! PostgreSQL, with the CPU and memory each spends.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Duration;

use crate::bench::{self, HZ, cpu_ticks, free_port, postgres_ticks};
use crate::workloads::Workload;

pub(crate) struct Measured {
    pub(crate) errors: usize,
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Server CPU per request, milliseconds (rectus only).
    pub(crate) cpu_ms: Option<f64>,
    /// Highest resident memory seen during the run, MB (rectus only).
    pub(crate) rss_mb: Option<f64>,
    /// PostgreSQL's CPU per request or transaction, milliseconds: where the two sides'
    /// rates part when the database does the work.
    pub(crate) db_cpu_ms: f64,
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub(crate) fn status_kb(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0.0)
}

/// The wrk script of a workload: the token, and for POST a fresh order per request.
pub(crate) fn wrk_script(token: &str, w: &Workload) -> String {
    let mut script = format!(
        "wrk.method = \"{}\"\nwrk.headers[\"Authorization\"] = \"Bearer {token}\"\n",
        w.method
    );
    if let Some(body) = w.body {
        script.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
        script.push_str(&format!("wrk.body = [[{body}]]\n"));
    } else if w.method == "POST" {
        script.push_str(
            "wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             local n = 0\n\
             request = function()\n\
               n = n + 1\n\
               local body = string.format('{\"customer_name\":\"Bench\",\"amount\":\"12.50\",\
             \"status\":\"Pending\",\"customer\":%d}', 1 + n % 10000)\n\
               return wrk.format(nil, nil, nil, body)\n\
             end\n",
        );
    }
    script
}

/// `1.23ms`, `456.00us`, `1.02s` as milliseconds.
pub(crate) fn wrk_duration_ms(text: &str) -> f64 {
    let units = [("us", 0.001), ("ms", 1.0), ("s", 1000.0)];
    units
        .iter()
        .find_map(|(unit, factor)| {
            text.strip_suffix(unit)
                .and_then(|n| n.parse::<f64>().ok())
                .map(|n| n * factor)
        })
        .unwrap_or(0.0)
}

/// The load of one workload on rectus by wrk (a C load generator, like pgbench on the
/// database side, with as many threads as pgbench gets), and rectus's CPU and memory.
pub(crate) fn http_load(
    base: &str,
    token: &str,
    w: &Workload,
    seconds: u64,
    connections: usize,
    pid: u32,
) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("w.lua");
    std::fs::write(&script, wrk_script(token, w)).expect("script");
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let running = running.clone();
        std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_kb(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let ticks_before = cpu_ticks(pid);
    let db_before = postgres_ticks();
    let out = Command::new("wrk")
        .args(["-t2", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("{base}{}", w.path))
        .output()
        .expect("wrk (apt install wrk)");
    let ticks = cpu_ticks(pid) - ticks_before;
    let db_ticks = postgres_ticks().saturating_sub(db_before);
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak_kb = sampler.join().unwrap_or(0.0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk: {text}");
    let value_after = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let rps = value_after("Requests/sec:")
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    let errors = value_after("Non-2xx or 3xx responses:")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    Measured {
        errors,
        rps,
        p50_ms: value_after("50%").map_or(0.0, wrk_duration_ms),
        p99_ms: value_after("99%").map_or(0.0, wrk_duration_ms),
        cpu_ms: Some(ticks as f64 / HZ * 1000.0 / requests.max(1.0)),
        rss_mb: Some(peak_kb / 1024.0),
        db_cpu_ms: db_ticks as f64 / HZ * 1000.0 / requests.max(1.0),
    }
}

/// The floor service (`examples/httpfloor.rs`) answering every request with one SQL
/// statement, running while this lives.
pub(crate) struct Floor {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
    pub(crate) _dir: tempfile::TempDir,
}

impl Floor {
    pub(crate) fn start(database: &str, host: &str, sql: &str) -> Floor {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("floor.sql");
        std::fs::write(&file, sql).expect("floor SQL");
        let bin = std::env::current_exe()
            .expect("exe")
            .with_file_name("httpfloor");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build --release --examples` first",
            bin.display()
        );
        let port = free_port();
        let mut cmd = bench::daemon(&bin);
        cmd.arg(port.to_string()).arg(database).arg(&file).arg(host);
        let child = cmd.spawn().expect("start httpfloor");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "httpfloor did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Floor {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn pgbench(
    database: &str,
    host: &str,
    sql: &str,
    seconds: u64,
    connections: usize,
) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("w.sql");
    std::fs::write(&script, sql).expect("script");
    let prefix = dir.path().join("log");
    let db_before = postgres_ticks();
    let out = Command::new("pgbench")
        .args([
            "-h", host, "-U", "postgres", "-n", "-M", "prepared", "-j", "2",
        ])
        .arg(format!("-c{connections}"))
        .arg(format!("-T{seconds}"))
        .arg("-f")
        .arg(&script)
        .arg("--log")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(database)
        .current_dir(dir.path())
        .output()
        .expect("pgbench");
    let db_ticks = postgres_ticks().saturating_sub(db_before);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    let transactions = text
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|n| n.split('/').next())
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    let mut latencies: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("logs").flatten() {
        if !entry.file_name().to_string_lossy().starts_with("log") {
            continue;
        }
        let file = std::fs::File::open(entry.path()).expect("log");
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            if let Some(us) = line.split_whitespace().nth(2).and_then(|n| n.parse().ok()) {
                latencies.push(us);
            }
        }
    }
    latencies.sort_unstable();
    Measured {
        errors: 0,
        rps: tps,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        cpu_ms: None,
        rss_mb: None,
        db_cpu_ms: db_ticks as f64 / HZ * 1000.0 / transactions.max(1.0),
    }
}
