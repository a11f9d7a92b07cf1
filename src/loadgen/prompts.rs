//! What each request asks: synthetic prompts of a given length, or prompts from a JSONL file.
//!
//! Synthetic prompts are random common English words, one per token: BPE tokenizers (Qwen's,
//! Llama's) encode each such word with its leading space as one token, so a prompt of N words is
//! about N tokens. The server's own count (`usage.prompt_tokens`) is recorded when it sends one.

use std::path::Path;

use rand::rngs::StdRng;
use rand::Rng;
use serde::Deserialize;

/// One request's prompt and how many tokens to ask for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompt {
    pub text: String,
    /// Prompt length in tokens, as estimated here (one per word).
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// A line of a prompts file: `{"prompt": "...", "output_tokens": 128}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    prompt: String,
    #[serde(default)]
    output_tokens: Option<u32>,
}

/// A JSONL prompts file, read whole.
#[derive(Debug, Clone)]
pub struct PromptFile {
    entries: Vec<FileEntry>,
}

impl PromptFile {
    /// Reads and checks `path`; a bad line is reported as `FILE:LINE: what is wrong`.
    pub fn load(path: &Path) -> Result<PromptFile, String> {
        let text = crate::input::read_to_string(path, crate::input::PROMPTS)
            .map_err(|e| format!("cannot read the prompts file {}: {e}", path.display()))?;
        PromptFile::parse(path, &text)
    }

    /// Checks the lines of a prompts file; `path` is used in messages. A line that is not a JSON
    /// object is not quoted (the file may be anything named by mistake), only placed
    /// ([`crate::location::json_error`]).
    pub fn parse(path: &Path, text: &str) -> Result<PromptFile, String> {
        const EACH: &str = "each line must be {\"prompt\": \"...\", \"output_tokens\": N} \
                            (output_tokens optional)";
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", path.display(), n + 1);
            let entry: FileEntry = serde_json::from_str(line).map_err(|e| {
                let why = crate::location::json_error(line, &e);
                format!("{at}:{}: {why}; {EACH}", e.column())
            })?;
            if entry.output_tokens == Some(0) {
                return Err(format!("{at}: output_tokens must be at least 1"));
            }
            entries.push(entry);
        }
        if entries.is_empty() {
            return Err(format!(
                "the prompts file {} has no prompts",
                path.display()
            ));
        }
        Ok(PromptFile { entries })
    }
}

/// Where prompts come from: a file (in order, from the start again when used up) or synthetic.
#[derive(Debug, Clone)]
pub struct Prompts {
    file: Option<PromptFile>,
    next: usize,
    input_tokens: u32,
    output_tokens: u32,
    range_ratio: f64,
}

impl Prompts {
    pub fn new(
        file: Option<PromptFile>,
        input_tokens: u32,
        output_tokens: u32,
        range_ratio: f64,
    ) -> Prompts {
        Prompts {
            file,
            next: 0,
            input_tokens,
            output_tokens,
            range_ratio,
        }
    }

    /// The next request's prompt.
    pub fn next(&mut self, rng: &mut StdRng) -> Prompt {
        let output_tokens = draw_length(self.output_tokens, self.range_ratio, rng);
        match &self.file {
            Some(file) => {
                let entry = &file.entries[self.next % file.entries.len()];
                self.next += 1;
                Prompt {
                    input_tokens: entry.prompt.split_whitespace().count() as u32,
                    text: entry.prompt.clone(),
                    output_tokens: entry.output_tokens.unwrap_or(output_tokens),
                }
            }
            None => {
                let n = draw_length(self.input_tokens, self.range_ratio, rng);
                let words: Vec<&str> = (0..n)
                    .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                    .collect();
                Prompt {
                    text: words.join(" "),
                    input_tokens: n,
                    output_tokens,
                }
            }
        }
    }
}

/// A length drawn uniformly from `n * (1 - r)` to `n * (1 + r)`, at least 1, as vLLM's random
/// dataset draws them.
pub fn draw_length(n: u32, range_ratio: f64, rng: &mut StdRng) -> u32 {
    if range_ratio <= 0.0 {
        return n.max(1);
    }
    let low = (f64::from(n) * (1.0 - range_ratio)) as u32;
    let high = (f64::from(n) * (1.0 + range_ratio)) as u32;
    rng.gen_range(low..=high).max(1)
}

/// The `k`th of a fixed cycle of one-token words (the simulated server's output text).
pub fn word(k: usize) -> &'static str {
    WORDS[k % WORDS.len()]
}

/// Common words that BPE tokenizers encode as one token each.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at",
    "from", "his", "her", "it", "an", "were", "are", "which", "this", "be", "or", "has", "had",
    "not", "but", "first", "one", "their", "its", "new", "after", "who", "they", "have", "two",
    "been", "also", "all", "time", "more", "year", "people", "city", "world", "water", "house",
    "light", "music", "river", "school", "story", "paper", "market", "garden", "window", "table",
];

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn words_are_lowercase_ascii_so_they_need_no_json_escaping() {
        assert!(WORDS
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
    }

    #[test]
    fn synthetic_prompts_have_the_asked_length_in_words() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut p = Prompts::new(None, 100, 20, 0.0);
        let prompt = p.next(&mut rng);
        assert_eq!(prompt.text.split_whitespace().count(), 100);
        assert_eq!((prompt.input_tokens, prompt.output_tokens), (100, 20));
    }

    #[test]
    fn lengths_stay_within_the_range_ratio() {
        let mut rng = StdRng::seed_from_u64(2);
        let drawn: Vec<u32> = (0..2000).map(|_| draw_length(100, 0.5, &mut rng)).collect();
        assert!(drawn.iter().all(|&n| (50..=150).contains(&n)));
        // Uniform: both ends are reached and the mean is near the middle.
        assert!(drawn.contains(&50) && drawn.contains(&150));
        let mean = drawn.iter().map(|&n| f64::from(n)).sum::<f64>() / drawn.len() as f64;
        assert!((mean - 100.0).abs() < 3.0, "{mean}");
    }

    #[test]
    fn a_prompts_file_is_used_in_order_and_bad_lines_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(
            &path,
            "{\"prompt\": \"a b c\"}\n\n{\"prompt\": \"d\", \"output_tokens\": 5}\n",
        )
        .unwrap();
        let mut p = Prompts::new(Some(PromptFile::load(&path).unwrap()), 9, 7, 0.0);
        let mut rng = StdRng::seed_from_u64(0);
        let got: Vec<(String, u32, u32)> = (0..3)
            .map(|_| p.next(&mut rng))
            .map(|p| (p.text, p.input_tokens, p.output_tokens))
            .collect();
        assert_eq!(
            got,
            [
                ("a b c".into(), 3, 7),
                ("d".into(), 1, 5),
                ("a b c".into(), 3, 7)
            ]
        );
        std::fs::write(&path, "{\"prompt\": \"ok\"}\n{\"text\": \"x\"}\n").unwrap();
        let err = PromptFile::load(&path).unwrap_err();
        assert!(err.contains("p.jsonl:2:7: unknown field `text`"), "{err}");
    }
}
