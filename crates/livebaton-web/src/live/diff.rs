//! What the client is sent after a render: only the regions whose HTML changed, plus title, flash and navigation.
//!
//! Per-region diffing keeps a keystroke's update small without a template compiler. A changed region nested in
//! another changed region is left out: the parent's HTML already carries it, and the client morphs the parent.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::regions::Regions;
use super::socket::Navigation;

/// A `diff` payload (and the body of an event reply): `{regions: {id: html}, title?, flash?, redirect?, navigate?}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegionDiff {
    /// Changed (or new) regions by id, with their new outer HTML.
    pub regions: BTreeMap<String, String>,
    /// The page title, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Flash messages put since the last send, by kind (`info`, `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flash: Option<Map<String, Value>>,
    /// A full page load the client should perform: `{to}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Target>,
    /// An in-app navigation (leave this view, join the next one): `{to}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub navigate: Option<Target>,
}

/// Where a redirect or navigation goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// A path on this site.
    pub to: String,
}

impl RegionDiff {
    /// The regions of `next` whose HTML differs from `previous` (or that are new), without those nested in another
    /// changed region. Removed regions are not listed: they disappear with the parent region that held them.
    pub fn compute(previous: &Regions, next: &Regions) -> Self {
        let changed = |id: &str| previous.html(id) != next.html(id);
        let mut regions = BTreeMap::new();
        for (id, region) in &next.0 {
            if !changed(id) {
                continue;
            }
            // Walk up the parents: if one of them changed, it carries this region already.
            let mut ancestor = region.parent.as_deref();
            let mut carried = false;
            // Bounded by the number of regions, so a malformed parent cycle cannot loop forever.
            for _ in 0..next.len() {
                let Some(parent) = ancestor else { break };
                if changed(parent) {
                    carried = true;
                    break;
                }
                ancestor = next.0.get(parent).and_then(|region| region.parent.as_deref());
            }
            if !carried {
                regions.insert(id.clone(), region.html.clone());
            }
        }
        RegionDiff { regions, ..Default::default() }
    }

    /// Every top-level region of `regions`: what a join sends.
    pub fn full(regions: &Regions) -> Self {
        Self::compute(&Regions::default(), regions)
    }

    /// Adds the navigation a view asked for.
    pub(crate) fn with_navigation(mut self, navigation: Option<Navigation>) -> Self {
        match navigation {
            Some(Navigation::Redirect(to)) => self.redirect = Some(Target { to }),
            Some(Navigation::Navigate(to)) => self.navigate = Some(Target { to }),
            None => {}
        }
        self
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
            && self.title.is_none()
            && self.flash.is_none()
            && self.redirect.is_none()
            && self.navigate.is_none()
    }

    /// The payload as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
