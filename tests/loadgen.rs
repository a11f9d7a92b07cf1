//! The load generator against real HTTP servers on loopback that stream with known delays, fail,
//! stall or drop the stream: request counts, arrival rates, TTFT/ITL/TPOT arithmetic, and every
//! failure recorded as an error without stopping the load.
//!
//! Timing checks allow for scheduling on a busy machine: a sleep never ends early, so measured
//! gaps are at least the scripted delay and at most a few milliseconds more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use migbench::clock::Clock;
use migbench::http;
use migbench::loadgen::{self, Endpoint, LoadSpec, Slo, Target, TokenCount};
use tokio::net::TcpListener;

/// What the scripted server does with each streaming request.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Waits `ttft`, then sends `tokens` chunks `itl` apart, then usage (if `usage`) and [DONE].
    Stream {
        ttft: Duration,
        itl: Duration,
        tokens: u32,
        usage: bool,
    },
    /// Answers 500 with an error body.
    Fail,
    /// Sends one chunk, then nothing, forever.
    Stall,
    /// Sends two chunks, then breaks the connection.
    Drop,
}

/// A scripted server on its own thread; returns its base URL and the arrival time of each request.
fn start_server(script: Script) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&arrivals);
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", std_listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            http::serve(listener, move |request| {
                let log = Arc::clone(&log);
                async move {
                    log.lock().unwrap().push(Instant::now());
                    let body: serde_json::Value =
                        serde_json::from_slice(&http::read_body(request).await).unwrap();
                    respond(script, body["messages"].is_array())
                }
            })
            .await;
        });
    });
    (url, arrivals)
}

fn chunk(chat: bool, text: &str) -> Bytes {
    let data = if chat {
        serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]})
    } else {
        serde_json::json!({"choices": [{"index": 0, "text": text}]})
    };
    Bytes::from(format!("data: {data}\n\n"))
}

fn respond(script: Script, chat: bool) -> hyper::Response<http::ChannelBody> {
    if let Script::Fail = script {
        return http::json(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"object": "error", "message": "scripted failure"}),
        );
    }
    let (tx, response) = http::event_stream();
    tokio::spawn(async move {
        match script {
            Script::Stream {
                ttft,
                itl,
                tokens,
                usage,
            } => {
                if chat {
                    // Chat streams open with a role-only chunk that carries no text.
                    let role = serde_json::json!({"choices": [{"delta": {"role": "assistant", "content": ""}}]});
                    let _ = tx.send(Ok(Bytes::from(format!("data: {role}\n\n"))));
                }
                tokio::time::sleep(ttft).await;
                for k in 0..tokens {
                    if k > 0 {
                        tokio::time::sleep(itl).await;
                    }
                    let _ = tx.send(Ok(chunk(chat, " tok")));
                }
                if usage {
                    let u = serde_json::json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": tokens, "total_tokens": 7 + tokens}});
                    let _ = tx.send(Ok(Bytes::from(format!("data: {u}\n\n"))));
                }
                let _ = tx.send(Ok(Bytes::from("data: [DONE]\n\n")));
            }
            Script::Stall => {
                let _ = tx.send(Ok(chunk(chat, " first")));
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Script::Drop => {
                let _ = tx.send(Ok(chunk(chat, " a")));
                let _ = tx.send(Ok(chunk(chat, " b")));
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = tx.send(Err(std::io::Error::other("scripted crash")));
            }
            Script::Fail => unreachable!(),
        }
    });
    response
}

fn target(url: &str, spec: LoadSpec) -> Target {
    Target {
        base_url: url.to_string(),
        model: "test-model".into(),
        spec,
        prompts: None,
        seed: 1,
        stop: Arc::new(AtomicBool::new(false)),
        hold_owner: 0,
        sink: None,
    }
}

fn ms(d: f64) -> f64 {
    d * 1000.0
}

/// The chunks of `rec` came as a server that waits `ttft_ms`, then `itl_ms` between chunks,
/// sends them: the k-th gap's end is never before its scripted time after the request was sent,
/// nor more than a quarter of a second late. (One gap alone can come out shorter than scripted on a busy
/// machine, when the chunk before it was read late.)
fn follows_the_script(rec: &loadgen::RequestRecord, ttft_ms: f64, itl_ms: f64) {
    let mut at = ms(rec.ttft_s.unwrap());
    for (k, itl) in rec.itls_s.iter().map(|&s| ms(s)).enumerate() {
        at += itl;
        let scripted = ttft_ms + itl_ms * (k + 1) as f64;
        assert!(
            (scripted..scripted + 250.0).contains(&at),
            "chunk {} at {at} ms, scripted at {scripted} ms (gaps {:?})",
            k + 1,
            rec.itls_s
        );
    }
}

