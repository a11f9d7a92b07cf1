//! Cost columns: a figure in a scenario's currency is never shown without it. The header names
//! the currency when every row's is the same (the currency column is then in the CSV only);
//! otherwise a currency column (not in the terminal) names each row's.

use super::stats::Summary;
use super::table::{Column, Kind, Role, Value};

/// Said of a cost whose run's scenario can no longer be read.
pub const UNKNOWN_CURRENCY: &str = "currency unknown";

/// A cost column and what each row holds in it.
pub struct CostColumn<'a> {
    pub key: &'static str,
    pub header: &'static str,
    /// The key of the column that names each row's currency.
    pub currency_key: &'static str,
    pub kind: Kind,
    pub role: Role,
    /// Per row: the cost, and its currency (`None`: unknown).
    pub values: Vec<(Option<Summary>, Option<&'a str>)>,
}

/// Appends the cost column and its currency column to `columns` and to each row of `cells`.
pub fn push(columns: &mut Vec<Column>, cells: &mut [Vec<Value>], cost: CostColumn) {
    let mut currencies: Vec<&str> = cost.values.iter().filter_map(currency_of).collect();
    currencies.sort_unstable();
    currencies.dedup();
    // One currency: the header names it, and the currency column is for the CSV only.
    let (header, currency_role) = match currencies.as_slice() {
        [one] => (format!("{}, {one}", cost.header), Role::Data),
        _ => (cost.header.to_string(), Role::Detail),
    };
    columns.push(Column::named(cost.key.into(), header, cost.kind, cost.role));
    columns.push(Column::new(
        cost.currency_key,
        "Currency",
        Kind::Text,
        currency_role,
    ));
    for (row, value) in cells.iter_mut().zip(&cost.values) {
        row.push(Value::Stat(value.0));
        row.push(Value::Text(currency_of(value).unwrap_or("-").into()));
    }
}

/// The currency of a row pooled from several runs: each code once, joined with `/` (runs whose
/// scenarios price in different currencies); `None` when no run gives one.
pub fn pooled_currency<'a>(codes: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut codes: Vec<&str> = codes.into_iter().collect();
    codes.sort_unstable();
    codes.dedup();
    (!codes.is_empty()).then(|| codes.join("/"))
}

/// A row's currency where it has a cost.
fn currency_of<'a>((value, currency): &(Option<Summary>, Option<&'a str>)) -> Option<&'a str> {
    value.map(|_| currency.unwrap_or(UNKNOWN_CURRENCY))
}
