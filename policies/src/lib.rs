//! rectus-policies: the one RBAC layer of rectus. It owns the schema model that every layer
//! shares, and (as it grows) accountability, effective permissions, the filter language and
//! the SQL guard. It does no I/O: no runtime, no drivers, so it is fast to test and to fuzz.

pub mod access;
pub mod accountability;
pub mod dialect;
pub mod filter;
pub mod guard;
pub mod permissions;
pub mod schema;
pub mod value;

pub use access::ReadAccess;
pub use accountability::{Accountability, Action};
pub use dialect::Dialect;
pub use permissions::{EffectivePermissions, PermissionRecord, Rules, Visibility};
pub use schema::{
    Collection, DefaultValue, Field, FieldType, ForeignKey, ReferentialAction, Relation,
    SchemaOverview,
};
