//! Unit tests of the live-view runtime.

mod event;
mod regions;
mod runtime;
mod token_form;
