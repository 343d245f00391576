//! Checks on a GraphQL document before any of it runs: its size in lexical tokens
//! (`GRAPHQL_QUERY_TOKEN_LIMIT`, counted before parsing so that a huge document costs
//! nothing to refuse), how deep its brackets nest (so the parser's recursion stays
//! bounded), and after parsing how deep its selections nest and how many aliases it uses,
//! fragments expanded — the ways one request could otherwise multiply work.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, parser};

use crate::config::GraphqlSettings;

/// How deep `{`, `(` and `[` may nest in the text; far beyond any sensible query, well
/// within what the parser's recursion can take.
const BRACKET_NESTING_LIMIT: usize = 128;

/// Why a document is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too big or not GraphQL at all.
    Syntax(String),
    /// Well-formed but over a limit.
    Limit(String),
}

/// Counts lexical tokens (commas, white space and comments are not tokens) and the deepest
/// bracket nesting; refuses beyond the limits.
fn scan(text: &str, token_limit: usize) -> Result<(), Refusal> {
    let bytes = text.as_bytes();
    let mut tokens = 0usize;
    let mut nesting = 0usize;
    let mut i = 0;
    let token = |tokens: &mut usize| {
        *tokens += 1;
        match *tokens > token_limit {
            true => Err(Refusal::Syntax(format!(
                "Syntax Error: Document contains more than {token_limit} tokens. Parsing aborted."
            ))),
            false => Ok(()),
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                token(&mut tokens)?;
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                token(&mut tokens)?;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'(' | b'[' => {
                token(&mut tokens)?;
                nesting += 1;
                if nesting > BRACKET_NESTING_LIMIT {
                    return Err(Refusal::Syntax(format!(
                        "Syntax Error: Document nests brackets more than {BRACKET_NESTING_LIMIT} deep."
                    )));
                }
                i += 1;
            }
            b'}' | b')' | b']' => {
                token(&mut tokens)?;
                nesting = nesting.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                token(&mut tokens)?;
                i += 3;
            }
            c if c == b'_' || c == b'-' || c.is_ascii_alphanumeric() => {
                token(&mut tokens)?;
                i += 1;
                while i < bytes.len()
                    && (bytes[i] == b'_'
                        || bytes[i].is_ascii_alphanumeric()
                        || (matches!(bytes[i], b'.' | b'+' | b'-')
                            && bytes[i - 1].is_ascii_alphanumeric()
                            && !bytes[i..].starts_with(b"...")))
                {
                    i += 1;
                }
            }
            _ => {
                token(&mut tokens)?;
                i += 1;
            }
        }
    }
    Ok(())
}

/// Depth and alias count of selection sets, fragments measured once each.
struct Measure<'d> {
    document: &'d ExecutableDocument,
    fragments: HashMap<&'d Name, (usize, usize)>,
    visiting: HashSet<&'d Name>,
}

impl<'d> Measure<'d> {
    /// (deepest nesting, aliases) of `set`; introspection fields do not count.
    fn selection_set(&mut self, set: &'d SelectionSet) -> (usize, usize) {
        let mut depth = 0usize;
        let mut aliases = 0usize;
        for item in &set.items {
            let (d, a) = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.name.node.starts_with("__") {
                        (0, 0)
                    } else {
                        let (d, a) = self.selection_set(&field.selection_set.node);
                        (d + 1, a.saturating_add(usize::from(field.alias.is_some())))
                    }
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node)
                }
            };
            depth = depth.max(d);
            aliases = aliases.saturating_add(a);
        }
        (depth, aliases)
    }

    fn fragment(&mut self, name: &'d Name) -> (usize, usize) {
        if let Some(measured) = self.fragments.get(name) {
            return *measured;
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return (0, 0);
        };
        // A cycle is invalid GraphQL; validation reports it.
        if !self.visiting.insert(name) {
            return (0, 0);
        }
        let measured = self.selection_set(&fragment.node.selection_set.node);
        self.visiting.remove(name);
        self.fragments.insert(name, measured);
        measured
    }
}

/// A document that passed the checks, and whether the operation to run is a mutation.
pub struct Checked {
    pub document: ExecutableDocument,
    pub mutation: bool,
}

