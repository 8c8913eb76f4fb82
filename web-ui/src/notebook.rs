//! A Jupyter notebook (`.ipynb`, nbformat 4) rendered read-only to HTML.
//!
//! Everything from the file is treated as hostile: code and text outputs
//! are escaped, Markdown cells and HTML outputs (pandas tables) go through
//! the sanitiser, images are shown only as `data:` images of known types
//! whose payload is checked to be base64, and SVG is shown as an image
//! (where it cannot run script), never inlined.

use base64::Engine;
use maud::{Markup, html};
use serde_json::Value;

use crate::layout::trusted;
use crate::markdown;

/// Why a file could not be shown as a notebook.
#[derive(Debug, thiserror::Error)]
pub enum NotebookError {
    #[error("this file is not a notebook: {0}")]
    NotJson(String),
    #[error("this notebook has no cells list (nbformat 4 is needed)")]
    NoCells,
}

/// Renders the notebook's cells.
pub fn render(bytes: &[u8]) -> Result<Markup, NotebookError> {
    let notebook: Value =
        serde_json::from_slice(bytes).map_err(|e| NotebookError::NotJson(e.to_string()))?;
    let cells = notebook["cells"].as_array().ok_or(NotebookError::NoCells)?;
    let language = notebook["metadata"]["kernelspec"]["language"]
        .as_str()
        .or(notebook["metadata"]["language_info"]["name"].as_str())
        .unwrap_or("code");
    Ok(html! {
        div.notebook {
            @for cell in cells {
                @match cell["cell_type"].as_str() {
                    Some("markdown") => div.cell.markdown.markdown { (trusted(markdown::render(&text_of(&cell["source"])))) },
                    Some("code") => div.cell.code {
                        div.prompt {
                            (language) " [" (cell["execution_count"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| " ".into())) "]"
                        }
                        pre.code { (text_of(&cell["source"])) }
                        @if let Some(outputs) = cell["outputs"].as_array() {
                            @for output in outputs { (render_output(output)) }
                        }
                    },
                    _ => div.cell { pre { (text_of(&cell["source"])) } },
                }
            }
        }
    })
}

fn render_output(output: &Value) -> Markup {
    match output["output_type"].as_str() {
        Some("stream") => html! { pre.output { (text_of(&output["text"])) } },
        Some("error") => {
            let traceback: Vec<String> = output["traceback"]
                .as_array()
                .map(|lines| {
                    lines
                        .iter()
                        .filter_map(Value::as_str)
                        .map(tandem_protocol::text::strip_ansi)
                        .collect()
                })
                .unwrap_or_default();
            html! {
                pre.output {
                    (output["ename"].as_str().unwrap_or("Error")) ": " (output["evalue"].as_str().unwrap_or_default())
                    "\n" (traceback.join("\n"))
                }
            }
        }
        Some("execute_result") | Some("display_data") => render_data(&output["data"]),
        _ => html! {},
    }
}

/// Shows the richest safe representation of one output.
fn render_data(data: &Value) -> Markup {
    for (mime, kind) in [("image/png", "png"), ("image/jpeg", "jpeg")] {
        if let Some(payload) = data.get(mime) {
            let payload: String = text_of(payload)
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if is_base64(&payload) {
                return html! { img.figure src=(format!("data:image/{kind};base64,{payload}")) alt="figure"; };
            }
        }
    }
    if let Some(svg) = data.get("image/svg+xml") {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text_of(svg));
        return html! { img.figure src=(format!("data:image/svg+xml;base64,{encoded}")) alt="figure"; };
    }
    if let Some(rich) = data.get("text/html") {
        return html! { div.html-output { (trusted(markdown::sanitize(&text_of(rich)))) } };
    }
    if let Some(markdown_text) = data.get("text/markdown") {
        return html! { div.markdown { (trusted(markdown::render(&text_of(markdown_text)))) } };
    }
    if let Some(plain) = data.get("text/plain") {
        return html! { pre.output { (text_of(plain)) } };
    }
    html! {}
}

