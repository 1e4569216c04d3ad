//! Finds where a key of the pipeline file is written, so that errors found after
//! parsing (an unknown stage reference, a missing SQL file) still point at a line.
//!
//! serde_yaml reports positions for syntax and type errors but keeps no spans on
//! values; this scans block-style YAML by indentation, which is how pipelines are
//! written. For flow-style YAML it may find nothing, and the error has no line.

/// The 1-based (line, column) where the value at `path` starts, or else where its
/// nearest enclosing key is written (inside flow-style `{...}` or `[...]`).
/// Path elements are mapping keys, or decimal indices for sequence items.
pub fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    (1..=path.len()).rev().find_map(|length| locate_exactly(text, &path[..length]))
}

fn locate_exactly(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    // (indent, key) of each enclosing node, and the next index of each open sequence.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut sequence_counters: Vec<(Vec<String>, usize)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
            continue;
        }
        let mut indent = line.len() - content.len();
        let mut rest = content;
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        if let Some(item) = rest.strip_prefix("- ").or(if rest == "-" { Some("") } else { None }) {
            let parent: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
            let index = match sequence_counters.iter_mut().find(|(p, _)| *p == parent) {
                Some((_, next)) => {
                    *next += 1;
                    *next - 1
                }
                None => {
                    sequence_counters.push((parent, 1));
                    0
                }
            };
            stack.push((indent, index.to_string()));
            if matches(&stack, path) {
                return Some((number + 1, indent + 1));
            }
            indent += 2;
            rest = item.trim_start();
        }
        if let Some(key) = mapping_key(rest) {
            stack.push((indent, key));
            if matches(&stack, path) {
                return Some((number + 1, indent + 1));
            }
        }
    }
    None
}

fn matches(stack: &[(usize, String)], path: &[&str]) -> bool {
    stack.len() == path.len() && stack.iter().zip(path).all(|((_, key), want)| key == want)
}

/// The key of a `key: value` line, unquoted.
fn mapping_key(line: &str) -> Option<String> {
    let (key, _) = line.split_once(':')?;
    let key = key.trim();
    let unquoted = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
        .unwrap_or(key);
    if unquoted.is_empty() || unquoted.contains(' ') && unquoted == key {
        return None;
    }
    Some(unquoted.to_string())
}

#[cfg(test)]
mod tests {
    use super::locate;

    const YAML: &str = "name: demo\nsources:\n  orders:\n    url: data/\n    columns:\n      id: string\nstages:\n  # a comment\n  summary:\n    sql: summary.sql\noutputs:\n  root: out\n  tables:\n    - summary\n    - other\n";

    #[test]
    fn finds_nested_keys_and_sequence_items() {
        assert_eq!(locate(YAML, &["name"]), Some((1, 1)));
        assert_eq!(locate(YAML, &["sources", "orders", "url"]), Some((4, 5)));
        assert_eq!(locate(YAML, &["sources", "orders", "columns", "id"]), Some((6, 7)));
        assert_eq!(locate(YAML, &["stages", "summary", "sql"]), Some((10, 5)));
        assert_eq!(locate(YAML, &["outputs", "tables", "1"]), Some((15, 5)));
    }

    #[test]
    fn paths_inside_flow_values_fall_back_to_their_key() {
        assert_eq!(locate(YAML, &["stages", "summary", "sql", "0"]), Some((10, 5)));
        assert_eq!(locate(YAML, &["stages", "nope"]), Some((7, 1)));
        assert_eq!(locate(YAML, &["nothing"]), None);
    }
}
