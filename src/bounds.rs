//! The limits on what scenario and workload files may hold: the range of every number, the
//! largest counts, and the characters of names.
//!
//! Numbers and counts are checked while the file is parsed (the `deserialize_with` helpers
//! below), so an error points at the offending value and says what was found and what is
//! allowed. A value outside its range would otherwise hang a run (an infinite start time), grow
//! memory without bound (a billion jobs) or corrupt its results (a NaN memory limit). The limits
//! are documented in `docs/scenario.md`; keep the two in step.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// Seconds of any duration or start time: 30 days. No experiment on one GPU runs longer, and a
/// start time beyond it is a typo (or `1e308`), not a plan.
pub const MAX_SECONDS: f64 = 30.0 * 24.0 * 3600.0;
/// GiB of any memory figure: well above the largest GPU in the catalog (B200, 180 GB).
pub const MAX_GIB: f64 = 1024.0;
/// Jobs of one variant, over all its groups: the jobs are expanded one by one before a run.
pub const MAX_JOBS_PER_VARIANT: u64 = 1024;
/// Repetitions of one variant.
pub const MAX_REPETITIONS: u32 = 100;
/// Model servers of one variant (each gets a port and its own load).
pub const MAX_SERVERS_PER_VARIANT: usize = 64;
/// Clients of one MPS server on Volta and later GPUs (NVIDIA's MPS documentation: 48 client
/// CUDA contexts per device in the versions migbench was written from, 60 in current ones; 48
/// holds on every driver; under MIG the limit is lowered in proportion to the compute
/// instance's share of the GPU).
pub const MPS_MAX_CLIENTS: u32 = 48;
/// Characters of a scenario, variant or workload name.
pub const MAX_NAME_LEN: usize = 64;

/// A range of numbers, each end open or closed. NaN is in no range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    /// The minimum itself is not allowed.
    pub min_open: bool,
    pub max: f64,
    /// The maximum itself is not allowed.
    pub max_open: bool,
}

impl Range {
    /// `min <= v <= max`.
    pub const fn closed(min: f64, max: f64) -> Range {
        Range {
            min,
            min_open: false,
            max,
            max_open: false,
        }
    }

    /// `min < v <= max`.
    pub const fn above(min: f64, max: f64) -> Range {
        Range {
            min,
            min_open: true,
            max,
            max_open: false,
        }
    }

    /// `min <= v < max`.
    pub const fn below(min: f64, max: f64) -> Range {
        Range {
            min,
            min_open: false,
            max,
            max_open: true,
        }
    }

    pub fn contains(&self, v: f64) -> bool {
        let low = if self.min_open {
            v > self.min
        } else {
            v >= self.min
        };
        let high = if self.max_open {
            v < self.max
        } else {
            v <= self.max
        };
        low && high
    }

    /// `v`, or a message that names `key`, says what was found and what is allowed.
    pub fn check(&self, key: &str, v: f64) -> Result<f64, String> {
        if self.contains(v) {
            Ok(v)
        } else {
            Err(format!("{key} must be {self}, found {}", number(v)))
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let low = if self.min_open { "above" } else { "at least" };
        let high = if self.max_open { "below" } else { "at most" };
        write!(
            f,
            "a number {low} {} and {high} {}",
            number(self.min),
            number(self.max)
        )?;
        if self.max == MAX_SECONDS {
            write!(f, " (30 days)")?;
        }
        Ok(())
    }
}

/// Seconds from 0 to 30 days: start times, staggers, startup times.
pub const SECONDS: Range = Range::closed(0.0, MAX_SECONDS);
/// Seconds above 0 up to 30 days: timeouts and durations.
pub const POSITIVE_SECONDS: Range = Range::above(0.0, MAX_SECONDS);
/// GiB from 0.
pub const GIB: Range = Range::closed(0.0, MAX_GIB);
/// GiB above 0.
pub const POSITIVE_GIB: Range = Range::above(0.0, MAX_GIB);
/// A fraction of a run, 0 to 1.
pub const FRACTION: Range = Range::closed(0.0, 1.0);
/// A share of a device's memory: above 0, at most 1.
pub const SHARE: Range = Range::above(0.0, 1.0);
/// Tokens per second of a simulated server: above 0, at most a billion.
pub const TOKEN_RATE: Range = Range::above(0.0, 1e9);
/// The compute-scaling exponent: above 0, at most 10 (beyond it a job on part of a GPU would
/// never finish).
pub const ALPHA: Range = Range::above(0.0, 10.0);
/// KV cache per token, MiB.
pub const KV_MIB: Range = Range::above(0.0, 1024.0);
/// Price of a GPU-hour, in any currency.
pub const PRICE: Range = Range::closed(0.0, 1e6);

/// A number as messages show it: plain when short, in exponent form when it would be long.
pub fn number(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-6..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Characters of a value that messages show.
const SHOWN: usize = 40;

fn is_long(text: &str) -> bool {
    text.chars().nth(SHOWN).is_some()
}

/// `text` with control characters escaped, cut short after 40 characters (ending in `…`), so
/// that a message about a megabyte-long value stays one readable line.
pub fn short(text: &str) -> String {
    let shown: String = text.chars().take(SHOWN).collect();
    let mut out = shown.escape_debug().to_string();
    if is_long(text) {
        out.push('…');
    }
    out
}

/// `"text"`, [`short`]ened, saying how long it was when cut.
pub fn quote(text: &str) -> String {
    if is_long(text) {
        format!("\"{}\" ({} bytes)", short(text), text.len())
    } else {
        format!("\"{}\"", short(text))
    }
}

/// A scenario, variant or workload name names files and directories of a run, so it is 1 to
/// [`MAX_NAME_LEN`] ASCII letters, digits, `.`, `_` or `-`, not starting with `.`: never a path
/// (`../..`, `/abs`), never hidden, never empty.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name.chars().all(allowed);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {} is not allowed: a name is 1 to {MAX_NAME_LEN} letters, digits, '.', '_' \
             or '-', not starting with '.' (it names the run's files and directories)",
            quote(name)
        ))
    }
}

