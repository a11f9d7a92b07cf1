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

/// What a node is, without what it holds: `a string`, `a list`.
pub(super) fn kind(node: &MarkedYaml) -> &'static str {
    match &node.data {
        YamlData::Value(Scalar::String(_)) | YamlData::Representation(..) => "a string",
        YamlData::Value(Scalar::Integer(_) | Scalar::FloatingPoint(_)) => "a number",
        YamlData::Value(Scalar::Boolean(_)) => "a boolean",
        YamlData::Value(Scalar::Null) => "nothing (null)",
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        YamlData::Tagged(..) => "a tagged value",
        YamlData::Alias(_) => "an alias",
        YamlData::BadValue => "a bad value",
    }
}

/// A `version` value that is not v1, shown only when it looks like a version (`v2`, `1`): in a
/// file that is not a mig-parted file it could be anything.
pub(super) fn version_shown(node: &MarkedYaml) -> String {
    let looks_like_one = |s: &str| {
        let digits = s.strip_prefix(['v', 'V']).unwrap_or(s);
        !digits.is_empty() && digits.len() <= 4 && digits.bytes().all(|b| b.is_ascii_digit())
    };
    match &node.data {
        YamlData::Value(Scalar::Integer(_) | Scalar::FloatingPoint(_)) => describe(node),
        _ if string(node).as_deref().is_some_and(looks_like_one) => describe(node),
        _ => kind(node).into(),
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
