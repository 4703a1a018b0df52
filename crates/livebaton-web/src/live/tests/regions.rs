use proptest::prelude::*;

use super::super::{Html, RegionDiff, Regions};

#[test]
fn finds_regions_with_nesting_of_the_same_tag() {
    let html = r#"<main><section id="a" data-lb-region><section>inner</section><p>x</p></section>
        <div data-lb-region id='b' title="a > b">1 <div id="c" data-lb-region>2</div></div><br><img src=x.png></main>"#;
    let regions = Regions::extract(html);
    assert_eq!(regions.len(), 3);
    assert_eq!(regions.html("a"), Some(r#"<section id="a" data-lb-region><section>inner</section><p>x</p></section>"#));
    assert_eq!(
        regions.html("b"),
        Some(r#"<div data-lb-region id='b' title="a > b">1 <div id="c" data-lb-region>2</div></div>"#)
    );
    assert_eq!(regions.0["c"].parent.as_deref(), Some("b"));
    assert_eq!(regions.0["a"].parent, None);
}

#[test]
fn ignores_comments_raw_text_unclosed_and_idless_regions() {
    let html = r#"<!-- <div id="x" data-lb-region>--><script>let s = "<div id='y' data-lb-region>";</script>
        <div data-lb-region>no id</div><div id="open" data-lb-region>never closed
        <SECTION ID="up" DATA-LB-REGION>ok</SECTION>"#;
    let regions = Regions::extract(html);
    assert_eq!(regions.iter().collect::<Vec<_>>(), vec![("up", r#"<SECTION ID="up" DATA-LB-REGION>ok</SECTION>"#)]);
}

#[test]
fn diff_sends_only_changed_regions_and_not_children_of_changed_parents() {
    let before = Regions::extract(
        r#"<div id="p" data-lb-region><span id="c" data-lb-region>1</span></div><b id="s" data-lb-region>s</b>"#,
    );
    let after = Regions::extract(
        r#"<div id="p" data-lb-region><span id="c" data-lb-region>2</span></div><b id="s" data-lb-region>s</b>"#,
    );
    let diff = RegionDiff::compute(&before, &after);
    assert_eq!(diff.regions.keys().collect::<Vec<_>>(), vec!["p"]);
    assert!(RegionDiff::compute(&after, &after).is_empty());
    let full = RegionDiff::full(&after);
    assert_eq!(full.regions.keys().collect::<Vec<_>>(), vec!["p", "s"]);
}

#[test]
fn escape_covers_the_five_characters() {
    assert_eq!(Html::escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

/// A generated element tree; regions get unique ids from their position.
#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Element { tag: &'static str, region: bool, attr: String, children: Vec<Node> },
}

fn node() -> impl Strategy<Value = Node> {
    let text = "[a-z <>&\"'/=é]{0,8}".prop_map(|text| Node::Text(Html::escape(&text)));
    text.prop_recursive(4, 32, 4, |inner| {
        (
            prop::sample::select(vec!["div", "section", "span", "p", "ul"]),
            any::<bool>(),
            "[a-z<>/= ]{0,6}",
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(tag, region, attr, children)| Node::Element { tag, region, attr, children })
    })
}

/// Writes `node`, collecting each region's expected outer HTML.
fn write(node: &Node, out: &mut String, regions: &mut Vec<(String, String)>) {
    match node {
        Node::Text(text) => out.push_str(text),
        Node::Element { tag, region, attr, children } => {
            let start = out.len();
            let id = format!("r{}", regions.len());
            let index = regions.len();
            if *region {
                regions.push((id.clone(), String::new()));
                out.push_str(&format!(r#"<{tag} data-x="{}" id="{id}" data-lb-region>"#, Html::escape(attr)));
            } else {
                out.push_str(&format!(r#"<{tag} title='{}'>"#, Html::escape(attr)));
            }
            for child in children {
                write(child, out, regions);
            }
            out.push_str(&format!("</{tag}>"));
            if *region {
                regions[index].1 = out[start..].to_owned();
            }
        }
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_input(input in ".{0,300}") {
        let _ = Regions::extract(&input);
    }

    #[test]
    fn never_panics_on_tag_soup(input in "[<>/=\"' a-z!-]{0,200}") {
        let _ = Regions::extract(&input.replace('a', "data-lb-region id=x "));
    }

    #[test]
    fn finds_exactly_the_generated_regions(nodes in prop::collection::vec(node(), 0..5)) {
        let mut html = String::from("<!doctype html><body>");
        let mut expected = Vec::new();
        for node in &nodes {
            write(node, &mut html, &mut expected);
        }
        html.push_str("</body>");
        let found = Regions::extract(&html);
        expected.sort();
        let found: Vec<(String, String)> = found.iter().map(|(id, html)| (id.to_owned(), html.to_owned())).collect();
        prop_assert_eq!(found, expected);
    }
}
