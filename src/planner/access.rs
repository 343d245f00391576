//! The caller's read permissions as the filter compiler needs them live in `rectus-policies`
//! (the SQL guard uses them too); this builds them from a request's caller.

pub use rectus_policies::ReadAccess;

use crate::services::authz::Caller;

pub fn read_access<'a>(
    schema: &'a rectus_policies::SchemaOverview,
    caller: &'a Caller,
) -> ReadAccess<'a> {
    ReadAccess {
        schema,
        permissions: &caller.permissions,
        variables: &caller.variables,
    }
}
