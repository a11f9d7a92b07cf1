//! Parsers for the text that `nvidia-smi` prints about GPUs and MIG.
//!
//! migbench creates and inspects MIG instances through `nvidia-smi` (the Rust NVML bindings have
//! no safe create/destroy calls), so it has to read back what the tool prints. Each function here
//! turns one command's output into plain structs:
//!
//! | output of               | parser                          | read by                          |
//! |-------------------------|---------------------------------|----------------------------------|
//! | `nvidia-smi mig -lgip`  | [`parse_gpu_instance_profiles`] | `discover --check-catalog`       |
//! | `nvidia-smi mig -lgipp` | [`parse_placements`]            | `discover --check-catalog`       |
//! | `nvidia-smi mig -lgi`   | [`parse_gpu_instances`]         | the NVML backend (MIG placement) |
//! | `nvidia-smi mig -lci`   | [`parse_compute_instances`]     | the NVML backend (MIG devices)   |
//!
//! The formats are in docs/nvidia-smi.md.
//!
//! Two rules make the parsers survive driver changes:
//! - **Split on whitespace, never on columns.** Column widths change with the driver and with the
//!   longest profile name, so fixed offsets break.
//! - **Parse rows, not borders.** The boxes around tables (`+---+`, `|`, `|===|`, or Unicode box
//!   drawing) are decoration: a line made only of border characters is skipped, and a `|` or `│`
//!   inside a row counts as whitespace. Column headers are recognised by their words and skipped.
//!
//! A line a parser cannot place is an error, never silently dropped: [`ParseError`] names the
//! line, so an nvidia-smi failure message ("Failed to initialize NVML ...") surfaces instead of
//! reading as "no instances". Lines such as `No GPU instances found: Not Found` or
//! `No devices were found` are how nvidia-smi says "empty", so they give an empty list.
//!
//! Profile names are returned without nvidia-smi's `MIG ` prefix (`3g.40gb`). Prefer profile IDs
//! to names when matching: names drift between drivers (`3g.40gb` prints as `3g.39gb` on 535/545).

use std::fmt;
use std::str::FromStr;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a piece of `nvidia-smi` output could not be parsed.
///
/// It carries everything needed to show the problem without the original output at hand: the
/// 1-based line number (as an editor counts), the line itself, and what the parser wanted there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based number of the offending line.
    pub line: usize,
    /// The offending line as given, without its line terminator.
    pub text: String,
    /// What the parser expected on that line, in words.
    pub expected: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nvidia-smi output line {}: expected {}, in `{}`",
            self.line,
            self.expected,
            self.text.trim()
        )
    }
}

impl std::error::Error for ParseError {}

// ---------------------------------------------------------------------------------------------
// Result types
// ---------------------------------------------------------------------------------------------

/// One GPU-instance profile from `nvidia-smi mig -lgip`.
///
/// `free` counts the instances that can still be created now, `total` those an empty GPU takes:
/// after two `3g.40gb` instances on an H100 every profile shows `0/n`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedGiProfile {
    /// GPU index.
    pub gpu: u32,
    /// Profile name without the `MIG ` prefix, e.g. `1g.10gb+me`.
    pub name: String,
    /// Profile ID: what `-cgi` takes (19 for 1g, 9 for 3g on 7-slice GPUs). Not NVML's enum value.
    pub id: u32,
    /// Instances of this profile that can still be created.
    pub free: u32,
    /// Instances of this profile an empty GPU holds.
    pub total: u32,
    /// Memory per instance in GiB, as printed (e.g. 9.75 for `1g.10gb`).
    pub memory_gib: f64,
    /// Whether peer-to-peer is supported (`Yes`/`No`).
    pub p2p: bool,
    /// Streaming multiprocessors per instance.
    pub sm: u32,
    /// Video decoders (NVDEC).
    pub dec: u32,
    /// Video encoders (NVENC).
    pub enc: u32,
    /// Copy engines.
    pub ce: u32,
    /// JPEG decoders.
    pub jpg: u32,
    /// Optical-flow accelerators.
    pub ofa: u32,
}

/// The placements a GPU-instance profile may take, from `nvidia-smi mig -lgipp`.
///
/// Placements count memory slices: `{0,2,4}:2` means the profile fits at slice 0, 2 or 4 and
/// then occupies 2 slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPlacements {
    /// GPU index.
    pub gpu: u32,
    /// GPU-instance profile ID.
    pub profile_id: u32,
    /// Memory slices at which an instance may start.
    pub starts: Vec<u8>,
    /// Memory slices an instance occupies.
    pub size: u8,
}

/// An existing GPU instance, from `nvidia-smi mig -lgi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGpuInstance {
    /// GPU index.
    pub gpu: u32,
    /// Profile name without the `MIG ` prefix.
    pub name: String,
    /// GPU-instance profile ID.
    pub profile_id: u32,
    /// GPU-instance ID, what `-gi` takes.
    pub instance_id: u32,
    /// First memory slice.
    pub start: u8,
    /// Memory slices occupied.
    pub size: u8,
}

/// An existing compute instance, from `nvidia-smi mig -lci`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedComputeInstance {
    /// GPU index.
    pub gpu: u32,
    /// ID of the GPU instance that holds this compute instance.
    pub gpu_instance_id: u32,
    /// Profile name without the `MIG ` prefix (`3g.40gb`, `1c.3g.40gb`).
    pub name: String,
    /// Compute-instance profile ID (a different numbering from GI profile IDs).
    pub profile_id: u32,
    /// Compute-instance ID, unique within its GPU instance.
    pub instance_id: u32,
    /// `(start, size)` in compute slices of the GI; `None` on drivers without that column.
    pub placement: Option<(u8, u8)>,
}

// ---------------------------------------------------------------------------------------------
// nvidia-smi mig -lgip
// ---------------------------------------------------------------------------------------------

