//! Property tests that arbitrary input never panics the parsers a client can reach: SQL text, values of
//! every column type, identifiers, JWTs and query strings.

use proptest::prelude::*;
use serde_json::Value;

use crate::{
    auth::jwt,
    http,
    store::{ColumnType, ddl, ident},
};

const TYPES: [ColumnType; 13] = [
    ColumnType::Number {
        precision: 38,
        scale: 0,
    },
    ColumnType::Number {
        precision: 5,
        scale: 2,
    },
    ColumnType::Float,
    ColumnType::Varchar { length: 8 },
    ColumnType::Binary { length: 4 },
    ColumnType::Boolean,
    ColumnType::Date,
    ColumnType::Time { scale: 9 },
    ColumnType::TimestampNtz { scale: 9 },
    ColumnType::TimestampLtz { scale: 9 },
    ColumnType::TimestampTz { scale: 9 },
    ColumnType::Object,
    ColumnType::Array,
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::String),
        "[0-9:T+\\-. Zz]{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn sql_parsing_never_panics(text in "\\PC{0,80}") {
        let _ = ddl::parse(&text);
    }

    #[test]
    fn ddl_shaped_text_never_panics(
        text in "(CREATE|ALTER|TABLE|SCHEMA|IF|NOT|EXISTS|ADD|COLUMN|NUMBER|VARCHAR|\\(|\\)|,|\\.|;|\"[^\"]{0,3}\"|'x'|[0-9]{1,12}|[a-z]{1,4}| ){0,24}"
    ) {
        let _ = ddl::parse(&text);
    }

    #[test]
    fn coercion_never_panics(value in json_value()) {
        for ty in TYPES {
            let _ = ty.coerce_value(&value);
        }
    }

    #[test]
    fn identifiers_never_panic(a in "\\PC{0,20}") {
        let _ = ident::resolve(&a);
        let _ = ident::display(&a);
        let _ = http::query_pairs(Some(&a));
    }

    #[test]
    fn jwt_verification_never_panics(token in "[A-Za-z0-9_\\-.=]{0,120}") {
        let _ = jwt::verify(&token, 0, |_, _| Some(vec![vec![0u8; 4]]));
    }
}
