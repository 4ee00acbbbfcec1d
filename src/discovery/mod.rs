//! Service discovery: discovery publishes target groups (label sets); relabeling turns each of
//! them into a target, or drops it. Today only the relabel engine is here ([`relabel`]).

pub mod relabel;
