//! Allow-lists: the functions, types and session settings a guarded statement may use.
//! Only side-effect-free built-ins; nothing that runs SQL text, reads files or the network,
//! changes settings, sleeps, or reveals server state.

/// Built-in functions callable through the guard (PostgreSQL names, lower case).
const FUNCTIONS: &[&str] = &[
    // aggregates
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "bool_and",
    "bool_or",
    "every",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "bit_and",
    "bit_or",
    // window functions
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // conditional
    "coalesce",
    "nullif",
    "greatest",
    "least",
    // math
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "trunc",
    "sqrt",
    "cbrt",
    "power",
    "pow",
    "mod",
    "sign",
    "exp",
    "ln",
    "log",
    "log10",
    "div",
    "pi",
    "degrees",
    "radians",
    "width_bucket",
    "random",
    // strings
    "lower",
    "upper",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "substr",
    "substring",
    "btrim",
    "ltrim",
    "rtrim",
    "trim",
    "replace",
    "concat",
    "concat_ws",
    "left",
    "right",
    "lpad",
    "rpad",
    "strpos",
    "position",
    "split_part",
    "initcap",
    "reverse",
    "repeat",
    "md5",
    "starts_with",
    "translate",
    "ascii",
    "chr",
    "regexp_replace",
    "regexp_match",
    "regexp_matches",
    "regexp_like",
    "regexp_count",
    "regexp_substr",
    "regexp_split_to_array",
    "string_to_array",
    "array_to_string",
    "to_hex",
    "quote_literal",
    "quote_ident",
    "quote_nullable",
    "encode",
    "decode",
    "sha256",
    "sha512",
    "unaccent",
    // formatting and conversion
    "to_char",
    "to_number",
    "to_date",
    "to_timestamp",
    // date and time
    "now",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "date_trunc",
    "date_part",
    "date_bin",
    "extract",
    "age",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "isfinite",
    "timezone",
    // json
    "to_json",
    "to_jsonb",
    "row_to_json",
    "array_to_json",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "json_object",
    "jsonb_object",
    "json_extract_path",
    "json_extract_path_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "json_array_length",
    "jsonb_array_length",
    "json_typeof",
    "jsonb_typeof",
    "json_each",
    "jsonb_each",
    "json_each_text",
    "jsonb_each_text",
    "json_array_elements",
    "jsonb_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements_text",
    "json_object_keys",
    "jsonb_object_keys",
    "jsonb_set",
    "jsonb_insert",
    "jsonb_strip_nulls",
    "json_strip_nulls",
    "jsonb_pretty",
    "jsonb_path_query",
    "jsonb_path_exists",
    "jsonb_path_match",
    "jsonb_path_query_array",
    "jsonb_path_query_first",
    // arrays and sets
    "array_length",
    "array_position",
    "array_positions",
    "array_append",
    "array_prepend",
    "array_cat",
    "array_remove",
    "array_replace",
    "cardinality",
    "unnest",
    "generate_series",
    "array_lower",
    "array_upper",
    "array_ndims",
    "array_dims",
    // uuid
    "gen_random_uuid",
    // ARRAY(subquery)
    "array",
];

/// Catalog functions that reveal nothing beyond their arguments (which come from the
/// virtual catalogs or are plain values).
const CATALOG_FUNCTIONS: &[&str] = &[
    "format_type",
    "pg_encoding_to_char",
    "pg_get_expr",
    "pg_relation_is_publishable",
    "current_database",
];

/// Catalog functions that look an object up by id: any id could name anything, so their
/// first argument must be a column of a virtual catalog.
const OBJECT_FUNCTIONS: &[&str] = &[
    "pg_table_is_visible",
    "pg_get_userbyid",
    "pg_get_indexdef",
    "pg_get_constraintdef",
    "pg_get_statisticsobjdef_columns",
    "obj_description",
    "col_description",
];

