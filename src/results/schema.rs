//! Each results table is defined once, by the [`table!`](crate::table) macro: its file name, its
//! columns (one per field, named as the field) and their types. The run writes rows with
//! [`Table::to_frame`]; `report` scans the same columns ([`Table::schema`]) and reads rows back
//! with [`Table::from_frame`]. A column's name and type are therefore spelled once, and a writer
//! and a reader cannot drift apart.
//!
//! A field's type says what column it becomes ([`Field`]): text, integer counts, floats, flags,
//! the typed names (`Outcome`, `SharingMode`, ...) as text, a group of columns (the serving
//! metrics), or a list (a request's gaps between chunks, which a CSV copy leaves out).

use polars::prelude::*;

use crate::error::{Error, Result};

/// A results table: rows of `Self`, written as `<NAME>.csv` and `<NAME>.parquet`.
pub trait Table: Sized {
    /// The file name without extension (`jobs`).
    const NAME: &'static str;
    /// Every column with its type, in the order written.
    fn schema() -> Vec<(String, DataType)>;
    fn to_frame(rows: &[Self]) -> Result<DataFrame>;
    /// The rows of a frame with (at least) the columns of [`Table::schema`], cast to its types.
    fn from_frame(df: &DataFrame) -> Result<Vec<Self>>;
}

/// How a field of a table's row becomes columns, and back.
pub trait Field: Sized {
    /// Appends the columns this field spans (one, named `name`, for every scalar).
    fn schema(name: &'static str, out: &mut Vec<(String, DataType)>);
    fn write<'a>(name: &'static str, values: impl Iterator<Item = &'a Self>, out: &mut Vec<Column>)
    where
        Self: 'a;
    /// One value per row of the frame.
    fn read(cells: &Cells, name: &'static str) -> Result<Vec<Self>>;
}

/// Typed access to a column, one method per polars type.
macro_rules! cell_accessors {
    ($($get:ident: $chunked:ty,)*) => {
        $(
            pub fn $get(&self, name: &str) -> Result<&'a $chunked> {
                self.column(name)?.$get().map_err(|e| self.wrong(name, e))
            }
        )*
    };
}

/// A collected frame's columns, with errors that name the table.
pub struct Cells<'a> {
    df: &'a DataFrame,
    table: &'static str,
}

impl<'a> Cells<'a> {
    pub fn new(df: &'a DataFrame, table: &'static str) -> Self {
        Cells { df, table }
    }

    pub fn height(&self) -> usize {
        self.df.height()
    }

    fn column(&self, name: &str) -> Result<&'a Column> {
        self.df.column(name).map_err(|_| {
            Error::Input(format!(
                "{}.parquet has no column '{name}': not a migbench results table",
                self.table
            ))
        })
    }

    fn wrong(&self, name: &str, e: impl std::fmt::Display) -> Error {
        Error::Input(format!(
            "{}.parquet: column '{name}' has an unexpected type: {e}",
            self.table
        ))
    }

    cell_accessors! {
        str: StringChunked,
        f64: Float64Chunked,
        u32: UInt32Chunked,
        u64: UInt64Chunked,
        i32: Int32Chunked,
        bool: BooleanChunked,
        list: ListChunked,
    }
}

/// Builds a table's frame from its columns.
pub fn frame(columns: Vec<Column>) -> Result<DataFrame> {
    DataFrame::new(columns)
        .map_err(|e| Error::Harness(format!("cannot build a results table: {e}")))
}

/// Scalars: one column each. A null in a column that is not optional (a column an older
/// migbench did not write) reads as the type's default; optional fields read it as `None`.
macro_rules! scalar_field {
    ($ty:ty, $dtype:expr, $get:ident, write |$w:ident| $written:expr, read |$r:ident| $owned:expr) => {
        impl Field for $ty {
            fn schema(name: &'static str, out: &mut Vec<(String, DataType)>) {
                out.push((name.to_string(), $dtype));
            }
            fn write<'a>(
                name: &'static str,
                values: impl Iterator<Item = &'a Self>,
                out: &mut Vec<Column>,
            ) {
                let values: Vec<_> = values.map(|$w| $written).collect();
                out.push(Series::new(name.into(), values).into());
            }
            fn read(cells: &Cells, name: &'static str) -> Result<Vec<Self>> {
                let c = cells.$get(name)?;
                Ok(c.into_iter()
                    .map(|v| v.map(|$r| $owned).unwrap_or_default())
                    .collect())
            }
        }

        impl Field for Option<$ty> {
            fn schema(name: &'static str, out: &mut Vec<(String, DataType)>) {
                out.push((name.to_string(), $dtype));
            }
            fn write<'a>(
                name: &'static str,
                values: impl Iterator<Item = &'a Self>,
                out: &mut Vec<Column>,
            ) {
                let values: Vec<Option<_>> =
                    values.map(|v| v.as_ref().map(|$w| $written)).collect();
                let column = Series::new(name.into(), values);
                // Typed even when every value is missing, so that readers see the real type.
                let column = match column.cast(&$dtype) {
                    Ok(typed) => typed,
                    Err(_) => column,
                };
                out.push(column.into());
            }
            fn read(cells: &Cells, name: &'static str) -> Result<Vec<Self>> {
                let c = cells.$get(name)?;
                Ok(c.into_iter().map(|v| v.map(|$r| $owned)).collect())
            }
        }
    };
}

