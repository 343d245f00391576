//! Directus queries to SQL: one statement per read, JSON built by the database, the caller's
//! permissions applied to rows, fields, filters, search and sort. REST and GraphQL share it.

pub mod access;
pub mod aggregate;
pub mod cache;
pub mod deep;
pub mod fields;
pub mod query;
pub mod read;
pub mod tree;
pub mod write;

pub use cache::PlanCache;
pub use query::Query;
pub use read::{PlanContext, ReadPlan, plan_read};
