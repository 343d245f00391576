//! The GraphQL types every schema shares, named as Directus names them: the scalars
//! (`JSON`, `Date`, `GraphQLStringOrFloat`), the filter operator inputs
//! per kind of field, the function objects (`datetime_functions`, `count_functions`) and the
//! answers of deletes; and the mapping of Directus field types onto them.

use async_graphql::Value;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, Scalar, TypeRef,
};
use rectus_policies::FieldType;

pub const JSON: &str = "JSON";
pub const DATE: &str = "Date";
pub const STRING_OR_FLOAT: &str = "GraphQLStringOrFloat";

pub const DATETIME_FUNCTIONS: &str = "datetime_functions";
pub const DATE_FUNCTIONS: &str = "date_functions";
pub const TIME_FUNCTIONS: &str = "time_functions";
pub const COUNT_FUNCTIONS: &str = "count_functions";
pub const DELETE_ONE: &str = "delete_one";
pub const DELETE_MANY: &str = "delete_many";

const STRING_OPS: &str = "string_filter_operators";
const NUMBER_OPS: &str = "number_filter_operators";
const BOOLEAN_OPS: &str = "boolean_filter_operators";
const DATE_OPS: &str = "date_filter_operators";
const HASH_OPS: &str = "hash_filter_operators";
const JSON_OPS: &str = "json_filter_operators";
pub const COUNT_FUNCTION_OPS: &str = "count_function_filter_operators";
pub const DATETIME_FUNCTION_OPS: &str = "datetime_function_filter_operators";

/// Names the shared types take; a collection with one of these names gets no types.
pub const RESERVED: &[&str] = &[
    JSON,
    DATE,
    STRING_OR_FLOAT,
    DATETIME_FUNCTIONS,
    DATE_FUNCTIONS,
    TIME_FUNCTIONS,
    COUNT_FUNCTIONS,
    DELETE_ONE,
    DELETE_MANY,
    STRING_OPS,
    NUMBER_OPS,
    BOOLEAN_OPS,
    DATE_OPS,
    HASH_OPS,
    JSON_OPS,
    COUNT_FUNCTION_OPS,
    DATETIME_FUNCTION_OPS,
    "Query",
    "Mutation",
    "Int",
    "Float",
    "String",
    "Boolean",
    "ID",
];

/// The date parts each kind of date field offers.
pub const DATETIME_PARTS: [&str; 8] = [
    "year", "month", "week", "day", "weekday", "hour", "minute", "second",
];
const DATE_PARTS: [&str; 5] = ["year", "month", "week", "day", "weekday"];
const TIME_PARTS: [&str; 3] = ["hour", "minute", "second"];

/// A name GraphQL accepts (`/[_A-Za-z][_0-9A-Za-z]*/`, not starting with `__`).
pub fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !name.starts_with("__")
}

/// The output (and input) type of a field's value; `None` for fields GraphQL does not show.
pub fn scalar_type(kind: FieldType) -> Option<TypeRef> {
    Some(match kind {
        FieldType::String | FieldType::Text | FieldType::Uuid | FieldType::Hash => {
            TypeRef::named(TypeRef::STRING)
        }
        FieldType::Integer => TypeRef::named(TypeRef::INT),
        FieldType::Float => TypeRef::named(TypeRef::FLOAT),
        // Strings where a number would lose precision, as the REST answers hold them.
        FieldType::BigInteger | FieldType::Decimal => TypeRef::named(STRING_OR_FLOAT),
        FieldType::Boolean => TypeRef::named(TypeRef::BOOLEAN),
        FieldType::Date | FieldType::Time | FieldType::DateTime | FieldType::Timestamp => {
            TypeRef::named(DATE)
        }
        FieldType::Json | FieldType::Binary | FieldType::Unknown => TypeRef::named(JSON),
        FieldType::Csv => TypeRef::named_list(TypeRef::STRING),
        FieldType::Alias => return None,
    })
}

/// The filter operator input of a field type.
pub fn filter_operators(kind: FieldType) -> Option<&'static str> {
    Some(match kind {
        FieldType::String | FieldType::Text | FieldType::Uuid | FieldType::Csv => STRING_OPS,
        FieldType::Integer | FieldType::BigInteger | FieldType::Float | FieldType::Decimal => {
            NUMBER_OPS
        }
        FieldType::Boolean => BOOLEAN_OPS,
        FieldType::Date | FieldType::Time | FieldType::DateTime | FieldType::Timestamp => DATE_OPS,
        FieldType::Hash => HASH_OPS,
        FieldType::Json | FieldType::Binary | FieldType::Unknown => JSON_OPS,
        FieldType::Alias => return None,
    })
}

/// The function object of a date field (`<field>_func`).
pub fn date_functions(kind: FieldType) -> Option<&'static str> {
    match kind {
        FieldType::Date => Some(DATE_FUNCTIONS),
        FieldType::Time => Some(TIME_FUNCTIONS),
        FieldType::DateTime | FieldType::Timestamp => Some(DATETIME_FUNCTIONS),
        _ => None,
    }
}

/// The date parts of a function object.
pub fn parts_of(functions: &str) -> &'static [&'static str] {
    match functions {
        DATE_FUNCTIONS => &DATE_PARTS,
        TIME_FUNCTIONS => &TIME_PARTS,
        _ => &DATETIME_PARTS,
    }
}

