//! The embedded anomaly explorer: its files, and the page itself in headless Chromium rendering a
//! real job's results (skipped, with a note, where Chromium is not installed).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::cli_replay::{load_over_http, results, sample_lines, SAMPLE_JOB};
use crate::util::TestServer;

#[tokio::test]
async fn the_explorer_files_are_served_from_the_binary() {
    let server = TestServer::start().await;
    let page = server.get("/_explorer").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("<script src=\"/_explorer/app.js\">"));
    for (asset, kind) in [("app.js", "text/javascript"), ("style.css", "text/css")] {
        let reply = server.get(&format!("/_explorer/{asset}")).await;
        assert_eq!(reply.status, 200);
        assert!(reply
            .header("content-type")
            .is_some_and(|t| t.starts_with(kind)));
        assert!(!reply.body.is_empty());
        // Nothing is fetched from elsewhere.
        let text = reply.text().replace("http://www.w3.org/2000/svg", "");
        assert!(!text.contains("http://") && !text.contains("https://"));
    }
    let missing = server.get("/_explorer/nope.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.es_error().0, "resource_not_found_exception");
    server.stop().await;
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        let found = Command::new("which").arg(name).output().ok()?;
        let path = String::from_utf8(found.stdout).ok()?;
        (!path.trim().is_empty()).then(|| PathBuf::from(path.trim()))
    })
}

/// Headless Chromium on `url`, with `mode` (`--dump-dom` or `--screenshot=...`).
fn run_chromium(browser: &Path, url: &str, mode: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args([
            "--window-size=1400,1000",
            "--virtual-time-budget=15000",
            mode,
            url,
        ])
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_a_jobs_results_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("NOTE: chromium is not installed; skipping the explorer browser test");
        return;
    };
    let server = TestServer::start().await;
    load_over_http(&server, "web", sample_lines(None)).await;
    let buckets = results(&server, "web", "buckets").await.len();
    let records = results(&server, "web", "records").await.len();
    assert!(records > 0);
    let url = format!("{}/_explorer#job=web", server.base_url);

    let dom = {
        let (browser, url) = (browser.clone(), url.clone());
        tokio::task::spawn_blocking(move || run_chromium(&browser, &url, "--dump-dom"))
            .await
            .expect("chromium task")
    };
    assert!(
        dom.contains("data-state=\"ready\""),
        "page never got ready:\n{dom}"
    );
    assert!(dom.contains("data-job=\"web\""));
    // One chart point per bucket, one marker and one table row per anomaly record (all scores
    // pass the default filter), one swim lane cell per bucket in the overall lane at least.
    assert!(dom.contains("class=\"series\" d=\"M"), "no series line");
    assert!(
        dom.contains(&format!("data-points=\"{buckets}\"")),
        "{buckets} points expected"
    );
    assert_eq!(count(&dom, "<circle class=\"anomaly sev-"), records);
    assert!(count(&dom, "<circle class=\"anomaly sev-critical\"") >= 1);
    assert_eq!(count(&dom, "<tr class=\"record\">"), records.min(500));
    assert!(count(&dom, "class=\"cell sev-") >= buckets.min(200));
    assert!(dom.contains("<td>web</td>"), "job list");

    // Zoomed to one day by the address (from as an ISO date, to as epoch ms): only that day's
    // buckets and anomalies are drawn.
    let (day_start, day_end) = (1_772_668_800_000_i64, 1_772_755_200_000_i64);
    let in_day = |docs: &[serde_json::Value]| {
        docs.iter()
            .filter(|d| {
                d["timestamp"]
                    .as_i64()
                    .is_some_and(|t| t >= day_start && t < day_end)
            })
            .count()
    };
    let day_buckets = in_day(&results(&server, "web", "buckets").await);
    let day_records = in_day(&results(&server, "web", "records").await);
    assert!(day_buckets > 0 && day_buckets < buckets && day_records < records);
    let zoomed = {
        let browser = browser.clone();
        let url = format!("{url}&from=2026-03-05T00:00&to={day_end}");
        tokio::task::spawn_blocking(move || run_chromium(&browser, &url, "--dump-dom"))
            .await
            .expect("chromium task")
    };
    assert!(zoomed.contains("data-state=\"ready\""));
    assert!(
        zoomed.contains(&format!("data-points=\"{day_buckets}\"")),
        "{day_buckets} points expected"
    );
    assert_eq!(count(&zoomed, "<tr class=\"record\">"), day_records);
    assert_eq!(count(&zoomed, "<circle class=\"anomaly sev-"), day_records);

    // One series known from its anomaly records: each shows its actual against its typical value.
    let checkout = results(&server, "web", "records")
        .await
        .into_iter()
        .filter(|r| r["detector_index"] == 1 && r["partition_field_value"] == "checkout")
        .count();
    assert!(checkout > 0);
    let series = {
        let browser = browser.clone();
        let url = format!("{url}&series=records%3A1%7Ccheckout%7C%7C");
        tokio::task::spawn_blocking(move || run_chromium(&browser, &url, "--dump-dom"))
            .await
            .expect("chromium task")
    };
    assert!(series.contains("data-state=\"ready\""));
    assert!(
        !series.contains("class=\"series\""),
        "no line for a series known from records"
    );
    assert_eq!(count(&series, "<circle class=\"anomaly sev-"), checkout);
    assert_eq!(count(&series, "class=\"stem\""), checkout);

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer.png");
    let _ = std::fs::remove_file(&shot);
    let mode = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || run_chromium(&browser, &url, &mode))
        .await
        .expect("chromium task");
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    eprintln!("explorer screenshot: {}", shot.display());
    server.stop().await;
}