pub fn catalog_function(name: &str) -> bool {
    CATALOG_FUNCTIONS.contains(&name)
}

pub fn object_function(name: &str) -> bool {
    OBJECT_FUNCTIONS.contains(&name)
}

/// Types whose cast looks an object up by id or name: only for virtual catalog columns.
pub fn object_type(printed: &str) -> bool {
    let base = printed
        .trim()
        .trim_start_matches("pg_catalog.")
        .to_lowercase();
    matches!(base.as_str(), "regclass" | "regtype" | "regnamespace")
}

/// Operators psql spells `OPERATOR(pg_catalog.x)`.
pub fn catalog_operator(parts: &[String]) -> bool {
    matches!(parts, [schema, op] if schema == "pg_catalog" && matches!(
        op.as_str(),
        "~" | "~*" | "!~" | "!~*" | "=" | "<>" | "<" | "<=" | ">" | ">=" | "~~" | "~~*" | "!~~" | "!~~*" | "||"
    ))
}

/// Function-like keywords that are not schema functions and must not be qualified.
const KEYWORD_FUNCTIONS: &[&str] = &[
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "extract",
    "position",
    "substring",
    "trim",
    "array",
];

pub fn allowed_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

pub fn is_keyword_function(name: &str) -> bool {
    KEYWORD_FUNCTIONS.contains(&name)
}

/// Names PostgreSQL reads as session information when unquoted (the upstream role, its
/// schema): refused wherever they appear as bare words.
pub fn session_keyword(name: &str) -> bool {
    matches!(
        name,
        "current_user"
            | "session_user"
            | "user"
            | "current_role"
            | "current_catalog"
            | "current_schema"
            | "system_user"
    )
}

/// Types a value may be cast to: the plain built-in ones (no `reg*` types, which look up
/// catalog objects, no `xml`, no composite or user types).
pub fn allowed_type(printed: &str) -> bool {
    let base = printed
        .trim()
        .trim_start_matches("pg_catalog.")
        .trim_end_matches("[]")
        .split('(')
        .next()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    matches!(
        base.as_str(),
        "smallint"
            | "integer"
            | "int"
            | "bigint"
            | "int2"
            | "int4"
            | "int8"
            | "numeric"
            | "decimal"
            | "real"
            | "float"
            | "float4"
            | "float8"
            | "double precision"
            | "double"
            | "text"
            | "varchar"
            | "character varying"
            | "char"
            | "character"
            | "boolean"
            | "bool"
            | "date"
            | "time"
            | "timestamp"
            | "timestamptz"
            | "timestamp with time zone"
            | "timestamp without time zone"
            | "time with time zone"
            | "time without time zone"
            | "interval"
            | "uuid"
            | "json"
            | "jsonb"
            | "bytea"
            | "name"
            | "oid"
    )
}

/// Session settings a guarded client may `SET`, `RESET` and `SHOW`. Settings that change
/// how text is read (`client_encoding`, `standard_conforming_strings`) or which objects names
/// reach (`search_path`, roles) are not here.
const SETTINGS: &[&str] = &[
    "application_name",
    "datestyle",
    "timezone",
    "time zone",
    "extra_float_digits",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "intervalstyle",
    "bytea_output",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "transaction_isolation",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    // Text reads run as prepared statements upstream: a session with skewed data may ask
    // PostgreSQL to plan every run with its values, as for a text query.
    "plan_cache_mode",
];

/// Settings that may be read but not changed.
const READ_ONLY_SETTINGS: &[&str] = &[
    "client_encoding",
    "standard_conforming_strings",
    "server_version",
    "server_version_num",
    "server_encoding",
    "integer_datetimes",
    "max_identifier_length",
    "transaction_read_only",
    "transaction isolation level",
];

pub fn settable(name: &str) -> bool {
    SETTINGS.contains(&name)
}

pub fn showable(name: &str) -> bool {
    SETTINGS.contains(&name) || READ_ONLY_SETTINGS.contains(&name)
}
