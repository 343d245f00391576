//! The command line: `serve` (the default), `bootstrap`, `database migrate`, `users create`,
//! `users passwd`. Each command loads the configuration, does its work through `services`,
//! and reports failure as one line (exit code 1).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, DatabaseConfig};
use crate::db::migrations::{self, MigrationOutcome, Status};
use crate::db::{Database, DbError, introspect};
use crate::http::{self, AppState};
use crate::logging;
use crate::services::bootstrap::{BootstrapReport, bootstrap};
use crate::services::{ServiceError, users};

#[derive(Debug, Parser)]
#[command(
    name = "rectus",
    version,
    about = "Directus-compatible REST API and policy-filtered SQL endpoints over PostgreSQL, MySQL/MariaDB and SQLite",
    long_about = None
)]
pub struct Cli {
    /// Configuration file (default: config/rectus.toml when it exists). Environment
    /// variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API on HOST:PORT (the default command); bootstraps the database first.
    Serve,
    /// Create or migrate the system tables and create the first admin (idempotent).
    Bootstrap,
    /// Database maintenance.
    Database {
        #[command(subcommand)]
        command: DatabaseCommand,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Snapshot the data model to a file, or apply a snapshot.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Write the data model as a snapshot (to FILE, or to stdout).
    Snapshot {
        file: Option<PathBuf>,
        /// `yaml` (Directus's default) or `json`; by default from FILE's extension, else yaml.
        #[arg(long)]
        format: Option<String>,
    },
    /// Bring the data model to a snapshot (JSON or YAML).
    Apply {
        file: PathBuf,
        /// Show the changes without making them.
        #[arg(long)]
        dry_run: bool,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Apply pending system-table migrations.
    #[command(alias = "migrate:latest")]
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// Role id or name.
        #[arg(long)]
        role: Option<String>,
    },
    /// Set a user's password.
    Passwd {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
}

/// A command's failure, already phrased for the person who ran it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Database(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The SQL wire endpoint cannot start (TLS files, its port).
    #[error("SQL endpoint: {0}")]
    Wire(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref())?;
    logging::init(config.log_level, config.log_style);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Bootstrap => {
            let db = connect(&config).await?;
            let report =
                bootstrap(&db, &config.admin_email, config.admin_password.as_deref()).await?;
            match report.migration {
                MigrationOutcome::Created => println!("System tables created."),
                MigrationOutcome::UpToDate => println!("System tables are up to date."),
            }
            print_admin(&report, &config, None);
            db.close().await;
            Ok(())
        }
        Command::Database {
            command: DatabaseCommand::Migrate,
        } => {
            let db = connect(&config).await?;
            match migrations::migrate(&db).await.map_err(ServiceError::from)? {
                MigrationOutcome::Created => println!("System tables created."),
                MigrationOutcome::UpToDate => println!("No pending migrations."),
            }
            db.close().await;
            Ok(())
        }
        Command::Schema { command } => {
            let db = connect(&config).await?;
            require_system_tables(&db).await?;
            let result = schema_command(&db, command).await;
            db.close().await;
            result
        }
        Command::Users { command } => {
            let db = connect(&config).await?;
            require_system_tables(&db).await?;
            match command {
                UsersCommand::Create {
                    email,
                    password,
                    role,
                } => {
                    let id = users::create_user(&db, &email, &password, role.as_deref()).await?;
                    println!("{id}");
                }
                UsersCommand::Passwd { email, password } => {
                    users::set_password(&db, &email, &password).await?;
                    println!("Password updated.");
                }
            }
            db.close().await;
            Ok(())
        }
    }
}