/// The value of `attribute` on the first element carrying `marker` (e.g. `class="bounds"`).
fn attribute_after<'a>(dom: &'a str, marker: &str, attribute: &str) -> Option<&'a str> {
    let at = dom.find(marker)?;
    let rest = &dom[at..dom[at..].find('>')? + at];
    let start = rest.find(&format!("{attribute}=\""))? + attribute.len() + 2;
    rest[start..].split('"').next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_draws_model_bounds_and_a_forecast() {
    let Some(browser) = chromium() else {
        eprintln!("NOTE: chromium is not installed; skipping the explorer browser test");
        return;
    };
    let server = TestServer::start().await;
    let mut job: Value = serde_json::from_str(SAMPLE_JOB).expect("sample job is JSON");
    job["model_plot_config"] = json!({"enabled": true});
    let path = "/_ml/anomaly_detectors/plot";
    assert_eq!(server.put_json(path, &job).await.status, 200);
    assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
    let posted = server
        .post_raw(
            &format!("{path}/_data"),
            "application/x-ndjson",
            sample_lines(None),
        )
        .await;
    assert_eq!(posted.status, 202);
    let forecast = server
        .post_json(&format!("{path}/_forecast"), &json!({"duration": "1d"}))
        .await
        .json();
    let forecast_id = forecast["forecast_id"]
        .as_str()
        .expect("forecast id")
        .to_string();
    assert_eq!(server.post(&format!("{path}/_close")).await.status, 200);

    // The chart opens on the first model plot series: its rows, those with bounds, its forecast.
    let plot = results(&server, "plot", "model_plot").await;
    let same = |a: &Value, b: &Value| {
        a["detector_index"] == b["detector_index"]
            && a["partition_field_value"] == b["partition_field_value"]
    };
    let first = plot.first().expect("model plot rows").clone();
    let series: Vec<&Value> = plot.iter().filter(|r| same(r, &first)).collect();
    let bounded = series
        .iter()
        .filter(|r| r.get("model_lower").is_some())
        .count();
    assert!(
        bounded > 0 && bounded < series.len(),
        "warm-up rows have no bounds"
    );
    let rows = server
        .get(&format!(
            "{path}/results/forecasts/{forecast_id}?size=10000"
        ))
        .await
        .json();
    let forecast_rows = rows["model_forecast"]
        .as_array()
        .expect("forecast rows")
        .iter()
        .filter(|r| same(r, &first))
        .count();
    assert!(forecast_rows > 0);

    let url = format!("{}/_explorer#job=plot", server.base_url);
    let dom = {
        let (browser, url) = (browser.clone(), url.clone());
        tokio::task::spawn_blocking(move || run_chromium(&browser, &url, "--dump-dom"))
            .await
            .expect("chromium task")
    };
    assert!(
        dom.contains("data-state=\"ready\""),
        "page never got ready:\n{dom}"
    );
    let points = |class: &str| {
        attribute_after(&dom, &format!("class=\"{class}\" d=\"M"), "data-points")
            .and_then(|n| n.parse::<usize>().ok())
    };
    assert_eq!(points("series"), Some(series.len()));
    assert_eq!(points("bounds"), Some(bounded), "the model bounds band");
    assert_eq!(points("median"), Some(bounded), "the model median");
    assert_eq!(
        points("forecast-bounds"),
        Some(forecast_rows),
        "the forecast band"
    );
    assert_eq!(points("forecast"), Some(forecast_rows), "the forecast line");

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer-model-plot.png");
    let mode = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || run_chromium(&browser, &url, &mode))
        .await
        .expect("chromium task");
    assert!(std::fs::read(&shot).is_ok_and(|png| png.starts_with(b"\x89PNG")));
    eprintln!("explorer screenshot: {}", shot.display());
    server.stop().await;
}

/// With security on, the page asks the browser for credentials (401 with a Basic challenge); once
/// given (here in the address, as a user typing them into the prompt would), the page and its API
/// calls carry them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_with_security_on() {
    let Some(browser) = chromium() else {
        eprintln!("NOTE: chromium is not installed; skipping the secured explorer test");
        return;
    };
    let server = TestServer::start_secured().await;
    load_over_http(&server, "web", sample_lines(None)).await;
    let records = results(&server, "web", "records").await.len();
    let page = server.anonymous().get("/_explorer").await;
    assert_eq!(page.status, 401);
    assert!(page
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("Basic realm=\"security\"")));
    let address = server.address;
    let url = format!(
        "http://elastic:{}@{address}/_explorer#job=web",
        crate::util::ELASTIC_PASSWORD
    );
    let dom = tokio::task::spawn_blocking(move || run_chromium(&browser, &url, "--dump-dom"))
        .await
        .expect("chromium task");
    assert!(
        dom.contains("data-state=\"ready\""),
        "page never got ready:\n{dom}"
    );
    assert_eq!(count(&dom, "<circle class=\"anomaly sev-"), records);
    server.stop().await;
}
