//! The Directus 11 system tables (as of Directus 11.17, migration `20260211A`): names,
//! columns, types, nullability, defaults, keys, indexes and foreign keys, exactly as
//! `../shared/fixtures/directus11-system-schema.md` records them. Constraint names follow
//! Directus's conventions (`<table>_<column>_foreign`, `<table>_<columns>_unique`,
//! `<table>_<column>_index`). Tables are listed so that every table comes after the tables
//! it references.

use rectus_policies::{FieldType, ReferentialAction};

use crate::db::ddl::ColumnKind::{self, *};

pub struct SystemTable {
    pub name: &'static str,
    pub primary_key: &'static str,
    pub columns: &'static [SystemColumn],
    /// Multi- or single-column unique constraints, by column names.
    pub uniques: &'static [&'static [&'static str]],
    /// Single-column plain indexes.
    pub indexes: &'static [&'static str],
}

impl SystemTable {
    pub fn column(&self, name: &str) -> Option<&SystemColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

pub struct SystemColumn {
    pub name: &'static str,
    pub kind: ColumnKind,
    pub nullable: bool,
    pub default: Option<SystemDefault>,
    /// The Directus type when it differs from what the column kind reads as (`hash`, `csv`,
    /// JSON kept in a text column).
    pub directus_type: Option<FieldType>,
    pub references: Option<Reference>,
    /// Directus answers `**********` in place of the value (`special: conceal`).
    pub conceal: bool,
}

impl SystemColumn {
    pub fn field_type(&self) -> FieldType {
        self.directus_type.unwrap_or(self.kind.field_type())
    }

    const fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }

    const fn default(mut self, default: SystemDefault) -> Self {
        self.default = Some(default);
        self
    }

    const fn conceal(mut self) -> Self {
        self.conceal = true;
        self
    }

    const fn directus_type(mut self, t: FieldType) -> Self {
        self.directus_type = Some(t);
        self
    }