#[test]
fn ttft_itl_and_tpot_follow_the_servers_delays_and_warmups_are_apart() {
    let (url, arrivals) = start_server(Script::Stream {
        ttft: Duration::from_millis(60),
        itl: Duration::from_millis(25),
        tokens: 6,
        usage: true,
    });
    let spec = LoadSpec {
        requests: Some(8),
        max_concurrency: Some(4),
        warmup_requests: 2,
        input_tokens: 16,
        output_tokens: 6,
        ..LoadSpec::default()
    };
    let results = loadgen::drive_blocking(&[target(&url, spec)], Clock::wall()).unwrap();
    let result = &results[0];
    assert_eq!(
        arrivals.lock().unwrap().len(),
        10,
        "8 requests and 2 warm-ups reached the server"
    );
    assert_eq!(result.records.iter().filter(|r| r.warmup).count(), 2);
    let measured: Vec<_> = result.measured().collect();
    assert_eq!(measured.len(), 8);
    for r in &measured {
        assert_eq!(r.error, None);
        assert_eq!(
            (r.output_tokens, r.input_tokens),
            (6, 7),
            "counts come from usage"
        );
        assert_eq!(r.tokens_from, TokenCount::Usage);
        let ttft = ms(r.ttft_s.unwrap());
        assert!(
            (60.0..100.0).contains(&ttft),
            "TTFT {ttft} ms for a 60 ms script"
        );
        assert_eq!(r.itls_s.len(), 5, "one gap between each two of 6 chunks");
        follows_the_script(r, 60.0, 25.0);
        // TPOT = (latency - TTFT) / (tokens - 1): the mean of the gaps, by definition.
        let tpot = ms(r.tpot_s().unwrap());
        let mean_itl = ms(r.itls_s.iter().sum::<f64>() / 5.0);
        assert!(
            (tpot - mean_itl).abs() < 3.0,
            "TPOT {tpot} vs mean ITL {mean_itl}"
        );
        let latency = ms(r.latency_s.unwrap());
        assert!(latency >= 60.0 + 5.0 * 25.0, "{latency}");
    }
    // Warm-ups go one at a time, before the measured requests.
    let warm: Vec<_> = result.records.iter().filter(|r| r.warmup).collect();
    assert!(warm[1].sent_s >= warm[0].sent_s + warm[0].latency_s.unwrap());
    assert!(measured.iter().all(|r| r.sent_s >= result.start_s));
    // At most 4 in flight: 8 requests of ~185 ms take two rounds.
    let m = loadgen::ServingMetrics::compute(&measured, result.duration(), None);
    assert_eq!(m.max_concurrent_requests, 4);
    assert!(result.duration() > 2.0 * 0.185, "{}", result.duration());
    assert_eq!(m.total_output_tokens, 48);
    assert!((m.output_throughput - 48.0 / result.duration()).abs() < 1e-9);
}

#[test]
fn chat_streams_without_usage_are_counted_by_chunks_on_the_wall_clock() {
    let (url, _) = start_server(Script::Stream {
        ttft: Duration::from_millis(40),
        itl: Duration::from_millis(10),
        tokens: 5,
        usage: false,
    });
    let spec = LoadSpec {
        endpoint: Endpoint::Chat,
        requests: Some(3),
        max_concurrency: Some(1),
        input_tokens: 12,
        output_tokens: 5,
        ..LoadSpec::default()
    };
    let results = loadgen::drive_blocking(&[target(&url, spec)], Clock::wall()).unwrap();
    let r = &results[0];
    assert!(r.start_s >= 0.0 && r.start_s < 1.0, "{}", r.start_s);
    for rec in r.measured() {
        assert_eq!(rec.error, None);
        assert_eq!(rec.tokens_from, TokenCount::Chunks);
        // The role-only first chunk is not a token; the prompt length is the estimate.
        assert_eq!((rec.output_tokens, rec.input_tokens), (5, 12));
        // The server's 40 ms to the first token and 10 ms between tokens, on the wall clock.
        let ttft = rec.ttft_s.unwrap();
        assert!((0.04..0.5).contains(&ttft), "{ttft}");
        follows_the_script(rec, 40.0, 10.0);
    }
}

/// Mean and coefficient of variation of some gaps.
fn mean_and_variation(gaps: &[f64]) -> (f64, f64) {
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, sd / mean)
}

fn quick_stream() -> Script {
    Script::Stream {
        ttft: Duration::from_millis(1),
        itl: Duration::from_millis(1),
        tokens: 2,
        usage: true,
    }
}

