//! report.html as a reader sees it: opened in a real headless Chromium (Debian's `chromium`) at
//! 1280 px, no element is wider than the page, no two text boxes inside a plot overlap, and no
//! text of a plot is cut off at its edge. The page is measured by `tests/browser/layout-check.js`,
//! injected into a copy of the report; Chromium's `--dump-dom` brings the measurements back.
//!
//! Without Chromium the test says so and passes, unless `MIGBENCH_REQUIRE_CHROMIUM=1` (as
//! `.ci/run` sets, having installed it), where a missing browser fails it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

/// `chromium` on the PATH (or `MIGBENCH_CHROMIUM`).
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MIGBENCH_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    })
}

fn migbench(args: &[&str], paths: &[&Path]) {
    let status = Command::new(cargo_bin("migbench"))
        .args(args)
        .args(paths)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "migbench {args:?} failed");
}

/// The measurements of `page` at `width` px, as the injected script reports them.
fn measure(browser: &Path, page: &Path, profile: &Path, width: u32) -> Value {
    let dump = profile.with_extension("dom.html");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},4000"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        // To a file, not a pipe: the page (inline SVGs) is megabytes, more than a pipe holds
        // while the test waits.
        .stdout(std::fs::File::create(&dump).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Generous: a loaded machine can take long to start a browser; never a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("chromium did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(child.wait().unwrap().success(), "chromium failed");
    let dom = std::fs::read_to_string(&dump).unwrap();
    let start = dom
        .rfind("<pre id=\"layout-check\">")
        .unwrap_or_else(|| panic!("the check did not run: {}", &dom[..dom.len().min(500)]));
    let text = &dom[start..];
    let text = &text[text.find('>').unwrap() + 1..text.find("</pre>").unwrap()];
    let json = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn report_html_fits_the_page_and_its_plots_have_no_overlapping_text() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("MIGBENCH_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "MIGBENCH_REQUIRE_CHROMIUM=1 but no chromium on the PATH (apt-get install chromium)"
        );
        eprintln!("no chromium on the PATH: report.html is not checked in a browser");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    // Batch jobs on two GPU models (the table across GPUs), MIG layouts of 1g instances (the
    // narrowest captions, the longest VRAM legend) and the serving table, the widest.
    for scenario in [
        "scenarios/h100-3x-ti2v.toml",
        "scenarios/b200-ti2v.toml",
        "scenarios/a100-qwen3.toml",
    ] {
        migbench(
            &["run", "--sim", "--quiet", "--sample-ms", "1000", "--out"],
            &[&runs, Path::new(scenario)],
        );
    }
    let out = dir.path().join("report");
    migbench(&["report", "--out"], &[&out, &runs]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let script = std::fs::read_to_string("tests/browser/layout-check.js").unwrap();
    let page = dir.path().join("check.html");
    std::fs::write(
        &page,
        html.replace("</body>", &format!("<script>\n{script}</script>\n</body>")),
    )
    .unwrap();
    // Every plot is a figure of the page; the browser must have measured each.
    let svgs = html.matches("<figure ").count();
    assert!(svgs > 20, "{svgs} plots");

    let m = measure(&browser, &page, &dir.path().join("profile"), 1280);
    assert!(m["page"].as_f64().unwrap() > 1200.0, "{m}");
    assert_eq!(
        m["figures"].as_u64().unwrap() as usize,
        svgs,
        "every plot measured"
    );
    for what in ["wide", "overlaps", "clipped"] {
        let found = m[what].as_array().unwrap();
        assert!(found.is_empty(), "at 1280 px, {what}: {found:#?}");
    }
}
