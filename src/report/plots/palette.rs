//! One colour per sharing mode, the same in every plot and table (Okabe and Ito's palette,
//! which colour-blind readers can tell apart).

use plotters::style::RGBColor;

use crate::mode::SharingMode;

const MODE_COLOURS: [(SharingMode, RGBColor); 5] = [
    (SharingMode::Full, RGBColor(0x00, 0x72, 0xB2)),
    (SharingMode::Timeslice, RGBColor(0xE6, 0x9F, 0x00)),
    (SharingMode::Mps, RGBColor(0x00, 0x9E, 0x73)),
    (SharingMode::Mig, RGBColor(0xCC, 0x79, 0xA7)),
    (SharingMode::MigMps, RGBColor(0x56, 0xB4, 0xE9)),
];

/// For a mode migbench does not know.
const OTHER: RGBColor = RGBColor(0x99, 0x99, 0x99);

/// Out-of-memory marks.
pub const OOM_COLOUR: RGBColor = RGBColor(0xD5, 0x5E, 0x00);

/// Slices a MIG layout leaves unused.
pub const UNUSED: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);

/// The colour of a mode, by its name in the tables (`mig+mps`).
pub fn mode_colour(mode: &str) -> RGBColor {
    MODE_COLOURS
        .iter()
        .find(|(m, _)| m.as_str() == mode)
        .map_or(OTHER, |(_, c)| *c)
}

/// `#0072b2`, for HTML.
pub fn mode_hex(mode: &str) -> String {
    let RGBColor(r, g, b) = mode_colour(mode);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The `i`-th of `n` shades of `base`, dark to light, for several lines of one mode.
pub fn shade(base: RGBColor, i: usize, n: usize) -> RGBColor {
    let RGBColor(r, g, b) = base;
    // From 35% darker to 35% lighter than the base colour.
    let f = if n <= 1 {
        0.0
    } else {
        -0.35 + 0.7 * i as f64 / (n - 1) as f64
    };
    if f >= 0.0 {
        return tint(base, f);
    }
    let darken = |c: u8| (f64::from(c) * (1.0 + f)).round().clamp(0.0, 255.0) as u8;
    RGBColor(darken(r), darken(g), darken(b))
}

/// `colour` mixed with white by `f` (0: the colour, 1: white).
pub fn tint(colour: RGBColor, f: f64) -> RGBColor {
    let mix = |c: u8| {
        (f64::from(c) + (255.0 - f64::from(c)) * f)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    RGBColor(mix(colour.0), mix(colour.1), mix(colour.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_has_its_own_colour() {
        let mut hex: Vec<String> = SharingMode::ALL
            .iter()
            .map(|m| mode_hex(m.as_str()))
            .collect();
        hex.sort();
        hex.dedup();
        assert_eq!(hex.len(), SharingMode::ALL.len());
        assert_eq!(mode_hex("mps"), "#009e73");
        assert_eq!(mode_hex("unknown"), "#999999");
    }

    #[test]
    fn shades_run_from_dark_to_light() {
        let base = RGBColor(100, 100, 100);
        assert_eq!(shade(base, 0, 1), base);
        let (dark, light) = (shade(base, 0, 3), shade(base, 2, 3));
        assert!(dark.0 < 100 && light.0 > 100, "{dark:?} {light:?}");
    }
}
