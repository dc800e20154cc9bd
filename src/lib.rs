//! `reconcile` keeps a web site's AWS front door equal to a JSON manifest.
//!
//! Data flows one way: manifest → desired model → observed model → diff → change graph →
//! executor → report. Each arrow is one module:
//!
//! - [`manifest`]: serde types, validation with JSON paths, JSON Schema (offline).
//! - [`names`]: the AWS names and tags derived from a manifest.
//! - [`model`]: Desired and Observed, the project's own types (no SDK types).
//! - [`aws`]: SDK clients, one thin read adapter per service, typed errors, request meter.
//! - [`observe`]: one batched, concurrent read of everything a manifest speaks about.
//! - [`plan`]: diff and change graph (pure), and a model of apply to check plans with.
//! - [`render`]: the human and JSON views of a plan.
//! - [`app`]: the commands' shared flow: load every manifest, read, plan.
//! - [`init`]: a manifest written from the live site behind a name (reads only).
//! - [`backend`]: the backend half of the migration (nginx, Django, firewall), from a
//!   manifest alone.

pub mod app;
pub mod apply;
pub mod aws;
pub mod backend;
pub mod init;
pub mod manifest;
pub mod model;
pub mod names;
pub mod observe;
pub mod plan;
pub mod render;