#[test]
fn arrivals_follow_the_rate_and_burstiness() {
    // Poisson at 100 requests per second, and gamma with burstiness 4 (gaps 4 times less varied:
    // coefficient of variation 1/sqrt(4)), both driven at once, one per server.
    let (poisson_url, poisson) = start_server(quick_stream());
    let (regular_url, regular) = start_server(quick_stream());
    let spec = |burstiness| LoadSpec {
        rate: Some(100.0),
        burstiness,
        requests: Some(300),
        input_tokens: 4,
        output_tokens: 2,
        ..LoadSpec::default()
    };
    let results = loadgen::drive_blocking(
        &[
            target(&poisson_url, spec(1.0)),
            target(&regular_url, spec(4.0)),
        ],
        Clock::wall(),
    )
    .unwrap();
    // Each server got every request, and none was sent before it was due.
    assert_eq!(poisson.lock().unwrap().len(), 300);
    assert_eq!(regular.lock().unwrap().len(), 300);
    for r in &results {
        assert_eq!(r.measured().filter(|r| r.completed()).count(), 300);
        assert!(r.measured().all(|q| q.sent_s >= q.due_s - 1e-9));
    }
    // The arrivals the load generator scheduled, as it recorded them: on a busy machine a send
    // can be late (the wall clock's gaps then say more of the machine than of the process), but
    // when each request was due does not move.
    let due = |k: usize| -> Vec<f64> {
        let mut d: Vec<(u32, f64)> = results[k].measured().map(|q| (q.index, q.due_s)).collect();
        d.sort_by_key(|&(i, _)| i);
        d.windows(2).map(|w| w[1].1 - w[0].1).collect()
    };
    let (mean, cv) = mean_and_variation(&due(0));
    assert!((mean - 0.010).abs() < 0.0015, "mean gap {mean}");
    assert!(
        (cv - 1.0).abs() < 0.2,
        "Poisson coefficient of variation {cv}"
    );
    let (mean, cv) = mean_and_variation(&due(1));
    assert!((mean - 0.010).abs() < 0.0015, "mean gap {mean}");
    assert!(
        (cv - 0.5).abs() < 0.15,
        "gamma(4) coefficient of variation {cv}"
    );
    // The throughput the metrics report is never above the rate asked for (a late machine
    // only lowers it).
    let measured: Vec<_> = results[0].measured().collect();
    let m = loadgen::ServingMetrics::compute(&measured, results[0].duration(), None);
    assert!(m.request_throughput < 115.0, "{}", m.request_throughput);
}

#[test]
fn a_duration_stops_new_requests_and_slos_give_goodput() {
    // Every check is made on the instants the load generator recorded, not on wall-clock
    // margins: on a loaded machine a request is sent late, and the generator may find the half
    // second over before it gets to an arrival that was due in it (which is then not sent).
    let script = Script::Stream {
        ttft: Duration::from_millis(30),
        itl: Duration::from_millis(5),
        tokens: 3,
        usage: true,
    };
    let (url, arrivals) = start_server(script);
    let spec = LoadSpec {
        rate: Some(50.0),
        duration_s: Some(0.5),
        ..LoadSpec::default()
    };
    let results = loadgen::drive_blocking(&[target(&url, spec.clone())], Clock::wall()).unwrap();
    let r = &results[0];
    let measured: Vec<_> = r.measured().collect();
    // Every request sent reached the server.
    assert_eq!(arrivals.lock().unwrap().len(), measured.len());
    assert!(!measured.is_empty());
    // The same seed without a duration: the arrival schedule, which a load does not move.
    let (url, _) = start_server(script);
    let schedule_spec = LoadSpec {
        duration_s: None,
        requests: Some(60),
        ..spec
    };
    let schedule = loadgen::drive_blocking(&[target(&url, schedule_spec)], Clock::wall()).unwrap();
    let s = &schedule[0];
    let due: Vec<f64> = s.measured().map(|x| x.due_s - s.start_s).collect();
    // 50 per second: about 25 of the 60 arrivals are due in the first half second.
    let in_half_second = due.iter().filter(|&&d| d < 0.5).count();
    assert!((12..=40).contains(&in_half_second), "{due:?}");
    // The duration's requests are those arrivals in order, each sent no earlier than due,
    // none due at or after the half second...
    for (k, x) in measured.iter().enumerate() {
        assert_eq!(x.index as usize, k);
        assert!((x.due_s - r.start_s - due[k]).abs() < 1e-9, "{k}");
        assert!(due[k] < 0.5 && x.sent_s >= x.due_s, "{k}");
    }
    // ...and the generator stopped only once the half second was over.
    assert!(r.end_s - r.start_s >= 0.5, "{}", r.end_s - r.start_s);
    // Goodput against the TTFTs measured: a scripted TTFT is at least 30 ms (a sleep never
    // ends early), so none meets a 20 ms objective; an objective at the median TTFT is met by
    // exactly the requests at or below it, one at the longest TTFT by all.
    let objective = |ttft_ms| Slo {
        ttft_ms: Some(ttft_ms),
        ..Slo::default()
    };
    let good = |ttft_ms| {
        measured
            .iter()
            .filter(|x| loadgen::metrics::meets(&objective(ttft_ms), x))
            .count()
    };
    let mut ttfts: Vec<f64> = measured.iter().map(|x| ms(x.ttft_s.unwrap())).collect();
    ttfts.sort_by(f64::total_cmp);
    assert!(ttfts[0] >= 30.0, "{ttfts:?}");
    assert_eq!(good(20.0), 0);
    let median = ttfts[ttfts.len() / 2];
    let at_or_below = ttfts.iter().filter(|&&t| t <= median).count();
    assert_eq!(good(median), at_or_below);
    assert_eq!(good(ttfts[ttfts.len() - 1]), measured.len());
}