async fn schema_command(db: &Database, command: SchemaCommand) -> Result<(), CliError> {
    use crate::services::authz::{Authz, Caller};
    use crate::services::datamodel::{DataModel, snapshot};

    let fail = |e: crate::error::ApiError| CliError::Database(e.message);
    let schema = std::sync::Arc::new(
        introspect::introspect(db)
            .await
            .map_err(|e| CliError::Database(e.to_string()))?,
    );
    let caller = Caller::system();
    let authz = Authz::new(db.clone());
    let model = DataModel {
        db,
        schema,
        caller: &caller,
        authz: &authz,
    };
    match command {
        SchemaCommand::Snapshot { file, format } => {
            let snap = model.snapshot().await.map_err(fail)?;
            let yaml = match format.as_deref() {
                Some("json") => false,
                Some("yaml") => true,
                None => file
                    .as_ref()
                    .and_then(|f| f.extension())
                    .is_none_or(|e| e != "json"),
                Some(other) => {
                    return Err(CliError::Database(format!(
                        "--format {other} is not supported: use yaml or json"
                    )));
                }
            };
            let text = if yaml {
                snapshot::to_yaml(&snap).map_err(fail)?
            } else {
                serde_json::to_string_pretty(&snap).unwrap_or_default() + "\n"
            };
            match file {
                Some(path) => std::fs::write(&path, text).map_err(|e| {
                    CliError::Database(format!("cannot write {}: {e}", path.display()))
                })?,
                None => print!("{text}"),
            }
            Ok(())
        }
        SchemaCommand::Apply { file, dry_run, yes } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Database(format!("cannot read {}: {e}", file.display())))?;
            let target = snapshot::parse(&text).map_err(fail)?;
            let Some(plan) = model.diff(&target).await.map_err(fail)? else {
                println!("The data model already matches the snapshot.");
                return Ok(());
            };
            for (kind, list) in ["collections", "fields", "relations"]
                .iter()
                .map(|k| (k, plan["diff"][k].as_array().cloned().unwrap_or_default()))
            {
                for item in list {
                    let what = match item["diff"][0]["kind"].as_str() {
                        Some("N") => "create",
                        Some("D") => "delete",
                        _ => "update",
                    };
                    let name = match item["field"].as_str() {
                        Some(f) => format!("{}.{f}", item["collection"].as_str().unwrap_or("")),
                        None => item["collection"].as_str().unwrap_or("").to_string(),
                    };
                    println!("{what} {} {name}", kind.trim_end_matches('s'));
                }
            }
            if dry_run {
                println!("Dry run: nothing changed.");
                return Ok(());
            }
            if !yes {
                use std::io::Write;
                print!("Apply these changes? [y/N] ");
                let _ = std::io::stdout().flush();
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    println!("Nothing changed.");
                    return Ok(());
                }
            }
            model.apply(&plan).await.map_err(fail)?;
            println!("Snapshot applied.");
            Ok(())
        }
    }
}

