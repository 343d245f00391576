//! Integration tests: rectus seen from outside, against the real PostgreSQL (127.0.0.1:5432),
//! MariaDB (127.0.0.1:3306) and SQLite. Each test makes its own database and drops it.

mod aggregate;
mod auth;
mod bootstrap;
mod clerk;
mod config_errors;
mod datamodel;
mod filter_differential;
mod graphql;
mod introspection;
mod items;
mod list_order;
mod nested_writes;
mod openapi;
mod rbac;
mod sdk;
mod server;
mod support;
mod system_relations;
mod timestamps;
mod wire_fuzz;
mod wire_mysql;
mod wire_mysql_admin_shared;
mod wire_mysql_bound;
mod wire_mysql_dump;
mod wire_mysql_protocol;
mod wire_mysql_shared;
mod wire_pg;
mod wire_pg_admin_shared;
mod wire_pg_bound;
mod wire_pg_clients;
mod wire_pg_shared;
mod write_errors;
mod write_groups;