#[test]
fn errors_stalls_and_dropped_streams_are_recorded_and_the_load_goes_on() {
    let (good, _) = start_server(quick_stream());
    let (failing, _) = start_server(Script::Fail);
    let (stalling, _) = start_server(Script::Stall);
    let (dropping, _) = start_server(Script::Drop);
    // Nothing listens here: the port was free a moment ago.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let spec = LoadSpec {
        requests: Some(3),
        timeout_s: 0.3,
        input_tokens: 4,
        output_tokens: 2,
        ..LoadSpec::default()
    };
    let urls = [&good, &failing, &stalling, &dropping, &refused];
    let targets: Vec<Target> = urls.iter().map(|u| target(u, spec.clone())).collect();
    let started = Instant::now();
    let results = loadgen::drive_blocking(&targets, Clock::wall()).unwrap();
    // The stalls end at their timeout, not when the server gives up.
    assert!(started.elapsed() < Duration::from_secs(3));
    let errors = |i: usize| -> Vec<String> {
        results[i]
            .measured()
            .map(|r| r.error.clone().unwrap_or_default())
            .collect()
    };
    assert!(errors(0).iter().all(String::is_empty), "{:?}", errors(0));
    for (i, expected) in [
        (
            1,
            "HTTP 500 Internal Server Error: {\"message\":\"scripted failure\"",
        ),
        (2, "no complete response after 0.3 s"),
        (3, "the stream broke"),
        (4, "request failed"),
    ] {
        let errs = errors(i);
        assert_eq!(errs.len(), 3);
        assert!(
            errs.iter().all(|e| e.starts_with(expected)),
            "{i}: {errs:?}"
        );
        let measured: Vec<_> = results[i].measured().collect();
        let m = loadgen::ServingMetrics::compute(&measured, results[i].duration(), None);
        assert_eq!((m.completed, m.failed), (0, 3));
    }
    // A stalled request still shows when its first token came.
    assert!(results[2]
        .measured()
        .all(|r| r.ttft_s.is_some() && r.latency_s.is_none()));
}

#[test]
fn a_stopped_target_sends_no_more_requests() {
    let (url, arrivals) = start_server(quick_stream());
    // 1000 requests at 20 per second would take 50 s; the stop comes after 0.3 s.
    let spec = LoadSpec {
        rate: Some(20.0),
        requests: Some(1000),
        input_tokens: 4,
        output_tokens: 2,
        ..LoadSpec::default()
    };
    let t = target(&url, spec);
    let stop = Arc::clone(&t.stop);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    let started = Instant::now();
    let results = loadgen::drive_blocking(&[t], Clock::wall()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let sent = arrivals.lock().unwrap().len();
    assert_eq!(results[0].records.len(), sent);
    assert!((1..=20).contains(&sent), "{sent}");
}

/// With a sink, each request goes to it once done, in the order sent (warm-ups first, flagged
/// as not measured), and the result keeps none: nothing holds a run's requests.
#[test]
fn a_sink_takes_every_request_in_the_order_sent_and_the_result_keeps_none() {
    let (url, _) = start_server(Script::Stream {
        ttft: Duration::from_millis(5),
        itl: Duration::from_millis(1),
        tokens: 3,
        usage: true,
    });
    let spec = LoadSpec {
        requests: Some(20),
        max_concurrency: Some(4),
        warmup_requests: 2,
        ..LoadSpec::default()
    };
    let taken = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&taken);
    let mut t = target(&url, spec);
    t.sink = Some(loadgen::Sink(Arc::new(move |r, point, measured| {
        into.lock()
            .unwrap()
            .push((r.index, point.is_none(), measured, r.warmup))
    })));
    let results = loadgen::drive_blocking(&[t], Clock::wall()).unwrap();
    assert!(results[0].records.is_empty());
    let taken = taken.lock().unwrap();
    let order: Vec<u32> = taken.iter().map(|x| x.0).collect();
    assert_eq!(order, (0..22).collect::<Vec<u32>>());
    assert!(taken
        .iter()
        .all(|&(_, no_point, measured, warmup)| no_point && measured != warmup));
    assert_eq!(taken.iter().filter(|x| x.3).count(), 2);
}
