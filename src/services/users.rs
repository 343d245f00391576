//! Users from the command line: create one with a role, set a password. E-mails are stored
//! lower-cased, as Directus stores them.

use sea_query::{Expr, ExprTrait, Query};
use uuid::Uuid;

use super::ServiceError;
use crate::auth::password;
use crate::config::is_plausible_email;
use crate::db::{Database, DbErrorKind, DialectExt};

async fn hash(password: &str) -> Result<String, ServiceError> {
    if password.is_empty() {
        return Err(ServiceError::Invalid("the password is empty".into()));
    }
    let password = password.to_string();
    password::hash(password).await.map_err(Into::into)
}

/// Finds a role by id or, failing that, by its exact name.
pub async fn find_role(db: &Database, role: &str) -> Result<Uuid, ServiceError> {
    let condition = match Uuid::parse_str(role) {
        Ok(id) => Expr::col("id").eq(id),
        Err(_) => Expr::col("name").eq(role),
    };
    let select = Query::select()
        .column("id")
        .from("directus_roles")
        .and_where(condition)
        .limit(2)
        .to_owned();
    let rows = db.query(&db.dialect().build(&select)?).await?;
    match rows.as_slice() {
        [row] => Ok(row.get("id")?),
        [] => Err(ServiceError::NotFound(format!(
            "role {role} does not exist"
        ))),
        _ => Err(ServiceError::Invalid(format!(
            "more than one role is named {role}: give its id"
        ))),
    }
}

pub async fn create_user(
    db: &Database,
    email: &str,
    password: &str,
    role: Option<&str>,
) -> Result<Uuid, ServiceError> {
    let email = email.trim().to_lowercase();
    if !is_plausible_email(&email) {
        return Err(ServiceError::Invalid(format!(
            "{email} is not an e-mail address"
        )));
    }
    let role = match role {
        Some(r) => Some(find_role(db, r).await?),
        None => None,
    };
    let hash = hash(password).await?;
    let id = Uuid::new_v4();
    let insert = Query::insert()
        .into_table("directus_users")
        .columns(["id", "email", "password", "status", "role"])
        .values_panic([
            id.into(),
            email.clone().into(),
            hash.into(),
            "active".into(),
            role.into(),
        ])
        .to_owned();
    match db.execute(&db.dialect().build(&insert)?).await {
        Ok(_) => Ok(id),
        Err(e) if e.kind() == DbErrorKind::UniqueViolation => Err(ServiceError::Conflict(format!(
            "a user with the e-mail {email} already exists"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn set_password(db: &Database, email: &str, password: &str) -> Result<(), ServiceError> {
    let email = email.trim().to_lowercase();
    let hash = hash(password).await?;
    let update = Query::update()
        .table("directus_users")
        .value("password", hash)
        .and_where(Expr::col("email").eq(email.as_str()))
        .to_owned();
    let result = db.execute(&db.dialect().build(&update)?).await?;
    if result.rows_affected == 0 {
        return Err(ServiceError::NotFound(format!(
            "no user has the e-mail {email}"
        )));
    }
    Ok(())
}