/// Reads a number and checks it is in `range`; integers are taken as numbers.
struct FloatIn {
    key: &'static str,
    range: Range,
}

impl<'de> Visitor<'de> for FloatIn {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.range)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        self.range.check(self.key, v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        self.visit_f64(v as f64)
    }
}

/// Reads an integer and checks it is from `min` to `max`.
struct IntIn {
    key: &'static str,
    min: i64,
    max: i64,
}

/// `v`, or a message that names `key`, says what was found and what is allowed.
pub fn check_int(key: &str, v: i128, min: i64, max: i64) -> Result<i64, String> {
    if (i128::from(min)..=i128::from(max)).contains(&v) {
        Ok(v as i64)
    } else {
        Err(format!(
            "{key} must be an integer from {min} to {max}, found {v}"
        ))
    }
}

impl IntIn {
    fn check<E: de::Error>(&self, v: i128) -> Result<i64, E> {
        check_int(self.key, v, self.min, self.max).map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for IntIn {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}: an integer from {} to {}",
            self.key, self.min, self.max
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        self.check(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        self.check(i128::from(v))
    }
}

/// The number at `d`, checked to be in `range`; the message names `key`.
pub fn float<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
    range: Range,
) -> Result<f64, D::Error> {
    d.deserialize_any(FloatIn { key, range })
}

/// The integer at `d`, checked to be from `min` to `max`; the message names `key`.
pub fn int<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
    min: i64,
    max: i64,
) -> Result<i64, D::Error> {
    d.deserialize_any(IntIn { key, min, max })
}

/// `pub fn NAME(d) -> Result<f64>` (and `Option<f64>` with `opt`) reading the number of `KEY`,
/// checked against a [`Range`], for `#[serde(deserialize_with = "...")]`.
#[macro_export]
macro_rules! number_in {
    ($name:ident, $key:literal, $range:expr) => {
        pub fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
            $crate::bounds::float(d, $key, $range)
        }
    };
    (opt $name:ident, $key:literal, $range:expr) => {
        pub fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
            $crate::bounds::float(d, $key, $range).map(Some)
        }
    };
}

/// `pub fn NAME(d) -> Result<T>` (and `Option<T>` with `opt`) reading the integer of `KEY`,
/// checked to be from `MIN` to `MAX`, for `#[serde(deserialize_with = "...")]`.
#[macro_export]
macro_rules! integer_in {
    ($name:ident, $ty:ty, $key:literal, $min:expr, $max:expr) => {
        pub fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            let v = $crate::bounds::int(d, $key, $min as i64, $max as i64)?;
            // In range, so it fits.
            Ok(v as $ty)
        }
    };
    (opt $name:ident, $ty:ty, $key:literal, $min:expr, $max:expr) => {
        pub fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
            let v = $crate::bounds::int(d, $key, $min as i64, $max as i64)?;
            Ok(Some(v as $ty))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_reject_what_they_should() {
        assert!(SECONDS.contains(0.0) && SECONDS.contains(MAX_SECONDS));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e308, MAX_SECONDS * 1.0001] {
            assert!(!SECONDS.contains(bad), "{bad}");
        }
        assert!(!POSITIVE_SECONDS.contains(0.0));
        assert!(!SHARE.contains(0.0) && SHARE.contains(1.0));
        assert_eq!(
            SECONDS.check("stagger_s", -1.0).unwrap_err(),
            "stagger_s must be a number at least 0 and at most 2592000 (30 days), found -1"
        );
        assert_eq!(
            POSITIVE_SECONDS.check("full_gpu_s", 1e308).unwrap_err(),
            "full_gpu_s must be a number above 0 and at most 2592000 (30 days), found 1e308"
        );
    }

    #[test]
    fn names_are_plain_file_names() {
        for good in ["h100-3x-ti2v", "mig_2x3g", "a.b", "X9"] {
            assert_eq!(check_name("variant name", good), Ok(()));
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "", "..", "../..", "/abs", ".hidden", "a/b", "a b", "nul\0", &long,
        ] {
            assert!(check_name("variant name", bad).is_err(), "{bad:?}");
        }
        let huge = "y".repeat(1 << 20);
        let message = check_name("scenario name", &huge).unwrap_err();
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("(1048576 bytes)"), "{message}");
        assert!(check_name("n", "a\0b").unwrap_err().contains("a\\0b"));
    }
}