async fn serve(config: Config) -> Result<(), CliError> {
    if let Some(source) = &config.source {
        tracing::info!(file = %source.display(), "configuration read");
    }
    let db = connect(&config).await?;
    let report = bootstrap(&db, &config.admin_email, config.admin_password.as_deref()).await?;
    if report.migration == MigrationOutcome::Created {
        tracing::info!("system tables created");
    }
    let schema = introspect::introspect(&db)
        .await
        .map_err(|e| CliError::Database(format!("cannot read the database schema: {e}")))?;
    tracing::info!(
        collections = schema.user_collections().count(),
        "schema loaded"
    );
    let (listener, addr) = http::bind(&config)
        .await
        .map_err(|source| CliError::Listen {
            addr: format!("{}:{}", config.host, config.port),
            source,
        })?;
    if config.secret_generated {
        tracing::warn!(
            "SECRET is not set: a random one is used, so sessions and tokens end when rectus restarts"
        );
    }
    let url = public_url(&config, addr);
    print_admin(&report, &config, Some(&url));
    let state = AppState::new(db, config, schema);
    // The SQL endpoint is announced first: "rectus is listening" is the last line at start.
    if let Some(proxy) = pg_proxy(&state).await? {
        tokio::spawn(proxy.serve());
    }
    if let Some(proxy) = mysql_proxy(&state).await? {
        tokio::spawn(proxy.serve());
    }
    println!("rectus is listening on http://{addr} ({url})");
    tracing::info!(%addr, database = state.config.database.client(), "listening");
    http::serve(listener, state)
        .await
        .map_err(|source| CliError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// The PostgreSQL wire endpoint, bound, when it is on.
async fn pg_proxy(
    state: &AppState,
) -> Result<Option<rectus_proxy::pg::PgProxy<crate::services::wire::WireDirectory>>, CliError> {
    use crate::config::DatabaseConfig;
    use crate::services::wire;
    let (Some(settings), DatabaseConfig::Postgres(db)) =
        (&state.config.pg_proxy, &state.config.database)
    else {
        return Ok(None);
    };
    let upstream = wire::upstream(db).map_err(CliError::Database)?;
    let schema_name = wire::current_schema(&state.db)
        .await
        .map_err(|e| CliError::Database(format!("cannot read the current schema: {e}")))?;
    let config = rectus_proxy::pg::PgProxyConfig {
        upstream,
        schema_name,
        endpoint: endpoint_settings(settings),
        shared_reads: settings.shared_reads,
        shared_read_time: settings.shared_read_time,
    };
    let addr = std::net::SocketAddr::new(settings.host, settings.port);
    let directory = std::sync::Arc::new(wire::WireDirectory::new(state.clone()));
    let proxy = rectus_proxy::pg::PgProxy::bind(addr, config, directory)
        .await
        .map_err(|e| CliError::Wire(e.to_string()))?;
    listening("PostgreSQL", proxy.local_addr())?;
    Ok(Some(proxy))
}

/// The MySQL wire endpoint, bound, when it is on.
async fn mysql_proxy(
    state: &AppState,
) -> Result<Option<rectus_proxy::mysql::MysqlProxy<crate::services::wire::WireDirectory>>, CliError>
{
    use crate::config::DatabaseConfig;
    use crate::services::wire;
    let (Some(settings), DatabaseConfig::MySql(db)) =
        (&state.config.mysql_proxy, &state.config.database)
    else {
        return Ok(None);
    };
    let upstream = wire::mysql_upstream(db).map_err(CliError::Database)?;
    let config = rectus_proxy::mysql::MysqlProxyConfig {
        upstream,
        endpoint: endpoint_settings(settings),
        shared_reads: settings.shared_reads,
        shared_read_time: settings.shared_read_time,
    };
    let addr = std::net::SocketAddr::new(settings.host, settings.port);
    let directory = std::sync::Arc::new(wire::WireDirectory::new(state.clone()));
    let proxy = rectus_proxy::mysql::MysqlProxy::bind(addr, config, directory)
        .await
        .map_err(|e| CliError::Wire(e.to_string()))?;
    listening("MySQL", proxy.local_addr())?;
    Ok(Some(proxy))
}

fn endpoint_settings(settings: &crate::config::WireSettings) -> rectus_proxy::EndpointSettings {
    rectus_proxy::EndpointSettings {
        tls_cert: settings.tls_cert.clone(),
        tls_key: settings.tls_key.clone(),
        allow_insecure_password: settings.allow_insecure_password,
        pool_size: settings.pool_size,
        pool_timeout: settings.pool_timeout,
    }
}

/// Announces a bound wire endpoint (tests and people read the port from this line).
fn listening(protocol: &str, bound: std::io::Result<std::net::SocketAddr>) -> Result<(), CliError> {
    let bound = bound.map_err(|e| CliError::Wire(e.to_string()))?;
    println!("rectus SQL endpoint ({protocol} protocol) is listening on {bound}");
    tracing::info!(%bound, protocol, "wire endpoint listening");
    Ok(())
}

/// The address people should open: PUBLIC_URL when it is absolute, else this listener.
fn public_url(config: &Config, addr: std::net::SocketAddr) -> String {
    if config.public_url.starts_with("http") {
        return config.public_url.trim_end_matches('/').to_string();
    }
    let host = if addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}", addr.port())
}

fn print_admin(report: &BootstrapReport, config: &Config, url: Option<&str>) {
    let Some(admin) = &report.admin else {
        return;
    };
    println!("First admin user created:");
    println!("  e-mail:   {}", admin.email);
    match &admin.generated_password {
        Some(password) => println!("  password: {password}   (generated: shown only this once)"),
        None if config.admin_password.is_some() => {
            println!("  password: the one in ADMIN_PASSWORD")
        }
        None => {}
    }
    if let Some(url) = url {
        println!("  URL:      {url}");
    }
}

async fn connect(config: &Config) -> Result<Database, CliError> {
    Database::connect(&config.database)
        .await
        .map_err(|e| CliError::Database(describe_connect_error(&config.database, &e)))
}

fn describe_connect_error(database: &DatabaseConfig, e: &DbError) -> String {
    let target = match database {
        DatabaseConfig::Postgres(n) | DatabaseConfig::MySql(n) => match &n.connection_string {
            Some(_) => format!("{} database from DB_CONNECTION_STRING", database.client()),
            None => format!(
                "{} database {} at {}:{}",
                database.client(),
                n.database.as_deref().unwrap_or(""),
                n.host,
                n.port
            ),
        },
        DatabaseConfig::Sqlite { filename } => format!("SQLite database {}", filename.display()),
    };
    let reason = e.to_string().replace('\n', " ");
    format!("cannot open the {target}: {reason}")
}

async fn require_system_tables(db: &Database) -> Result<(), CliError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(|e| CliError::Database(e.to_string()))?;
    match migrations::status(&mut conn)
        .await
        .map_err(ServiceError::from)?
    {
        Status::Current => Ok(()),
        Status::Empty => Err(CliError::Database(
            "the database has no system tables yet: run `rectus bootstrap` first".into(),
        )),
    }
}
