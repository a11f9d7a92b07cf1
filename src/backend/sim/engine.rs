//! The simulated server's scheduler: continuous batching as vLLM does it, reduced to what sets
//! TTFT, TPOT and throughput. Each engine step decodes one token for every running sequence and
//! spends what is left of its token budget on prompts (chunked prefill); a sequence gets its
//! first token in the step that finishes its prompt. A sequence is admitted when a place in the
//! batch and KV cache for its prompt and all its output tokens are free, and it keeps them until
//! it ends (no preemption).
//!
//! A step costs, in seconds at full speed on the reference GPU,
//! `1 / decode_tokens_per_s + n / batch_decode_tokens_per_s + p / prefill_tokens_per_s`
//! for `n` sequences producing a token and `p` prompt tokens: one pass over the weights, a cost
//! per sequence, and the prompt's compute. The simulated GPU turns that work into simulated time
//! at the server's share of the SMs.

use std::collections::VecDeque;

use crate::workload::SimServer;

/// A step's outcome: what it cost, which sequences got a token and which finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub cost_s: f64,
    /// Sequences that produced one token in this step (their first, or the next).
    pub tokens: Vec<u64>,
    /// Sequences that produced their last token in this step.
    pub finished: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Seq {
    id: u64,
    prompt: u32,
    max_tokens: u32,
    prefilled: u32,
    generated: u32,
}

impl Seq {
    fn kv_tokens(&self) -> u64 {
        u64::from(self.prompt) + u64::from(self.max_tokens)
    }
}

/// The scheduler of one simulated server.
#[derive(Debug, Clone)]
pub struct Engine {
    profile: SimServer,
    /// Tokens the KV cache holds.
    kv_tokens: u64,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
}

impl Engine {
    pub fn new(profile: SimServer, kv_tokens: u64) -> Engine {
        Engine {
            profile,
            kv_tokens,
            waiting: VecDeque::new(),
            running: Vec::new(),
        }
    }

    /// Most tokens (prompt plus output) one request may take.
    pub fn capacity(&self) -> u64 {
        self.kv_tokens
    }

    /// Queues a request; one that could never fit in the KV cache is refused with vLLM's words.
    pub fn submit(&mut self, id: u64, prompt: u32, max_tokens: u32) -> Result<(), String> {
        let seq = Seq {
            id,
            prompt: prompt.max(1),
            max_tokens: max_tokens.max(1),
            prefilled: 0,
            generated: 0,
        };
        if seq.kv_tokens() > self.kv_tokens {
            return Err(format!(
                "This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the messages, {} in the completion). Please reduce the length of the messages or completion.",
                self.kv_tokens,
                seq.kv_tokens(),
                seq.prompt,
                seq.max_tokens
            ));
        }
        self.waiting.push_back(seq);
        Ok(())
    }

    /// Drops a request (its client went away).
    pub fn cancel(&mut self, id: u64) {
        self.waiting.retain(|s| s.id != id);
        self.running.retain(|s| s.id != id);
    }

    pub fn idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Runs one engine step; `None` when there is nothing to do.
    pub fn step(&mut self) -> Option<Step> {
        self.admit();
        if self.running.is_empty() {
            return None;
        }
        let p = &self.profile;
        let mut budget = u64::from(p.max_batched_tokens);
        let mut tokens = Vec::new();
        // Decodes first, one token each, as vLLM's scheduler does...
        for seq in self.running.iter_mut().filter(|s| s.prefilled == s.prompt) {
            if budget == 0 {
                break;
            }
            budget -= 1;
            seq.generated += 1;
            tokens.push(seq.id);
        }
        // ...then prompts, in arrival order, with what is left of the budget.
        let mut prefill = 0u64;
        for seq in self.running.iter_mut().filter(|s| s.prefilled < s.prompt) {
            let chunk = u64::from(seq.prompt - seq.prefilled).min(budget);
            if chunk == 0 {
                break;
            }
            budget -= chunk;
            prefill += chunk;
            seq.prefilled += chunk as u32;
            if seq.prefilled == seq.prompt {
                seq.generated += 1;
                tokens.push(seq.id);
            }
        }
        let finished: Vec<u64> = self
            .running
            .iter()
            .filter(|s| s.generated >= s.max_tokens)
            .map(|s| s.id)
            .collect();
        self.running.retain(|s| s.generated < s.max_tokens);
        let cost_s = 1.0 / p.decode_tokens_per_s
            + tokens.len() as f64 / p.batch_decode_tokens_per_s
            + prefill as f64 / p.prefill_tokens_per_s;
        Some(Step {
            cost_s,
            tokens,
            finished,
        })
    }

