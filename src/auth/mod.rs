//! Authentication: password hashing now; logins, sessions, tokens and JWTs grow here.

pub mod password;