    const fn references(
        mut self,
        table: &'static str,
        column: &'static str,
        on_delete: ReferentialAction,
    ) -> Self {
        self.references = Some(Reference {
            table,
            column,
            on_delete,
        });
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SystemDefault {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    Null,
    Now,
}
use SystemDefault::{Bool, Int, Now, Null, Str};

pub struct Reference {
    pub table: &'static str,
    pub column: &'static str,
    pub on_delete: ReferentialAction,
}

const fn col(name: &'static str, kind: ColumnKind) -> SystemColumn {
    SystemColumn {
        name,
        kind,
        nullable: true,
        default: None,
        directus_type: None,
        references: None,
        conceal: false,
    }
}

pub fn system_table(name: &str) -> Option<&'static SystemTable> {
    SYSTEM_TABLES.iter().find(|t| t.name == name)
}

pub static SYSTEM_TABLES: &[SystemTable] = &[
    SystemTable {
        name: "directus_policies",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("name", String(100)).not_null(),
            col("icon", String(64)).not_null().default(Str("badge")),
            col("description", Text),
            col("ip_access", Text).directus_type(FieldType::Csv),
            col("enforce_tfa", Boolean).not_null().default(Bool(false)),
            col("admin_access", Boolean).not_null().default(Bool(false)),
            col("app_access", Boolean).not_null().default(Bool(false)),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_roles",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("name", String(100)).not_null(),
            col("icon", String(64))
                .not_null()
                .default(Str("supervised_user_circle")),
            col("description", Text),
            col("parent", Uuid).references("directus_roles", "id", ReferentialAction::NoAction),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_users",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("first_name", String(50)),
            col("last_name", String(50)),
            col("email", String(128)),
            col("password", String(255)).directus_type(FieldType::Hash),
            col("location", String(255)),
            col("title", String(50)),
            col("description", Text),
            col("tags", Json),
            col("avatar", Uuid),
            col("language", String(255)).default(Null),
            col("tfa_secret", String(255)).conceal(),
            col("status", String(16)).not_null().default(Str("active")),
            col("role", Uuid).references("directus_roles", "id", ReferentialAction::SetNull),
            col("token", String(255)).conceal(),
            col("last_access", Timestamp),
            col("last_page", String(255)),
            col("provider", String(128))
                .not_null()
                .default(Str("default")),
            col("external_identifier", String(255)),
            col("auth_data", Json),
            col("email_notifications", Boolean).default(Bool(true)),
            col("appearance", String(255)),
            col("theme_dark", String(255)),
            col("theme_light", String(255)),
            col("theme_light_overrides", Json),
            col("theme_dark_overrides", Json),
            col("text_direction", String(255))
                .not_null()
                .default(Str("auto")),
        ],
        uniques: &[&["email"], &["external_identifier"], &["token"]],
        indexes: &[],
    },
    SystemTable {
        name: "directus_access",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("role", Uuid).references("directus_roles", "id", ReferentialAction::Cascade),
            col("user", Uuid).references("directus_users", "id", ReferentialAction::Cascade),
            col("policy", Uuid).not_null().references(
                "directus_policies",
                "id",
                ReferentialAction::Cascade,
            ),
            col("sort", Integer),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_activity",
        primary_key: "id",
        columns: &[
            col("id", Serial).not_null(),
            col("action", String(45)).not_null(),
            col("user", Uuid),
            col("timestamp", Timestamp).not_null().default(Now),
            col("ip", String(50)),
            col("user_agent", Text),
            col("collection", String(64)).not_null(),
            col("item", String(255)).not_null(),
            col("origin", String(255)),
        ],
        uniques: &[],
        indexes: &["timestamp"],
    },
    SystemTable {
        name: "directus_collections",
        primary_key: "collection",
        columns: &[
            col("collection", String(64)).not_null(),
            col("icon", String(64)),
            col("note", Text),
            col("display_template", String(255)),
            col("hidden", Boolean).not_null().default(Bool(false)),
            col("singleton", Boolean).not_null().default(Bool(false)),
            col("translations", Json),
            col("archive_field", String(64)),
            col("archive_app_filter", Boolean)
                .not_null()
                .default(Bool(true)),
            col("archive_value", String(255)),
            col("unarchive_value", String(255)),
            col("sort_field", String(64)),
            col("accountability", String(255)).default(Str("all")),
            col("color", String(255)),
            col("item_duplication_fields", Json),
            col("sort", Integer),
            col("group", String(64)).references(
                "directus_collections",
                "collection",
                ReferentialAction::NoAction,
            ),
            col("collapse", String(255)).not_null().default(Str("open")),
            col("preview_url", String(255)),
            col("versioning", Boolean).not_null().default(Bool(false)),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_comments",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("collection", String(64)).not_null(),
            col("item", String(255)).not_null(),
            col("comment", Text).not_null(),
            col("date_created", Timestamp).default(Now),
            col("date_updated", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
            col("user_updated", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::NoAction,
            ),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_dashboards",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("name", String(255)).not_null(),
            col("icon", String(64)).not_null().default(Str("dashboard")),
            col("note", Text),
            col("date_created", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
            col("color", String(255)),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_deployments",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("provider", String(255)).not_null(),
            col("credentials", Text).conceal(),
            col("options", Text),
            col("date_created", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
            col("webhook_ids", Json),
            col("webhook_secret", String(255)).conceal(),
            col("last_synced_at", Timestamp),
        ],
        uniques: &[&["provider"]],
        indexes: &[],
    },
    SystemTable {
        name: "directus_deployment_projects",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("deployment", Uuid).not_null().references(
                "directus_deployments",
                "id",
                ReferentialAction::Cascade,
            ),
            col("external_id", String(255)).not_null(),
            col("name", String(255)).not_null(),
            col("date_created", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
            col("url", String(255)),
            col("framework", String(255)),
            col("deployable", Boolean).not_null().default(Bool(true)),
        ],
        uniques: &[&["deployment", "external_id"]],
        indexes: &[],
    },
    SystemTable {
        name: "directus_deployment_runs",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("project", Uuid).not_null().references(
                "directus_deployment_projects",
                "id",
                ReferentialAction::Cascade,
            ),
            col("external_id", String(255)).not_null(),
            col("target", String(255)).not_null(),
            col("date_created", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
            col("status", String(255)),
            col("url", String(255)),
            col("started_at", Timestamp),
            col("completed_at", Timestamp),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_extensions",
        primary_key: "id",
        columns: &[
            col("enabled", Boolean).not_null().default(Bool(true)),
            col("id", Uuid).not_null(),
            col("folder", String(255)).not_null(),
            col("source", String(255)).not_null(),
            col("bundle", Uuid),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_fields",
        primary_key: "id",
        columns: &[
            col("id", Serial).not_null(),
            col("collection", String(64)).not_null(),
            col("field", String(64)).not_null(),
            col("special", String(64)).directus_type(FieldType::Csv),
            col("interface", String(64)),
            col("options", Json),
            col("display", String(64)),
            col("display_options", Json),
            col("readonly", Boolean).not_null().default(Bool(false)),
            col("hidden", Boolean).not_null().default(Bool(false)),
            col("sort", Integer),
            col("width", String(30)).default(Str("full")),
            col("translations", Json),
            col("note", Text),
            col("conditions", Json),
            col("required", Boolean).default(Bool(false)),
            col("group", String(64)),
            col("validation", Json),
            col("validation_message", Text),
            col("searchable", Boolean).not_null().default(Bool(true)),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_folders",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("name", String(255)).not_null(),
            col("parent", Uuid).references("directus_folders", "id", ReferentialAction::NoAction),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_files",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("storage", String(255)).not_null(),
            col("filename_disk", String(255)),
            col("filename_download", String(255)).not_null(),
            col("title", String(255)),
            col("type", String(255)),
            col("folder", Uuid).references("directus_folders", "id", ReferentialAction::SetNull),
            col("uploaded_by", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::NoAction,
            ),
            col("created_on", Timestamp).not_null().default(Now),
            col("modified_by", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::NoAction,
            ),
            col("modified_on", Timestamp).not_null().default(Now),
            col("charset", String(50)),
            col("filesize", BigInteger),
            col("width", Integer),
            col("height", Integer),
            col("duration", Integer),
            col("embed", String(200)),
            col("description", Text),
            col("location", Text),
            col("tags", Text).directus_type(FieldType::Json),
            col("metadata", Json),
            col("focal_point_x", Integer),
            col("focal_point_y", Integer),
            col("tus_id", String(64)),
            col("tus_data", Json),
            col("uploaded_on", Timestamp),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_flows",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("name", String(255)).not_null(),
            col("icon", String(64)),
            col("color", String(255)),
            col("description", Text),
            col("status", String(255)).not_null().default(Str("active")),
            col("trigger", String(255)),
            col("accountability", String(255)).default(Str("all")),
            col("options", Json),
            col("operation", Uuid),
            col("date_created", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
        ],
        uniques: &[&["operation"]],
        indexes: &[],
    },
    SystemTable {
        name: "directus_migrations",
        primary_key: "version",
        columns: &[
            col("version", String(255)).not_null(),
            col("name", String(255)).not_null(),
            col("timestamp", Timestamp).default(Now),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_notifications",
        primary_key: "id",
        columns: &[
            col("id", Serial).not_null(),
            col("timestamp", Timestamp).default(Now),
            col("status", String(255)).default(Str("inbox")),
            col("recipient", Uuid).not_null().references(
                "directus_users",
                "id",
                ReferentialAction::Cascade,
            ),
            col("sender", Uuid).references("directus_users", "id", ReferentialAction::NoAction),
            col("subject", String(255)).not_null(),
            col("message", Text),
            col("collection", String(64)),
            col("item", String(255)),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_operations",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("name", String(255)),
            col("key", String(255)).not_null(),
            col("type", String(255)).not_null(),
            col("position_x", Integer).not_null(),
            col("position_y", Integer).not_null(),
            col("options", Json),
            col("resolve", Uuid).references(
                "directus_operations",
                "id",
                ReferentialAction::NoAction,
            ),
            col("reject", Uuid).references(
                "directus_operations",
                "id",
                ReferentialAction::NoAction,
            ),
            col("flow", Uuid).not_null().references(
                "directus_flows",
                "id",
                ReferentialAction::Cascade,
            ),
            col("date_created", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
        ],
        uniques: &[&["reject"], &["resolve"]],
        indexes: &[],
    },
    SystemTable {
        name: "directus_panels",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("dashboard", Uuid).not_null().references(
                "directus_dashboards",
                "id",
                ReferentialAction::Cascade,
            ),
            col("name", String(255)),
            col("icon", String(64)).default(Null),
            col("color", String(10)),
            col("show_header", Boolean).not_null().default(Bool(false)),
            col("note", Text),
            col("type", String(255)).not_null(),
            col("position_x", Integer).not_null(),
            col("position_y", Integer).not_null(),
            col("width", Integer).not_null(),
            col("height", Integer).not_null(),
            col("options", Json),
            col("date_created", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_permissions",
        primary_key: "id",
        columns: &[
            col("id", Serial).not_null(),
            col("collection", String(64)).not_null(),
            col("action", String(10)).not_null(),
            col("permissions", Json),
            col("validation", Json),
            col("presets", Json),
            col("fields", Text).directus_type(FieldType::Csv),
            col("policy", Uuid).not_null().references(
                "directus_policies",
                "id",
                ReferentialAction::Cascade,
            ),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_presets",
        primary_key: "id",
        columns: &[
            col("id", Serial).not_null(),
            col("bookmark", String(255)),
            col("user", Uuid).references("directus_users", "id", ReferentialAction::Cascade),
            col("role", Uuid).references("directus_roles", "id", ReferentialAction::Cascade),
            col("collection", String(64)),
            col("search", String(100)),
            col("layout", String(100)).default(Str("tabular")),
            col("layout_query", Json),
            col("layout_options", Json),
            col("refresh_interval", Integer),
            col("filter", Json),
            col("icon", String(64)).default(Str("bookmark")),
            col("color", String(255)),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_relations",
        primary_key: "id",
        columns: &[
            col("id", Serial).not_null(),
            col("many_collection", String(64)).not_null(),
            col("many_field", String(64)).not_null(),
            col("one_collection", String(64)),
            col("one_field", String(64)),
            col("one_collection_field", String(64)),
            col("one_allowed_collections", Text).directus_type(FieldType::Csv),
            col("junction_field", String(64)),
            col("sort_field", String(64)),
            col("one_deselect_action", String(255))
                .not_null()
                .default(Str("nullify")),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_versions",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("key", String(64)).not_null(),
            col("name", String(255)),
            col("collection", String(64)).not_null().references(
                "directus_collections",
                "collection",
                ReferentialAction::Cascade,
            ),
            col("item", String(255)).not_null(),
            col("hash", String(255)),
            col("date_created", Timestamp).default(Now),
            col("date_updated", Timestamp).default(Now),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
            col("user_updated", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::NoAction,
            ),
            col("delta", Json),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_revisions",
        primary_key: "id",
        columns: &[
            col("id", Serial).not_null(),
            col("activity", Integer).not_null().references(
                "directus_activity",
                "id",
                ReferentialAction::Cascade,
            ),
            col("collection", String(64)).not_null(),
            col("item", String(255)).not_null(),
            col("data", Json),
            col("delta", Json),
            col("parent", Integer).references(
                "directus_revisions",
                "id",
                ReferentialAction::NoAction,
            ),
            col("version", Uuid).references("directus_versions", "id", ReferentialAction::Cascade),
        ],
        uniques: &[],
        indexes: &["activity", "parent"],
    },
    SystemTable {
        name: "directus_shares",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("name", String(255)),
            col("collection", String(64)).not_null().references(
                "directus_collections",
                "collection",
                ReferentialAction::Cascade,
            ),
            col("item", String(255)).not_null(),
            col("role", Uuid).references("directus_roles", "id", ReferentialAction::Cascade),
            col("password", String(255)).directus_type(FieldType::Hash),
            col("user_created", Uuid).references(
                "directus_users",
                "id",
                ReferentialAction::SetNull,
            ),
            col("date_created", Timestamp).default(Now),
            col("date_start", Timestamp),
            col("date_end", Timestamp),
            col("times_used", Integer).default(Int(0)),
            col("max_uses", Integer),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_sessions",
        primary_key: "token",
        columns: &[
            col("token", String(64)).not_null(),
            col("user", Uuid).references("directus_users", "id", ReferentialAction::Cascade),
            col("expires", Timestamp).not_null(),
            col("ip", String(255)),
            col("user_agent", Text),
            col("share", Uuid).references("directus_shares", "id", ReferentialAction::Cascade),
            col("origin", String(255)),
            col("next_token", String(64)),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_settings",
        primary_key: "id",
        columns: &[
            col("id", Serial).not_null(),
            col("project_name", String(100))
                .not_null()
                .default(Str("Directus")),
            col("project_url", String(255)),
            col("project_color", String(255))
                .not_null()
                .default(Str("#6644FF")),
            col("project_logo", Uuid).references(
                "directus_files",
                "id",
                ReferentialAction::NoAction,
            ),
            col("public_foreground", Uuid).references(
                "directus_files",
                "id",
                ReferentialAction::NoAction,
            ),
            col("public_background", Uuid).references(
                "directus_files",
                "id",
                ReferentialAction::NoAction,
            ),
            col("public_note", Text),
            col("auth_login_attempts", Integer).default(Int(25)),
            col("auth_password_policy", String(100)),
            col("storage_asset_transform", String(7)).default(Str("all")),
            col("storage_asset_presets", Json),
            col("custom_css", Text),
            col("storage_default_folder", Uuid).references(
                "directus_folders",
                "id",
                ReferentialAction::SetNull,
            ),
            col("basemaps", Json),
            col("mapbox_key", String(255)),
            col("module_bar", Json),
            col("project_descriptor", String(100)),
            col("default_language", String(255))
                .not_null()
                .default(Str("en-US")),
            col("custom_aspect_ratios", Json),
            col("public_favicon", Uuid).references(
                "directus_files",
                "id",
                ReferentialAction::NoAction,
            ),
            col("default_appearance", String(255))
                .not_null()
                .default(Str("auto")),
            col("default_theme_light", String(255)),
            col("theme_light_overrides", Json),
            col("default_theme_dark", String(255)),
            col("theme_dark_overrides", Json),
            col("report_error_url", String(255)),
            col("report_bug_url", String(255)),
            col("report_feature_url", String(255)),
            col("public_registration", Boolean)
                .not_null()
                .default(Bool(false)),
            col("public_registration_verify_email", Boolean)
                .not_null()
                .default(Bool(true)),
            col("public_registration_role", Uuid).references(
                "directus_roles",
                "id",
                ReferentialAction::SetNull,
            ),
            col("public_registration_email_filter", Json),
            col("visual_editor_urls", Json),
            col("project_id", Uuid),
            col("mcp_enabled", Boolean).not_null().default(Bool(false)),
            col("mcp_allow_deletes", Boolean)
                .not_null()
                .default(Bool(false)),
            col("mcp_prompts_collection", String(255)).default(Null),
            col("mcp_system_prompt_enabled", Boolean)
                .not_null()
                .default(Bool(true)),
            col("mcp_system_prompt", Text),
            col("project_owner", String(255)),
            col("project_usage", String(255)),
            col("org_name", String(255)),
            col("product_updates", Boolean),
            col("project_status", String(255)),
            col("ai_openai_api_key", Text).conceal(),
            col("ai_anthropic_api_key", Text).conceal(),
            col("ai_system_prompt", Text),
            col("ai_google_api_key", Text).conceal(),
            col("ai_openai_compatible_api_key", Text).conceal(),
            col("ai_openai_compatible_base_url", Text),
            col("ai_openai_compatible_name", Text),
            col("ai_openai_compatible_models", Json),
            col("ai_openai_compatible_headers", Json),
            col("ai_openai_allowed_models", Json),
            col("ai_anthropic_allowed_models", Json),
            col("ai_google_allowed_models", Json),
            col("collaborative_editing_enabled", Boolean)
                .not_null()
                .default(Bool(false)),
        ],
        uniques: &[],
        indexes: &[],
    },
    SystemTable {
        name: "directus_translations",
        primary_key: "id",
        columns: &[
            col("id", Uuid).not_null(),
            col("language", String(255)).not_null(),
            col("key", String(255)).not_null(),
            col("value", Text).not_null(),
        ],
        uniques: &[],
        indexes: &[],
    },
];
