//! docs/guide.md quotes the examples: every Rust block in it must be, verbatim, part of an example that the test
//! command builds and tests (tests/examples.rs, and Chromium), or of that test itself. A guide edited without its example, or an example
//! changed without its guide, fails here, so the guide never shows code that does not compile.

use std::path::Path;

/// The Rust blocks of a Markdown text.
fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(Vec::new()),
            (Some(lines), "```") => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), _) => lines.push(line),
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "a Rust block is not closed");
    blocks
}

#[test]
fn every_rust_block_of_the_guide_is_quoted_from_a_built_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("../../docs/guide.md")).expect("docs/guide.md");
    let examples: Vec<(String, String)> =
        ["examples/counter.rs", "examples/presence_room.rs", "examples/notes.rs", "examples/common/mod.rs"]
            .iter()
            .chain(&["tests/examples.rs"])
            .map(|file| (file.to_string(), std::fs::read_to_string(root.join(file)).unwrap()))
            .collect();
    let blocks = rust_blocks(&guide);
    assert!(blocks.len() >= 9, "the guide shows each step's code: {} blocks", blocks.len());
    for block in &blocks {
        assert!(
            examples.iter().any(|(_, source)| source.contains(block.as_str())),
            "this block of docs/guide.md is in no example:\n{block}"
        );
    }
    // Every example the guide walks through is quoted.
    for (file, source) in &examples {
        assert!(blocks.iter().any(|block| source.contains(block.as_str())), "the guide quotes nothing of {file}");
    }
}

#[test]
fn blocks_are_read_whole() {
    let blocks = rust_blocks("text\n```rust\nfn a() {}\n\nfn b() {}\n```\n```toml\nx = 1\n```\n");
    assert_eq!(blocks, ["fn a() {}\n\nfn b() {}"]);
}
