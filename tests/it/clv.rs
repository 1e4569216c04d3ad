//! The predictive CLV stage on the bundled sample: the published predictions are the
//! models' (recomputed here from the published parameters), models are selectable,
//! and a fit that cannot work stops the run loudly — or, if the pipeline says so,
//! skips the CLV tables with a warning.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use fidelis::models::{GammaGammaFit, PurchaseFit, PurchaseModelKind, predicted_clv};

use crate::support::{Workspace, fidelis, query, repo, run_only};

const AS_OF: &str = "2026-11-21";

async fn run_clv(ws: &Workspace, set: &[(&str, &str)]) -> fidelis::manifest::Manifest {
    let output = ws.path("out").display().to_string();
    let mut all = vec![("input", "data/sample"), ("output", output.as_str())];
    all.extend_from_slice(set);
    run_only(&repo().join("pipelines/loyalty.yaml"), AS_OF, &all, &["clv", "clv_model"])
        .await
        .expect("the run succeeds")
}

fn floats(batches: &[RecordBatch], column: usize) -> Vec<f64> {
    batches.iter().flat_map(|b| b.column(column).as_primitive::<Float64Type>().values().to_vec()).collect()
}

#[tokio::test]
async fn published_predictions_are_the_fitted_models() {
    let ws = Workspace::new();
    let manifest = run_clv(&ws, &[]).await;
    let root = ws.path("out");
    let params = query(&root, AS_OF, &["clv_model"], "SELECT value FROM clv_model ORDER BY model, parameter").await;
    // bg_nbd: a, alpha, b, r; gamma_gamma: gamma, p, q
    let [a, alpha, b, r, gamma, p, q] = floats(&params, 0)[..] else { panic!("7 parameters") };
    let purchases = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, [r, alpha, a, b]).expect("valid");
    let spend = GammaGammaFit::from_parameters(p, q, gamma).expect("valid");

    let rows = query(
        &root,
        AS_OF,
        &["clv", "customer_summary"],
        "SELECT CAST(c.frequency AS DOUBLE), c.recency, c.\"T\", c.monetary_value, c.p_alive, c.expected_purchases, \
         c.expected_order_value, c.predicted_clv, c.historical_clv, CAST(s.revenue AS DOUBLE) \
         FROM clv c JOIN customer_summary s USING (customer_id) ORDER BY customer_id",
    )
    .await;
    let columns: Vec<Vec<f64>> = (0..10).map(|i| floats(&rows, i)).collect();
    assert_eq!(columns[0].len(), manifest.tables["customer_summary"].rows as usize);
    let units_per_month = 365.25 / 12.0 / 7.0;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
    #[allow(clippy::needless_range_loop)] // row i of ten parallel columns
    for i in 0..columns[0].len() {
        let (x, t_x, age, m) = (columns[0][i], columns[1][i], columns[2][i], columns[3][i]);
        let order_value = if x > 0.0 { spend.conditional_expected_spend(x, m) } else { spend.population_mean_spend() };
        assert!(close(columns[4][i], purchases.p_alive(x, t_x, age)), "p_alive of row {i}");
        let expected = purchases.conditional_expected_purchases(12.0 * units_per_month, x, t_x, age);
        assert!(close(columns[5][i], expected), "expected_purchases of row {i}");
        assert!(close(columns[6][i], order_value), "expected_order_value of row {i}");
        let clv = predicted_clv(&purchases, x, t_x, age, order_value, 1.0, 0.01, 12, units_per_month);
        assert!(close(columns[7][i], clv), "predicted_clv of row {i}: {} vs {clv}", columns[7][i]);
        assert!(close(columns[8][i], columns[9][i]), "historical_clv = revenue x margin");
    }

    let fits = query(
        &root,
        AS_OF,
        &["clv_model"],
        "SELECT DISTINCT model, converged, iterations, customers, customers_left_out FROM clv_model ORDER BY model",
    )
    .await;
    let fits = &fits[0];
    assert!(fits.column(1).as_boolean().iter().all(|c| c == Some(true)), "both fits converge on the sample");
    let left_out = fits.column(4).as_primitive::<Int64Type>().value(1);
    let counted = manifest.stages.iter().find(|s| s.name == "clv").map(|s| s.counts["left_out_of_spend_model"]);
    assert_eq!(counted, Some(left_out as u64), "customers left out of Gamma-Gamma are counted in the manifest");
}

#[tokio::test]
async fn the_purchase_model_is_selectable() {
    for model in ["mbg_nbd", "pareto_nbd"] {
        let ws = Workspace::new();
        run_clv(&ws, &[("clv_model", model)]).await;
        let fitted =
            query(&ws.path("out"), AS_OF, &["clv_model"], "SELECT DISTINCT model FROM clv_model ORDER BY model").await;
        let names =
            datafusion::arrow::compute::cast(fitted[0].column(0), &datafusion::arrow::datatypes::DataType::Utf8)
                .expect("model names as text");
        let names: Vec<&str> = names.as_string::<i32>().iter().flatten().collect();
        assert_eq!(names, ["gamma_gamma", model], "ordered by name");
    }
}

#[test]
fn a_fit_without_enough_repeat_buyers_stops_the_run() {
    let ws = Workspace::new();
    let out = fidelis()
        .args([
            "run",
            "pipelines/loyalty.yaml",
            "--as-of",
            "2024-03-31",
            "--set",
            "input=tests/fixtures/summary",
            "--set",
        ])
        .arg(format!("output={}", ws.path("out").display()))
        .output()
        .expect("fidelis runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("stage `clv_fit`") && stderr.contains("bg_nbd") && stderr.contains("repeat buyers"),
        "{stderr}"
    );
    assert!(!ws.path("out").join("clv").exists(), "nothing is published");
}

#[tokio::test]
async fn on_error_warn_publishes_everything_but_clv() {
    let ws = Workspace::new();
    let yaml = std::fs::read_to_string(repo().join("pipelines/loyalty.yaml")).expect("pipeline");
    let yaml = yaml
        .replace("on_error: fail", "on_error: warn")
        .replace("sql_dir: ../sql", &format!("sql_dir: {}", repo().join("sql").display()))
        .replace("templates_dir: ../templates", &format!("templates_dir: {}", repo().join("templates").display()))
        .replace("default: pipelines/seeds", &format!("default: {}", repo().join("pipelines/seeds").display()));
    let path = ws.write("pipeline.yaml", yaml);
    let input = repo().join("tests/fixtures/summary").display().to_string();
    let output = ws.path("out").display().to_string();
    let manifest =
        crate::support::run(&path, "2024-03-31", &[("input", &input), ("output", &output)]).await.expect("runs");
    assert!(manifest.tables.contains_key("kpi_monthly"));
    assert!(!manifest.tables.contains_key("clv") && !manifest.tables.contains_key("clv_model"));
    assert!(
        manifest.warnings.iter().any(|w| w.starts_with("stage `clv_fit` skipped (on_error: warn)")),
        "{:?}",
        manifest.warnings
    );
    assert!(manifest.warnings.iter().any(|w| w.contains("stage `clv` skipped")));
}
