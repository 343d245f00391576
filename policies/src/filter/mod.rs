//! The Directus filter language: JSON parsed against the schema into a typed [`Filter`]
//! (`parse`), compiled to a SQL condition per dialect (`compile`), and evaluated in memory on
//! an item (`eval`, for validation rules and for checking the compiler).

mod compile;
mod eval;
mod parse;
mod variables;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

pub use compile::{FieldGuard, RelatedRows, SqlContext, date_part, to_condition};
pub use eval::matches;
pub use parse::{FieldAccess, ParseOptions, parse};
pub use variables::Variables;

use crate::schema::FieldType;
use crate::value::Scalar;

/// A parsed filter. Field names are resolved against the schema; values have the field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every part holds (`_and`, or several keys in one object). Empty: always true.
    All(Vec<Filter>),
    /// Some part holds (`_or`). Empty: never true.
    Any(Vec<Filter>),
    Field(FieldCondition),
    /// The item a many-to-one field points to matches.
    ManyToOne {
        field: String,
        related: String,
        filter: Box<Filter>,
    },
    /// Some (`_some`) or none (`_none`) of the items of a one-to-many field match.
    OneToMany {
        field: String,
        related: String,
        /// The field of `related` that points back here.
        foreign_key: String,
        quantifier: Quantifier,
        filter: Box<Filter>,
    },
    /// `count(field)` of a one-to-many field, compared.
    Count {
        field: String,
        related: String,
        foreign_key: String,
        operator: Operator,
        operand: Operand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Some,
    None,
}

/// One operator on one field (or a date function of it).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCondition {
    pub field: String,
    pub field_type: FieldType,
    pub function: Option<DateFunction>,
    pub operator: Operator,
    pub operand: Operand,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Value(Scalar),
    List(Vec<Scalar>),
    /// `_null: true` and the like.
    Flag(bool),
    /// A dynamic variable with no value (`$CURRENT_USER` for the public): like SQL's
    /// comparison with NULL, it matches nothing.
    Unknown,
}

/// The date parts Directus's field functions extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFunction {
    Year,
    Month,
    Week,
    Day,
    Weekday,
    Hour,
    Minute,
    Second,
}

impl DateFunction {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "year" => Self::Year,
            "month" => Self::Month,
            "week" => Self::Week,
            "day" => Self::Day,
            "weekday" => Self::Weekday,
            "hour" => Self::Hour,
            "minute" => Self::Minute,
            "second" => Self::Second,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Year => "year",
            Self::Month => "month",
            Self::Week => "week",
            Self::Day => "day",
            Self::Weekday => "weekday",
            Self::Hour => "hour",
            Self::Minute => "minute",
            Self::Second => "second",
        }
    }

    /// Whether the function applies to a field of this type.
    pub fn applies_to(self, t: FieldType) -> bool {
        match self {
            Self::Year | Self::Month | Self::Week | Self::Day | Self::Weekday => matches!(
                t,
                FieldType::Date | FieldType::DateTime | FieldType::Timestamp
            ),
            Self::Hour | Self::Minute | Self::Second => matches!(
                t,
                FieldType::Time | FieldType::DateTime | FieldType::Timestamp
            ),
        }
    }
}

macro_rules! operators {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Directus's filter operators.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operator { $($variant),* }

        impl Operator {
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(Operator::$variant),)* _ => None }
            }

            pub fn name(self) -> &'static str {
                match self { $(Operator::$variant => $name),* }
            }
        }
    };
}

operators! {
    Eq => "_eq", Neq => "_neq", Lt => "_lt", Lte => "_lte", Gt => "_gt", Gte => "_gte",
    In => "_in", Nin => "_nin", Null => "_null", NNull => "_nnull",
    Contains => "_contains", NContains => "_ncontains",
    IContains => "_icontains", NIContains => "_nicontains",
    StartsWith => "_starts_with", NStartsWith => "_nstarts_with",
    IStartsWith => "_istarts_with", NIStartsWith => "_nistarts_with",
    EndsWith => "_ends_with", NEndsWith => "_nends_with",
    IEndsWith => "_iends_with", NIEndsWith => "_niends_with",
    Between => "_between", NBetween => "_nbetween",
    Empty => "_empty", NEmpty => "_nempty",
    Regex => "_regex",
    Intersects => "_intersects", NIntersects => "_nintersects",
    IntersectsBbox => "_intersects_bbox", NIntersectsBbox => "_nintersects_bbox",
}

impl Operator {
    /// The text-matching operators: (negated, case-insensitive, kind).
    pub fn text_match(self) -> Option<(bool, bool, TextMatch)> {
        use Operator::*;
        use TextMatch::*;
        Some(match self {
            Contains => (false, false, Anywhere),
            NContains => (true, false, Anywhere),
            IContains => (false, true, Anywhere),
            NIContains => (true, true, Anywhere),
            StartsWith => (false, false, Prefix),
            NStartsWith => (true, false, Prefix),
            IStartsWith => (false, true, Prefix),
            NIStartsWith => (true, true, Prefix),
            EndsWith => (false, false, Suffix),
            NEndsWith => (true, false, Suffix),
            IEndsWith => (false, true, Suffix),
            NIEndsWith => (true, true, Suffix),
            _ => return None,
        })
    }

    pub fn is_geometry(self) -> bool {
        matches!(
            self,
            Operator::Intersects
                | Operator::NIntersects
                | Operator::IntersectsBbox
                | Operator::NIntersectsBbox
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMatch {
    Anywhere,
    Prefix,
    Suffix,
}

/// A filter that cannot be used. `Invalid` is the caller's mistake (`INVALID_QUERY`);
/// `Forbidden` names a field or collection the caller may not use or that does not exist
/// (`FORBIDDEN`: the two are not told apart).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("Invalid query. {message} (at {path}).")]
    Invalid { path: String, message: String },
    #[error(
        "You don't have permission to access field \"{field}\" in collection \"{collection}\" or it does not exist."
    )]
    Forbidden { collection: String, field: String },
}

impl Filter {
    /// Whether the filter reads only the item's own columns: no relation is followed.
    pub fn is_local(&self) -> bool {
        match self {
            Filter::All(parts) | Filter::Any(parts) => parts.iter().all(Filter::is_local),
            Filter::Field(_) => true,
            Filter::ManyToOne { .. } | Filter::OneToMany { .. } | Filter::Count { .. } => false,
        }
    }
}

impl FilterError {
    pub(crate) fn invalid(path: &Path, message: impl fmt::Display) -> Self {
        FilterError::Invalid {
            path: path.to_string(),
            message: message.to_string(),
        }
    }
}

/// Where in the filter JSON a part sits, for error messages: `filter.author.name._eq`.
#[derive(Debug, Clone)]
pub(crate) struct Path(Vec<String>);

impl Path {
    pub(crate) fn root(name: &str) -> Self {
        Path(vec![name.to_string()])
    }

    pub(crate) fn join(&self, part: impl fmt::Display) -> Self {
        let mut parts = self.0.clone();
        parts.push(part.to_string());
        Path(parts)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}
