//! The predictive CLV stages: on the bundled sample the published predictions are the
//! selected model's (recomputed here from the published parameters), standard errors
//! are the fit's, intervals are reproducible; models are selectable or chosen by the
//! backtest, whose numbers on the CDNOW standard split are lifetimes'; the backtest
//! can be turned off, says when the history is too short, and a fit that cannot work
//! stops the run loudly — or, if the pipeline says so, skips the CLV tables with a
//! warning.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use fidelis::models::{
    ClvSettings, FitOptions, GammaGammaFit, Observation, PurchaseFit, PurchaseModelKind, fit_gamma_gamma,
    fit_purchase_model, predicted_clv,
};

use serde_json::json;

use crate::support::{Workspace, fidelis, query, repo, run_only};

const AS_OF: &str = "2026-11-21";

/// The CLV tables of the loyalty pipeline on `input`, as of `as_of`, with `set`.
async fn run_tables(
    ws: &Workspace,
    input: &str,
    as_of: &str,
    set: &[(&str, &str)],
    tables: &[&str],
) -> fidelis::manifest::Manifest {
    let output = ws.path("out").display().to_string();
    let mut all = vec![("input", input), ("output", output.as_str())];
    all.extend_from_slice(set);
    run_only(&repo().join("pipelines/loyalty.yaml"), as_of, &all, tables).await.expect("the run succeeds")
}

async fn run_clv(ws: &Workspace, set: &[(&str, &str)]) -> fidelis::manifest::Manifest {
    let tables = ["clv", "clv_model", "clv_backtest", "clv_segments", "customer_summary", "rfm"];
    run_tables(ws, "data/sample", AS_OF, set, &tables).await
}

fn floats(batches: &[RecordBatch], column: usize) -> Vec<f64> {
    batches.iter().flat_map(|b| b.column(column).as_primitive::<Float64Type>().values().to_vec()).collect()
}

/// Column `column` as optional numbers, whatever its numeric type.
fn numbers(batches: &[RecordBatch], column: usize) -> Vec<Option<f64>> {
    batches
        .iter()
        .flat_map(|b| {
            let values = cast(b.column(column), &DataType::Float64).expect("a numeric column");
            values.as_primitive::<Float64Type>().iter().collect::<Vec<_>>()
        })
        .collect()
}

/// Column `column` as optional text, whatever its string layout.
fn texts(batches: &[RecordBatch], column: usize) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let values = cast(b.column(column), &DataType::Utf8).expect("a text column");
            values.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>()
        })
        .collect()
}

/// The `facts` the manifest records for stage clv_backtest.
fn backtest_facts(manifest: &fidelis::manifest::Manifest) -> serde_json::Value {
    let stage = manifest.stages.iter().find(|s| s.name == "clv_backtest").expect("clv_backtest ran");
    serde_json::to_value(&stage.facts).expect("JSON")
}

fn close(a: f64, b: f64, relative: f64) -> bool {
    (a - b).abs() <= relative * a.abs().max(b.abs())
}

