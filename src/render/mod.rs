//! Rendering, apart from logic: the human view and the JSON view of the same plan model.
//! Nothing else in the crate prints.

pub mod human;
pub mod json;
pub mod progress;
