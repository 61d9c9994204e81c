//! faceunlock firmware: camera → detect → align → embed → match → unlock.
//!
//! The library holds every stage ([`frame`], [`detect`], [`refine`], [`pad_retry`], [`embed`], [`pipeline`],
//! [`templates`], [`decision`], [`relay`]), the sealed [`state`] directory, and their wiring
//! ([`app::Unlocker`]); the `faceunlock` binary is a thin CLI over it. Board numbers live in TOML ([`config`]), never in code.
//!
//! ```
//! use faceunlock::decision::{FrameVote, Voter};
//! // Accept once 2 of the last 3 frames matched the same enrolled person.
//! let mut voter = Voter::new(2, 3);
//! assert_eq!(voter.push(FrameVote::Accept(0)), None);
//! assert_eq!(voter.push(FrameVote::Reject), None);
//! assert_eq!(voter.push(FrameVote::Accept(0)), Some(0));
//! ```

pub mod app;
pub mod attack_eval;
pub mod bench;
pub mod board;
#[cfg(feature = "v4l")]
pub mod camera;
pub mod config;
pub mod cost;
pub mod decision;
pub mod demo;
pub mod detect;
pub mod embed;
pub mod environment;
pub mod frame;
pub mod liveness;
pub mod newest;
pub mod parsers;
pub mod piped;
pub mod pad_retry;
pub mod pipeline;
pub mod quality;
pub mod refine;
pub mod relay;
pub mod state;
pub mod templates;
mod tensor_io;