/// Parses `nvidia-smi mig -lgip`, the GPU-instance profiles and how many of each still fit.
///
/// Every profile takes two rows; the second holds the CE, JPEG and OFA columns:
///
/// ```text
/// | GPU   Name             ID    Instances   Memory     P2P    SM    DEC   ENC  |
/// |                              Free/Total   GiB              CE    JPEG  OFA  |
/// |=============================================================================|
/// |   0  MIG 1g.10gb       19     7/7        9.75       No     16     1     0   |
/// |                                                             1     1     0   |
/// ```
///
/// # Errors
///
/// A cell that does not parse, a first row without its second row (or the reverse), or a line
/// that is neither row, header nor border.
pub fn parse_gpu_instance_profiles(text: &str) -> Result<Vec<ListedGiProfile>, ParseError> {
    // CE, JPEG, OFA: the second row of every profile has exactly these three words.
    const ENGINE_ROW_WORDS: usize = 3;

    let mut profiles = Vec::new();
    // A first row waiting for its engine row.
    let mut pending: Option<(Line<'_>, ListedGiProfile)> = None;
    for row in table_rows(text) {
        let mut row = row?;
        if row.words.len() == ENGINE_ROW_WORDS {
            let Some((_, mut profile)) = pending.take() else {
                return Err(
                    row.error("a profile row (GPU, name, ID, ...) before this CE/JPEG/OFA row")
                );
            };
            profile.ce = row.number("the CE count")?;
            profile.jpg = row.number("the JPEG count")?;
            profile.ofa = row.number("the OFA count")?;
            profiles.push(profile);
        } else if let Some((first, _)) = pending {
            return Err(row.error(format!(
                "the CE/JPEG/OFA row of the profile on line {}",
                first.number
            )));
        } else {
            pending = Some((row.line, parse_profile_row(&mut row)?));
        }
    }
    if let Some((first, _)) = pending {
        return Err(first.error("a CE/JPEG/OFA row after this profile row, but the output ends"));
    }
    Ok(profiles)
}

/// `0  MIG 1g.10gb  19  7/7  9.75  No  16  1  0`; the engine counts are filled in later.
fn parse_profile_row(row: &mut Row<'_>) -> Result<ListedGiProfile, ParseError> {
    let gpu = row.number("the GPU index")?;
    let name = row.profile_name()?.to_owned();
    let id = row.number("the profile ID")?;
    let counts = row.next_word("the instance counts as free/total")?;
    let (free, total) = counts
        .split_once('/')
        .and_then(|(free, total)| Some((free.parse().ok()?, total.parse().ok()?)))
        .ok_or_else(|| row.error(format!("the instance counts as free/total, got `{counts}`")))?;
    let memory_gib = row.number("the memory in GiB")?;
    let p2p = match row.next_word("P2P (`Yes` or `No`)")? {
        word if word.eq_ignore_ascii_case("yes") => true,
        word if word.eq_ignore_ascii_case("no") => false,
        word => return Err(row.error(format!("P2P as `Yes` or `No`, got `{word}`"))),
    };
    let sm = row.number("the SM count")?;
    let dec = row.number("the DEC count")?;
    let enc = row.number("the ENC count")?;
    row.finish("the ENC column")?;
    Ok(ListedGiProfile {
        gpu,
        name,
        id,
        free,
        total,
        memory_gib,
        p2p,
        sm,
        dec,
        enc,
        ce: 0,
        jpg: 0,
        ofa: 0,
    })
}

// ---------------------------------------------------------------------------------------------
// nvidia-smi mig -lgipp
// ---------------------------------------------------------------------------------------------

/// Parses `nvidia-smi mig -lgipp`, one line per GPU and profile:
///
/// ```text
/// GPU  0 Profile ID 19 Placements: {0,1,2,3,4,5,6}:1
/// GPU  0 Profile ID  5 Placement : {0}:4
/// ```
///
/// The label is `Placements:` with several starts and `Placement :` with one; both are accepted,
/// as are spaces inside the braces (`{0, 2}`). An empty set `{}` gives no starts.
///
/// # Errors
///
/// Any non-blank line not of that shape, or a slice number above 255.
pub fn parse_placements(text: &str) -> Result<Vec<ListedPlacements>, ParseError> {
    numbered_lines(text)
        .filter(|line| !is_blank_or_notice(line.text))
        .map(parse_placement_line)
        .collect()
}

fn parse_placement_line(line: Line<'_>) -> Result<ListedPlacements, ParseError> {
    let mut cursor = Cursor::new(line.text);
    let gpu = cursor
        .require("GPU")
        .and_then(|()| cursor.number())
        .ok_or_else(|| line.error("`GPU <index>` at the start"))?;
    let profile_id = cursor
        .require("Profile ID")
        .and_then(|()| cursor.number())
        .ok_or_else(|| line.error("`Profile ID <id>` after the GPU index"))?;
    let labelled =
        (cursor.eat_word("Placements") || cursor.eat_word("Placement")) && cursor.eat_char(':');
    if !labelled {
        return Err(line.error("`Placements:` after the profile ID"));
    }
    let starts = slice_set(&mut cursor)
        .ok_or_else(|| line.error("the start slices as `{a,b,...}` (numbers 0 to 255)"))?;
    let size = cursor
        .require_char(':')
        .and_then(|()| cursor.number())
        .ok_or_else(|| line.error("`:<size>` after the start slices (a number 0 to 255)"))?;
    if !cursor.at_end() {
        return Err(line.error("nothing after the placement size"));
    }
    Ok(ListedPlacements {
        gpu,
        profile_id,
        starts,
        size,
    })
}

/// `{0,2,4}` → `[0, 2, 4]`.
fn slice_set(cursor: &mut Cursor<'_>) -> Option<Vec<u8>> {
    cursor.require_char('{')?;
    let mut starts = Vec::new();
    if cursor.eat_char('}') {
        return Some(starts);
    }
    loop {
        starts.push(cursor.number()?);
        if cursor.eat_char('}') {
            return Some(starts);
        }
        cursor.require_char(',')?;
    }
}

// ---------------------------------------------------------------------------------------------
// nvidia-smi mig -lgi / -lci
// ---------------------------------------------------------------------------------------------

/// Parses `nvidia-smi mig -lgi`, the GPU instances that exist:
///
/// ```text
/// | GPU   Name             Profile  Instance   Placement  |
/// |                          ID       ID       Start:Size |
/// |=======================================================|
/// |   0  MIG 3g.40gb          9        1          0:4     |
/// ```
///
/// # Errors
///
/// A row with a missing or malformed cell (the placement included), or a line that is neither
/// row, header nor border.
pub fn parse_gpu_instances(text: &str) -> Result<Vec<ListedGpuInstance>, ParseError> {
    table_rows(text)
        .map(|row| {
            let mut row = row?;
            let gpu = row.number("the GPU index")?;
            let name = row.profile_name()?.to_owned();
            let profile_id = row.number("the profile ID")?;
            let instance_id = row.number("the GPU instance ID")?;
            let (start, size) = row
                .placement()?
                .ok_or_else(|| row.error("the placement as start:size, but the row ends"))?;
            Ok(ListedGpuInstance {
                gpu,
                name,
                profile_id,
                instance_id,
                start,
                size,
            })
        })
        .collect()
}

/// Parses `nvidia-smi mig -lci`, the compute instances that exist:
///
/// ```text
/// | GPU     GPU       Name             Profile   Instance   Placement  |
/// |       Instance                       ID        ID       Start:Size |
/// |         ID                                                         |
/// |====================================================================|
/// |   0      1       MIG 3g.40gb          2         0          0:4     |
/// ```
///
/// Older drivers print no Placement column; then `placement` is `None`.
///
/// # Errors
///
/// A row with a missing or malformed cell, or a line that is neither row, header nor border.
pub fn parse_compute_instances(text: &str) -> Result<Vec<ListedComputeInstance>, ParseError> {
    table_rows(text)
        .map(|row| {
            let mut row = row?;
            Ok(ListedComputeInstance {
                gpu: row.number("the GPU index")?,
                gpu_instance_id: row.number("the GPU instance ID")?,
                name: row.profile_name()?.to_owned(),
                profile_id: row.number("the profile ID")?,
                instance_id: row.number("the compute instance ID")?,
                placement: row.placement()?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Shared machinery: lines, table rows, and a small cursor for sentence-like lines
// ---------------------------------------------------------------------------------------------

/// A line of input and its 1-based number, for error reports.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    text: &'a str,
}

impl Line<'_> {
    fn error(self, expected: impl Into<String>) -> ParseError {
        ParseError {
            line: self.number,
            text: self.text.to_owned(),
            expected: expected.into(),
        }
    }
}

fn numbered_lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.lines().enumerate().map(|(index, text)| Line {
        number: index + 1,
        text,
    })
}

/// Whether `text` is only nvidia-smi's way of saying "nothing to list" (which it says with a
/// non-zero exit status).
pub fn lists_nothing(text: &str) -> bool {
    text.lines().any(|l| !l.trim().is_empty()) && text.lines().all(is_blank_or_notice)
}

/// A blank line, or nvidia-smi's way of saying "nothing to list": `No devices were found`,
/// `No MIG-enabled devices found.`, `No GPU instances found: Not Found`.
fn is_blank_or_notice(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || (line.starts_with("No ") && line.contains(" found"))
}

/// Unicode box drawing (U+2500..U+257F): `│ ─ ┼ ═ ╞` and friends.
fn is_box_drawing(c: char) -> bool {
    ('\u{2500}'..='\u{257F}').contains(&c)
}

/// A line with nothing but border characters: `+-----+`, `|=====|`, `└─────┘`, or blank.
///
/// `+` and `-` only count here, on a line of nothing else: inside a row they belong to names
/// (`1g.10gb+me`, `MIG-...`).
fn is_border(line: &str) -> bool {
    line.chars()
        .all(|c| c.is_whitespace() || matches!(c, '+' | '-' | '=' | '|') || is_box_drawing(c))
}

/// The words of a table line: split on whitespace and on vertical borders.
fn table_words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| c.is_whitespace() || c == '|' || is_box_drawing(c))
        .filter(|word| !word.is_empty())
}

/// Words of the column headers and titles of the `-lgip`, `-lgi` and `-lci` tables, lower case.
const HEADER_WORDS: &[&str] = &[
    "gpu",
    "name",
    "id",
    "profile",
    "profiles",
    "instance",
    "instances",
    "compute",
    "placement",
    "placements",
    "start",
    "size",
    "start:size",
    "free",
    "total",
    "free/total",
    "memory",
    "gib",
    "mib",
    "p2p",
    "sm",
    "dec",
    "enc",
    "ce",
    "jpeg",
    "jpg",
    "ofa",
];

/// Whether a line (already known not to start with a number) is a header or a title.
///
/// More than half of its words must be known header words. That lets a driver add or rename a
/// column, yet an error message that merely mentions a GPU (`GPU access blocked by the
/// operating system`) is not mistaken for a header and skipped.
fn is_header(words: &[&str]) -> bool {
    let known = words
        .iter()
        .filter(|word| {
            let word = word.trim_end_matches(':');
            HEADER_WORDS
                .iter()
                .any(|header| header.eq_ignore_ascii_case(word))
        })
        .count();
    known * 2 > words.len()
}

/// The data rows of a boxed table, borders and headers skipped.
///
/// A data row is a line whose first word starts with a digit (the GPU index, or a count on the
/// second row of `-lgip`). Any other line that is neither border, header, blank nor an "empty"
/// notice is an error.
fn table_rows(text: &str) -> impl Iterator<Item = Result<Row<'_>, ParseError>> {
    numbered_lines(text).filter_map(|line| {
        if is_border(line.text) || is_blank_or_notice(line.text) {
            return None;
        }
        let words: Vec<&str> = table_words(line.text).collect();
        let is_row = words
            .first()
            .is_some_and(|word| word.starts_with(|c: char| c.is_ascii_digit()));
        if is_row {
            Some(Ok(Row {
                line,
                words,
                position: 0,
            }))
        } else if is_header(&words) {
            None
        } else {
            Some(Err(line.error(
                "a table row starting with a GPU index, a column header or a border",
            )))
        }
    })
}

