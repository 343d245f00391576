//! Authentication: password hashing, access tokens (JWT), refresh tokens.

pub mod jwt;
pub mod password;
pub mod tokens;