    /// Moves waiting requests into the batch while places and KV cache allow, in order.
    fn admit(&mut self) {
        let mut reserved: u64 = self.running.iter().map(Seq::kv_tokens).sum();
        while let Some(next) = self.waiting.front() {
            if self.running.len() >= self.profile.max_num_seqs as usize
                || reserved + next.kv_tokens() > self.kv_tokens
            {
                break;
            }
            reserved += next.kv_tokens();
            let seq = self.waiting.pop_front().expect("front exists");
            self.running.push(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> SimServer {
        SimServer {
            reference_gpu: "a100-80gb".into(),
            weights_gib: 8.0,
            kv_mib_per_token: 0.125,
            memory_fraction: 0.9,
            memory_fraction_flag: None,
            prefill_tokens_per_s: 10_000.0,
            decode_tokens_per_s: 100.0,
            batch_decode_tokens_per_s: 1000.0,
            max_num_seqs: 4,
            max_batched_tokens: 1000,
            startup_s: 0.0,
            source: String::new(),
        }
    }

    #[test]
    fn one_request_prefills_then_decodes_at_the_single_sequence_rate() {
        let mut e = Engine::new(profile(), 10_000);
        e.submit(1, 500, 3).unwrap();
        let first = e.step().unwrap();
        // One pass, one sequence, 500 prompt tokens: 10 ms + 1 ms + 50 ms, and the first token.
        assert!((first.cost_s - 0.061).abs() < 1e-12, "{}", first.cost_s);
        assert_eq!(first.tokens, [1]);
        let second = e.step().unwrap();
        assert!((second.cost_s - 0.011).abs() < 1e-12);
        let third = e.step().unwrap();
        assert_eq!(third.finished, [1]);
        assert!(e.idle() && e.step().is_none());
    }

    #[test]
    fn long_prompts_are_prefilled_in_chunks_of_the_step_budget() {
        let mut e = Engine::new(profile(), 10_000);
        e.submit(1, 2500, 2).unwrap();
        let steps: Vec<Step> = std::iter::from_fn(|| e.step()).collect();
        // 1000 + 1000 + 500 prompt tokens, the first token in the third step, then one more.
        assert_eq!(steps.len(), 4);
        assert!(steps[0].tokens.is_empty() && steps[1].tokens.is_empty());
        assert_eq!(steps[2].tokens, [1]);
        assert!((steps[0].cost_s - (0.01 + 0.1)).abs() < 1e-12);
    }

    #[test]
    fn the_batch_is_capped_by_places_and_by_kv_cache() {
        // Four places; KV for 10 requests of 100 tokens, so places are the limit.
        let mut e = Engine::new(profile(), 1000);
        for id in 0..6 {
            e.submit(id, 50, 50).unwrap();
        }
        let s = e.step().unwrap();
        assert_eq!(s.tokens, [0, 1, 2, 3]);
        // KV for 2.5 requests: two run at once.
        let mut e = Engine::new(profile(), 250);
        for id in 0..3 {
            e.submit(id, 50, 50).unwrap();
        }
        assert_eq!(e.step().unwrap().tokens, [0, 1]);
        // A request larger than the whole cache is refused outright.
        assert!(e
            .submit(9, 200, 51)
            .unwrap_err()
            .contains("maximum context length is 250"));
    }

    #[test]
    fn a_bigger_batch_makes_each_step_longer_but_the_total_rate_higher() {
        let decode_step = |n: u64| {
            let mut e = Engine::new(profile(), 100_000);
            for id in 0..n {
                e.submit(id, 1, 10).unwrap();
            }
            e.step(); // prefill
            e.step().unwrap().cost_s
        };
        let (one, four) = (decode_step(1), decode_step(4));
        assert!(four > one);
        assert!(4.0 / four > 1.0 / one);
    }
}
