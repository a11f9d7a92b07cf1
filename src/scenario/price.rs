//! The price of one GPU-hour and its currency: `price_per_hour = 1.89` (in the `currency` key's
//! currency, or [`DEFAULT_CURRENCY`]) or `price_per_hour = "1.89 EUR"`. Reports show every cost
//! figure with its currency, so a cost is never a bare number.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::bounds;

/// The currency of a bare `price_per_hour` without a `currency` key: US dollars, the currency
/// the large clouds list GPU-hours in.
pub const DEFAULT_CURRENCY: &str = "USD";

/// A price per GPU-hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub amount: f64,
    /// The code written after the amount (`"1.89 EUR"`), if any.
    pub currency: Option<String>,
}

/// A price per GPU-hour as written: a number, or a number and a currency code.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PriceText {
    Amount(f64),
    /// `"1.89 EUR"`: the amount and an ISO 4217 code.
    WithCurrency(String),
}

/// `code`, checked to be three capital letters, as ISO 4217 codes are (`EUR`, `USD`).
pub fn check_currency(code: &str) -> Result<(), String> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "currency must be a three-letter ISO 4217 code such as EUR or USD, found {}",
            bounds::quote(code)
        ))
    }
}

fn amount<E: de::Error>(x: f64) -> Result<f64, E> {
    bounds::PRICE.check("price_per_hour", x).map_err(E::custom)
}

struct PriceVisitor;

impl<'de> Visitor<'de> for PriceVisitor {
    type Value = Price;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "price_per_hour: a number ({}) or a number and a currency code, \"1.89 EUR\"",
            bounds::PRICE
        )
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Price, E> {
        Ok(Price {
            amount: amount(v)?,
            currency: None,
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Price, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Price, E> {
        self.visit_f64(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Price, E> {
        let bad = || {
            E::custom(format!(
                "price_per_hour must be a number or a number and a currency code such as \"1.89 EUR\", found {}",
                bounds::quote(v)
            ))
        };
        let mut parts = v.split_whitespace();
        let (Some(number), Some(code), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let x: f64 = number.parse().map_err(|_| bad())?;
        check_currency(code).map_err(E::custom)?;
        Ok(Price {
            amount: amount(x)?,
            currency: Some(code.to_string()),
        })
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
        d.deserialize_any(PriceVisitor)
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.currency {
            None => s.serialize_f64(self.amount),
            Some(code) => s.serialize_str(&format!("{} {code}", self.amount)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Gpu {
        price_per_hour: Price,
    }

    fn parse(toml_value: &str) -> Result<Price, String> {
        toml::from_str::<Gpu>(&format!("price_per_hour = {toml_value}"))
            .map(|g| g.price_per_hour)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn a_price_is_a_number_or_a_number_and_a_code() {
        assert_eq!(
            parse("1.89").unwrap(),
            Price {
                amount: 1.89,
                currency: None
            }
        );
        assert_eq!(parse("2").unwrap().amount, 2.0);
        assert_eq!(
            parse("\"1.89 EUR\"").unwrap(),
            Price {
                amount: 1.89,
                currency: Some("EUR".into())
            }
        );
        for bad in [
            "\"1.89\"",
            "\"1.89 euro\"",
            "\"EUR 1.89\"",
            "\"1.89 EUR x\"",
            "-1",
            "\"-1 EUR\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("\"1.89 eur\"").unwrap_err().contains("ISO 4217"));
    }
}