/// A data row being read left to right, one column at a time.
struct Row<'a> {
    line: Line<'a>,
    words: Vec<&'a str>,
    position: usize,
}

impl<'a> Row<'a> {
    fn error(&self, expected: impl Into<String>) -> ParseError {
        self.line.error(expected)
    }

    fn next_word(&mut self, what: &str) -> Result<&'a str, ParseError> {
        let word = self
            .words
            .get(self.position)
            .copied()
            .ok_or_else(|| self.error(format!("{what}, but the row ends")))?;
        self.position += 1;
        Ok(word)
    }

    fn number<T: FromStr>(&mut self, what: &str) -> Result<T, ParseError> {
        let word = self.next_word(what)?;
        word.parse()
            .map_err(|_| self.error(format!("{what} as a number, got `{word}`")))
    }

    /// A profile name; nvidia-smi prints `MIG 3g.40gb` as two words, and the prefix carries
    /// nothing, so it is dropped (and tolerated when absent).
    fn profile_name(&mut self) -> Result<&'a str, ParseError> {
        if self.words.get(self.position) == Some(&"MIG") {
            self.position += 1;
        }
        self.next_word("a profile name such as `MIG 3g.40gb`")
    }

    /// The remaining words as a `start:size` placement; `None` when the row has ended.
    fn placement(&mut self) -> Result<Option<(u8, u8)>, ParseError> {
        let rest = &self.words[self.position..];
        self.position = self.words.len();
        if rest.is_empty() {
            return Ok(None);
        }
        // Rejoined so that a padded colon (`0 : 4`) reads the same as `0:4`.
        let joined = rest.concat();
        joined
            .split_once(':')
            .and_then(|(start, size)| Some((start.parse().ok()?, size.parse().ok()?)))
            .map(Some)
            .ok_or_else(|| {
                self.error(format!(
                    "the placement as start:size (numbers 0 to 255), got `{}`",
                    rest.join(" ")
                ))
            })
    }

    /// Fails when words are left after the last expected column.
    fn finish(&self, last: &str) -> Result<(), ParseError> {
        match self.words.get(self.position) {
            None => Ok(()),
            Some(extra) => Err(self.error(format!("nothing after {last}, got `{extra}`"))),
        }
    }
}