pub fn check(
    text: &str,
    operation_name: Option<&str>,
    settings: &GraphqlSettings,
) -> Result<Checked, Refusal> {
    scan(text, settings.token_limit)?;
    let document =
        parser::parse_query(text).map_err(|e| Refusal::Syntax(format!("Syntax Error: {e}")))?;
    let mut measure = Measure {
        document: &document,
        fragments: HashMap::new(),
        visiting: HashSet::new(),
    };
    let mut depth = 0usize;
    let mut aliases = 0usize;
    let mut mutation = false;
    for (name, operation) in document.operations.iter() {
        let (d, a) = measure.selection_set(&operation.node.selection_set.node);
        depth = depth.max(d);
        aliases = aliases.saturating_add(a);
        let chosen = match (&document.operations, operation_name) {
            (DocumentOperations::Single(_), _) => true,
            (DocumentOperations::Multiple(_), Some(wanted)) => {
                name.is_some_and(|n| n.as_str() == wanted)
            }
            (DocumentOperations::Multiple(_), None) => false,
        };
        if chosen && operation.node.ty == OperationType::Mutation {
            mutation = true;
        }
    }
    if depth > settings.depth_limit {
        return Err(Refusal::Limit(format!(
            "The query nests {depth} levels deep; at most {} are allowed (GRAPHQL_QUERY_DEPTH_LIMIT).",
            settings.depth_limit
        )));
    }
    if aliases > settings.alias_limit {
        return Err(Refusal::Limit(format!(
            "The query uses {aliases} aliases; at most {} are allowed (GRAPHQL_QUERY_ALIAS_LIMIT).",
            settings.alias_limit
        )));
    }
    Ok(Checked { document, mutation })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GraphqlSettings {
        GraphqlSettings {
            introspection: true,
            token_limit: 40,
            depth_limit: 3,
            alias_limit: 2,
        }
    }

    fn refusal(text: &str) -> Option<Refusal> {
        check(text, None, &settings()).err()
    }

    #[test]
    fn tokens_are_counted_as_graphql_counts_them() {
        assert_eq!(scan("{ a, b # comment, c d e\n }", 4), Ok(()));
        assert!(scan("{ a b c }", 4).is_err());
        for (text, tokens) in [
            (r#"{ a(x: "one, two \" three") }"#, 8),
            ("{ a(x: \"\"\"block { ( [\"\"\") }", 8),
            ("{ a(x: -1.5e+3) ...F }", 10),
        ] {
            assert_eq!(scan(text, tokens), Ok(()), "{text}");
            assert!(scan(text, tokens - 1).is_err(), "{text}");
        }
        assert!(matches!(
            refusal(&"{a ".repeat(50)),
            Some(Refusal::Syntax(_))
        ));
        let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(scan(&nested, 10_000), Err(Refusal::Syntax(m)) if m.contains("nests")));
    }

    #[test]
    fn depth_and_aliases_count_through_fragments() {
        assert!(refusal("{ a { b { c } } }").is_none());
        assert!(matches!(
            refusal("{ a { b { c { d } } } }"),
            Some(Refusal::Limit(_))
        ));
        assert!(matches!(
            refusal("query { ...F } fragment F on Query { a { b { c { d } } } }"),
            Some(Refusal::Limit(_))
        ));
        assert!(
            refusal("{ __schema { types { fields { type { ofType { name } } } } } }").is_none()
        );
        assert!(refusal("{ x: a y: a }").is_none());
        assert!(matches!(
            refusal("{ x: a y: a z: a }"),
            Some(Refusal::Limit(_))
        ));
        assert!(matches!(
            refusal("{ ...F ...F } fragment F on Query { x: a y: a }"),
            Some(Refusal::Limit(m)) if m.contains("4 aliases")
        ));
        assert!(matches!(refusal("{ a "), Some(Refusal::Syntax(_))));
    }

    /// Documents as deep as the bracket limit allows are answered on a thread with the stack
    /// of a tokio worker (2 MiB), by the depth limit or the parser's own recursion limit;
    /// one level more is refused before the parser runs.
    #[test]
    fn deep_documents_cannot_exhaust_the_stack() {
        let deep = |n: usize| format!("{}{}", "{ a ".repeat(n), "}".repeat(n));
        let settings = GraphqlSettings {
            token_limit: 100_000,
            ..GraphqlSettings::default()
        };
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                (
                    check(&deep(30), None, &settings).err(),
                    check(&deep(BRACKET_NESTING_LIMIT), None, &settings).err(),
                    check(&deep(BRACKET_NESTING_LIMIT + 1), None, &settings).err(),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(
            matches!(outcome.0, Some(Refusal::Limit(_))),
            "{:?}",
            outcome.0
        );
        assert!(outcome.1.is_some());
        assert!(matches!(outcome.2, Some(Refusal::Syntax(m)) if m.contains("nests")));
    }

    proptest::proptest! {
        /// Any text is answered with a document or a refusal, never a panic.
        #[test]
        fn any_text_is_checked_without_panicking(text in "[{}()\\[\\]a-z0-9_:$@!.,\" #\n-]{0,200}") {
            let _ = check(&text, None, &GraphqlSettings::default());
        }
    }

    #[test]
    fn the_chosen_operation_decides_mutation() {
        let s = settings();
        assert!(check("mutation { a }", None, &s).unwrap().mutation);
        assert!(!check("{ a }", None, &s).unwrap().mutation);
        let two = "query Q { a } mutation M { b }";
        assert!(check(two, Some("M"), &s).unwrap().mutation);
        assert!(!check(two, Some("Q"), &s).unwrap().mutation);
    }
}
