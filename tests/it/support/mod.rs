//! What the integration tests share: a database of their own per test on the real servers,
//! rectus started as a user starts it (the built binary), and a TCP relay that can delay or
//! cut the path to the database.

pub mod fingerprint;
pub mod relay;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rectus::config::{DatabaseConfig, NetworkDatabase};
use rectus::db::Database;

pub const PG_HOST: &str = "127.0.0.1";
pub const PG_PORT: u16 = 5432;
pub const MYSQL_HOST: &str = "127.0.0.1";
pub const MYSQL_PORT: u16 = 3306;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MySql,
    Sqlite,
}

pub const ALL_KINDS: [Kind; 3] = [Kind::Postgres, Kind::MySql, Kind::Sqlite];

/// A database created for one test and dropped when the test ends, so tests run in
/// parallel and leave nothing behind.
pub struct TestDb {
    pub kind: Kind,
    pub name: String,
    /// SQLite: the directory holding the file.
    dir: Option<tempfile::TempDir>,
    host: String,
    port: u16,
    /// The handle that created the database drops it; copies made by `via` do not.
    owner: bool,
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("rectus_t{}_{}_{:x}", std::process::id(), n, nanos)
}

impl TestDb {
    pub async fn new(kind: Kind) -> TestDb {
        let name = unique_name();
        let (host, port, dir) = match kind {
            Kind::Postgres => {
                admin_pg(&format!("CREATE DATABASE \"{name}\"")).await;
                (PG_HOST.to_string(), PG_PORT, None)
            }
            Kind::MySql => {
                admin_mysql(&format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ))
                .await;
                (MYSQL_HOST.to_string(), MYSQL_PORT, None)
            }
            Kind::Sqlite => (
                String::new(),
                0,
                Some(tempfile::tempdir().expect("tempdir")),
            ),
        };
        TestDb {
            kind,
            name,
            dir,
            host,
            port,
            owner: true,
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir
            .as_ref()
            .expect("a SQLite test database")
            .path()
            .join(format!("{}.db", self.name))
    }

    /// The same database reached through another address (a relay).
    pub fn via(&self, host: &str, port: u16) -> TestDb {
        assert_ne!(self.kind, Kind::Sqlite, "SQLite has no network path");
        TestDb {
            kind: self.kind,
            name: self.name.clone(),
            dir: None,
            host: host.to_string(),
            port,
            owner: false,
        }
    }

    pub fn config(&self) -> DatabaseConfig {
        let net = |user: &str| NetworkDatabase {
            host: self.host.clone(),
            port: self.port,
            database: Some(self.name.clone()),
            user: Some(user.to_string()),
            password: None,
            connection_string: None,
            pool_max: 4,
        };
        match self.kind {
            Kind::Postgres => DatabaseConfig::Postgres(net("postgres")),
            Kind::MySql => DatabaseConfig::MySql(net("root")),
            Kind::Sqlite => DatabaseConfig::Sqlite {
                filename: self.sqlite_path(),
            },
        }
    }

    /// The environment variables that point rectus at this database.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![];
        let mut set = |k: &str, v: String| env.push((k.to_string(), v));
        match self.kind {
            Kind::Postgres | Kind::MySql => {
                set(
                    "DB_CLIENT",
                    if self.kind == Kind::Postgres {
                        "pg"
                    } else {
                        "mysql"
                    }
                    .into(),
                );
                set("DB_HOST", self.host.clone());
                set("DB_PORT", self.port.to_string());
                set("DB_DATABASE", self.name.clone());
                set(
                    "DB_USER",
                    if self.kind == Kind::Postgres {
                        "postgres"
                    } else {
                        "root"
                    }
                    .into(),
                );
            }
            Kind::Sqlite => {
                set("DB_CLIENT", "sqlite3".into());
                set("DB_FILENAME", self.sqlite_path().display().to_string());
            }
        }
        env
    }

    pub async fn connect(&self) -> Database {
        Database::connect(&self.config())
            .await
            .unwrap_or_else(|e| panic!("connect to {:?} {}: {e}", self.kind, self.name))
    }

    /// Runs SQL of the test's own (fixtures) directly on the database.
    pub async fn exec(&self, sql: &str) {
        let db = self.connect().await;
        let mut conn = db.acquire().await.expect("connection");
        for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            conn.batch(statement)
                .await
                .unwrap_or_else(|e| panic!("{:?}: {statement}: {e}", self.kind));
        }
        drop(conn);
        db.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owner || self.kind == Kind::Sqlite {
            return;
        }
        let (kind, name) = (self.kind, self.name.clone());
        // Drop runs inside the test's runtime; a thread with its own runtime may block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                match kind {
                    Kind::Postgres => {
                        admin_pg(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await
                    }
                    Kind::MySql => admin_mysql(&format!("DROP DATABASE IF EXISTS `{name}`")).await,
                    Kind::Sqlite => {}
                }
            })
        })
        .join();
    }
}

pub async fn pg_client(database: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!("host={PG_HOST} port={PG_PORT} user=postgres dbname={database}"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL at 127.0.0.1:5432");
    tokio::spawn(connection);
    client
}

async fn admin_pg(sql: &str) {
    let client = pg_client("postgres").await;
    client.batch_execute(sql).await.expect(sql);
}

pub async fn mysql_conn(database: Option<&str>) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(MYSQL_HOST)
        .tcp_port(MYSQL_PORT)
        .user(Some("root"))
        .db_name(database);
    mysql_async::Conn::new(opts)
        .await
        .expect("MariaDB at 127.0.0.1:3306")
}

