//! The caller's read permissions as the filter compiler needs them: which fields may be named
//! in a filter, under which condition a field's value shows, and which related rows a
//! relational filter may look at.

use sea_query::Condition;

use crate::filter::{
    self, FieldAccess, FieldGuard, Filter, FilterError, ParseOptions, RelatedRows, SqlContext,
    Variables,
};
use crate::{Action, EffectivePermissions, SchemaOverview, Visibility};

/// What one caller may read: their permissions and the values of their dynamic variables.
#[derive(Clone, Copy)]
pub struct ReadAccess<'a> {
    pub schema: &'a SchemaOverview,
    pub permissions: &'a EffectivePermissions,
    pub variables: &'a Variables,
}

impl<'a> ReadAccess<'a> {
    /// Options for parsing the permission rules themselves (trusted: no field checks).
    pub fn rule_options(&self) -> ParseOptions<'_> {
        ParseOptions {
            schema: self.schema,
            variables: self.variables,
            allow_regex: false,
            access: None,
            root: "permissions",
        }
    }

    pub fn is_admin(&self) -> bool {
        self.permissions.is_admin()
    }

    /// The items of `collection` the caller may read; `Ok(None)`: all of them.
    pub fn item_filter(&self, collection: &str) -> Result<Option<Filter>, FilterError> {
        match self.permissions.rules(collection, Action::Read) {
            None => Ok(Some(Filter::Any(vec![]))),
            Some(rules) => rules.item_filter(collection, &self.rule_options()),
        }
    }
}

impl FieldAccess for ReadAccess<'_> {
    fn can_read(&self, collection: &str, field: &str) -> bool {
        self.permissions
            .rules(collection, Action::Read)
            .is_some_and(|r| r.field_allowed(field))
    }
}

impl FieldGuard for ReadAccess<'_> {
    fn guard(&self, collection: &str, field: &str) -> Option<Filter> {
        let rules = self.permissions.rules(collection, Action::Read);
        let Some(rules) = rules else {
            return Some(Filter::Any(vec![]));
        };
        match rules.visibility(collection, field, &self.rule_options()) {
            Ok(Visibility::Always) => None,
            Ok(Visibility::When(filter)) => Some(filter),
            // Hidden, or a rule that cannot be read: the value never shows.
            Ok(Visibility::Hidden) | Err(_) => Some(Filter::Any(vec![])),
        }
    }
}

impl RelatedRows for ReadAccess<'_> {
    fn condition(
        &self,
        collection: &str,
        alias: &str,
        ctx: &SqlContext,
    ) -> Result<Option<Condition>, FilterError> {
        let Some(rows) = self.item_filter(collection)? else {
            return Ok(None);
        };
        filter::to_condition(&rows, collection, alias, &ctx.trusted()).map(Some)
    }
}
