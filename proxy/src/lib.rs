//! rectus-proxy: the SQL wire endpoints. Every statement a non-admin client sends is checked
//! and rewritten by the SQL guard in `rectus-policies` before it reaches the database; admin
//! sessions are forwarded as they are.

pub mod pg;

pub use rectus_policies as policies;
