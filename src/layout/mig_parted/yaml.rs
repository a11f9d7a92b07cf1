//! Reading the YAML tree with its positions: where a node is, what it is, as a reader would say.

use saphyr::{MarkedYaml, Scalar, YamlData};

use super::{Failure, Pos};

pub(super) fn pos(node: &MarkedYaml) -> Pos {
    Pos {
        line: node.span.start.line(),
        column: node.span.start.col() + 1,
    }
}

/// A node as a message shows it: `the string "v2"`, `a list`.
pub(super) fn describe(node: &MarkedYaml) -> String {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => format!("the string \"{}\"", crate::bounds::short(s)),
        YamlData::Value(Scalar::Integer(i)) => format!("the number {i}"),
        YamlData::Value(Scalar::FloatingPoint(f)) => format!("the number {f}"),
        YamlData::Value(Scalar::Boolean(b)) => format!("{b}"),
        YamlData::Value(Scalar::Null) => "nothing (null)".into(),
        YamlData::Representation(s, ..) => format!("\"{}\"", crate::bounds::short(s)),
        YamlData::Sequence(_) => "a list".into(),
        YamlData::Mapping(_) => "a mapping".into(),
        YamlData::Tagged(..) => "a tagged value".into(),
        YamlData::Alias(_) => "an alias".into(),
        YamlData::BadValue => "a bad value".into(),
    }
}

pub(super) fn string(node: &MarkedYaml) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Representation(s, ..) => Some(s.to_string()),
        _ => None,
    }
}

/// A mapping's entries with string keys, in file order.
pub(super) fn mapping<'a>(
    node: &'a MarkedYaml<'a>,
    what: &str,
    expected: &str,
) -> Result<Vec<(String, &'a MarkedYaml<'a>)>, Failure> {
    match &node.data {
        YamlData::Mapping(map) => map
            .iter()
            .map(|(k, v)| match &k.data {
                YamlData::Value(Scalar::String(s)) => Ok((s.to_string(), v)),
                _ => Err((
                    pos(k),
                    format!("{what}: keys are names, found {}", describe(k)),
                )),
            })
            .collect(),
        _ => Err((
            pos(node),
            format!("{what}: expected {expected}, found {}", describe(node)),
        )),
    }
}
