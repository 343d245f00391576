//! rectus-proxy: the SQL wire endpoints (PostgreSQL and MySQL protocols). Every statement a
//! non-admin client sends is checked and rewritten by the SQL guard in `rectus-policies`
//! before it reaches the database.
//!
//! The listeners arrive with the wire-endpoint issues; until then the crate only fixes the
//! dependency direction of the workspace (`rectus` -> `rectus-proxy` -> `rectus-policies`).

pub use rectus_policies as policies;
