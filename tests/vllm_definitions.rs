//! migbench's serving figures against vLLM's definitions on one recorded request trace: the
//! figures `vllm bench serve` computes (`calculate_metrics` in vLLM's benchmarks/serve.py) are
//! computed here again, independently, from their documented definitions — TTFT and E2EL as
//! recorded, TPOT = (E2EL − TTFT) / (output tokens − 1) for requests with more than one output
//! token, ITL the flattened gaps, numpy's mean, median, population std and linear percentiles,
//! throughputs over the benchmark's duration, goodput the completed requests within every SLO
//! (a one-token request's TPOT taken as 0) per second — and must agree with migbench's.

use migbench::loadgen::metrics::{meets, ServingMetrics};
use migbench::loadgen::stats::Summary;
use migbench::loadgen::{RequestRecord, Slo, TokenCount};

/// A trace of completed and failed requests with uneven gaps (seconds).
fn trace() -> Vec<RequestRecord> {
    let req = |i: u32, sent: f64, ttft: f64, itls: &[f64], input: u32| {
        let latency = ttft + itls.iter().sum::<f64>();
        RequestRecord {
            index: i,
            warmup: false,
            sent_s: sent,
            due_s: sent,
            ttft_s: Some(ttft),
            itls_s: itls.to_vec(),
            latency_s: Some(latency),
            input_tokens: input,
            output_tokens: itls.len() as u32 + 1,
            tokens_from: TokenCount::Usage,
            error: None,
        }
    };
    let mut failed = RequestRecord::failed(5, false, 0.9, "HTTP 500");
    failed.input_tokens = 77;
    vec![
        req(0, 0.0, 0.120, &[0.020, 0.031, 0.019, 0.045], 100),
        req(1, 0.1, 0.340, &[0.050, 0.052], 80),
        req(2, 0.3, 0.090, &[], 60),
        req(
            3,
            0.4,
            0.610,
            &[0.011, 0.013, 0.090, 0.012, 0.014, 0.015],
            120,
        ),
        req(4, 0.6, 0.205, &[0.041], 90),
        failed,
    ]
}

/// numpy's `percentile(x, p)` (method `linear`): the order statistics at `h = (n − 1) p / 100`,
/// interpolated.
fn np_percentile(x: &[f64], p: f64) -> f64 {
    let mut s = x.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let h = (s.len() - 1) as f64 * p / 100.0;
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    match s.get(lo + 1) {
        Some(next) => s[lo] + frac * (next - s[lo]),
        None => s[lo],
    }
}

/// numpy's mean, median, std (ddof 0), p90 and p99, in milliseconds.
fn np_summary(seconds: &[f64]) -> [f64; 5] {
    let x: Vec<f64> = seconds.iter().map(|s| s * 1000.0).collect();
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let std = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    let mut s = x.clone();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    [
        mean,
        median,
        std,
        np_percentile(&x, 90.0),
        np_percentile(&x, 99.0),
    ]
}

fn close(what: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
        "{what}: migbench {ours}, vLLM's definition {theirs}"
    );
}

fn same(what: &str, ours: Option<Summary>, theirs: [f64; 5]) {
    let ours = ours.unwrap_or_else(|| panic!("{what}: migbench has no figure"));
    for ((name, o), t) in ours.named().iter().zip(theirs) {
        close(&format!("{name}_{what}_ms"), *o, t);
    }
}

#[test]
fn migbench_figures_are_vllms_on_the_same_trace() {
    let records = trace();
    let duration = 1.75;
    let slo = Slo {
        ttft_ms: Some(350.0),
        tpot_ms: Some(40.0),
        e2el_ms: None,
    };
    let refs: Vec<&RequestRecord> = records.iter().collect();
    let good = refs.iter().filter(|r| meets(&slo, r)).count();
    let m = ServingMetrics::compute(&refs, duration, Some(good));

    // vLLM's way: over the successful requests only.
    let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.error.is_none()).collect();
    let ttfts: Vec<f64> = ok.iter().map(|r| r.ttft_s.unwrap()).collect();
    let e2els: Vec<f64> = ok.iter().map(|r| r.latency_s.unwrap()).collect();
    let tpots: Vec<f64> = ok
        .iter()
        .filter(|r| r.output_tokens > 1)
        .map(|r| (r.latency_s.unwrap() - r.ttft_s.unwrap()) / f64::from(r.output_tokens - 1))
        .collect();
    let itls: Vec<f64> = ok.iter().flat_map(|r| r.itls_s.clone()).collect();
    let input: u32 = ok.iter().map(|r| r.input_tokens).sum();
    let output: u32 = ok.iter().map(|r| r.output_tokens).sum();
    // Goodput: each completed request's TTFT and TPOT (0 for one output token) within the SLO.
    let vllm_good = ok
        .iter()
        .filter(|r| {
            let tpot = if r.output_tokens > 1 {
                (r.latency_s.unwrap() - r.ttft_s.unwrap()) / f64::from(r.output_tokens - 1)
            } else {
                0.0
            };
            r.ttft_s.unwrap() * 1000.0 <= 350.0 && tpot * 1000.0 <= 40.0
        })
        .count();

    assert_eq!((m.completed, m.failed), (5, 1));
    assert_eq!(m.total_input_tokens, u64::from(input));
    assert_eq!(m.total_output_tokens, u64::from(output));
    close("request_throughput", m.request_throughput, 5.0 / duration);
    close(
        "output_throughput",
        m.output_throughput,
        f64::from(output) / duration,
    );
    close(
        "total_token_throughput",
        m.total_token_throughput,
        f64::from(input + output) / duration,
    );
    // Requests 0 (TPOT 28.75 ms) and 2 (one token) are good; 1 (TPOT 51 ms) and 4 (41 ms)
    // miss the TPOT objective, 3 the TTFT one.
    assert_eq!(vllm_good, 2);
    close(
        "request_goodput",
        m.request_goodput.unwrap(),
        vllm_good as f64 / duration,
    );
    same("ttft", m.ttft_ms, np_summary(&ttfts));
    same("tpot", m.tpot_ms, np_summary(&tpots));
    same("itl", m.itl_ms, np_summary(&itls));
    same("e2el", m.e2el_ms, np_summary(&e2els));
}