async fn admin_mysql(sql: &str) {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_conn(None).await;
    conn.query_drop(sql).await.expect(sql);
    let _ = conn.disconnect().await;
}

/// The rectus binary under test.
pub fn rectus_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rectus")
}

/// A `rectus` command with a clean environment: nothing from the caller's shell leaks in.
pub fn rectus_command(cwd: &Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(rectus_bin());
    cmd.current_dir(cwd).env_clear();
    for key in ["PATH", "HOME", "TMPDIR"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("LOG_LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The outcome of a finished command.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_rectus(cwd: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let out = rectus_command(cwd, env)
        .args(args)
        .output()
        .expect("run rectus");
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `rectus serve`.
pub struct Server {
    child: Child,
    pub base: String,
    /// What it printed on stdout up to "listening".
    pub stdout: Vec<String>,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts `rectus` on a free port of 127.0.0.1 and waits until it listens.
    pub fn start(cwd: &Path, env: &[(String, String)]) -> Server {
        let stderr_path = cwd.join("rectus-stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log");
        let mut cmd = rectus_command(cwd, env);
        // Tests run in parallel: the SQL endpoint takes any free port unless a test says.
        for port in ["PG_PROXY_PORT", "MYSQL_PROXY_PORT"] {
            if !env.iter().any(|(k, _)| k == port) {
                cmd.env(port, "0");
            }
        }
        cmd.env("HOST", "127.0.0.1")
            .env("PG_PROXY_HOST", "127.0.0.1")
            .env("MYSQL_PROXY_HOST", "127.0.0.1")
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn rectus");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("rectus is listening on ") {
                        let base = rest.split_whitespace().next().unwrap_or("").to_string();
                        lines.push(line);
                        return Server {
                            child,
                            base,
                            stdout: lines,
                            stderr_path,
                        };
                    }
                    lines.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("rectus did not start listening; stdout: {lines:?}\nstderr: {stderr}");
                }
            }
        }
    }

    /// What it has written to stderr (its logs) so far.
    /// The process id of the running rectus.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The port of the PostgreSQL wire endpoint, from what rectus printed.
    pub fn pg_port(&self) -> u16 {
        self.endpoint_port("PostgreSQL")
    }

    /// The port of the MySQL wire endpoint, from what rectus printed.
    pub fn mysql_port(&self) -> u16 {
        self.endpoint_port("MySQL")
    }

    fn endpoint_port(&self, protocol: &str) -> u16 {
        let prefix = format!("rectus SQL endpoint ({protocol} protocol) is listening on ");
        self.stdout
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.trim().parse().ok())
            .expect("the SQL endpoint's port")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to end by itself.
    pub fn wait(mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("rectus did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("rectus stderr:\n{}", self.stderr());
        }
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A running rectus over a fresh database of its own, with an admin logged in.
pub struct App {
    pub db: TestDb,
    pub server: Server,
    _dir: tempfile::TempDir,
    pub client: reqwest::Client,
    pub admin: String,
}

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password";
pub const SECRET: &str = "integration-test-secret";

impl App {
    /// Bootstraps a database, runs `setup` (the test's own tables and metadata), starts
    /// rectus on it and logs the admin in.
    pub async fn start(kind: Kind, setup: Option<&str>) -> App {
        Self::start_with(kind, setup, &[]).await
    }

    pub async fn start_with(kind: Kind, setup: Option<&str>, extra_env: &[(&str, &str)]) -> App {
        Self::start_on(TestDb::new(kind).await, setup, extra_env, None).await
    }

    /// Starts rectus on `db`, reaching it through `via` (a relay's port) when given.
    pub async fn start_on(
        db: TestDb,
        setup: Option<&str>,
        extra_env: &[(&str, &str)],
        via: Option<u16>,
    ) -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = match via {
            Some(port) => db.via("127.0.0.1", port).env(),
            None => db.env(),
        };
        for (k, v) in [
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SECRET", SECRET),
            ("LOGIN_STALL_TIME", "0"),
        ]
        .iter()
        .chain(extra_env)
        {
            env.push((k.to_string(), v.to_string()));
        }
        let out = run_rectus(dir.path(), &env, &["bootstrap"]);
        assert!(out.status.success(), "bootstrap: {}", out.stderr);
        if let Some(sql) = setup {
            db.exec(sql).await;
        }
        let server = Server::start(dir.path(), &env);
        let client = http();
        let mut app = App {
            db,
            server,
            _dir: dir,
            client,
            admin: String::new(),
        };
        app.admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        app
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/auth/login",
                None,
                Some(serde_json::json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "login of {email}: {body}");
        body["data"]["access_token"]
            .as_str()
            .expect("access token")
            .to_string()
    }

    /// One request; the body parsed as JSON (`null` for an empty body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .client
            .request(method.parse().expect("method"), self.server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    pub async fn admin_call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let (status, json) = self.call(method, path, Some(&self.admin), body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {json}"
        );
        json
    }
}

/// Generates one test per database from an `async fn(Kind)` scenario.
#[macro_export]
macro_rules! on_every_database {
    ($scenario:ident: $($name:ident => $kind:expr),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                $scenario($kind).await;
            }
        )*
    };
}

/// Percent-encodes a query parameter value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