#[tokio::test]
async fn published_predictions_are_the_fitted_models() {
    let ws = Workspace::new();
    let manifest = run_clv(&ws, &[]).await;
    let root = ws.path("out");
    // clv_model: auto picks the model with the lowest holdout MAE, and clv uses it.
    let backtest =
        query(&root, AS_OF, &["clv_backtest"], "SELECT model, mae, selected FROM clv_backtest ORDER BY mae").await;
    let lowest = texts(&backtest, 0)[0].clone().expect("a backtested model");
    let selected: Vec<bool> = backtest[0].column(2).as_boolean().iter().flatten().collect();
    assert_eq!(selected, [true, false, false], "the lowest MAE is selected");
    let kind: PurchaseModelKind = lowest.parse().expect("a model name");
    let params = query(
        &root,
        AS_OF,
        &["clv_model"],
        "SELECT model, value FROM clv_model ORDER BY model = 'gamma_gamma', array_position(['r', 'alpha', 'a', 'b', \
         's', 'beta', 'p', 'q', 'gamma'], parameter)",
    )
    .await;
    assert_eq!(texts(&params, 0)[0].as_deref(), Some(lowest.as_str()), "clv_model holds the selected model");
    let [r, alpha, a_or_s, b_or_beta, p, q, gamma] = floats(&params, 1)[..] else { panic!("7 parameters") };
    let purchases = PurchaseFit::from_parameters(kind, [r, alpha, a_or_s, b_or_beta]).expect("valid");
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
    let settings = ClvSettings {
        margin: 1.0,
        monthly_discount_rate: 0.01,
        horizon_months: 12,
        units_per_month: 365.25 / 12.0 / 7.0,
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
    #[allow(clippy::needless_range_loop)] // row i of ten parallel columns
    for i in 0..columns[0].len() {
        let (x, t_x, age, m) = (columns[0][i], columns[1][i], columns[2][i], columns[3][i]);
        let order_value = if x > 0.0 { spend.conditional_expected_spend(x, m) } else { spend.population_mean_spend() };
        assert!(close(columns[4][i], purchases.p_alive(x, t_x, age)), "p_alive of row {i}");
        let expected = purchases.conditional_expected_purchases(12.0 * settings.units_per_month, x, t_x, age);
        assert!(close(columns[5][i], expected), "expected_purchases of row {i}");
        assert!(close(columns[6][i], order_value), "expected_order_value of row {i}");
        let history = Observation { frequency: x, recency: t_x, age };
        let clv = predicted_clv(&purchases, history, order_value, &settings);
        assert!(close(columns[7][i], clv), "predicted_clv of row {i}: {} vs {clv}", columns[7][i]);
        assert!(close(columns[8][i], columns[9][i]), "historical_clv = revenue x margin");
    }

    let fits = query(
        &root,
        AS_OF,
        &["clv_model"],
        "SELECT DISTINCT model, converged, iterations, customers, customers_left_out FROM clv_model \
         ORDER BY model = 'gamma_gamma'",
    )
    .await;
    let fits = &fits[0];
    assert!(fits.column(1).as_boolean().iter().all(|c| c == Some(true)), "both fits converge on the sample");
    let left_out = fits.column(4).as_primitive::<Int64Type>().value(1);
    let counted = manifest.stages.iter().find(|s| s.name == "clv").map(|s| s.counts["left_out_of_spend_model"]);
    assert_eq!(counted, Some(left_out as u64), "customers left out of Gamma-Gamma are counted in the manifest");
}

#[tokio::test]
async fn standard_errors_and_intervals_are_the_fitted_models() {
    let ws = Workspace::new();
    run_clv(&ws, &[("clv_model", "bg_nbd")]).await;
    let root = ws.path("out");
    // The published std_error is the fit's on the published customers.
    let customers = query(
        &root,
        AS_OF,
        &["customer_summary"],
        "SELECT CAST(frequency AS DOUBLE), recency, \"T\", monetary_value FROM customer_summary ORDER BY customer_id",
    )
    .await;
    let columns: Vec<Vec<f64>> = (0..4).map(|i| floats(&customers, i)).collect();
    let histories: Vec<Observation> = (0..columns[0].len())
        .map(|i| Observation { frequency: columns[0][i], recency: columns[1][i], age: columns[2][i] })
        .collect();
    let pairs: Vec<(f64, f64)> = columns[0].iter().copied().zip(columns[3].iter().copied()).collect();
    let options = FitOptions::default();
    let purchases = fit_purchase_model(PurchaseModelKind::BgNbd, &histories, &options).expect("fits");
    let spend = fit_gamma_gamma(&pairs, &options).expect("fits");
    let mut expected = purchases.std_errors().expect("standard errors");
    expected.extend(spend.std_errors().expect("standard errors"));
    let published = query(&root, AS_OF, &["clv_model"], "SELECT std_error FROM clv_model").await;
    let published: Vec<Option<f64>> = numbers(&published, 0);
    assert_eq!(published.len(), 7);
    for (got, want) in published.iter().zip(&expected) {
        assert!(close(got.expect("a standard error"), *want, 1e-9), "{published:?} vs {expected:?}");
    }

    // clv_segments: the base and every segment sum clv; p10 < predicted_clv < p90.
    let segments = query(
        &root,
        AS_OF,
        &["clv_segments"],
        "SELECT scope, segment, customers, predicted_clv, predicted_clv_p10, predicted_clv_p90 FROM clv_segments",
    )
    .await;
    let sums = query(
        &root,
        AS_OF,
        &["clv", "rfm"],
        "SELECT r.segment, COUNT(*), SUM(c.predicted_clv) FROM clv c LEFT JOIN rfm r USING (customer_id) \
         GROUP BY ROLLUP(r.segment) ORDER BY r.segment NULLS FIRST",
    )
    .await;
    assert_eq!(texts(&segments, 0)[0].as_deref(), Some("base"));
    assert_eq!(texts(&segments, 1), texts(&sums, 0), "the base (null), then the segments by name");
    assert_eq!(numbers(&segments, 2), numbers(&sums, 1), "customers");
    let (point, p10, p90) = (numbers(&segments, 3), numbers(&segments, 4), numbers(&segments, 5));
    for (i, total) in numbers(&sums, 2).into_iter().enumerate() {
        let (total, point) = (total.expect("a sum"), point[i].expect("predicted_clv"));
        assert!(close(point, total, 1e-12), "row {i}: {point} vs {total}");
        let (low, high) = (p10[i].expect("p10"), p90[i].expect("p90"));
        assert!(low < point && point < high && high - low < 0.2 * point, "row {i}: {low} {point} {high}");
    }

    // Seeded draws: the same data give the same intervals.
    let again = Workspace::new();
    run_clv(&again, &[("clv_model", "bg_nbd")]).await;
    let repeated = query(
        &again.path("out"),
        AS_OF,
        &["clv_segments"],
        "SELECT scope, segment, customers, predicted_clv, predicted_clv_p10, predicted_clv_p90 FROM clv_segments",
    )
    .await;
    assert_eq!(repeated, segments);
}

/// The standard CDNOW split (calibration 1997-01-01..1997-09-30, 39-week holdout to
/// 1998-06-30) through the real pipeline. Expected values: lifetimes 0.11.3 on the same
/// transactions (src/models/testdata/lifetimes_reference.py, section 2); the BG/NBD
/// calibration log-likelihood is also Fader, Hardie & Lee's (2005) published −9582.4.
#[tokio::test]
async fn the_backtest_on_the_cdnow_standard_split_matches_lifetimes() {
    let ws = Workspace::new();
    let set = [("clv_holdout_days", "273")];
    let manifest =
        run_tables(&ws, "tests/fixtures/cdnow", "1998-06-30", &set, &["clv_backtest", "clv_backtest_calibration"])
            .await;
    let root = ws.path("out");
    let rows = query(
        &root,
        "1998-06-30",
        &["clv_backtest"],
        "SELECT model, CAST(calibration_end AS VARCHAR), CAST(holdout_end AS VARCHAR), holdout_length, customers, \
         actual_purchases, predicted_purchases, total_error, mae, rmse, calibration_log_likelihood, selected, status, \
         selection_reason FROM clv_backtest",
    )
    .await;
    let models: Vec<Option<String>> = texts(&rows, 0);
    assert_eq!(models, ["bg_nbd", "mbg_nbd", "pareto_nbd"].map(|m| Some(m.to_string())));
    assert_eq!(texts(&rows, 1), vec![Some("1997-09-30".to_string()); 3]);
    assert_eq!(texts(&rows, 2), vec![Some("1998-06-30".to_string()); 3]);
    assert_eq!(numbers(&rows, 3), vec![Some(39.0); 3], "holdout_length in weeks");
    assert_eq!(numbers(&rows, 4), vec![Some(2357.0); 3], "calibration customers");
    assert_eq!(numbers(&rows, 5), vec![Some(1882.0); 3], "purchase days in the holdout");
    // (predicted, total_error, mae, rmse, calibration log-likelihood), lifetimes'; lifetimes
    // stops its Pareto/NBD fit a little early, hence the looser tolerance there.
    let lifetimes = [
        ([1653.4087241798693, -0.12146188938370384, 0.7854542426104192, 1.6079820122764052, -9582.429206673936], 1e-6),
        ([1576.728265888563, -0.16220602237589632, 0.7647789429263513, 1.6071826609596518, -9582.135715553766], 1e-6),
        ([1665.5481431190879, -0.11501161364554313, 0.754527599150177, 1.6028482955335883, -9594.976179041267], 3e-4),
    ];
    for (row, (want, tolerance)) in lifetimes.iter().enumerate() {
        for (column, want) in (6..=10).zip(want) {
            let got = numbers(&rows, column)[row].expect("a number");
            assert!(close(got, *want, *tolerance), "{:?} column {column}: {got} vs {want}", models[row]);
        }
    }
    assert!((numbers(&rows, 10)[0].expect("log-likelihood") - -9582.4).abs() < 0.05, "the published value");
    let selected: Vec<bool> = rows[0].column(11).as_boolean().iter().flatten().collect();
    assert_eq!(selected, [false, false, true], "Pareto/NBD has the lowest MAE");
    assert_eq!(texts(&rows, 12), vec![Some("backtested".to_string()); 3]);
    assert_eq!(
        texts(&rows, 13)[2].as_deref(),
        Some("clv_model: auto: the lowest holdout MAE of 3 backtested models (0.7545)")
    );
    // The manifest says which model was chosen and why (clv_backtest's `facts`).
    assert_eq!(
        backtest_facts(&manifest),
        json!({
            "selected_model": "pareto_nbd",
            "selection_reason": "clv_model: auto: the lowest holdout MAE of 3 backtested models (0.7545)"
        })
    );

    // By calibration frequency, BG/NBD: customers, actual and predicted mean (lifetimes).
    let buckets = query(
        &root,
        "1998-06-30",
        &["clv_backtest_calibration"],
        "SELECT calibration_frequency, customers, actual_mean, predicted_mean FROM clv_backtest_calibration \
         WHERE model = 'bg_nbd'",
    )
    .await;
    let names = texts(&buckets, 0);
    assert_eq!(names, ["0", "1", "2", "3", "4", "5", "6", "7+"].map(|b| Some(b.to_string())));
    let lifetimes = [
        (1411.0, 0.2367115521, 0.2250873378),
        (439.0, 0.6970387244, 0.5231311297),
        (214.0, 1.3925233645, 1.0441341006),
        (100.0, 1.5600000000, 1.5202795287),
        (62.0, 2.5322580645, 2.1638658541),
        (38.0, 2.9473684211, 2.6538459804),
        (29.0, 3.8620689655, 3.5040424584),
        (64.0, 6.3593750000, 6.1571908224),
    ];
    for (i, (customers, actual, predicted)) in lifetimes.into_iter().enumerate() {
        assert_eq!(numbers(&buckets, 1)[i], Some(customers), "bucket {i}");
        assert!(close(numbers(&buckets, 2)[i].expect("actual"), actual, 1e-9), "bucket {i}");
        assert!(close(numbers(&buckets, 3)[i].expect("predicted"), predicted, 1e-6), "bucket {i}");
    }
}

#[tokio::test]
async fn with_clv_holdout_days_0_the_backtest_is_off_and_auto_is_bg_nbd() {
    let ws = Workspace::new();
    let tables = ["clv_model", "clv_backtest", "clv_backtest_calibration"];
    let manifest = run_tables(&ws, "data/sample", AS_OF, &[("clv_holdout_days", "0")], &tables).await;
    let root = ws.path("out");
    let rows = query(
        &root,
        AS_OF,
        &["clv_backtest"],
        "SELECT model, calibration_end IS NULL AND holdout_end IS NULL AND holdout_length IS NULL AND customers IS \
         NULL AND actual_purchases IS NULL AND predicted_purchases IS NULL AND total_error IS NULL AND mae IS NULL \
         AND rmse IS NULL AND calibration_log_likelihood IS NULL, selected, status, reason, selection_reason \
         FROM clv_backtest",
    )
    .await;
    let text = |column| texts(&rows, column);
    assert_eq!(text(0), ["bg_nbd", "mbg_nbd", "pareto_nbd"].map(|m| Some(m.to_string())));
    assert!(rows[0].column(1).as_boolean().iter().all(|nulls| nulls == Some(true)), "every figure is null");
    let selected: Vec<bool> = rows[0].column(2).as_boolean().iter().flatten().collect();
    assert_eq!(selected, [true, false, false]);
    assert_eq!(text(3), vec![Some("off".to_string()); 3]);
    assert_eq!(text(4), vec![Some("the backtest is off (clv_holdout_days = 0)".to_string()); 3]);
    let reason = "clv_model: auto with the backtest off (clv_holdout_days = 0): bg_nbd, the default model";
    assert_eq!(text(5), [Some(reason.to_string()), None, None]);
    assert_eq!(backtest_facts(&manifest), json!({"selected_model": "bg_nbd", "selection_reason": reason}));
    let calibration =
        query(&root, AS_OF, &["clv_backtest_calibration"], "SELECT COUNT(*) FROM clv_backtest_calibration").await;
    assert_eq!(numbers(&calibration, 0), [Some(0.0)], "nothing to compare");
    let fitted = query(&root, AS_OF, &["clv_model"], "SELECT DISTINCT model FROM clv_model ORDER BY model").await;
    assert_eq!(texts(&fitted, 0), [Some("bg_nbd".to_string()), Some("gamma_gamma".to_string())]);
}

#[tokio::test]
async fn a_holdout_longer_than_the_history_is_reported_and_the_run_goes_on() {
    // The sample starts in late 2023: 5,000 days before as_of no customer had bought.
    let ws = Workspace::new();
    let tables = ["clv_model", "clv_backtest"];
    let manifest = run_tables(&ws, "data/sample", AS_OF, &[("clv_holdout_days", "5000")], &tables).await;
    let rows = query(
        &ws.path("out"),
        AS_OF,
        &["clv_backtest"],
        "SELECT CAST(calibration_end AS VARCHAR), customers, mae, status, reason, selected, selection_reason \
         FROM clv_backtest",
    )
    .await;
    assert_eq!(texts(&rows, 0), vec![Some("2013-03-14".to_string()); 3]);
    assert_eq!(numbers(&rows, 1), vec![Some(0.0); 3], "no calibration customers");
    assert_eq!(numbers(&rows, 2), vec![None; 3]);
    assert_eq!(texts(&rows, 3), vec![Some("not_fitted".to_string()); 3]);
    let reason = "no customer has a first purchase day on or before the calibration end 2013-03-14: the history is \
                  shorter than the holdout (clv_holdout_days = 5000); shorten clv_holdout_days, or set it to 0 to \
                  turn the backtest off";
    assert_eq!(texts(&rows, 4), vec![Some(reason.to_string()); 3]);
    let selected: Vec<bool> = rows[0].column(5).as_boolean().iter().flatten().collect();
    assert_eq!(selected, [true, false, false]);
    assert_eq!(
        texts(&rows, 6)[0].as_deref(),
        Some("clv_model: auto, but no model could be backtested (see reason): bg_nbd, the default model")
    );
    assert!(
        manifest.warnings.iter().any(|w| w == "stage `clv_backtest`: 3 rows are models_not_backtested"),
        "{:?}",
        manifest.warnings
    );
    assert!(manifest.tables.contains_key("clv_model"), "the CLV is still fitted on the full history");
}

/// The selection rule of `sql/intermediate/clv_model_selection.sql` on hand-made
/// backtest sums: the lowest MAE wins, ties go to bg_nbd, then mbg_nbd, then
/// pareto_nbd, and a model that could not be fitted is never chosen.
#[tokio::test]
async fn the_lowest_mae_is_selected_and_ties_follow_the_order_of_preference() {
    // (model, absolute error of its 10 customers, or none when it was not fitted).
    let cases: [([Option<f64>; 3], &str, &str); 4] = [
        ([Some(9.0), Some(8.0), Some(8.5)], "mbg_nbd", "the lowest holdout MAE of 3 backtested models (0.8)"),
        ([Some(8.0), Some(9.0), Some(8.0)], "bg_nbd", "the lowest holdout MAE (0.8), shared by several models"),
        ([Some(9.0), Some(7.0), Some(7.0)], "mbg_nbd", "the lowest holdout MAE (0.7), shared by several models"),
        ([Some(9.0), None, Some(9.5)], "bg_nbd", "the lowest holdout MAE of 2 backtested models (0.9)"),
    ];
    for (errors, winner, reason) in cases {
        let ws = Workspace::new();
        let row = |model: &str, error: Option<f64>| match error {
            Some(e) => format!("('{model}', 10, 12.0, 11.0, {e:?}, 20.0, NULL)"),
            None => format!("('{model}', 10, NULL, NULL, NULL, NULL, '{model}: did not converge')"),
        };
        let values: Vec<String> =
            ["bg_nbd", "mbg_nbd", "pareto_nbd"].iter().zip(errors).map(|(m, e)| row(m, e)).collect();
        let yaml = format!(
            r#"name: selection
sql_dir: {sql}
params:
  output: {{type: string, default: out}}
  clv_model: {{type: string, default: auto}}
  clv_holdout_days: {{type: integer, default: 182}}
  time_unit: {{type: string, default: week}}
sources: {{}}
stages:
  given:
    query: >-
      SELECT * FROM (VALUES {values}) AS t(model, customers, actual, predicted, absolute_error, squared_error, failure)
  clv_calibration:
    query: SELECT 1 AS customer FROM (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)) AS t(c)
  clv_backtest_fits:
    query: >-
      SELECT model, named_struct('log_likelihood', -100.0, 'failure', failure) AS fitted FROM given
  clv_backtest_errors:
    query: >-
      SELECT model, 0 AS bucket, customers, actual AS actual_purchases, predicted AS predicted_purchases,
      absolute_error, squared_error FROM given WHERE failure IS NULL
  clv_model_selection: {{sql: intermediate/clv_model_selection.sql}}
  clv_backtest: {{sql: marts/clv_backtest.sql}}
outputs:
  root: ${{output}}
  tables: [clv_backtest]
"#,
            sql = repo().join("sql").display(),
            values = values.join(", "),
        );
        let path = ws.write("pipeline.yaml", yaml);
        let output = ws.path("out").display().to_string();
        crate::support::run(&path, AS_OF, &[("output", &output)]).await.expect("runs");
        let rows = query(
            &ws.path("out"),
            AS_OF,
            &["clv_backtest"],
            "SELECT model, selected, selection_reason, status FROM clv_backtest",
        )
        .await;
        let chosen: Vec<String> = texts(&rows, 0)
            .into_iter()
            .zip(rows[0].column(1).as_boolean().iter())
            .filter(|(_, selected)| *selected == Some(true))
            .filter_map(|(model, _)| model)
            .collect();
        assert_eq!(chosen, [winner], "{errors:?}");
        let reasons: Vec<String> = texts(&rows, 2).into_iter().flatten().collect();
        assert_eq!(reasons.len(), 1, "only the selected row says why");
        assert!(reasons[0].starts_with(&format!("clv_model: auto: {reason}")), "{errors:?}: {}", reasons[0]);
        let not_fitted = errors.iter().filter(|e| e.is_none()).count();
        let statuses = texts(&rows, 3);
        assert_eq!(statuses.iter().filter(|s| s.as_deref() == Some("not_fitted")).count(), not_fitted);
    }
}

#[tokio::test]
async fn the_purchase_model_is_selectable() {
    for model in ["mbg_nbd", "pareto_nbd"] {
        let ws = Workspace::new();
        run_clv(&ws, &[("clv_model", model)]).await;
        let fitted =
            query(&ws.path("out"), AS_OF, &["clv_model"], "SELECT DISTINCT model FROM clv_model ORDER BY model").await;
        let names: Vec<Option<String>> = texts(&fitted, 0);
        assert_eq!(names, [Some("gamma_gamma".to_string()), Some(model.to_string())], "ordered by name");
        let chosen = query(
            &ws.path("out"),
            AS_OF,
            &["clv_backtest"],
            "SELECT model, selection_reason FROM clv_backtest WHERE selected",
        )
        .await;
        assert_eq!(texts(&chosen, 0), [Some(model.to_string())], "clv_backtest marks the model clv used");
        assert_eq!(texts(&chosen, 1), [Some(format!("clv_model: {model} (set in the pipeline)"))]);
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
    let path = crate::support::shipped_pipeline(&ws, &[("on_error: fail", "on_error: warn")]);
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
