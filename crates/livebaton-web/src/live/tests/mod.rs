//! Unit tests of the live-view runtime.

mod regions;
mod runtime;
mod token_form;
