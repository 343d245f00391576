//! Filter JSON to a typed [`Filter`]: field names resolved against the schema (and checked
//! against what the caller may read), relations followed, dynamic variables substituted,
//! values coerced to the field's type.

use serde_json::{Map, Value as Json};

use super::variables::Resolved;
use super::{
    DateFunction, FieldCondition, Filter, FilterError, Operand, Operator, Path, Quantifier,
    Variables,
};
use crate::schema::{Collection, FieldType, SchemaOverview};
use crate::value::{Scalar, coerce};

/// Which fields the caller may use in a filter.
pub trait FieldAccess {
    fn can_read(&self, collection: &str, field: &str) -> bool;
}

impl<F: Fn(&str, &str) -> bool> FieldAccess for F {
    fn can_read(&self, collection: &str, field: &str) -> bool {
        self(collection, field)
    }
}

pub struct ParseOptions<'a> {
    pub schema: &'a SchemaOverview,
    pub variables: &'a Variables,
    /// `_regex` is for validation rules only.
    pub allow_regex: bool,
    /// `None`: no field checks (permission rules, admins).
    pub access: Option<&'a dyn FieldAccess>,
    /// The name the path of error messages starts with (`filter`, `deep.x._filter`, ...).
    pub root: &'a str,
}

/// Parses a filter on `collection`. `{}` and `null` are the filter that admits everything.
pub fn parse(collection: &str, json: &Json, options: &ParseOptions) -> Result<Filter, FilterError> {
    let path = Path::root(options.root);
    let Some(collection) = options.schema.collection(collection) else {
        return Err(FilterError::Forbidden {
            collection: collection.to_string(),
            field: String::new(),
        });
    };
    match json {
        Json::Null => Ok(Filter::All(vec![])),
        Json::Object(map) => Parser { options }.object(collection, map, &path),
        _ => Err(FilterError::invalid(&path, "A filter must be an object")),
    }
}

struct Parser<'a, 'b> {
    options: &'a ParseOptions<'b>,
}

fn all(mut parts: Vec<Filter>) -> Filter {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Filter::All(parts)
    }
}