/// A field that answers the value its parent object holds under its own name.
pub fn plain_field(name: &str, ty: TypeRef) -> Field {
    let key = name.to_string();
    Field::new(name, ty, move |ctx| {
        let value = match ctx.parent_value.as_value() {
            Some(Value::Object(map)) => map.get(key.as_str()).cloned(),
            _ => None,
        };
        FieldFuture::Value(value.filter(|v| *v != Value::Null).map(FieldValue::value))
    })
}

fn scalar(name: &str, accepts: fn(&Value) -> bool) -> Scalar {
    Scalar::new(name).validator(accepts)
}

fn operators(name: &str, value: &str, list: &str, ordered: bool, text: bool) -> InputObject {
    let mut input = InputObject::new(name)
        .field(InputValue::new("_eq", TypeRef::named(value)))
        .field(InputValue::new("_neq", TypeRef::named(value)))
        .field(InputValue::new("_null", TypeRef::named(TypeRef::BOOLEAN)))
        .field(InputValue::new("_nnull", TypeRef::named(TypeRef::BOOLEAN)));
    if !list.is_empty() {
        input = input
            .field(InputValue::new("_in", TypeRef::named_list(list)))
            .field(InputValue::new("_nin", TypeRef::named_list(list)));
    }
    if ordered {
        for op in ["_gt", "_gte", "_lt", "_lte"] {
            input = input.field(InputValue::new(op, TypeRef::named(value)));
        }
        input = input
            .field(InputValue::new("_between", TypeRef::named_list(value)))
            .field(InputValue::new("_nbetween", TypeRef::named_list(value)));
    }
    if text {
        for op in [
            "_contains",
            "_ncontains",
            "_icontains",
            "_nicontains",
            "_starts_with",
            "_nstarts_with",
            "_istarts_with",
            "_nistarts_with",
            "_ends_with",
            "_nends_with",
            "_iends_with",
            "_niends_with",
        ] {
            input = input.field(InputValue::new(op, TypeRef::named(TypeRef::STRING)));
        }
        input = input
            .field(InputValue::new("_empty", TypeRef::named(TypeRef::BOOLEAN)))
            .field(InputValue::new("_nempty", TypeRef::named(TypeRef::BOOLEAN)));
    }
    input
}

fn number_like(value: &Value) -> bool {
    matches!(value, Value::Number(_) | Value::String(_))
}

/// The shared types, to register in every schema.
pub fn shared() -> (Vec<Scalar>, Vec<InputObject>, Vec<Object>) {
    let scalars = vec![
        scalar(JSON, |_| true),
        scalar(DATE, |v| matches!(v, Value::String(_))),
        scalar(STRING_OR_FLOAT, number_like),
    ];
    let inputs = vec![
        operators(STRING_OPS, TypeRef::STRING, TypeRef::STRING, false, true),
        operators(NUMBER_OPS, STRING_OR_FLOAT, STRING_OR_FLOAT, true, false),
        operators(BOOLEAN_OPS, TypeRef::BOOLEAN, "", false, false),
        operators(DATE_OPS, TypeRef::STRING, TypeRef::STRING, true, false),
        InputObject::new(HASH_OPS)
            .field(InputValue::new("_null", TypeRef::named(TypeRef::BOOLEAN)))
            .field(InputValue::new("_nnull", TypeRef::named(TypeRef::BOOLEAN)))
            .field(InputValue::new("_empty", TypeRef::named(TypeRef::BOOLEAN)))
            .field(InputValue::new("_nempty", TypeRef::named(TypeRef::BOOLEAN))),
        InputObject::new(JSON_OPS)
            .field(InputValue::new("_null", TypeRef::named(TypeRef::BOOLEAN)))
            .field(InputValue::new("_nnull", TypeRef::named(TypeRef::BOOLEAN))),
        InputObject::new(COUNT_FUNCTION_OPS)
            .field(InputValue::new("count", TypeRef::named(NUMBER_OPS))),
        DATETIME_PARTS
            .iter()
            .fold(InputObject::new(DATETIME_FUNCTION_OPS), |input, part| {
                input.field(InputValue::new(*part, TypeRef::named(NUMBER_OPS)))
            }),
    ];
    let function_object = |name: &str, parts: &[&str]| {
        parts.iter().fold(Object::new(name), |object, part| {
            object.field(plain_field(part, TypeRef::named(TypeRef::INT)))
        })
    };
    let objects = vec![
        function_object(DATETIME_FUNCTIONS, &DATETIME_PARTS),
        function_object(DATE_FUNCTIONS, &DATE_PARTS),
        function_object(TIME_FUNCTIONS, &TIME_PARTS),
        function_object(COUNT_FUNCTIONS, &["count"]),
        Object::new(DELETE_ONE).field(plain_field("id", TypeRef::named_nn(TypeRef::ID))),
        Object::new(DELETE_MANY).field(plain_field("ids", TypeRef::named_nn_list_nn(TypeRef::ID))),
    ];
    (scalars, inputs, objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_names() {
        assert!(is_graphql_name("orders"));
        assert!(is_graphql_name("_x1"));
        assert!(!is_graphql_name("1x"));
        assert!(!is_graphql_name("my-table"));
        assert!(!is_graphql_name("__type"));
        assert!(!is_graphql_name(""));
    }

    #[test]
    fn every_field_type_has_a_place() {
        for kind in FieldType::ALL {
            assert_eq!(
                scalar_type(kind).is_some(),
                kind != FieldType::Alias,
                "{kind}"
            );
            assert_eq!(
                filter_operators(kind).is_some(),
                kind != FieldType::Alias,
                "{kind}"
            );
        }
    }
}