/// nbformat stores text either as one string or as a list of lines.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn is_base64(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notebook(cells: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "cells": cells,
            "metadata": {"kernelspec": {"language": "python"}},
            "nbformat": 4, "nbformat_minor": 5
        }))
        .expect("test fixture")
    }

    #[test]
    fn cells_and_outputs_render() {
        let bytes = notebook(serde_json::json!([
            {"cell_type": "markdown", "source": ["# Results\n", "pH by *depth*"]},
            {"cell_type": "code", "execution_count": 3, "source": "print(1 < 2)",
             "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["True\n"]},
                {"output_type": "execute_result", "data": {"text/html": "<table><tr><td>7</td></tr></table>", "text/plain": "7"}},
                {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=\n"}},
                {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["\u{1b}[0;31mValueError\u{1b}[0m: bad"]}
             ]}
        ]));
        let html = render(&bytes).expect("test fixture").into_string();
        assert!(html.contains("<h1>Results</h1>"), "{html}");
        assert!(html.contains("print(1 &lt; 2)"), "{html}");
        assert!(html.contains("python [3]"), "{html}");
        assert!(html.contains("<td>7</td>"), "{html}");
        assert!(
            html.contains("data:image/png;base64,iVBORw0KGgo="),
            "{html}"
        );
        assert!(html.contains("ValueError: bad"), "{html}");
        assert!(!html.contains('\u{1b}'), "{html}");
    }

    #[test]
    fn hostile_notebooks_render_inert() {
        let bytes = notebook(serde_json::json!([
            {"cell_type": "markdown", "source": "<script>alert(1)</script><img src=x onerror=alert(2)>"},
            {"cell_type": "code", "source": "</pre><script>alert(3)</script>", "outputs": [
                {"output_type": "display_data", "data": {"text/html": "<script>alert(4)</script><b onclick=alert(5)>x</b>"}},
                {"output_type": "display_data", "data": {"image/png": "\"><script>alert(6)</script>"}},
                {"output_type": "display_data", "data": {"image/svg+xml": "<svg onload=alert(7)></svg>"}}
            ]}
        ]));
        let html = render(&bytes).expect("test fixture").into_string();
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains("onerror"), "{html}");
        assert!(!lower.contains("onclick"), "{html}");
        assert!(!lower.contains("<svg"), "{html}");
    }

    #[test]
    fn notebook_links_and_images_cannot_call_the_node() {
        // A cell's HTML output (made by code anyone can commit) and its
        // Markdown, pointing the browser at the node's API in the
        // spellings that slip past string checks.
        let bytes = notebook(serde_json::json!([
            {"cell_type": "markdown", "source": "[go](http://127.0.0.1:4000/api/projects) ![](http://2130706433:4000/api/x)"},
            {"cell_type": "code", "source": "display(HTML(...))", "outputs": [
                {"output_type": "display_data", "data": {"text/html":
                    "<img src=\"http://0x7f.1:4000/api/projects/p/env/outdated\"><a href=\"http://[::ffff:127.0.0.1]:4000/api/x\">x</a><img src=\"http://127.1:4000/api/y\"><a href=\"http://localhost:4000/\">y</a>"}},
                {"output_type": "display_data", "data": {"text/markdown": "![](http://[::1]:4000/api/z) [z](http://0.0.0.0:4000/)"}}
            ]}
        ]));
        let html = render(&bytes).expect("test fixture").into_string();
        assert!(!html.contains("href="), "{html}");
        assert!(
            !html.contains("src=\"http"),
            "no image may load from this machine: {html}"
        );
        assert!(!html.contains("4000"), "{html}");
    }

    #[test]
    fn non_notebooks_get_a_clear_error() {
        assert!(matches!(
            render(b"not json"),
            Err(NotebookError::NotJson(_))
        ));
        assert!(matches!(render(b"{}"), Err(NotebookError::NoCells)));
        assert!(render(b"[1,2]").is_err());
    }
}
