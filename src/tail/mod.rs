//! tail (under construction).