impl Parser<'_, '_> {
    fn object(
        &self,
        collection: &Collection,
        map: &Map<String, Json>,
        path: &Path,
    ) -> Result<Filter, FilterError> {
        let mut parts = Vec::with_capacity(map.len());
        for (key, value) in map {
            let here = path.join(key);
            parts.push(match key.as_str() {
                "_and" | "_or" => {
                    let items = value.as_array().ok_or_else(|| {
                        FilterError::invalid(&here, format!("\"{key}\" needs an array of filters"))
                    })?;
                    let mut list = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let item_path = here.join(i);
                        let object = item.as_object().ok_or_else(|| {
                            FilterError::invalid(&item_path, "A filter must be an object")
                        })?;
                        list.push(self.object(collection, object, &item_path)?);
                    }
                    if key == "_and" {
                        Filter::All(list)
                    } else {
                        Filter::Any(list)
                    }
                }
                k if k.starts_with('_') => {
                    return Err(FilterError::invalid(
                        &here,
                        format!("\"{k}\" is not a field or a logical operator"),
                    ));
                }
                k => self.field_entry(collection, k, value, &here)?,
            });
        }
        Ok(all(parts))
    }

    fn check_access(&self, collection: &str, field: &str) -> Result<(), FilterError> {
        match self.options.access {
            Some(access) if !access.can_read(collection, field) => Err(FilterError::Forbidden {
                collection: collection.to_string(),
                field: field.to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn forbidden(collection: &Collection, field: &str) -> FilterError {
        FilterError::Forbidden {
            collection: collection.collection.clone(),
            field: field.to_string(),
        }
    }

    fn field_entry(
        &self,
        collection: &Collection,
        key: &str,
        value: &Json,
        path: &Path,
    ) -> Result<Filter, FilterError> {
        let operators = value.as_object().ok_or_else(|| {
            FilterError::invalid(path, "A field's filter must be an object of operators")
        })?;
        if let Some((function, argument)) = parse_function(key) {
            return self.function_entry(collection, function, argument, operators, path);
        }
        let field = collection
            .field(key)
            .ok_or_else(|| Self::forbidden(collection, key))?;
        self.check_access(&collection.collection, key)?;
        let schema = self.options.schema;
        let all_operators = operators.keys().all(|k| k.starts_with('_'));
        let no_operators = operators.keys().all(|k| !k.starts_with('_'));

        if field.is_alias() {
            let relation = schema
                .one_to_many_by_alias(&collection.collection, key)
                .ok_or_else(|| {
                    FilterError::invalid(
                        path,
                        format!("\"{key}\" is not a field that can be filtered"),
                    )
                })?;
            let related = relation.many_collection.clone();
            let foreign_key = relation.many_field.clone();
            let related_collection = schema
                .collection(&related)
                .ok_or_else(|| Self::forbidden(collection, key))?;
            let make = |quantifier, filter| Filter::OneToMany {
                field: key.to_string(),
                related: related.clone(),
                foreign_key: foreign_key.clone(),
                quantifier,
                filter: Box::new(filter),
            };
            if no_operators {
                return Ok(make(
                    Quantifier::Some,
                    self.object(related_collection, operators, path)?,
                ));
            }
            let mut parts = Vec::new();
            for (op, sub) in operators {
                let here = path.join(op);
                let quantifier = match op.as_str() {
                    "_some" => Quantifier::Some,
                    "_none" => Quantifier::None,
                    _ => {
                        return Err(FilterError::invalid(
                            &here,
                            format!(
                                "\"{op}\" cannot be used on the one-to-many field \"{key}\": use _some or _none"
                            ),
                        ));
                    }
                };
                let sub = sub
                    .as_object()
                    .ok_or_else(|| FilterError::invalid(&here, "A filter must be an object"))?;
                parts.push(make(
                    quantifier,
                    self.object(related_collection, sub, &here)?,
                ));
            }
            return Ok(all(parts));
        }

        if no_operators && !operators.is_empty() {
            let relation = schema
                .many_to_one(&collection.collection, key)
                .filter(|r| r.one_collection.is_some())
                .ok_or_else(|| {
                    FilterError::invalid(path, format!("\"{key}\" is not a relational field"))
                })?;
            let related = relation.one_collection.clone().unwrap_or_default();
            let related_collection = schema
                .collection(&related)
                .ok_or_else(|| Self::forbidden(collection, key))?;
            return Ok(Filter::ManyToOne {
                field: key.to_string(),
                related: related.clone(),
                filter: Box::new(self.object(related_collection, operators, path)?),
            });
        }
        if !all_operators {
            return Err(FilterError::invalid(
                path,
                "Operators and related fields cannot be mixed in one object",
            ));
        }
        // Concealed values (static tokens, secrets) are as unsearchable as hashes.
        let kind = if field.has_special("conceal") {
            FieldType::Hash
        } else {
            field.kind
        };
        let mut parts = Vec::with_capacity(operators.len());
        for (op, operand) in operators {
            let here = path.join(op);
            parts.push(Filter::Field(
                self.condition(key, kind, None, op, operand, &here)?,
            ));
        }
        Ok(all(parts))
    }

    fn function_entry(
        &self,
        collection: &Collection,
        function: &str,
        argument: &str,
        operators: &Map<String, Json>,
        path: &Path,
    ) -> Result<Filter, FilterError> {
        let field = collection
            .field(argument)
            .ok_or_else(|| Self::forbidden(collection, argument))?;
        self.check_access(&collection.collection, argument)?;
        let mut parts = Vec::with_capacity(operators.len());
        if function == "count" {
            let relation = self
                .options
                .schema
                .one_to_many_by_alias(&collection.collection, argument)
                .ok_or_else(|| {
                    FilterError::invalid(
                        path,
                        format!("count() needs a one-to-many field, not \"{argument}\""),
                    )
                })?;
            for (op, operand) in operators {
                let here = path.join(op);
                let condition =
                    self.condition(argument, FieldType::Integer, None, op, operand, &here)?;
                parts.push(Filter::Count {
                    field: argument.to_string(),
                    related: relation.many_collection.clone(),
                    foreign_key: relation.many_field.clone(),
                    operator: condition.operator,
                    operand: condition.operand,
                });
            }
            return Ok(all(parts));
        }
        let date_function = DateFunction::parse(function).ok_or_else(|| {
            FilterError::invalid(path, format!("\"{function}\" is not a field function"))
        })?;
        if !date_function.applies_to(field.kind) {
            return Err(FilterError::invalid(
                path,
                format!(
                    "{function}() cannot be used on the {} field \"{argument}\"",
                    field.kind
                ),
            ));
        }
        for (op, operand) in operators {
            let here = path.join(op);
            parts.push(Filter::Field(self.condition(
                argument,
                field.kind,
                Some(date_function),
                op,
                operand,
                &here,
            )?));
        }
        Ok(all(parts))
    }

    fn condition(
        &self,
        field: &str,
        field_type: FieldType,
        function: Option<DateFunction>,
        op: &str,
        operand: &Json,
        path: &Path,
    ) -> Result<FieldCondition, FilterError> {
        let operator = Operator::parse(op).ok_or_else(|| {
            FilterError::invalid(path, format!("\"{op}\" is not a filter operator"))
        })?;
        if operator.is_geometry() {
            return Err(FilterError::invalid(
                path,
                format!("{op} is not supported on this database"),
            ));
        }
        if operator == Operator::Regex && !self.options.allow_regex {
            return Err(FilterError::invalid(
                path,
                "_regex can only be used in validation rules",
            ));
        }
        // The value a function yields is a number, whatever the field's type.
        let value_type = if function.is_some() {
            FieldType::Integer
        } else {
            field_type
        };
        let null_checks = matches!(
            operator,
            Operator::Null | Operator::NNull | Operator::Empty | Operator::NEmpty
        );
        if field_type == FieldType::Hash && !matches!(operator, Operator::Null | Operator::NNull) {
            return Err(FilterError::invalid(
                path,
                format!("The hashed field \"{field}\" can only be filtered with _null and _nnull"),
            ));
        }
        if matches!(
            field_type,
            FieldType::Json | FieldType::Binary | FieldType::Alias
        ) && function.is_none()
            && !null_checks
        {
            return Err(FilterError::invalid(
                path,
                format!("{op} cannot be used on the {field_type} field \"{field}\""),
            ));
        }
        let text_like = matches!(
            value_type,
            FieldType::String
                | FieldType::Text
                | FieldType::Csv
                | FieldType::Uuid
                | FieldType::Unknown
        );
        if (operator.text_match().is_some() || operator == Operator::Regex) && !text_like {
            return Err(FilterError::invalid(
                path,
                format!(
                    "{op} can only be used on text fields, not on the {value_type} field \"{field}\""
                ),
            ));
        }

        let operand = match operator {
            Operator::Null | Operator::NNull | Operator::Empty | Operator::NEmpty => {
                Operand::Flag(parse_flag(operand).ok_or_else(|| {
                    FilterError::invalid(path, format!("{op} needs true or false"))
                })?)
            }
            Operator::In | Operator::Nin => {
                if operand.as_array().is_some_and(Vec::is_empty)
                    || operand.as_str().is_some_and(|s| s.trim().is_empty())
                {
                    return Err(FilterError::invalid(
                        path,
                        format!("{op} needs at least one value"),
                    ));
                }
                let items = self.list(operand, path)?;
                let mut values = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    // A missing variable inside a list contributes nothing.
                    if let Some(v) = self.resolve(item, &path.join(i))? {
                        values.push(self.typed(&v, value_type, &path.join(i))?);
                    }
                }
                Operand::List(values)
            }
            Operator::Between | Operator::NBetween => {
                let items = self.list(operand, path)?;
                if items.len() != 2 {
                    return Err(FilterError::invalid(path, format!("{op} needs two values")));
                }
                let mut values = Vec::with_capacity(2);
                for (i, item) in items.iter().enumerate() {
                    match self.resolve(item, &path.join(i))? {
                        Some(v) => values.push(self.typed(&v, value_type, &path.join(i))?),
                        None => return Ok(unknown(field, field_type, function, operator)),
                    }
                }
                Operand::List(values)
            }
            Operator::Regex => {
                let pattern = operand
                    .as_str()
                    .ok_or_else(|| FilterError::invalid(path, "_regex needs a pattern"))?;
                regex::Regex::new(&strip_regex_delimiters(pattern))
                    .map_err(|e| FilterError::invalid(path, format!("invalid _regex: {e}")))?;
                Operand::Value(Scalar::Text(pattern.to_string()))
            }
            _ => match self.resolve(operand, path)? {
                None => return Ok(unknown(field, field_type, function, operator)),
                Some(Json::Array(_)) => {
                    return Err(FilterError::invalid(
                        path,
                        format!("{op} needs one value, not a list"),
                    ));
                }
                Some(v) if operator.text_match().is_some() => {
                    Operand::Value(Scalar::Text(match &v {
                        Json::String(s) => s.clone(),
                        Json::Number(_) | Json::Bool(_) => v.to_string(),
                        _ => {
                            return Err(FilterError::invalid(
                                path,
                                format!("{op} needs a text value"),
                            ));
                        }
                    }))
                }
                Some(v) => Operand::Value(self.typed(&v, value_type, path)?),
            },
        };
        Ok(FieldCondition {
            field: field.to_string(),
            field_type,
            function,
            operator,
            operand,
        })
    }

    /// Substitutes a dynamic variable; `None` when it has no value for this caller.
    fn resolve(&self, value: &Json, path: &Path) -> Result<Option<Json>, FilterError> {
        let Json::String(text) = value else {
            return Ok(Some(value.clone()));
        };
        match self
            .options
            .variables
            .resolve(text)
            .map_err(|m| FilterError::invalid(path, m))?
        {
            Resolved::NotVariable => Ok(Some(value.clone())),
            Resolved::Value(v) => Ok(Some(v)),
            Resolved::Missing => Ok(None),
        }
    }

    /// A list operand: a JSON array, a comma-separated string (query strings), or a variable
    /// that stands for a list.
    fn list(&self, operand: &Json, path: &Path) -> Result<Vec<Json>, FilterError> {
        let operand = match operand {
            Json::String(s) if s.starts_with('$') => {
                self.resolve(operand, path)?.unwrap_or(Json::Array(vec![]))
            }
            other => other.clone(),
        };
        let mut out = Vec::new();
        match operand {
            Json::Array(items) => {
                for item in items {
                    // `["$CURRENT_ROLES", "x"]`: a list variable inside a list expands.
                    match &item {
                        Json::String(s) if s.starts_with('$') => match self.resolve(&item, path)? {
                            Some(Json::Array(inner)) => out.extend(inner),
                            Some(v) => out.push(v),
                            None => {}
                        },
                        _ => out.push(item),
                    }
                }
            }
            Json::String(s) => out.extend(s.split(',').map(|p| Json::String(p.trim().to_string()))),
            Json::Number(_) | Json::Bool(_) => out.push(operand),
            _ => return Err(FilterError::invalid(path, "needs a list of values")),
        }
        Ok(out)
    }

    fn typed(
        &self,
        value: &Json,
        field_type: FieldType,
        path: &Path,
    ) -> Result<Scalar, FilterError> {
        coerce(value, field_type).map_err(|m| FilterError::invalid(path, m))
    }
}

fn unknown(
    field: &str,
    field_type: FieldType,
    function: Option<DateFunction>,
    operator: Operator,
) -> FieldCondition {
    FieldCondition {
        field: field.to_string(),
        field_type,
        function,
        operator,
        operand: Operand::Unknown,
    }
}

fn parse_flag(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::String(s) if s == "true" || s == "1" => Some(true),
        Json::String(s) if s == "false" || s == "0" => Some(false),
        Json::Number(n) => n.as_i64().map(|n| n != 0),
        Json::Null => Some(true),
        _ => None,
    }
}

/// `year(date_created)` -> ("year", "date_created").
fn parse_function(key: &str) -> Option<(&str, &str)> {
    let (name, rest) = key.split_once('(')?;
    let argument = rest.strip_suffix(')')?;
    (!name.is_empty() && !argument.is_empty()).then_some((name, argument))
}

/// Directus accepts JavaScript-style `/pattern/flags`; the flags that matter become inline.
pub(crate) fn strip_regex_delimiters(pattern: &str) -> String {
    if let Some(rest) = pattern.strip_prefix('/')
        && let Some(end) = rest.rfind('/')
    {
        let (body, flags) = (&rest[..end], &rest[end + 1..]);
        let inline: String = flags
            .chars()
            .filter(|c| matches!(c, 'i' | 'm' | 's'))
            .collect();
        return if inline.is_empty() {
            body.to_string()
        } else {
            format!("(?{inline}){body}")
        };
    }
    pattern.to_string()
}
