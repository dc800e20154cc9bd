//! Rendering, apart from logic: the human view, the JSON view and the picture (Graphviz,
//! Mermaid) of the same plan model. Nothing else in the crate prints.

pub mod console;
pub mod events;
pub mod graph;
pub mod human;
pub mod json;
pub mod markdown;
pub mod messages;
pub mod progress;