/// Reads a sentence-like line (`GPU 0 Profile ID 9 Placements: {0,4}:4`) from the left,
/// skipping whitespace between tokens so that any spacing is accepted.
///
/// Every method consumes only on success, so a failed attempt can be followed by another.
#[derive(Debug, Clone, Copy)]
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { rest: text }
    }

    /// Consumes `word` (ASCII case-insensitive) if it comes next as a whole word:
    /// `GPU` matches `GPU 0` and `GPU:` but not `GPUs` or `GPU-...`.
    fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest.trim_start();
        let Some(head) = rest.get(..word.len()) else {
            return false;
        };
        let after = &rest[word.len()..];
        let whole =
            !after.starts_with(|c: char| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if head.eq_ignore_ascii_case(word) && whole {
            self.rest = after;
            true
        } else {
            false
        }
    }

    /// Consumes every word of `phrase` in turn, or nothing.
    fn eat_words(&mut self, phrase: &str) -> bool {
        let mut probe = *self;
        if phrase.split_whitespace().all(|word| probe.eat_word(word)) {
            *self = probe;
            true
        } else {
            false
        }
    }

    /// [`Cursor::eat_words`] for `?` chains.
    fn require(&mut self, phrase: &str) -> Option<()> {
        self.eat_words(phrase).then_some(())
    }

    fn eat_char(&mut self, expected: char) -> bool {
        match self.rest.trim_start().strip_prefix(expected) {
            Some(after) => {
                self.rest = after;
                true
            }
            None => false,
        }
    }

    /// [`Cursor::eat_char`] for `?` chains.
    fn require_char(&mut self, expected: char) -> Option<()> {
        self.eat_char(expected).then_some(())
    }

    /// An unsigned number made of ASCII digits; `None` if none comes next or it overflows `T`.
    fn number<T: FromStr>(&mut self) -> Option<T> {
        let rest = self.rest.trim_start();
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let value = rest[..end].parse().ok()?;
        self.rest = &rest[end..];
        Some(value)
    }

    fn at_end(&self) -> bool {
        self.rest.trim().is_empty()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    // -----------------------------------------------------------------------------------------
    // Samples copied verbatim from docs/nvidia-smi.md and docs/mig.md
    // -----------------------------------------------------------------------------------------

    /// `nvidia-smi mig -i 0 -lgip` on an H100 (T, re-typed).
    pub(in crate::backend::nvml) const LGIP_H100: &str = r"+-----------------------------------------------------------------------------+
| GPU instance profiles:                                                      |
| GPU   Name             ID    Instances   Memory     P2P    SM    DEC   ENC  |
|                              Free/Total   GiB              CE    JPEG  OFA  |
|=============================================================================|
|   0  MIG 1g.10gb       19     7/7        9.75       No     16     1     0   |
|                                                             1     1     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 1g.10gb+me    20     1/1        9.75       No     16     1     0   |
|                                                             1     1     1   |
+-----------------------------------------------------------------------------+
|   0  MIG 3g.40gb        9     2/2        39.50      No     60     3     0   |
|                                                             3     3     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 7g.80gb        0     1/1        79.25      No     132    7     0   |
|                                                             8     7     1   |
+-----------------------------------------------------------------------------+
";

    /// `nvidia-smi mig -lgipp` on an A100 80GB (S).
    pub(in crate::backend::nvml) const LGIPP_A100: &str = r"GPU  0 Profile ID 19 Placements: {0,1,2,3,4,5,6}:1
GPU  0 Profile ID 20 Placements: {0,1,2,3,4,5,6}:1
GPU  0 Profile ID 15 Placements: {0,2,4,6}:2
GPU  0 Profile ID 14 Placements: {0,2,4}:2
GPU  0 Profile ID  9 Placements: {0,4}:4
GPU  0 Profile ID  5 Placement : {0}:4
GPU  0 Profile ID  0 Placement : {0}:8
";

    /// `nvidia-smi mig -i 0 -lgi` (T).
    const LGI_H100: &str = r"+-------------------------------------------------------+
| GPU instances:                                        |
| GPU   Name             Profile  Instance   Placement  |
|                          ID       ID       Start:Size |
|=======================================================|
|   0  MIG 3g.40gb          9        1          0:4     |
+-------------------------------------------------------+
|   0  MIG 3g.40gb          9        2          4:4     |
+-------------------------------------------------------+
";

    /// `nvidia-smi mig -i 0 -lci` (T).
    const LCI_H100: &str = r"+--------------------------------------------------------------------+
| Compute instances:                                                 |
| GPU     GPU       Name             Profile   Instance   Placement  |
|       Instance                       ID        ID       Start:Size |
|         ID                                                         |
|====================================================================|
|   0      1       MIG 3g.40gb          2         0          0:4     |
+--------------------------------------------------------------------+
|   0      2       MIG 3g.40gb          2         0          0:4     |
+--------------------------------------------------------------------+
";

    // -----------------------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------------------

    /// Builds a profile, the engine counts being `[ce, jpg, ofa]`.
    #[allow(clippy::too_many_arguments)]
    fn gip(
        name: &str,
        id: u32,
        free: u32,
        total: u32,
        memory_gib: f64,
        sm: u32,
        [dec, enc]: [u32; 2],
        [ce, jpg, ofa]: [u32; 3],
    ) -> ListedGiProfile {
        ListedGiProfile {
            gpu: 0,
            name: name.to_owned(),
            id,
            free,
            total,
            memory_gib,
            p2p: false,
            sm,
            dec,
            enc,
            ce,
            jpg,
            ofa,
        }
    }

    fn placements(gpu: u32, profile_id: u32, starts: &[u8], size: u8) -> ListedPlacements {
        ListedPlacements {
            gpu,
            profile_id,
            starts: starts.to_vec(),
            size,
        }
    }

    fn gi(
        gpu: u32,
        name: &str,
        profile_id: u32,
        instance_id: u32,
        start: u8,
        size: u8,
    ) -> ListedGpuInstance {
        ListedGpuInstance {
            gpu,
            name: name.to_owned(),
            profile_id,
            instance_id,
            start,
            size,
        }
    }

    fn ci(
        gpu: u32,
        gpu_instance_id: u32,
        name: &str,
        profile_id: u32,
        instance_id: u32,
        placement: Option<(u8, u8)>,
    ) -> ListedComputeInstance {
        ListedComputeInstance {
            gpu,
            gpu_instance_id,
            name: name.to_owned(),
            profile_id,
            instance_id,
            placement,
        }
    }

    /// Asserts an error on `line` whose expectation mentions `expected_part`.
    fn assert_error(
        result: Result<impl std::fmt::Debug, ParseError>,
        line: usize,
        text: &str,
        expected_part: &str,
    ) {
        let error = result.expect_err("input should be rejected");
        assert_eq!(error.line, line, "wrong line in {error:?}");
        assert_eq!(error.text, text, "wrong text in {error:?}");
        assert!(
            error.expected.contains(expected_part),
            "`{}` should mention `{expected_part}`",
            error.expected
        );
    }

    // -----------------------------------------------------------------------------------------
    // nvidia-smi mig -lgip
    // -----------------------------------------------------------------------------------------

    fn h100_lgip_sample() -> Vec<ListedGiProfile> {
        vec![
            gip("1g.10gb", 19, 7, 7, 9.75, 16, [1, 0], [1, 1, 0]),
            gip("1g.10gb+me", 20, 1, 1, 9.75, 16, [1, 0], [1, 1, 1]),
            gip("3g.40gb", 9, 2, 2, 39.50, 60, [3, 0], [3, 3, 0]),
            gip("7g.80gb", 0, 1, 1, 79.25, 132, [7, 0], [8, 7, 1]),
        ]
    }

    #[test]
    fn lgip_h100_sample() {
        assert_eq!(
            parse_gpu_instance_profiles(LGIP_H100).unwrap(),
            h100_lgip_sample()
        );
    }

    #[test]
    fn lgip_after_two_3g_instances_every_free_count_is_zero() {
        // All seven H100 profiles (values from docs/mig.md), Free as T shows after `-cgi 9,9`.
        let text = r"+-----------------------------------------------------------------------------+
| GPU instance profiles:                                                      |
| GPU   Name             ID    Instances   Memory     P2P    SM    DEC   ENC  |
|                              Free/Total   GiB              CE    JPEG  OFA  |
|=============================================================================|
|   0  MIG 1g.10gb       19     0/7        9.75       No     16     1     0   |
|                                                             1     1     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 1g.10gb+me    20     0/1        9.75       No     16     1     0   |
|                                                             1     1     1   |
+-----------------------------------------------------------------------------+
|   0  MIG 1g.20gb       15     0/4        19.62      No     26     1     0   |
|                                                             1     1     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 2g.20gb       14     0/3        19.62      No     32     2     0   |
|                                                             2     2     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 3g.40gb        9     0/2        39.50      No     60     3     0   |
|                                                             3     3     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 4g.40gb        5     0/1        39.50      No     64     4     0   |
|                                                             4     4     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 7g.80gb        0     0/1        79.25      No     132    7     0   |
|                                                             8     7     1   |
+-----------------------------------------------------------------------------+
";
        assert_eq!(
            parse_gpu_instance_profiles(text).unwrap(),
            vec![
                gip("1g.10gb", 19, 0, 7, 9.75, 16, [1, 0], [1, 1, 0]),
                gip("1g.10gb+me", 20, 0, 1, 9.75, 16, [1, 0], [1, 1, 1]),
                gip("1g.20gb", 15, 0, 4, 19.62, 26, [1, 0], [1, 1, 0]),
                gip("2g.20gb", 14, 0, 3, 19.62, 32, [2, 0], [2, 2, 0]),
                gip("3g.40gb", 9, 0, 2, 39.50, 60, [3, 0], [3, 3, 0]),
                gip("4g.40gb", 5, 0, 1, 39.50, 64, [4, 0], [4, 4, 0]),
                gip("7g.80gb", 0, 0, 1, 79.25, 132, [7, 0], [8, 7, 1]),
            ]
        );
    }

    #[test]
    fn lgip_without_borders_and_with_tabs() {
        let text = "GPU instance profiles:\n\
                    GPU\tName\tID\tInstances\tMemory\tP2P\tSM\tDEC\tENC\n\
                    \tFree/Total\tGiB\tCE\tJPEG\tOFA\n\
                    0\tMIG 1g.10gb\t19\t7/7\t9.75\tNo\t16\t1\t0\n\
                    \t1\t1\t0\n\
                    0 MIG 1g.10gb+me 20 1/1 9.75 No 16 1 0\n\
                    1 1 1\n\
                    0    MIG    3g.40gb    9    2/2    39.50    No    60    3    0\n\
                    3 3 0\n\
                    0 MIG 7g.80gb 0 1/1 79.25 No 132 7 0\n\
                    8 7 1\n";
        assert_eq!(
            parse_gpu_instance_profiles(text).unwrap(),
            h100_lgip_sample()
        );
    }

    #[test]
    fn lgip_unicode_box_and_two_gpus() {
        let text = "┌──────────────────────────────────────────────────────────┐\n\
                    │ GPU instance profiles:                                   │\n\
                    │ GPU  Name  ID  Instances  Memory  P2P  SM  DEC  ENC      │\n\
                    │                Free/Total GiB          CE  JPEG OFA      │\n\
                    ╞══════════════════════════════════════════════════════════╡\n\
                    │  0  MIG 3g.40gb  9  1/2  39.50  Yes  60  3  0            │\n\
                    │                                      3  3  0            │\n\
                    ├──────────────────────────────────────────────────────────┤\n\
                    │  1  MIG 1g.5gb  19  7/7  4.75  No  14  0  0              │\n\
                    │                                  1  0  0                │\n\
                    └──────────────────────────────────────────────────────────┘\n";
        let mut gpu1 = gip("1g.5gb", 19, 7, 7, 4.75, 14, [0, 0], [1, 0, 0]);
        gpu1.gpu = 1;
        let mut p2p = gip("3g.40gb", 9, 1, 2, 39.50, 60, [3, 0], [3, 3, 0]);
        p2p.p2p = true;
        assert_eq!(parse_gpu_instance_profiles(text).unwrap(), vec![p2p, gpu1]);
    }

    #[test]
    fn lgip_name_without_mig_prefix_is_accepted() {
        let text = "0 1g.10gb 19 7/7 9.75 No 16 1 0\n1 1 0\n";
        assert_eq!(
            parse_gpu_instance_profiles(text).unwrap(),
            vec![gip("1g.10gb", 19, 7, 7, 9.75, 16, [1, 0], [1, 1, 0])]
        );
    }

    #[test]
    fn lgip_empty_and_no_mig_notice() {
        assert_eq!(parse_gpu_instance_profiles("").unwrap(), vec![]);
        assert_eq!(
            parse_gpu_instance_profiles("No MIG-enabled devices found.\n").unwrap(),
            vec![]
        );
    }

    /// Replaces line `number` (1-based) of `text`.
    fn replace_line(text: &str, number: usize, with: &str) -> String {
        text.lines()
            .enumerate()
            .map(|(index, line)| if index + 1 == number { with } else { line })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn lgip_bad_cell_names_its_line() {
        let bad = "|   0  MIG 3g.40gb        x     2/2        39.50      No     60     3     0   |";
        let text = replace_line(LGIP_H100, 12, bad);
        assert_error(
            parse_gpu_instance_profiles(&text),
            12,
            bad,
            "profile ID as a number, got `x`",
        );

        let bad = "|   0  MIG 3g.40gb        9     2-2        39.50      No     60     3     0   |";
        let text = replace_line(LGIP_H100, 12, bad);
        assert_error(
            parse_gpu_instance_profiles(&text),
            12,
            bad,
            "free/total, got `2-2`",
        );

        let bad = "|   0  MIG 3g.40gb        9     2/2        39.50      Maybe  60     3     0   |";
        let text = replace_line(LGIP_H100, 12, bad);
        assert_error(parse_gpu_instance_profiles(&text), 12, bad, "P2P");

        let bad =
            "|   0  MIG 3g.40gb        9     2/2        39.50      No     60     3     0   7 |";
        let text = replace_line(LGIP_H100, 12, bad);
        assert_error(
            parse_gpu_instance_profiles(&text),
            12,
            bad,
            "nothing after the ENC column",
        );

        let bad = "|                                                             3     x     0   |";
        let text = replace_line(LGIP_H100, 13, bad);
        assert_error(parse_gpu_instance_profiles(&text), 13, bad, "JPEG count");
    }

    #[test]
    fn lgip_missing_engine_row() {
        // Line 7 (the engine row of 1g.10gb) dropped: the next profile row, now line 8, is where
        // the engine row was expected.
        let text = LGIP_H100
            .lines()
            .enumerate()
            .filter(|(index, _)| *index != 6)
            .map(|(_, line)| line)
            .collect::<Vec<_>>()
            .join("\n");
        assert_error(
            parse_gpu_instance_profiles(&text),
            8,
            "|   0  MIG 1g.10gb+me    20     1/1        9.75       No     16     1     0   |",
            "CE/JPEG/OFA row of the profile on line 6",
        );

        // At the end of the output: reported on the profile row itself.
        let text = "0 MIG 1g.10gb 19 7/7 9.75 No 16 1 0\n";
        assert_error(
            parse_gpu_instance_profiles(text),
            1,
            "0 MIG 1g.10gb 19 7/7 9.75 No 16 1 0",
            "output ends",
        );
    }

    #[test]
    fn lgip_engine_row_without_profile_row() {
        assert_error(
            parse_gpu_instance_profiles("GPU Name ID\n1 1 0\n"),
            2,
            "1 1 0",
            "profile row",
        );
    }

    #[test]
    fn lgip_foreign_line_is_an_error() {
        let text = "Failed to initialize NVML: Driver/library version mismatch";
        assert_error(parse_gpu_instance_profiles(text), 1, text, "table row");
        // A message that mentions a GPU is not a header.
        let text = format!("{LGIP_H100}GPU access blocked by the operating system\n");
        assert_error(
            parse_gpu_instance_profiles(&text),
            18,
            "GPU access blocked by the operating system",
            "table row",
        );
    }

    // -----------------------------------------------------------------------------------------
    // nvidia-smi mig -lgipp
    // -----------------------------------------------------------------------------------------

    #[test]
    fn lgipp_a100_sample() {
        assert_eq!(
            parse_placements(LGIPP_A100).unwrap(),
            vec![
                placements(0, 19, &[0, 1, 2, 3, 4, 5, 6], 1),
                placements(0, 20, &[0, 1, 2, 3, 4, 5, 6], 1),
                placements(0, 15, &[0, 2, 4, 6], 2),
                placements(0, 14, &[0, 2, 4], 2),
                placements(0, 9, &[0, 4], 4),
                placements(0, 5, &[0], 4),
                placements(0, 0, &[0], 8),
            ]
        );
    }

    #[test]
    fn lgipp_a30_two_gpus_and_spacing_variants() {
        // A30 geometry from docs/mig.md, on GPU 1, written with assorted spacing.
        let text = "GPU 1 Profile ID 14 Placements: {0,1,2,3}:1\n\
                    \tGPU\t1\tProfile\tID\t21\tPlacements:\t{0, 1, 2, 3} : 1\r\n\
                    GPU 1 Profile ID 5 Placements:{0,2}:2\n\
                    \n\
                    GPU  1  Profile  ID  6  Placement:  { 0 , 2 }:2   \n\
                    GPU 1 Profile ID 0 Placement : {0}:4\n\
                    GPU 2 Profile ID 0 Placement : {}:8\n";
        assert_eq!(
            parse_placements(text).unwrap(),
            vec![
                placements(1, 14, &[0, 1, 2, 3], 1),
                placements(1, 21, &[0, 1, 2, 3], 1),
                placements(1, 5, &[0, 2], 2),
                placements(1, 6, &[0, 2], 2),
                placements(1, 0, &[0], 4),
                placements(2, 0, &[], 8),
            ]
        );
    }

    #[test]
    fn lgipp_errors_name_the_line() {
        let cases = [
            ("GPU  0 Profile ID 9 Placements: 0,4:4", "{a,b,...}"),
            ("GPU  0 Profile ID 9 Placements: {0,4:4", "{a,b,...}"),
            ("GPU  0 Profile ID 9 Placements: {0,256}:4", "{a,b,...}"),
            ("GPU  0 Profile ID 9 Placements: {0,4}", ":<size>"),
            ("GPU  0 Profile ID 9 Placements: {0,4}:300", ":<size>"),
            (
                "GPU  0 Profile ID 9 Placements: {0,4}:4 extra",
                "nothing after",
            ),
            ("GPU  0 Profile ID 9 Slots: {0,4}:4", "Placements:"),
            ("GPU  0 Profile 9 Placements: {0,4}:4", "Profile ID"),
            ("GPU x Profile ID 9 Placements: {0,4}:4", "GPU <index>"),
            ("Insufficient Permissions", "GPU <index>"),
        ];
        for (bad, expected) in cases {
            let text = replace_line(LGIPP_A100, 5, bad);
            assert_error(parse_placements(&text), 5, bad, expected);
        }
    }

    // -----------------------------------------------------------------------------------------
    // nvidia-smi mig -lgi
    // -----------------------------------------------------------------------------------------

    #[test]
    fn lgi_h100_sample() {
        assert_eq!(
            parse_gpu_instances(LGI_H100).unwrap(),
            vec![gi(0, "3g.40gb", 9, 1, 0, 4), gi(0, "3g.40gb", 9, 2, 4, 4)]
        );
    }

    #[test]
    fn lgi_without_borders_and_odd_spacing() {
        // The 3-2-1-1 layout from docs/mig.md: 1g@0:1, 1g@1:1, 2g@2:2, 3g@4:4, on GPU 1.
        let text = "GPU instances:\n\
                    GPU Name Profile Instance Placement\n\
                    ID ID Start:Size\n\
                    1 MIG 1g.10gb 19 13 0:1\n\
                    1\tMIG\t1g.10gb\t19\t14\t1:1\n\
                    \x20\x20 1   MIG 2g.20gb   14   5   2 : 2  \n\
                    |1|MIG 3g.40gb|9|1|4:4|\n";
        assert_eq!(
            parse_gpu_instances(text).unwrap(),
            vec![
                gi(1, "1g.10gb", 19, 13, 0, 1),
                gi(1, "1g.10gb", 19, 14, 1, 1),
                gi(1, "2g.20gb", 14, 5, 2, 2),
                gi(1, "3g.40gb", 9, 1, 4, 4),
            ]
        );
    }

    #[test]
    fn lgi_none_found() {
        assert_eq!(
            parse_gpu_instances("No GPU instances found: Not Found\n").unwrap(),
            vec![]
        );
    }

    #[test]
    fn lgi_errors_name_the_line() {
        let cases = [
            (
                "|   0  MIG 3g.40gb          9        2          |",
                "placement as start:size, but the row ends",
            ),
            (
                "|   0  MIG 3g.40gb          9        2          4-4     |",
                "got `4-4`",
            ),
            (
                "|   0  MIG 3g.40gb          9        2          4:999   |",
                "got `4:999`",
            ),
            (
                "|   0  MIG 3g.40gb          9        two        4:4     |",
                "GPU instance ID",
            ),
            (
                "|   0  MIG                                              |",
                "profile name",
            ),
        ];
        for (bad, expected) in cases {
            let text = replace_line(LGI_H100, 8, bad);
            assert_error(parse_gpu_instances(&text), 8, bad, expected);
        }
    }

    // -----------------------------------------------------------------------------------------
    // nvidia-smi mig -lci
    // -----------------------------------------------------------------------------------------

    #[test]
    fn lci_h100_sample() {
        assert_eq!(
            parse_compute_instances(LCI_H100).unwrap(),
            vec![
                ci(0, 1, "3g.40gb", 2, 0, Some((0, 4))),
                ci(0, 2, "3g.40gb", 2, 0, Some((0, 4))),
            ]
        );
    }

    #[test]
    fn lci_older_driver_without_placement_column() {
        let text = r"+--------------------------------------------------------+
| Compute instances:                                     |
| GPU     GPU       Name             Profile   Instance  |
|       Instance                       ID        ID      |
|         ID                                             |
|========================================================|
|   0      1       MIG 3g.40gb          2         0      |
+--------------------------------------------------------+
|   0      2       MIG 1c.3g.40gb       0         1      |
+--------------------------------------------------------+
";
        assert_eq!(
            parse_compute_instances(text).unwrap(),
            vec![
                ci(0, 1, "3g.40gb", 2, 0, None),
                ci(0, 2, "1c.3g.40gb", 0, 1, None)
            ]
        );
    }

    #[test]
    fn lci_split_gi_without_borders() {
        // `-gi 1 -cci 0,0` on a 3g GI: two 1c CIs, then a 1c at slice 2 (tabs, squeezed).
        let text = "Compute instances:\n\
                    0\t1\tMIG 1c.3g.40gb\t0\t0\t0:1\n\
                    0 1 MIG 1c.3g.40gb 0 1 1:1\n\
                    0  1  1c.3g.40gb  0  2  2 :1\n";
        assert_eq!(
            parse_compute_instances(text).unwrap(),
            vec![
                ci(0, 1, "1c.3g.40gb", 0, 0, Some((0, 1))),
                ci(0, 1, "1c.3g.40gb", 0, 1, Some((1, 1))),
                ci(0, 1, "1c.3g.40gb", 0, 2, Some((2, 1))),
            ]
        );
    }

    #[test]
    fn lci_none_found() {
        assert_eq!(
            parse_compute_instances("No compute instances found: Not Found\n").unwrap(),
            vec![]
        );
    }

    #[test]
    fn lci_errors_name_the_line() {
        let cases = [
            (
                "|   0      x       MIG 3g.40gb          2         0          0:4     |",
                "GPU instance ID",
            ),
            (
                "|   0      2       MIG 3g.40gb          2                            |",
                "compute instance ID, but the row ends",
            ),
            (
                "|   0      2       MIG 3g.40gb          2         0          0/4     |",
                "got `0/4`",
            ),
        ];
        for (bad, expected) in cases {
            let text = replace_line(LCI_H100, 9, bad);
            assert_error(parse_compute_instances(&text), 9, bad, expected);
        }
        let text = replace_line(LCI_H100, 4, "|       Instance    Surprise  Column   Here |");
        assert_error(
            parse_compute_instances(&text),
            4,
            "|       Instance    Surprise  Column   Here |",
            "table row",
        );
    }

    // -----------------------------------------------------------------------------------------
    // ParseError and shared machinery
    // -----------------------------------------------------------------------------------------

    #[test]
    fn parse_error_display_and_error_trait() {
        let error = ParseError {
            line: 3,
            text: "  GPU 1: X  ".to_owned(),
            expected: "a GPU name followed by `(UUID: GPU-...)`".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "nvidia-smi output line 3: expected a GPU name followed by `(UUID: GPU-...)`, in `GPU 1: X`"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(error.clone());
        assert_eq!(boxed.to_string(), error.to_string());
    }

    #[test]
    fn borders_and_headers_are_recognised() {
        for border in [
            "+-----+",
            "|=====|",
            "  ",
            "",
            "└──┘",
            "╞═══╡",
            "+---+---+",
            "|    |",
        ] {
            assert!(is_border(border), "{border:?}");
        }
        assert!(!is_border("|   0  MIG 1g.10gb+me  20 |"));
        assert!(is_header(&["GPU", "instance", "profiles:"]));
        assert!(is_header(&["Free/Total", "GiB", "CE", "JPEG", "OFA"]));
        assert!(is_header(&[
            "GPU",
            "Name",
            "ID",
            "Instances",
            "Memory",
            "P2P",
            "SM",
            "DEC",
            "ENC",
            "NEW"
        ]));
        assert!(!is_header(&["GPU", "access", "blocked"]));
        assert!(!is_header(&[]));
    }

    #[test]
    fn cursor_words_are_whole_and_failures_consume_nothing() {
        let mut c = Cursor::new("  GPUs 0");
        assert!(!c.eat_word("GPU"));
        assert!(!c.eat_words("GPUs 1"));
        assert_eq!(c.rest, "  GPUs 0");
        assert!(c.eat_words("gpus"));
        assert_eq!(c.number::<u8>(), Some(0));
        assert!(c.at_end());
        let mut c = Cursor::new("GPU-1234");
        assert!(!c.eat_word("GPU"));
        assert_eq!(c.number::<u32>(), None);
        assert_eq!(c.rest, "GPU-1234");
    }
}
