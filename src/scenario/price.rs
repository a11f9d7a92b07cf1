//! Prices and their currency: of one GPU-hour, `price_per_hour = 1.89` (in the `currency` key's
//! currency, or [`DEFAULT_CURRENCY`]) or `price_per_hour = "1.89 EUR"`; of one kWh of the energy
//! the GPU draws, `price_per_kwh` written the same way. Reports show every cost figure with its
//! currency, so a cost is never a bare number.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::bounds;

/// The currency of a bare `price_per_hour` without a `currency` key: US dollars, the currency
/// the large clouds list GPU-hours in.
pub const DEFAULT_CURRENCY: &str = "USD";

/// A price per GPU-hour or per kWh.
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

/// Reads a price written as `price_per_hour` is; errors name `key`.
struct PriceVisitor {
    key: &'static str,
}

impl PriceVisitor {
    fn amount<E: de::Error>(&self, x: f64) -> Result<f64, E> {
        bounds::PRICE.check(self.key, x).map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for PriceVisitor {
    type Value = Price;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}: a number ({}) or a number and a currency code, \"1.89 EUR\"",
            self.key,
            bounds::PRICE
        )
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Price, E> {
        Ok(Price {
            amount: self.amount(v)?,
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
                "{} must be a number or a number and a currency code such as \"1.89 EUR\", found {}",
                self.key,
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
            amount: self.amount(x)?,
            currency: Some(code.to_string()),
        })
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
        d.deserialize_any(PriceVisitor {
            key: "price_per_hour",
        })
    }
}

/// `price_per_kwh`: a [`Price`] whose errors name that key (`deserialize_with`).
pub fn per_kwh<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Price>, D::Error> {
    d.deserialize_any(PriceVisitor {
        key: "price_per_kwh",
    })
    .map(Some)
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

    #[test]
    fn a_price_per_kwh_is_read_alike_and_its_errors_name_its_key() {
        #[derive(Deserialize)]
        struct Energy {
            #[serde(deserialize_with = "per_kwh")]
            price_per_kwh: Option<Price>,
        }
        let read = |v: &str| {
            toml::from_str::<Energy>(&format!("price_per_kwh = {v}"))
                .map(|e| e.price_per_kwh)
                .map_err(|e| e.message().to_string())
        };
        assert_eq!(
            read("\"0.25 EUR\"").unwrap(),
            Some(Price {
                amount: 0.25,
                currency: Some("EUR".into())
            })
        );
        assert_eq!(read("0.1").unwrap().unwrap().amount, 0.1);
        let e = read("-0.1").unwrap_err();
        assert!(e.contains("price_per_kwh"), "{e}");
        let e = read("\"cheap\"").unwrap_err();
        assert!(e.contains("price_per_kwh") && e.contains("cheap"), "{e}");
    }
}
