//! Escaping of text for the report formats: HTML (also SVG, which shares it) and
//! Markdown. Used as the templates' autoescape functions and by the charts and filters
//! for text they write themselves.

/// Escapes the characters that are special in HTML text and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for Markdown (CommonMark and GitHub tables): every character that can
/// start markup or split a table cell is backslash-escaped, and line breaks become
/// spaces so that a value cannot end a table row.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '!' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_text_and_attributes() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
    }

    #[test]
    fn markdown_escaping_keeps_text_as_text() {
        assert_eq!(escape_markdown("<script>a|b</script>"), r"\<script\>a\|b\</script\>");
        assert_eq!(escape_markdown("Can't Lose *Them*_\n# x"), r"Can't Lose \*Them\*\_ \# x");
    }
}
