//! `rectus bootstrap`: system tables, then the records a working install needs — the Public
//! policy, the settings row, and (on a database without users) the Administrator role and
//! policy with the first admin user. Every step checks before it writes, so a second run
//! and a database Directus already set up are left as they are.

use sea_query::{Expr, ExprTrait, Query, Value};
use uuid::{Uuid, uuid};

use super::ServiceError;
use crate::auth::password::{self, generate_password};
use crate::db::migrations::{self, MigrationOutcome};
use crate::db::{Conn, Database, DialectExt};

/// Directus creates the Public policy with this fixed id; clients refer to it.
pub const PUBLIC_POLICY_ID: Uuid = uuid!("abf8a154-5b1c-4a46-ac9c-7300570f4f17");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapReport {
    pub migration: MigrationOutcome,
    pub admin: Option<NewAdmin>,
}

/// The first admin, created because the database had no users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdmin {
    pub email: String,
    /// Set when no `ADMIN_PASSWORD` was given: shown once, never stored in clear.
    pub generated_password: Option<String>,
}

pub async fn bootstrap(
    db: &Database,
    admin_email: &str,
    admin_password: Option<&str>,
) -> Result<BootstrapReport, ServiceError> {
    let migration = migrations::migrate(db).await?;

    let mut conn = db.acquire().await?;
    let needs_admin = !exists(&mut conn, "directus_users", None).await?;
    drop(conn);
    let admin = if needs_admin {
        let generated = admin_password.is_none().then(generate_password);
        let password = admin_password
            .map(str::to_string)
            .or_else(|| generated.clone())
            .unwrap_or_default();
        let hash = password::hash(password).await?;
        Some((hash, generated))
    } else {
        None
    };

    let email = admin_email.to_lowercase();
    let created = db
        .transaction(|conn| {
            Box::pin(async move {
                ensure_public_policy(conn).await?;
                ensure_settings(conn).await?;
                match admin {
                    // Checked again inside the transaction: two instances may start at once.
                    Some((hash, generated)) if !exists(conn, "directus_users", None).await? => {
                        create_first_admin(conn, &email, &hash).await?;
                        Ok::<_, ServiceError>(Some(NewAdmin {
                            email,
                            generated_password: generated,
                        }))
                    }
                    _ => Ok(None),
                }
            })
        })
        .await?;
    Ok(BootstrapReport {
        migration,
        admin: created,
    })
}

/// Whether `table` has a row (matching `condition`).
async fn exists(
    conn: &mut Conn,
    table: &str,
    condition: Option<Expr>,
) -> Result<bool, ServiceError> {
    let mut select = Query::select();
    select.expr(Expr::val(1)).from(table.to_string()).limit(1);
    if let Some(condition) = condition {
        select.and_where(condition);
    }
    let stmt = conn.dialect().build(&select)?;
    Ok(conn.query_opt(&stmt).await?.is_some())
}

async fn insert(
    conn: &mut Conn,
    table: &str,
    values: Vec<(&str, Value)>,
) -> Result<(), ServiceError> {
    let (columns, values): (Vec<&str>, Vec<Value>) = values.into_iter().unzip();
    let insert = Query::insert()
        .into_table(table.to_string())
        .columns(columns.iter().map(|c| c.to_string()))
        .values_panic(values.into_iter().map(Expr::val))
        .to_owned();
    let stmt = conn.dialect().build(&insert)?;
    conn.execute(&stmt).await?;
    Ok(())
}

async fn ensure_public_policy(conn: &mut Conn) -> Result<(), ServiceError> {
    let public_access = Expr::col("role").is_null().and(Expr::col("user").is_null());
    if exists(conn, "directus_access", Some(public_access)).await? {
        return Ok(());
    }
    let policy_exists = exists(
        conn,
        "directus_policies",
        Some(Expr::col("id").eq(PUBLIC_POLICY_ID)),
    )
    .await?;
    if !policy_exists {
        insert(
            conn,
            "directus_policies",
            vec![
                ("id", PUBLIC_POLICY_ID.into()),
                ("name", "$t:public_label".into()),
                ("icon", "public".into()),
                ("description", "$t:public_description".into()),
                ("app_access", false.into()),
                ("admin_access", false.into()),
            ],
        )
        .await?;
    }
    insert(
        conn,
        "directus_access",
        vec![
            ("id", Uuid::new_v4().into()),
            ("policy", PUBLIC_POLICY_ID.into()),
            ("sort", 1i64.into()),
        ],
    )
    .await
}

async fn ensure_settings(conn: &mut Conn) -> Result<(), ServiceError> {
    if exists(conn, "directus_settings", None).await? {
        return Ok(());
    }
    insert(
        conn,
        "directus_settings",
        vec![("project_id", Uuid::now_v7().into())],
    )
    .await
}

async fn create_first_admin(conn: &mut Conn, email: &str, hash: &str) -> Result<(), ServiceError> {
    let policy = Uuid::new_v4();
    insert(
        conn,
        "directus_policies",
        vec![
            ("id", policy.into()),
            ("name", "Administrator".into()),
            ("icon", "verified".into()),
            ("description", "$t:admin_description".into()),
            ("admin_access", true.into()),
            ("app_access", true.into()),
        ],
    )
    .await?;
    let role = Uuid::new_v4();
    insert(
        conn,
        "directus_roles",
        vec![
            ("id", role.into()),
            ("name", "Administrator".into()),
            ("icon", "verified".into()),
            ("description", "$t:admin_description".into()),
        ],
    )
    .await?;
    insert(
        conn,
        "directus_access",
        vec![
            ("id", Uuid::new_v4().into()),
            ("role", role.into()),
            ("policy", policy.into()),
        ],
    )
    .await?;
    insert(
        conn,
        "directus_users",
        vec![
            ("id", Uuid::new_v4().into()),
            ("first_name", "Admin".into()),
            ("last_name", "User".into()),
            ("email", email.into()),
            ("password", hash.into()),
            ("status", "active".into()),
            ("role", role.into()),
        ],
    )
    .await
}
