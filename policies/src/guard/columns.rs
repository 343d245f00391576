//! Column references resolved against the FROM items in scope: a column the caller may not
//! read is refused by name (the derived tables would hide it anyway; the error says why), and
//! object-id functions learn whether their argument is a virtual catalog's own column.

use super::read::{Source, Walker};
use super::{GuardError, GuardResult};

impl Walker<'_, '_> {
    /// Whether `e` is a column of a virtual catalog: functions that take an object id (and
    /// could name any object) accept only those.
    pub(super) fn catalog_column(&self, e: &sqlparser::ast::Expr) -> bool {
        use sqlparser::ast::Expr;
        let is_catalog = |qualifier: Option<&str>| {
            for scope in self.scopes.iter().rev() {
                for source in scope {
                    match (source, qualifier) {
                        (Source::Catalog { alias }, Some(q)) if alias == q => return true,
                        (Source::Catalog { .. }, None) if scope.len() == 1 => return true,
                        (Source::Table { alias, .. }, Some(q))
                        | (Source::Raw { alias, .. }, Some(q))
                        | (Source::Opaque { alias: Some(alias) }, Some(q))
                            if alias == q =>
                        {
                            return false;
                        }
                        _ => {}
                    }
                }
                if qualifier.is_none() && !scope.is_empty() {
                    return false;
                }
            }
            false
        };
        match e {
            Expr::Identifier(_) => is_catalog(None),
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                is_catalog(Some(&self.ctx.name(&parts[0])))
            }
            _ => false,
        }
    }

    /// An unqualified column name: refused when the only tables in scope that have it hide it.
    pub(super) fn unqualified_column(&self, name: &str) -> GuardResult<()> {
        for scope in self.scopes.iter().rev() {
            let mut hidden_in = None;
            for source in scope {
                match source {
                    Source::Opaque { .. } | Source::Catalog { .. } => return Ok(()),
                    Source::Raw { collection, .. } => {
                        return match self.column_state(collection, name) {
                            ColumnState::Readable => Ok(()),
                            _ => Err(GuardError::column(name, collection)),
                        };
                    }
                    Source::Table { collection, .. } => match self.column_state(collection, name) {
                        ColumnState::Readable => return Ok(()),
                        ColumnState::Hidden => hidden_in = Some(collection.clone()),
                        ColumnState::Absent => {}
                    },
                }
            }
            if let Some(table) = hidden_in {
                return Err(GuardError::column(name, &table));
            }
        }
        Ok(())
    }

    /// `qualifier.name`: refused when the qualifier is a guarded table that hides the column.
    pub(super) fn qualified_column(&self, qualifier: &str, name: &str) -> GuardResult<()> {
        for scope in self.scopes.iter().rev() {
            for source in scope {
                match source {
                    Source::Table { alias, collection } if alias == qualifier => {
                        return match self.column_state(collection, name) {
                            ColumnState::Hidden => Err(GuardError::column(name, collection)),
                            _ => Ok(()),
                        };
                    }
                    Source::Raw { alias, collection } if alias == qualifier => {
                        return match self.column_state(collection, name) {
                            ColumnState::Readable => Ok(()),
                            _ => Err(GuardError::column(name, collection)),
                        };
                    }
                    Source::Opaque { alias: Some(alias) } | Source::Catalog { alias }
                        if alias == qualifier =>
                    {
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        // PostgreSQL would refuse it too; the guard does not let a name it cannot place
        // through.
        Err(GuardError {
            code: "42P01",
            message: format!("missing FROM-clause entry for table \"{qualifier}\""),
        })
    }

    fn column_state(&self, collection: &str, name: &str) -> ColumnState {
        let Some(c) = self.ctx.access.schema.collection(collection) else {
            return ColumnState::Absent;
        };
        match self.ctx.field(c, name) {
            Some(field) if !field.is_alias() => {
                let readable = self
                    .ctx
                    .access
                    .permissions
                    .rules(collection, crate::Action::Read)
                    .is_some_and(|r| r.field_allowed(&field.field));
                if readable {
                    ColumnState::Readable
                } else {
                    ColumnState::Hidden
                }
            }
            _ => ColumnState::Absent,
        }
    }
}

enum ColumnState {
    Readable,
    Hidden,
    Absent,
}
