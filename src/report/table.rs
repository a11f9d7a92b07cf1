//! A table as every exporter sees it: typed columns and rows, so that one description serves the
//! terminal, Markdown, HTML and CSV. Adding a table to the report is building one of these.

use std::borrow::Cow;

use super::stats::Summary;

/// A table of the report.
#[derive(Debug, Clone)]
pub struct Table {
    /// File stem of its CSV (`variants` → `variants.csv`).
    pub name: &'static str,
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// Sentences shown under the table: what the columns mean.
    pub notes: Vec<String>,
    /// Printed in the terminal too, not only written to the files.
    pub terminal: bool,
}

#[derive(Debug, Clone)]
pub struct Column {
    /// Machine name: the CSV header (a statistic adds `_mean`, `_sd`, ...).
    pub key: Cow<'static, str>,
    /// Name for people; `\n` breaks it in the terminal.
    pub header: Cow<'static, str>,
    pub kind: Kind,
    pub role: Role,
}

/// What a column holds and how it is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Text,
    /// A sharing mode: HTML gives it the mode's colour.
    Mode,
    Count,
    Number {
        digits: usize,
    },
    Stat {
        shown: Shown,
        digits: usize,
    },
}

/// Which part of a [`Summary`] a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// `249 ± 1.2`, or the value alone for one value.
    MeanSd,
    Mean,
    Max,
    /// `247–252`.
    Range,
}

/// Where a column appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Rows are grouped under a heading made of these columns' values; CSV keeps them as
    /// columns.
    Group,
    /// Everywhere, the terminal included.
    Brief,
    /// In the files (Markdown, HTML, CSV) but not the terminal, which keeps to 100 columns.
    Detail,
    /// Only in the terminal: a compact form of detail columns (`2/1/0 of 3`).
    Terminal,
    /// Only in the CSV: what a program reading the data needs and the other formats say
    /// another way (a currency that the cost column's header names).
    Data,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Count(u64),
    Number(Option<f64>),
    Stat(Option<Summary>),
}

impl Column {
    pub const fn new(key: &'static str, header: &'static str, kind: Kind, role: Role) -> Self {
        Column {
            key: Cow::Borrowed(key),
            header: Cow::Borrowed(header),
            kind,
            role,
        }
    }

    /// A column named by the data (one per GPU model in a table across GPUs).
    pub fn named(key: String, header: String, kind: Kind, role: Role) -> Self {
        Column {
            key: Cow::Owned(key),
            header: Cow::Owned(header),
            kind,
            role,
        }
    }

    /// The header on one line.
    pub fn title(&self) -> String {
        self.header.replace('\n', " ")
    }

    /// Numbers read best right-aligned.
    pub fn numeric(&self) -> bool {
        !matches!(self.kind, Kind::Text | Kind::Mode)
    }
}

impl Table {
    /// Indices of the columns with `role`.
    pub fn columns_with(&self, roles: &[Role]) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&c| roles.contains(&self.columns[c].role))
            .collect()
    }

    /// A value as people read it; `-` for nothing.
    pub fn display(&self, column: usize, value: &Value) -> String {
        let kind = self.columns[column].kind;
        match (value, kind) {
            (Value::Text(t), _) => t.clone(),
            (Value::Count(n), _) => n.to_string(),
            (Value::Number(Some(x)), Kind::Number { digits }) => fixed(*x, digits),
            (Value::Number(Some(x)), _) => x.to_string(),
            (Value::Stat(Some(s)), Kind::Stat { shown, digits }) => match shown {
                Shown::MeanSd => match s.stddev {
                    Some(sd) => format!("{} ± {}", fixed(s.mean, digits), fixed(sd, digits)),
                    None => fixed(s.mean, digits),
                },
                Shown::Mean => fixed(s.mean, digits),
                Shown::Max => fixed(s.max, digits),
                Shown::Range => format!("{}–{}", fixed(s.min, digits), fixed(s.max, digits)),
            },
            (Value::Stat(Some(s)), _) => fixed(s.mean, 2),
            (Value::Number(None) | Value::Stat(None), _) => "-".into(),
        }
    }

    /// Runs of consecutive rows with the same group values: `(heading, row indices)`. A table
    /// without group columns is one group with an empty heading.
    pub fn groups(&self) -> Vec<(String, Vec<usize>)> {
        let group_columns = self.columns_with(&[Role::Group]);
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            let heading: Vec<String> = group_columns
                .iter()
                .map(|&c| self.display(c, &row[c]))
                .collect();
            let heading = heading.join(" · ");
            match groups.last_mut() {
                Some((h, rows)) if *h == heading => rows.push(i),
                _ => groups.push((heading, vec![i])),
            }
        }
        groups
    }
}

/// `x` with `digits` decimals.
fn fixed(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            name: "t",
            title: "T".into(),
            columns: vec![
                Column::new("scenario", "Scenario", Kind::Text, Role::Group),
                Column::new("variant", "Variant", Kind::Text, Role::Brief),
                Column::new(
                    "time_s",
                    "Time s",
                    Kind::Stat {
                        shown: Shown::MeanSd,
                        digits: 1,
                    },
                    Role::Brief,
                ),
            ],
            rows: ["a", "a", "b"]
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    vec![
                        Value::Text(s.to_string()),
                        Value::Text(format!("v{i}")),
                        Value::Stat(Summary::of(&[1.0, 2.0, 3.0 + i as f64])),
                    ]
                })
                .collect(),
            notes: vec![],
            terminal: true,
        }
    }

    #[test]
    fn rows_group_under_their_heading() {
        let groups = table().groups();
        assert_eq!(
            groups,
            vec![("a".to_string(), vec![0, 1]), ("b".to_string(), vec![2])]
        );
    }

    #[test]
    fn statistics_show_as_asked() {
        let t = table();
        assert_eq!(t.display(2, &t.rows[0][2]), "2.0 ± 1.0");
        assert_eq!(t.display(2, &Value::Stat(Summary::of(&[4.0]))), "4.0");
        assert_eq!(t.display(2, &Value::Stat(None)), "-");
    }
}