scalar_field!(
    String,
    DataType::String,
    str,
    write | v | v.as_str(),
    read | v | v.to_owned()
);
scalar_field!(f64, DataType::Float64, f64, write | v | *v, read | v | v);
scalar_field!(u32, DataType::UInt32, u32, write | v | *v, read | v | v);
scalar_field!(u64, DataType::UInt64, u64, write | v | *v, read | v | v);
scalar_field!(i32, DataType::Int32, i32, write | v | *v, read | v | v);
scalar_field!(bool, DataType::Boolean, bool, write | v | *v, read | v | v);

/// A list of floats per row (a request's gaps between chunks): a list column, which the Parquet
/// table holds and a CSV copy leaves out ([`crate::results::stream`]). A file without the column
/// (an older run) reads as empty lists.
impl Field for Vec<f64> {
    fn schema(name: &'static str, out: &mut Vec<(String, DataType)>) {
        out.push((
            name.to_string(),
            DataType::List(Box::new(DataType::Float64)),
        ));
    }
    fn write<'a>(
        name: &'static str,
        values: impl Iterator<Item = &'a Self>,
        out: &mut Vec<Column>,
    ) {
        let lists: Vec<Series> = values
            .map(|v| Series::new(PlSmallStr::EMPTY, v.as_slice()))
            .collect();
        let column = Series::new(name.into(), lists);
        let typed = DataType::List(Box::new(DataType::Float64));
        // Typed even with no rows, so that readers see the real type.
        out.push(column.cast(&typed).unwrap_or(column).into());
    }
    fn read(cells: &Cells, name: &'static str) -> Result<Vec<Self>> {
        let lists = cells.list(name)?;
        lists
            .into_iter()
            .map(|v| match v {
                None => Ok(Vec::new()),
                Some(s) => Ok(s
                    .f64()
                    .map_err(|e| cells.wrong(name, e))?
                    .into_iter()
                    .flatten()
                    .collect()),
            })
            .collect()
    }
}

/// A name from a closed set (an outcome, a sharing mode, ...): typed in the program, text in
/// the table.
pub trait Named: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;

    fn parse_name(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == text)
    }
}

/// Reads a name, or says which names are allowed.
fn read_name<T: Named>(cells: &Cells, name: &str, text: &str) -> Result<T> {
    T::parse_name(text).ok_or_else(|| {
        let allowed: Vec<&str> = T::ALL.iter().map(|v| v.as_str()).collect();
        Error::Input(format!(
            "{}.parquet: column '{name}' holds '{text}'; allowed: {}",
            cells.table,
            allowed.join(", ")
        ))
    })
}

/// Makes a [`Named`] type (and its `Option`) a text column.
#[macro_export]
macro_rules! named_field {
    ($ty:ty) => {
        impl $crate::results::schema::Field for $ty {
            fn schema(name: &'static str, out: &mut Vec<(String, polars::prelude::DataType)>) {
                out.push((name.to_string(), polars::prelude::DataType::String));
            }
            fn write<'a>(
                name: &'static str,
                values: impl Iterator<Item = &'a Self>,
                out: &mut Vec<polars::prelude::Column>,
            ) {
                let values = values.map(|v| Some($crate::results::schema::Named::as_str(*v)));
                out.push($crate::results::schema::text_column(name, values));
            }
            fn read(
                cells: &$crate::results::schema::Cells,
                name: &'static str,
            ) -> $crate::error::Result<Vec<Self>> {
                $crate::results::schema::read_names(cells, name)?
                    .into_iter()
                    .map(|v| {
                        v.ok_or_else(|| {
                            $crate::error::Error::Input(format!(
                                "a row has no '{name}': not a migbench results table"
                            ))
                        })
                    })
                    .collect()
            }
        }

        impl $crate::results::schema::Field for Option<$ty> {
            fn schema(name: &'static str, out: &mut Vec<(String, polars::prelude::DataType)>) {
                out.push((name.to_string(), polars::prelude::DataType::String));
            }
            fn write<'a>(
                name: &'static str,
                values: impl Iterator<Item = &'a Self>,
                out: &mut Vec<polars::prelude::Column>,
            ) {
                let values = values.map(|v| v.map($crate::results::schema::Named::as_str));
                out.push($crate::results::schema::text_column(name, values));
            }
            fn read(
                cells: &$crate::results::schema::Cells,
                name: &'static str,
            ) -> $crate::error::Result<Vec<Self>> {
                $crate::results::schema::read_names(cells, name)
            }
        }
    };
}

