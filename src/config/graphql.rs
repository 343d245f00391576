//! Settings of the GraphQL endpoints (`GRAPHQL_*`): Directus's introspection switch and
//! token limit, and rectus's bounds on nesting and aliases, which keep one request from
//! multiplying work without end.

use super::{ConfigError, flag};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlSettings {
    /// `GRAPHQL_INTROSPECTION`: whether `__schema` and `__type` answer.
    pub introspection: bool,
    /// `GRAPHQL_QUERY_TOKEN_LIMIT`: the most lexical tokens a document may have.
    pub token_limit: usize,
    /// `GRAPHQL_QUERY_DEPTH_LIMIT`: the deepest nesting of selection sets (introspection
    /// fields not counted).
    pub depth_limit: usize,
    /// `GRAPHQL_QUERY_ALIAS_LIMIT`: the most aliased fields in a document.
    pub alias_limit: usize,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        GraphqlSettings {
            introspection: true,
            token_limit: 5000,
            depth_limit: 12,
            alias_limit: 50,
        }
    }
}

pub(super) fn graphql(
    take: &mut impl FnMut(&str) -> Option<String>,
) -> Result<GraphqlSettings, ConfigError> {
    let defaults = GraphqlSettings::default();
    let mut count = |name: &str, default: usize| -> Result<usize, ConfigError> {
        match take(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{name}={text} is not valid: use a whole number of 1 or more"
                    ))
                }),
        }
    };
    let token_limit = count("GRAPHQL_QUERY_TOKEN_LIMIT", defaults.token_limit)?;
    let depth_limit = count("GRAPHQL_QUERY_DEPTH_LIMIT", defaults.depth_limit)?;
    let alias_limit = count("GRAPHQL_QUERY_ALIAS_LIMIT", defaults.alias_limit)?;
    let introspection =
        flag("GRAPHQL_INTROSPECTION", take("GRAPHQL_INTROSPECTION"))?.unwrap_or(true);
    Ok(GraphqlSettings {
        introspection,
        token_limit,
        depth_limit,
        alias_limit,
    })
}
