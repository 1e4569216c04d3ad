//! Configuration errors name the file, line and column and say how to fix them;
//! the compile step reports every problem at once.

use crate::support::Workspace;

fn load_error(yaml: &str, files: &[(&str, &str)]) -> String {
    let workspace = Workspace::new();
    for (path, content) in files {
        workspace.write(path, content);
    }
    let path = workspace.write("pipeline.yaml", yaml);
    let error = fidelis::config::load(&path).expect_err("the pipeline is invalid");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    workspace.redact(&error.to_string())
}

#[test]
fn misspelled_key_is_reported_with_its_line() {
    let text = load_error("name: demo\nsources:\n  orders:\n    url: data/\n    formt: csv\n", &[]);
    insta::assert_snapshot!(text);
}

#[test]
fn flow_mapping_decimal_explains_quoting() {
    let text = load_error(
        "name: demo\nsources:\n  orders:\n    url: data/\n    columns:\n      amount: {type: decimal(18,2), required: true}\n",
        &[],
    );
    insta::assert_snapshot!(text);
}

#[test]
fn semantic_errors_are_all_reported_at_once() {
    let yaml = r#"name: demo
params:
  window: {type: integer, default: ten}
sources:
  orders:
    url: ${input}/orders/
    unique: [order_id]
    columns:
      id: string
stages:
  summary:
    query: SELECT * FROM orders JOIN customers USING (id) WHERE x = $missing
  missing_file:
    sql: nowhere.sql
  broken:
    query: "SELECT a,\nFROM orders"
outputs:
  root: out
  tables: [summary, orders]
"#;
    insta::assert_snapshot!(load_error(yaml, &[]));
}

#[test]
fn stage_cycles_are_named() {
    let yaml = r#"name: demo
sources:
  orders: {url: data/}
stages:
  a:
    query: SELECT * FROM c
  b:
    query: SELECT * FROM a
  c:
    query: SELECT * FROM b JOIN orders ON true
"#;
    insta::assert_snapshot!(load_error(yaml, &[]));
}

#[test]
fn stages_are_ordered_by_dependencies_not_declaration() {
    let workspace = Workspace::new();
    workspace.write("sql/late.sql", "SELECT * FROM early");
    let path = workspace.write(
        "pipeline.yaml",
        "name: demo\nsql_dir: sql\nsources:\n  orders: {url: data/}\nstages:\n  late: {}\n  middle:\n    query: SELECT * FROM orders\n  early:\n    query: SELECT * FROM middle\n",
    );
    let pipeline = fidelis::config::load(&path).expect("valid");
    let order: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order, ["middle", "early", "late"]);
}

#[tokio::test]
async fn validate_plans_check_conditions_against_the_declared_columns() {
    let workspace = Workspace::new();
    workspace.write("data/orders.csv", "id,amount\n1,2\n");
    let yaml = format!(
        "name: demo\nsources:\n  orders:\n    url: {}\n    columns: {{id: string, amount: integer}}\n    checks:\n      - {{name: positive, condition: amont > 0}}\n",
        workspace.path("data").display()
    );
    let pipeline =
        fidelis::config::load(&workspace.write("pipeline.yaml", yaml)).expect("loads: the condition is valid SQL");
    let error = fidelis::run::validate(&pipeline, &crate::support::overrides("2024-01-31", &[]))
        .await
        .expect_err("unknown column");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    assert!(error.to_string().contains("check `positive`: cannot plan `amont > 0`"), "{error}");
}

#[test]
fn optional_sources_must_declare_their_columns() {
    let text = load_error("name: demo\nsources:\n  wallet:\n    url: data/\n    optional: true\n", &[]);
    assert!(text.contains("optional source `wallet` declares no `columns`"), "{text}");
}