/// A text column.
pub fn text_column<'a>(name: &str, values: impl Iterator<Item = Option<&'a str>>) -> Column {
    Series::new(name.into(), values.collect::<Vec<_>>()).into()
}

/// The names in a text column, `None` where it is null.
pub fn read_names<T: Named>(cells: &Cells, name: &'static str) -> Result<Vec<Option<T>>> {
    cells
        .str(name)?
        .into_iter()
        .map(|v| v.map(|text| read_name(cells, name, text)).transpose())
        .collect()
}

/// A table's frame as its CSV copy holds it: without its list columns (a list does not fit a
/// cell; the Parquet table has them).
pub fn csv_columns(df: &DataFrame) -> DataFrame {
    let lists: Vec<PlSmallStr> = df
        .get_columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::List(_)))
        .map(|c| c.name().clone())
        .collect();
    df.drop_many(lists)
}

/// Defines a results table: the row struct (every field public, one column each, named as the
/// field) and its [`Table`] implementation.
#[macro_export]
macro_rules! table {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $file:literal {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $crate::results::schema::Table for $name {
            const NAME: &'static str = $file;

            fn schema() -> Vec<(String, polars::prelude::DataType)> {
                let mut out = Vec::new();
                $( <$ty as $crate::results::schema::Field>::schema(stringify!($field), &mut out); )*
                out
            }

            fn to_frame(rows: &[Self]) -> $crate::error::Result<polars::prelude::DataFrame> {
                let mut columns = Vec::new();
                $(
                    <$ty as $crate::results::schema::Field>::write(
                        stringify!($field),
                        rows.iter().map(|r| &r.$field),
                        &mut columns,
                    );
                )*
                $crate::results::schema::frame(columns)
            }

            fn from_frame(
                df: &polars::prelude::DataFrame,
            ) -> $crate::error::Result<Vec<Self>> {
                let cells = $crate::results::schema::Cells::new(df, $file);
                $(
                    let mut $field = <$ty as $crate::results::schema::Field>::read(
                        &cells,
                        stringify!($field),
                    )?
                    .into_iter();
                )*
                // Every field read one value per row of the frame.
                Ok((0..df.height())
                    .map_while(|_| Some($name { $( $field: $field.next()?, )* }))
                    .collect())
            }
        }
    };
}

/// Makes a type with an inherent `as_str` and the given variants [`Named`], and a text column.
#[macro_export]
macro_rules! named {
    ($ty:ident: $($variant:ident),+ $(,)?) => {
        impl $crate::results::schema::Named for $ty {
            const ALL: &'static [Self] = &[$($ty::$variant),+];
            fn as_str(self) -> &'static str {
                $ty::as_str(self)
            }
        }
        $crate::named_field!($ty);
    };
}

/// Columns renamed since a schema version, per table: `(old name, new name)`. A table written
/// under an older version is read with its old names mapped to the new ones.
pub fn renamed_since(version: u32, table: &str) -> &'static [(&'static str, &'static str)] {
    match (version, table) {
        (..=1, "jobs") => &[("start", "start_s"), ("end", "end_s")],
        (..=1, "samples") => &[("t", "t_s")],
        _ => &[],
    }
}

/// Defines a group of columns that are set together, as one field of a table's row: a struct
/// (every field public, `Default` all absent) whose fields are the columns, each named as its
/// field wherever the group stands (the group's own field name is not a column).
#[macro_export]
macro_rules! columns {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $crate::results::schema::Field for $name {
            fn schema(_: &'static str, out: &mut Vec<(String, polars::prelude::DataType)>) {
                $( <$ty as $crate::results::schema::Field>::schema(stringify!($field), out); )*
            }

            fn write<'a>(
                _: &'static str,
                values: impl Iterator<Item = &'a Self>,
                out: &mut Vec<polars::prelude::Column>,
            ) where
                Self: 'a,
            {
                let rows: Vec<&Self> = values.collect();
                $(
                    <$ty as $crate::results::schema::Field>::write(
                        stringify!($field),
                        rows.iter().map(|r| &r.$field),
                        out,
                    );
                )*
            }

            fn read(
                cells: &$crate::results::schema::Cells,
                _: &'static str,
            ) -> $crate::error::Result<Vec<Self>> {
                $(
                    let mut $field =
                        <$ty as $crate::results::schema::Field>::read(cells, stringify!($field))?
                            .into_iter();
                )*
                Ok(std::iter::from_fn(|| Some($name { $( $field: $field.next()?, )* })).collect())
            }
        }
    };
}
