//! The three SQL dialects rectus speaks. Shared by the filter compiler here and the drivers
//! in `src/db`.

/// Which SQL dialect a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite];

    /// The Directus `DB_CLIENT` name.
    pub fn client(self) -> &'static str {
        match self {
            Dialect::Postgres => "pg",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite3",
        }
    }
}
